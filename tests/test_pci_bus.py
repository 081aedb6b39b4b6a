"""The PC bus around the i6300ESB, as a guest sees it (SPEC.md §5, with §1.4, §3.8, §4).

CONFIG_DATA lanes and the OR rule, empty functions, the special registers' single path, BAR0
decode, resets and the bus, expiries of both devices in one operation, ties, pause/resume,
snapshots and the Machine options that reach the device.  The Machine is driven only through
``io_*`` / ``mem_*`` / ``advance*`` (and, where the test is about them, ``pause``, ``resume``,
``system_reset``, ``snapshot``, ``restore``).  Every test runs on the compiled core and on the
Python twin (``make_machine``); expected values are SPEC.md's, quoted beside them.
"""
from __future__ import annotations

import pytest

from tests.conftest import S, _require_compiled
from tests.test_i6300esb_clients import (BASE, ESB_ID, HOST, GUEST, OTHER_BASE, P1_1MHZ_BOTH,
                                         RESET_1KHZ_BOTH, RESET_1KHZ_STAGE, Pci, bring_up, ev,
                                         expect_stage1_end, expect_watchdog, stage_ns, wd)

CONFIG_ADDRESS, CONFIG_DATA = 0xCF8, 0xCFC
IB700_ARM = 0x443
SLOT = 2                                    # API.md: esb_slot=2 by default
ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}


def select(m, offset, dev=SLOT, bus=0, fn=0, enable=True, high=0):
    """CONFIG_ADDRESS with *all* of offset's low byte, bits 1:0 included (§5.2 rule 2)."""
    m.io_write(CONFIG_ADDRESS, 4, (0x80000000 if enable else 0) | high << 24 | bus << 16
               | dev << 11 | fn << 8 | (offset & 0xFF))


def unlock(pci):
    pci.mw16(0x0C, 0x80)
    pci.mw16(0x0C, 0x86)


def ping(pci):
    unlock(pci)
    pci.mw16(0x0C, 0x0100)


def set_flag(m, pci):
    """Stage-2 expiry with action none, 1 MHz, preloads 1/1: sets the previous-reboot flag
    (§3.7) and leaves the watchdog reset (preloads 0xFFFFF, 1 kHz, disabled; §3.8)."""
    saved = m.action
    m.action = "none"
    pci.cw16(0x60, 0x0004)
    for off in (0x00, 0x04):
        unlock(pci)
        pci.mw32(off, 1)
    pci.cw8(0x68, 0x02)
    n = len(m.events)
    assert m.advance(P1_1MHZ_BOTH) == 1
    assert m.events[n:] == [wd("none", m.now)]
    m.action = saved
    assert pci.mr16(0x0C) == 0x1200


# =============================================================================================
# 1. CONFIG_DATA: lanes and the OR rule (§5.2)
# =============================================================================================

# The header's first bytes (§3.1): 0x00 = 86 80 AB 25, 0x04.. = 0 (command, status).
# (CONFIG_ADDRESS bits 1:0, port, size) -> value.  §5.2 rule 2: "Offset = (CONFIG_ADDRESS & 0xFF)
# **OR** k"; §5.1: pieces are the largest power of two <= left dividing the offset in the
# region 0xCFC..0xCFF; §3.2 "any alignment ... dword at 1 = bytes 1–4".
OR_RULE_READS = [
    (0, 0xCFC, 1, 0x86), (0, 0xCFD, 1, 0x80), (0, 0xCFE, 1, 0xAB), (0, 0xCFF, 1, 0x25),
    (0, 0xCFC, 2, 0x8086), (0, 0xCFE, 2, 0x25AB), (0, 0xCFC, 4, 0x25AB8086),
    # inw 0xCFD: byte at k=1 (offset 1 = 0x80), byte at k=2 (offset 2 = 0xAB)
    (0, 0xCFD, 2, 0xAB80),
    # inl 0xCFD: byte k=1, word k=2 (offsets 2-3), then 0xD00 unclaimed (all-ones)
    (0, 0xCFD, 4, 0xFF25AB80),
    # §5.2: "with bits 1:0 = 2, `inw 0xCFD` reads offset 3, then offset 2, = 0xAB25"
    (2, 0xCFD, 2, 0xAB25),
    (2, 0xCFC, 1, 0xAB), (2, 0xCFD, 1, 0x25), (2, 0xCFE, 1, 0xAB), (2, 0xCFF, 1, 0x25),
    (2, 0xCFC, 2, 0x25AB), (2, 0xCFE, 2, 0x25AB),
    (2, 0xCFC, 4, 0x000025AB),                # config dword at 2: bytes 2..5
    (1, 0xCFC, 1, 0x80), (1, 0xCFD, 1, 0x80), (1, 0xCFE, 1, 0x25), (1, 0xCFF, 1, 0x25),
    (1, 0xCFE, 2, 0x0025),                    # offset 1|2 = 3: word = bytes 3, 4
    (1, 0xCFC, 4, 0x0025AB80),                # "dword at 1 = bytes 1–4"
    (3, 0xCFC, 1, 0x25), (3, 0xCFD, 1, 0x25), (3, 0xCFE, 1, 0x25), (3, 0xCFF, 1, 0x25),
    (3, 0xCFC, 2, 0x0025), (3, 0xCFC, 4, 0x00000025),
]


@pytest.mark.parametrize("low,port,size,expected", OR_RULE_READS)
def test_config_data_lanes_or_rule(make_machine, low, port, size, expected):
    m = make_machine()
    select(m, low)
    assert m.io_read(port, size) == expected
    # reads have no side effect on CONFIG_ADDRESS (§5.2)
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x80000000 | SLOT << 11 | low


def test_inw_0xcff_reaches_past_config_data(make_machine):
    # §5.2: "Bytes past 0xCFF are unclaimed pieces (`inw 0xCFF` = 0xFF25)"
    m = make_machine()
    select(m, 0x00)
    assert m.io_read(0xCFF, 2) == 0xFF25
    # inl 0xCFE: word k=2 (0x25AB), then the unclaimed word at 0xD00
    assert m.io_read(0xCFE, 4) == 0xFFFF25AB
    assert m.io_read(0xCFF, 4) == 0xFFFFFF25


def test_config_data_writes_or_rule(make_machine):
    m = make_machine()
    pci = Pci(m, SLOT)
    # select 0x43, write at k=2: OR gives 0x43 (adding would give 0x45)
    select(m, 0x43)
    m.io_write(0xCFE, 1, 0x5A)
    assert pci.cr32(0x40) == 0x5A000000
    assert pci.cr32(0x44) == 0x00000000
    # select 0x41, word at k=2: offset 0x41|2 = 0x43, bytes 0x43, 0x44 (any alignment, §3.2)
    select(m, 0x41)
    m.io_write(0xCFE, 2, 0xBEEF)
    assert pci.cr32(0x40) == 0xEF000000
    assert pci.cr32(0x44) == 0x000000BE
    # outw 0xCFF with 0x48 selected: one byte to 0x4B, the other to the unclaimed 0xD00
    select(m, 0x48)
    m.io_write(0xCFF, 2, 0x1234)
    assert pci.cr32(0x48) == 0x34000000
    assert pci.cr32(0x4C) == 0x00000000
    # outl 0xCFE with 0x50 selected: word to 0x52, the upper word unclaimed
    select(m, 0x50)
    m.io_write(0xCFE, 4, 0x12345678)
    assert pci.cr32(0x50) == 0x56780000
    assert pci.cr32(0x54) == 0x00000000


def test_lanes_past_0xff_read_zero(make_machine):
    # §3.2: "lanes past 0xFF read 0 (probe: dword at 0xFF = 0x000000A1)"
    m = make_machine()
    select(m, 0xFC)
    m.io_write(0xCFF, 1, 0xA1)              # offset 0xFC | 3
    select(m, 0xFF)
    assert m.io_read(CONFIG_DATA, 4) == 0x000000A1
    assert m.io_read(CONFIG_DATA, 2) == 0x00A1


# =============================================================================================
# 2. Which function answers (§5.2 rules 1 and 3, bits 30:24)
# =============================================================================================

@pytest.mark.parametrize("size", [1, 2, 4])
def test_bit31_clear_reads_all_ones_and_drops_writes(make_machine, size):
    # §5.2 rule 1: "CONFIG_ADDRESS bit 31 clear → all-ones / ignored"
    m = make_machine()
    for k in range(0, 4, size):
        select(m, 0x00, enable=False)
        assert m.io_read(CONFIG_DATA + k, size) == ONES[size]
    select(m, 0x68, enable=False)
    m.io_write(CONFIG_DATA, 1, 0x02)        # would enable the watchdog
    select(m, 0x40, enable=False)
    m.io_write(CONFIG_DATA, 4, 0xDEADBEEF)
    pci = Pci(m, SLOT)
    assert pci.cr8(0x68) == 0x00
    assert pci.cr32(0x40) == 0x00000000
    assert m.next_deadline is None


@pytest.mark.parametrize("where", [dict(fn=1), dict(bus=1), dict(dev=3), dict(fn=7),
                                   dict(bus=0xFF), dict(dev=SLOT ^ 0x10)])
def test_other_functions_are_empty(make_machine, where):
    # §5.2 rule 3: "Else empty: all-ones / dropped (00:02.1, bus 1, device 3 all read
    # all-ones)"
    m = make_machine()
    select(m, 0x00, **where)
    assert m.io_read(CONFIG_DATA, 4) == 0xFFFFFFFF
    assert m.io_read(CONFIG_DATA, 2) == 0xFFFF
    assert m.io_read(CONFIG_DATA + 3, 1) == 0xFF
    select(m, 0x68, **where)
    m.io_write(CONFIG_DATA, 1, 0x02)
    select(m, 0x40, **where)
    m.io_write(CONFIG_DATA, 4, 0xDEADBEEF)
    pci = Pci(m, SLOT)
    assert pci.cr8(0x68) == 0x00
    assert pci.cr32(0x40) == 0x00000000
    assert m.next_deadline is None


def test_bits_30_24_are_ignored(make_machine):
    # §5.2 rule 2: "bits 30:24 ignored"
    m = make_machine()
    select(m, 0x00, high=0x7F)
    assert m.io_read(CONFIG_ADDRESS, 4) == 0xFF001000   # all 32 bits kept in the register
    assert m.io_read(CONFIG_DATA, 4) == ESB_ID
    select(m, 0x68, high=0x55)
    m.io_write(CONFIG_DATA, 1, 0x02)                    # reaches the lock register
    assert m.next_deadline == RESET_1KHZ_STAGE          # preloads 0xFFFFF at 1 kHz (§3.9)
    assert Pci(m, SLOT).cr8(0x68) == 0x02


# =============================================================================================
# 3. The special registers have one path each (§5.2, §3.2)
# =============================================================================================

def test_wdt_config_only_as_word_at_k0(make_machine):
    # §5.2: "Only a piece at k = 0 with bits 1:0 = 0 reaches (0x60, 2) or (0x68, 1)"
    m = make_machine()
    select(m, 0x60)
    m.io_write(CONFIG_DATA, 2, 0xFFFF)
    assert m.io_read(CONFIG_DATA, 2) == 0x0027          # §3.3: 0xFFFF "0x0027 in `qemu`"
    # the raw bytes were not written (§3.2 rule 3: independent)
    assert m.io_read(CONFIG_DATA, 4) == 0x00000000
    assert m.io_read(CONFIG_DATA, 1) == 0x00
    # dword with 0x60 selected: raw (0x60, 4), WDT Configuration unchanged
    m.io_write(CONFIG_DATA, 4, 0x0000FFFF)
    assert m.io_read(CONFIG_DATA, 4) == 0x0000FFFF
    assert m.io_read(CONFIG_DATA, 2) == 0x0027
    # bytes at k = 0 and 1: raw (0x60, 1), (0x61, 1)
    m.io_write(CONFIG_DATA, 1, 0x00)
    m.io_write(CONFIG_DATA + 1, 1, 0x00)
    assert m.io_read(CONFIG_DATA, 2) == 0x0027
    assert m.io_read(CONFIG_DATA, 4) == 0x00000000
    # §3.2: "a byte write 0x24 to 0x60 reads back only at 8 bits"
    m.io_write(CONFIG_DATA, 1, 0x24)
    assert m.io_read(CONFIG_DATA, 1) == 0x24
    assert m.io_read(CONFIG_DATA, 2) == 0x0027
    # word at 0x62 (k = 2) is raw too
    m.io_write(CONFIG_DATA + 2, 2, 0xFFFF)
    assert m.io_read(CONFIG_DATA + 2, 2) == 0xFFFF
    assert m.io_read(CONFIG_DATA, 2) == 0x0027


def test_wdt_config_unreachable_with_bits_1_0_set(make_machine):
    # with 0x61 selected a word at k = 0 is (0x61, 2), raw; 0x60 itself is never addressed
    m = make_machine()
    select(m, 0x61)
    m.io_write(CONFIG_DATA, 2, 0x0404)
    pci = Pci(m, SLOT)
    assert pci.cr16(0x60) == 0x0000
    assert pci.cr32(0x60) == 0x00040400


def test_lock_register_only_as_byte_at_k0(make_machine):
    m = make_machine()
    pci = Pci(m, SLOT)
    select(m, 0x68)
    # word and dword at 0x68 are raw (§3.2: "a dword write 2 to 0x68 reads back as a dword
    # while the watchdog stays off")
    m.io_write(CONFIG_DATA, 4, 0x00000002)
    assert m.io_read(CONFIG_DATA, 4) == 0x00000002
    assert m.next_deadline is None
    m.io_write(CONFIG_DATA, 2, 0x0002)
    assert m.next_deadline is None
    assert m.io_read(CONFIG_DATA, 1) == 0x00               # the lock register
    # 0x69 | k and 0x6A | k never address 0x68
    select(m, 0x69)
    m.io_write(CONFIG_DATA, 1, 0x02)
    select(m, 0x68)
    m.io_write(CONFIG_DATA + 1, 1, 0x02)
    assert m.next_deadline is None
    assert pci.cr8(0x68) == 0x00
    assert pci.cr16(0x68) == 0x0202                        # raw bytes 0x68 (=2), 0x69 (=2)
    # the byte at k = 0 with 0x68 selected does reach it
    t = 5 * S + 3
    m.advance_to(t)
    select(m, 0x68)
    m.io_write(CONFIG_DATA, 1, 0x02)
    assert m.next_deadline == t + RESET_1KHZ_STAGE
    assert m.io_read(CONFIG_DATA, 1) == 0x02
    assert pci.cr16(0x68) == 0x0202                        # raw untouched by the lock write


def test_outw_0xcfb_enables_through_its_second_piece(make_machine):
    # §5.2: "`outw 0xCFB,0x0200` with 0x68 selected writes 0x02 to the lock register through
    # its second piece (probe)"; §5.2 CONFIG_ADDRESS: "Only a 4-byte piece at 0xCF8 writes"
    m = make_machine()
    t = 1_234_567
    m.advance_to(t)
    select(m, 0x68)
    m.io_write(0xCFB, 2, 0x0200)
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x80001068      # the 0x00 piece at 0xCFB ignored
    assert m.next_deadline == t + RESET_1KHZ_STAGE
    # §5.1: "`inw 0xCFB` = low byte of CONFIG_ADDRESS + config byte via 0xCFC"
    assert m.io_read(0xCFB, 2) == 0x0268
    expect_stage1_end(m, t + RESET_1KHZ_STAGE, t + RESET_1KHZ_BOTH)
    assert expect_watchdog(m, t + RESET_1KHZ_BOTH) == [ev("RESET", t + RESET_1KHZ_BOTH, GUEST)]


# =============================================================================================
# 4. BAR0 decode (§5.3)
# =============================================================================================

def test_command_bit_1_gates_decode(make_machine):
    # §5.3: "only while ... command bit 1 is set (probe: otherwise a ping is lost and reads
    # give 0)"
    m = make_machine()
    pci = bring_up(m)
    set_flag(m, pci)
    t = m.now + 11
    m.advance_to(t)
    pci.cw8(0x68, 0x02)
    assert m.next_deadline == t + RESET_1KHZ_STAGE
    for command in (0x0000, 0x0505):        # every writable bit but memory (§3.1 mask 0x0507)
        pci.cw16(0x04, command)
        assert pci.cr16(0x04) == command
        assert pci.mr16(0x0C) == 0x0000
        assert pci.mr(0x0C, 4) == 0 and pci.mr(0x00, 4) == 0
        m.advance(S)
        ping(pci)                           # lost
        assert m.next_deadline == t + RESET_1KHZ_STAGE
        unlock(pci)
        pci.mw16(0x0C, 0x0200)              # flag clear lost too
    pci.cw16(0x04, 0x0002)
    assert pci.mr16(0x0C) == 0x1200
    # the dropped unlocks left nothing behind: a lone reload word does nothing (§3.5 rule 6)
    pci.mw16(0x0C, 0x0100)
    assert m.next_deadline == t + RESET_1KHZ_STAGE
    ping(pci)
    assert m.next_deadline == m.now + RESET_1KHZ_STAGE


@pytest.mark.parametrize("bar", [0x00000000, 0x0000000F])
def test_bar_zero_is_not_decoded(make_machine, bar):
    # §5.3: "B ≠ 0 (QEMU's `pc` treats 0 as unassigned)"; §3.1 "bits 3:0 read 0"
    m = make_machine()
    pci = bring_up(m)
    set_flag(m, pci)
    pci.cw8(0x68, 0x02)
    t = m.now
    pci.cw32(0x10, bar)
    assert pci.cr32(0x10) == 0x00000000
    assert pci.cr16(0x04) & 0x0002
    assert m.mem_read(0x0C, 2) == 0x0000
    m.advance(S)
    m.mem_write(0x0C, 2, 0x80)
    m.mem_write(0x0C, 2, 0x86)
    m.mem_write(0x0C, 2, 0x0100)
    assert m.next_deadline == t + RESET_1KHZ_STAGE


def test_bar_at_the_top_of_4g(make_machine):
    # §5.3: "B ≤ 0xFFFFFFE0 (probe: 0xFFFFFFF0 is not mapped, 0xFFFFFFE0 is)"
    m = make_machine()
    pci = bring_up(m)
    set_flag(m, pci)
    pci.cw32(0x10, 0xFFFFFFF0)
    assert pci.cr32(0x10) == 0xFFFFFFF0
    assert m.mem_read(0xFFFFFFFC, 2) == 0x0000
    pci.cw8(0x68, 0x02)
    t = m.now
    m.advance(S)
    for v in (0x80, 0x86, 0x0100):
        m.mem_write(0xFFFFFFFC, 2, v)
    assert m.next_deadline == t + RESET_1KHZ_STAGE
    pci.cw32(0x10, 0xFFFFFFE0)
    assert pci.cr32(0x10) == 0xFFFFFFE0
    assert m.mem_read(0xFFFFFFEC, 2) == 0x1200
    assert m.mem_read(0xFFFFFFFC, 2) == 0x0000
    for v in (0x80, 0x86, 0x0100):
        m.mem_write(0xFFFFFFEC, 2, v)
    assert m.next_deadline == m.now + RESET_1KHZ_STAGE


def test_bar_does_not_alias_above_4g(make_machine):
    # §5.3: the device "claims [B, B+16)"; everything else is the unassigned region
    m = make_machine()
    pci = bring_up(m)
    set_flag(m, pci)
    assert m.mem_read(BASE + 0x0C, 2) == 0x1200
    for alias in (1 << 32, 1 << 40, 1 << 63):
        assert m.mem_read(alias + BASE + 0x0C, 2) == 0x0000
    assert m.mem_read(BASE + 0x1C, 2) == 0x0000
    assert m.mem_read(BASE - 0x04, 2) == 0x0000


def test_moving_bar0_moves_the_window_only(make_machine):
    # §5.3: "Decode is re-evaluated per access; moving or hiding the window never touches
    # device state"
    m = make_machine()
    pci = bring_up(m)
    set_flag(m, pci)
    t = m.now + 5
    m.advance_to(t)
    pci.cw8(0x68, 0x02)
    m.advance(S)
    unlock(pci)                                     # unlock_state 2, through the old window
    pci.cw32(0x10, OTHER_BASE)                      # move
    assert m.mem_read(BASE + 0x0C, 2) == 0x0000
    assert m.mem_read(OTHER_BASE + 0x0C, 2) == 0x1200
    assert m.next_deadline == t + RESET_1KHZ_STAGE  # timer untouched
    assert pci.cr8(0x68) == 0x02
    m.mem_write(BASE + 0x0C, 2, 0x0100)             # old window: dropped, unlock kept
    assert m.next_deadline == t + RESET_1KHZ_STAGE
    m.mem_write(OTHER_BASE + 0x0C, 2, 0x0100)       # new window: the pending unlock pings
    assert m.next_deadline == m.now + RESET_1KHZ_STAGE
    # hide (command off) and show again: still the same state
    pci.cw16(0x04, 0x0000)
    pci.cw16(0x04, 0x0002)
    assert m.mem_read(OTHER_BASE + 0x0C, 2) == 0x1200
    assert m.next_deadline == m.now + RESET_1KHZ_STAGE


def test_dword_at_bar0_minus_2_delivers_upper_word_to_offset_0(make_machine):
    # §5.1: "a dword write at BAR0−2 delivers its upper word to BAR0+0"
    m = make_machine()
    pci = bring_up(m)
    set_flag(m, pci)
    pci.cw8(0x68, 0x02)
    t = m.now
    m.advance(S)
    # Two such writes carrying 0x0080 / 0x0086 in the upper word reach offset 0, not 0x0C:
    # §3.5 rules 1-2 need A = 0x0C, so they do NOT unlock.
    m.mem_write(BASE - 2, 4, 0x00800000)
    m.mem_write(BASE - 2, 4, 0x00860000)
    pci.mw16(0x0C, 0x0100)
    pci.mw16(0x0C, 0x0200)
    assert m.next_deadline == t + RESET_1KHZ_STAGE  # no ping
    assert pci.mr16(0x0C) == 0x1200                 # no flag clear
    # The upper word does arrive (at offset 0): a word piece while unlocked consumes the
    # unlock, "unlock_state = 0, whatever A" (§3.5 rule 4)
    unlock(pci)
    m.mem_write(BASE - 2, 4, 0x12340000)
    pci.mw16(0x0C, 0x0100)
    assert m.next_deadline == t + RESET_1KHZ_STAGE
    # control: entirely below the window, nothing arrives and the unlock survives
    unlock(pci)
    m.mem_write(BASE - 4, 4, 0xFFFFFFFF)
    m.mem_write(BASE - 2, 2, 0xFFFF)
    pci.mw16(0x0C, 0x0100)
    assert m.next_deadline == m.now + RESET_1KHZ_STAGE


def test_accesses_straddling_the_window_end(make_machine):
    # §5.1 splitting with §5.3: pieces in the window go to mmio, the rest to unassigned memory
    m = make_machine()
    pci = bring_up(m)
    set_flag(m, pci)
    pci.cw8(0x68, 0x02)
    t = m.now
    m.advance(S)
    # dword at BAR0+0x0E: word 0x0E in the window (consumes an unlock, §3.5 rule 4), word at
    # BAR0+0x10 dropped
    unlock(pci)
    m.mem_write(BASE + 0x0E, 4, 0x00000000)
    pci.mw16(0x0C, 0x0100)
    assert m.next_deadline == t + RESET_1KHZ_STAGE
    # word at BAR0+0x0F: byte 0x0F in the window ("bytes never ... consume", rule 3), byte
    # outside: the unlock survives
    unlock(pci)
    m.mem_write(BASE + 0x0F, 2, 0xFFFF)
    m.mem_write(BASE + 0x10, 4, 0xFFFFFFFF)
    pci.mw16(0x0C, 0x0100)
    t2 = m.now
    assert m.next_deadline == t2 + RESET_1KHZ_STAGE
    # reads (flag set): §3.5 "a dword read at 0x0C gives 0, at 0x0A 0x12000000, at 0x0B
    # 0x00120000"; straddling the end, every lane reads 0 (window and unassigned alike)
    assert m.mem_read(BASE + 0x0C, 4) == 0x00000000
    assert m.mem_read(BASE + 0x0A, 4) == 0x12000000
    assert m.mem_read(BASE + 0x0B, 4) == 0x00120000
    assert m.mem_read(BASE + 0x0D, 2) == 0x0000
    assert m.mem_read(BASE + 0x0E, 4) == 0x00000000
    assert m.mem_read(BASE + 0x0F, 2) == 0x0000
    assert m.mem_read(BASE - 2, 4) == 0x00000000
    assert m.next_deadline == t2 + RESET_1KHZ_STAGE  # reads never have side effects


# =============================================================================================
# 5. Resets and the bus (§3.8, §4.3, §5.2)
# =============================================================================================

def test_system_reset_clears_bar_and_command_keeps_flag_raw_and_config_address(make_machine):
    # §3.8: "command, BAR0, cache line, interrupt line → 0 | ... | yes (probe)"; "raw
    # 0x40–0xFF | ... | **kept** (probe)"; §3.7 flag "Survives ... every system reset";
    # §4.3 "System resets keep `now`, the action and CONFIG_ADDRESS (probe)"
    m = make_machine(action="none")
    pci = bring_up(m)
    set_flag(m, pci)
    pci.cw8(0x0C, 0x10)
    pci.cw8(0x3C, 0x0B)
    pci.cw32(0x40, 0xDEADBEEF)
    pci.cw32(0xFC, 0x01020304)
    pci.cw16(0x60, 0x0024)
    pci.cw8(0x68, 0x07)
    assert pci.cr8(0x0C) == 0x10 and pci.cr8(0x3C) == 0x0B
    select(m, 0x3C, high=0x12)                       # the address the guest left there
    now = m.now
    m.system_reset()
    assert m.events[-1] == ev("RESET", now, HOST)
    assert m.status == "running" and m.now == now
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x92001000 | 0x3C
    assert m.io_read(CONFIG_DATA, 1) == 0x00          # interrupt line via the kept address
    # the old window reads 0 until re-mapped
    assert m.mem_read(BASE + 0x0C, 2) == 0x0000
    assert pci.cr32(0x10) == 0x00000000
    assert pci.cr16(0x04) == 0x0000
    assert pci.cr8(0x0C) == 0x00
    assert pci.cr8(0x3C) == 0x00
    assert pci.cr32(0x40) == 0xDEADBEEF
    assert pci.cr32(0xFC) == 0x01020304
    # the watchdog part: disabled, unlocked, reset config (§3.8)
    assert pci.cr8(0x68) == 0x00 and pci.cr16(0x60) == 0x0000
    assert m.next_deadline is None
    # BAR0 alone is not enough, command bit 1 too
    pci.cw32(0x10, BASE)
    assert m.mem_read(BASE + 0x0C, 2) == 0x0000
    pci.cw16(0x04, 0x0002)
    assert m.mem_read(BASE + 0x0C, 2) == 0x1200


def test_stage2_internal_reset_keeps_bar0_mapped(make_machine):
    # §3.8 internal column: "command, BAR0 ... → 0 | ... | **no** (probe: BAR0 still mapped)"
    m = make_machine(action="none")
    pci = bring_up(m)
    pci.cw16(0x60, 0x0004)
    for off in (0x00, 0x04):
        unlock(pci)
        pci.mw32(off, 10)
    t = 3 * S
    m.advance_to(t)
    pci.cw8(0x68, 0x02)
    both = 2 * stage_ns(10, True)
    assert expect_watchdog(m, t + both, "none") == []
    # right after the WATCHDOG, without touching config space
    assert m.mem_read(BASE + 0x0C, 2) == 0x1200
    unlock(pci)
    pci.mw16(0x0C, 0x0200)
    assert m.mem_read(BASE + 0x0C, 2) == 0x0000
    assert pci.cr32(0x10) == BASE
    assert pci.cr16(0x04) == 0x0002


# =============================================================================================
# 6. Both devices, one operation (§4.2), ties (§1.4), pause/resume (§4.4)
# =============================================================================================

# §4.2 probe: "IB700 reset at 2 s, i6300ESB stages ending ≈3 s and ≈4.08 s, one 5 s
# `clock_step` → both WATCHDOGs, the flag set, then one RESET at 5 s; likewise with pause".
# Preloads at 1 kHz: 3052 → 3 000 238 080 ns, 1099 → 1 080 360 960 ns (§3.6 formula).
P1_3S, P2_1S08 = 3052, 1099
ESB_S1 = 3_000_238_080
ESB_S2_END = 3_000_238_080 + 1_080_360_960   # 4 080 599 040


def _arm_both_at_zero(m):
    pci = bring_up(m)
    pci.cw16(0x60, 0x0000)
    unlock(pci)
    pci.mw32(0x00, P1_3S)
    unlock(pci)
    pci.mw32(0x04, P2_1S08)
    m.io_write(IB700_ARM, 1, 0x0E)       # §2.2 index E = 2 s
    pci.cw8(0x68, 0x02)
    assert m.now == 0
    return pci


@pytest.mark.parametrize("action,follow,status", [
    ("reset", ev("RESET", 5 * S, GUEST), "running"),
    ("pause", ev("STOP", 5 * S), "watchdog"),
])
def test_both_devices_expire_in_one_advance(make_machine, action, follow, status):
    assert stage_ns(P1_3S) == ESB_S1 and stage_ns(P1_3S) + stage_ns(P2_1S08) == ESB_S2_END
    m = make_machine(action=action)
    pci = _arm_both_at_zero(m)
    assert m.next_deadline == 2 * S
    assert m.advance(5 * S) == 2
    assert m.events == [wd(action, 2 * S), wd(action, ESB_S2_END), follow]
    assert m.status == status
    assert m.now == 5 * S
    if action == "reset":
        pci = bring_up(m)
    assert pci.mr16(0x0C) == 0x1200      # "the flag set"


# Ties (§1.4): "equal deadlines fire in the order they were last (re)armed, oldest first,
# across a Machine's devices".  The i6300ESB's stage-2 deadline is armed at its stage-1 end.
#
# IB700 older: IB700 armed at 0 (2 s).  ESB at 1 MHz, preloads 1 / 1 000 000: stages of 960
# and 960 000 000 ns; enabled at 2e9 − 960 − 960 000 000 = 1 039 999 040, stage 2 armed at
# 1 040 000 000, ends at 2 000 000 000.
# ESB older: ESB at 1 kHz, preloads 1 / 3000: stages of 983 040 and 2 949 120 000 ns; enabled
# at 0, stage 2 armed at 983 040, ends at 2 950 103 040; IB700 armed (2 s) at 950 103 040.
TIE_CASES = {
    "ib700_first": dict(scale=0x0004, p1=1, p2=1_000_000, esb_at=1_039_999_040, ib_at=0,
                        deadline=2_000_000_000, order=["ib700", "i6300esb"]),
    "esb_first": dict(scale=0x0000, p1=1, p2=3000, esb_at=0, ib_at=950_103_040,
                      deadline=2_950_103_040, order=["i6300esb", "ib700"]),
}


def _tie(make_machine, case, action):
    c = TIE_CASES[case]
    one_mhz = bool(c["scale"] & 0x04)
    assert c["esb_at"] + stage_ns(c["p1"], one_mhz) + stage_ns(c["p2"], one_mhz) == c["deadline"]
    assert c["ib_at"] + 2 * S == c["deadline"]
    m = make_machine(action=action)
    order = []
    m.ib700.on_expire = lambda e: order.append((e.device, e.time_ns))       # observers only
    m.i6300esb.on_expire = lambda e: order.append((e.device, e.time_ns))
    pci = bring_up(m)
    pci.cw16(0x60, c["scale"])
    unlock(pci)
    pci.mw32(0x00, c["p1"])
    unlock(pci)
    pci.mw32(0x04, c["p2"])
    for t, what in sorted([(c["esb_at"], "esb"), (c["ib_at"], "ib")], key=lambda x: x[0]):
        m.advance_to(t)
        if what == "esb":
            pci.cw8(0x68, 0x02)
        else:
            m.io_write(IB700_ARM, 1, 0x0E)
    assert m.advance_to(c["deadline"] - 1) == 0
    assert m.next_deadline == c["deadline"]
    return m, c, order


@pytest.mark.parametrize("case", list(TIE_CASES))
@pytest.mark.parametrize("action", ["none", "pause", "reset"])
def test_equal_deadlines_fire_in_arming_order(make_machine, case, action):
    m, c, order = _tie(make_machine, case, action)
    d = c["deadline"]
    assert m.advance_to(d) == 2
    assert order == [(dev, d) for dev in c["order"]]
    follow = {"none": [], "pause": [ev("STOP", d)], "reset": [ev("RESET", d, GUEST)]}[action]
    assert m.events == [wd(action, d), wd(action, d)] + follow


@pytest.mark.parametrize("case", list(TIE_CASES))
def test_equal_deadlines_poweroff_only_the_older_fires(make_machine, case):
    # §4.2 poweroff: "WATCHDOG, then stop at once: no later expiry"
    m, c, order = _tie(make_machine, case, "poweroff")
    d = c["deadline"]
    assert m.advance_to(d + S) == 1
    assert order == [(c["order"][0], d)]
    assert m.events == [wd("poweroff", d)]
    assert m.status == "poweroff"
    assert m.now == d


def test_pause_resume_overdue_stage1(make_machine):
    # §4.4: "an i6300ESB stage 1 overdue since 3 s fired at a 10 s resume, stage 2 ending at
    # 10 s + duration(preload2)"
    m = make_machine(action="none")
    _arm_both_at_zero(m)
    m.io_write(0x441, 1, 0)               # §2.1 disable the IB700: only the ESB here
    m.advance_to(S)
    m.pause()
    assert m.next_deadline is None        # "m.next_deadline is None" while stopped
    assert m.advance_to(10 * S) == 0
    assert m.events == [ev("STOP", S)]
    m.resume()
    # RESUME, then the overdue stage 1 at 10 s (no event); stage 2 counts from 10 s
    assert m.events == [ev("STOP", S), ev("RESUME", 10 * S)]
    assert m.next_deadline == 10 * S + stage_ns(P2_1S08)
    assert expect_watchdog(m, 10 * S + stage_ns(P2_1S08), "none") == []


def test_pause_resume_overdue_stage2_requests_at_end_of_resume(make_machine):
    # §4.4: "resume() ... handles every overdue deadline at the resume time ... requests are
    # processed at the end of `resume()`"
    m = make_machine(action="reset")
    _arm_both_at_zero(m)
    m.io_write(0x441, 1, 0)
    m.advance_to(ESB_S1 + 5)              # in stage 2, ending at 4.08 s
    assert m.next_deadline == ESB_S2_END
    m.pause()
    m.advance_to(10 * S)
    assert m.events == [ev("STOP", ESB_S1 + 5)]
    m.resume()
    assert m.events[1:] == [ev("RESUME", 10 * S), wd("reset", 10 * S),
                            ev("RESET", 10 * S, GUEST)]
    assert m.status == "running"


# =============================================================================================
# 7. Snapshots (§3.10, API.md Machine)
# =============================================================================================

def _history(m):
    """Both devices mid-countdown, the ESB in stage 2 with an unlock half done, the flag set,
    raw bytes, CONFIG_ADDRESS selecting the lock register."""
    m.action = "none"
    pci = bring_up(m)
    set_flag(m, pci)
    pci.cw32(0x40, 0xCAFEBABE)
    pci.cw16(0x60, 0x0001)                 # 1 kHz, INT_TYPE 1
    unlock(pci)
    pci.mw32(0x00, 7)
    unlock(pci)
    pci.mw32(0x04, 0x123)
    m.advance(1_000_000_001)
    pci.cw8(0x68, 0x02)                    # stage 1: 7 × 983 040 = 6 881 280 ns
    m.advance(12_345)
    m.io_write(IB700_ARM, 1, 0x0A)         # 10 s
    m.advance(10_000_000)                  # in stage 2 (286 064 640 ns)
    pci.mw16(0x0C, 0x80)                   # unlock_state 1
    select(m, 0x68)
    m.action = "reset"
    return pci


def _future(m):
    out = []
    start = len(m.events)
    out.append(m.io_read(CONFIG_DATA, 1))          # via the kept CONFIG_ADDRESS
    out.append(m.mem_read(BASE + 0x0C, 2))
    out.append(m.next_deadline)
    m.advance(1000)
    m.mem_write(BASE + 0x0C, 2, 0x86)               # completes the pending unlock ...
    m.mem_write(BASE + 0x0C, 2, 0x0100)             # ... so this pings
    out.append(m.next_deadline)
    m.advance(20 * S)
    out += [m.events[start:], m.now, m.status, m.next_deadline,
            m.io_read(CONFIG_ADDRESS, 4), m.mem_read(BASE + 0x0C, 2)]
    return out


def test_snapshot_mid_countdown_identical_future(make_machine):
    m = make_machine()
    _history(m)
    data = m.snapshot()
    fresh = make_machine()
    fresh.restore(data)
    assert fresh.snapshot() == data
    assert fresh.events == []
    expected = _future(m)
    # The expected future, from the SPEC numbers (§3.6 durations, §2.2 10 s, §4.2 requests):
    # set_flag ends at 1 920 ns; the ESB is enabled at 1 000 001 921 (stage 1 of 7 ticks),
    # the IB700 armed at 1 000 014 266 (deadline 11 000 014 266), snapshot at 1 010 014 266
    # in stage 2, which would end at 1 000 001 921 + duration(7) + duration(0x123).
    enable_t = P1_1MHZ_BOTH + 1_000_000_001
    ib_t = enable_t + 12_345 + 10 * S
    snap_t = enable_t + 12_345 + 10_000_000
    assert m.now == snap_t + 1000 + 20 * S
    ping_t = snap_t + 1000                  # the completed unlock pings (§3.5 rules 2, 4)
    esb_t = ping_t + stage_ns(7) + stage_ns(0x123)
    assert expected == [
        0x02, 0x1200, enable_t + stage_ns(7) + stage_ns(0x123),
        ping_t + stage_ns(7),
        [wd("reset", esb_t), wd("reset", ib_t), ev("RESET", snap_t + 1000 + 20 * S, GUEST)],
        snap_t + 1000 + 20 * S, "running", None, 0x80001068,
        0x0000,                             # BAR0 cleared by the RESET (§3.8)
    ]
    assert _future(fresh) == expected
    assert fresh.snapshot() == m.snapshot()


def test_snapshot_across_implementations(make_machine, impl):
    # §3.10: "Both implementations MUST write byte-identical snapshots for identical states
    # and accept each other's"
    _require_compiled()
    other = "python" if impl == "compiled" else "compiled"
    here = make_machine()
    there = make_machine(implementation=other)
    _history(here)
    _history(there)
    data = here.snapshot()
    assert there.snapshot() == data
    a = make_machine(implementation=other)
    a.restore(here.snapshot())
    b = make_machine()
    b.restore(there.snapshot())
    assert a.snapshot() == b.snapshot() == data
    expected = _future(here)
    assert _future(a) == expected
    assert _future(b) == expected
    assert _future(there) == expected


# =============================================================================================
# 8. Machine options reach the device (§1.2, §1.3)
# =============================================================================================

@pytest.mark.parametrize("profile,readback", [("qemu", 0x0027), ("qemu-7.2", 0x0035)])
def test_profile_reaches_the_device(make_machine, profile, readback):
    # §3.3: "0xFFFF reads back 0x0035 in `qemu-7.2`, 0x0027 in `qemu`"
    m = make_machine(profile=profile)
    select(m, 0x60)
    m.io_write(CONFIG_DATA, 2, 0xFFFF)
    assert m.io_read(CONFIG_DATA, 2) == readback


def test_profile_qemu72_int_type_table(make_machine):
    # §3.3: "in `qemu-7.2` writes of 0,1,2,3,0x10,0x13 read 0,1,0,1,0x10,0x11 (probe)"
    m = make_machine(profile="qemu-7.2")
    select(m, 0x60)
    got = []
    for v in (0, 1, 2, 3, 0x10, 0x13):
        m.io_write(CONFIG_DATA, 2, v)
        got.append(m.io_read(CONFIG_DATA, 2))
    assert got == [0, 1, 0, 1, 0x10, 0x11]


@pytest.mark.parametrize("s1i", [False, True])
def test_stage1_interrupt_option_reaches_the_device(make_machine, s1i):
    # §1.3: "At a stage-1 expiry, if the stored INT_TYPE equals 0, GINTSR bit 0 is set";
    # "A read piece (§3.5) covering byte 0x08 shows GINTSR"; item 4 W1C; "With the extension
    # off: 0x08 reads 0"
    m = make_machine(stage1_interrupt=s1i)
    pci = bring_up(m)
    pci.cw16(0x60, 0x0004)                 # 1 MHz, INT_TYPE 0
    unlock(pci)
    pci.mw32(0x00, 1)
    unlock(pci)
    pci.mw32(0x04, 100)
    t = 77
    m.advance_to(t)
    pci.cw8(0x68, 0x02)
    m.advance_to(t + stage_ns(1, True) - 1)
    assert pci.mr(0x08, 1) == 0
    m.advance_to(t + stage_ns(1, True))
    assert m.next_deadline == t + stage_ns(1, True) + stage_ns(100, True)
    assert pci.mr(0x08, 1) == (1 if s1i else 0)
    assert pci.mr(0x08, 4) == (1 if s1i else 0)
    assert pci.mr(0x08, 1) == (1 if s1i else 0)       # reads never clear it
    pci.mw(0x08, 1, 0x01)
    assert pci.mr(0x08, 4) == 0
    assert m.events == []


def test_stage1_interrupt_needs_int_type_0(make_machine):
    # §1.3 item 1: "Any other stored type (1, 2 = SMI, 3 ...) changes nothing"
    m = make_machine(stage1_interrupt=True)
    pci = bring_up(m)
    pci.cw16(0x60, 0x0007)                 # 1 MHz, INT_TYPE 3 (as Linux writes it)
    unlock(pci)
    pci.mw32(0x00, 1)
    pci.cw8(0x68, 0x02)
    m.advance(stage_ns(1, True))
    assert m.next_deadline == m.now + stage_ns(0xFFFFF, True)
    assert pci.mr(0x08, 4) == 0
