"""i6300ESB device behaviour, alone (no Machine), on both implementations.

Every test takes the ``ESB`` fixture (defined below, mirroring conftest's ``IB700``), so it
runs once on the compiled core and once on the Python twin.  Expected values come from
SPEC.md: §1.3 (the opt-in stage-1 interrupt), §1.4 (time) and §3 (configuration header,
configuration accesses, WDT Configuration 0x60, WDT Lock 0x68, BAR0 registers with
splitting and the unlock state machine, the two-stage timer, the previous-reboot flag,
resets, the numbers table §3.9, snapshots §3.10); API.md gives the surface and
docs/snapshot.md the snapshot layout.  Each timer boundary is checked one ns before,
exactly at and one ns after.

Notation (SPEC §6): UNLOCK16 = MW16(0x0C ← 0x80), MW16(0x0C ← 0x86); a "ping" is
UNLOCK16 then MW16(0x0C ← 0x0100); "load" is UNLOCK16 then MW32 to a preload register.

Sections:
1. construction
2. configuration header (§3.1)
3. configuration accesses (§3.2)
4. WDT Configuration, word at 0x60 (§3.3)
5. WDT Lock, byte at 0x68 (§3.4)
6. BAR0: the unlock machine, splitting, reads, reload/flag (§3.5, §3.7)
7. the two-stage timer (§3.6, §3.9, §6.6)
8. free-running cycles cost O(1) (§3.6)
9. the stage-1 interrupt extension (§1.3)
10. resets (§3.8)
11. snapshot / restore, pickle, deepcopy (§3.10)
"""
from __future__ import annotations

import copy
import pickle
import struct
import subprocess
import sys
import time

import pytest

from wdcore import WatchdogAction, WatchdogEvent, _select, _snapshot

from .conftest import S

TIME_MAX = (1 << 63) - 1
T0 = 5 * S + 123            # a non-zero start time for most tests
RESET_PRELOAD = 0xFFFFF     # §3.8: "preloads 0xFFFFF"

# docs/snapshot.md, i6300ESB payload (312 bytes), in order
ESB_FMT = struct.Struct("<QBBQQQ BBBBBBBB II BBBB 256s")
ESB_FIELDS = ("now", "action", "armed", "deadline", "seq", "counter", "profile", "s1i",
              "enabled", "locked", "free_run", "reboot_disabled", "one_mhz", "int_type",
              "preload1", "preload2", "stage", "unlock", "prev_reboot", "gintsr", "cfg")


@pytest.fixture
def ESB(impl):
    return _select.implementation(impl).I6300ESB


# ---------------------------------------------------------------------------------
# helpers (each one is a SPEC formula or a SPEC §6 access sequence)
# ---------------------------------------------------------------------------------

def dur(preload: int, one_mhz: bool = False) -> int:
    """§3.6: "duration(P) = (P << 15) × 30 ns at 1 kHz, (P << 5) × 30 ns at 1 MHz"."""
    return (preload << (5 if one_mhz else 15)) * 30


def ev(t: int, action: WatchdogAction = WatchdogAction.RESET) -> WatchdogEvent:
    """§3.6: "record WatchdogEvent(t, "i6300esb", action)"."""
    return WatchdogEvent(t, "i6300esb", action)


def fresh(ESB, t0: int = T0, **kw):
    dev = ESB(**kw)
    assert dev.advance_to(t0) == 0
    assert dev.now == t0
    return dev


def unlock(dev, width: int = 2) -> None:
    """UNLOCK16 (or UNLOCK8 / a dword variant): 0x80 then 0x86 to 0x0C."""
    dev.mmio_write(0x0C, width, 0x80)
    dev.mmio_write(0x0C, width, 0x86)


def ping(dev) -> None:
    unlock(dev)
    dev.mmio_write(0x0C, 2, 0x0100)


def load(dev, p1=None, p2=None) -> None:
    """§3.5 rule 5: an unlocked dword at 0x00 / 0x04 loads preload 1 / 2."""
    if p1 is not None:
        unlock(dev)
        dev.mmio_write(0x00, 4, p1)
    if p2 is not None:
        unlock(dev)
        dev.mmio_write(0x04, 4, p2)


def wdt_lock(dev) -> int:
    return dev.config_read(0x68, 1)


def flag_word(dev) -> int:
    """§3.7: the flag is "Visible only through a word piece at 0x0C ... as 0x1200"."""
    return dev.mmio_read(0x0C, 2)


def running(ESB, p=10, **kw):
    """Preloads p/p at 1 kHz, enabled at T0, then 1000 ns later.  Returns (dev, deadline)."""
    dev = fresh(ESB, **kw)
    load(dev, p, p)
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == T0 + dur(p)
    dev.advance(1000)
    return dev, T0 + dur(p)


def pinged(dev, p=10) -> bool:
    """After a ping stage 1 restarts at now: deadline = now + duration(preload 1)."""
    return dev.stage == 1 and dev.next_deadline == dev.now + dur(p)


def trip(dev) -> int:
    """Drive one stage-2 expiry with reboot enabled: 1 MHz, preloads 1/1 (§3.9: 960 ns a
    stage), enable, advance 1920 ns.  Returns the expiry time."""
    dev.config_write(0x60, 2, 0x04)
    load(dev, 1, 1)
    dev.config_write(0x68, 1, 0x02)
    t = dev.now + 1920
    n = len(dev.events)
    assert dev.advance_to(t) == 1
    assert len(dev.events) == n + 1
    assert dev.events[-1].time_ns == t
    return t


def pieces(offset: int, size: int):
    """§3.5 Splitting: "at offset o with r bytes left the piece is the largest power of two
    ≤ r dividing o (0 divides all)"."""
    out, o, r = [], offset, size
    while r:
        n = 4
        while n > r or o % n:
            n //= 2
        out.append((o, n))
        o += n
        r -= n
    return out


def payload(dev) -> dict:
    return dict(zip(ESB_FIELDS, ESB_FMT.unpack(
        _snapshot.unwrap(dev.snapshot(), _snapshot.KIND_I6300ESB))))


def test_splitting_helper_matches_spec_examples():
    """§3.5: "Word at 0x0D → bytes 0x0D, 0x0E; dword at 0x0A → words 0x0A, 0x0C; dword at
    0x0B → byte, word 0x0C, byte".  (Checks the helper the tests below rely on.)"""
    assert pieces(0x0D, 2) == [(0x0D, 1), (0x0E, 1)]
    assert pieces(0x0A, 4) == [(0x0A, 2), (0x0C, 2)]
    assert pieces(0x0B, 4) == [(0x0B, 1), (0x0C, 2), (0x0E, 1)]
    assert pieces(0x0C, 4) == [(0x0C, 4)]


# ---------------------------------------------------------------------------------
# 1. Construction
# ---------------------------------------------------------------------------------

def test_construction_defaults(ESB):
    """API.md defaults; §3.8 construction: "disabled, unlocked, free_run 0, reboot enabled,
    1 kHz, INT_TYPE 0, preloads 0xFFFFF, stage 1, unlock_state 0, no deadline, GINTSR 0";
    flag 0."""
    dev = ESB()
    assert dev.now == 0
    assert dev.stage == 1
    assert dev.next_deadline is None
    assert dev.remaining_ns is None
    assert dev.irq_level is False
    assert dev.action is WatchdogAction.RESET
    assert dev.on_expire is None
    assert dev.on_irq is None
    assert dev.events == []
    assert dev.config_read(0x60, 2) == 0
    assert wdt_lock(dev) == 0
    assert flag_word(dev) == 0
    assert dev.advance(3000 * S) == 0
    assert dev.events == []


def test_construction_preloads_are_0xfffff(ESB):
    """§3.8: preloads 0xFFFFF; §3.9: 0xFFFFF at 1 kHz is 1 030 791 168 000 ns a stage."""
    dev = fresh(ESB)
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == T0 + 1_030_791_168_000
    dev2 = fresh(ESB)
    dev2.config_write(0x60, 2, 0x04)
    dev2.config_write(0x68, 1, 0x02)
    assert dev2.next_deadline == T0 + 1_006_632_000


def test_construction_keywords(ESB):
    seen = []
    dev = ESB(action="pause", on_expire=seen.append, profile="qemu-7.2",
              stage1_interrupt=True)
    assert dev.action is WatchdogAction.PAUSE
    t = trip(dev)
    assert seen == [ev(t, WatchdogAction.PAUSE)]
    dev.config_write(0x60, 2, 0xFFFF)
    assert dev.config_read(0x60, 2) == 0x0035     # the 7.2 mask took effect (§3.3)


# ---------------------------------------------------------------------------------
# 2. Configuration header (SPEC §3.1)
# ---------------------------------------------------------------------------------

def spec_config_image() -> bytes:
    """§3.1's "value" column as 256 bytes (little-endian)."""
    img = bytearray(256)
    img[0x00:0x04] = (0x25AB8086).to_bytes(4, "little")   # vendor / device
    img[0x08:0x0C] = (0x08800000).to_bytes(4, "little")   # revision 0, class 0x088000
    img[0x2C:0x30] = (0x11001AF4).to_bytes(4, "little")   # subsystem vendor / ID
    return bytes(img)


def spec_wmask() -> bytes:
    """§3.1's "writable" column: command 0x0507, cache line 0xFF, BAR0 0xFFFFFFF0,
    interrupt line 0xFF, 0x40–0xFF every bit, everything else read-only."""
    m = bytearray(256)
    m[0x04], m[0x05] = 0x07, 0x05
    m[0x0C] = 0xFF
    m[0x10:0x14] = (0xFFFFFFF0).to_bytes(4, "little")
    m[0x3C] = 0xFF
    m[0x40:0x100] = b"\xff" * 0xC0
    return bytes(m)


HEADER_FIELDS = [
    # (offset, size, reset value, name)  -- §3.1
    (0x00, 2, 0x8086, "vendor"),
    (0x02, 2, 0x25AB, "device"),
    (0x00, 4, 0x25AB8086, "vendor+device"),
    (0x04, 2, 0x0000, "command"),
    (0x06, 2, 0x0000, "status"),
    (0x08, 4, 0x08800000, "revision+class"),
    (0x08, 1, 0x00, "revision"),
    (0x09, 1, 0x00, "prog-if"),
    (0x0A, 1, 0x80, "subclass"),
    (0x0B, 1, 0x08, "base class"),
    (0x0C, 1, 0x00, "cache line"),
    (0x0D, 1, 0x00, "latency"),
    (0x0E, 1, 0x00, "header type"),
    (0x0F, 1, 0x00, "BIST"),
    (0x10, 4, 0x00000000, "BAR0"),
    (0x14, 4, 0, "BAR1"), (0x18, 4, 0, "BAR2"), (0x1C, 4, 0, "BAR3"),
    (0x20, 4, 0, "BAR4"), (0x24, 4, 0, "BAR5"), (0x28, 4, 0, "CardBus CIS"),
    (0x2C, 2, 0x1AF4, "subsystem vendor"),
    (0x2E, 2, 0x1100, "subsystem ID"),
    (0x2C, 4, 0x11001AF4, "subsystem"),
    (0x30, 4, 0, "ROM BAR"),
    (0x34, 1, 0, "capabilities ptr"),
    (0x38, 4, 0, "reserved"),
    (0x3C, 1, 0, "interrupt line"),
    (0x3D, 1, 0, "interrupt pin"),
    (0x3E, 1, 0, "min grant"),
    (0x3F, 1, 0, "max latency"),
]


@pytest.mark.parametrize("offset,size,value,name", HEADER_FIELDS,
                         ids=[f[3] for f in HEADER_FIELDS])
def test_header_reset_value(ESB, offset, size, value, name):
    """§3.1 (probe): every header field's value at construction."""
    dev = ESB()
    assert dev.config_read(offset, size) == value


@pytest.mark.parametrize("stage1_interrupt", [False, True])
def test_whole_config_space_at_construction(ESB, stage1_interrupt):
    """§3.1 table, all 256 bytes (0x40–0xFF raw 0); §1.3 item 6: "Configuration space is
    unchanged (interrupt pin 0)" with the extension on."""
    dev = ESB(stage1_interrupt=stage1_interrupt)
    img = spec_config_image()
    for o in range(0, 256, 4):
        assert dev.config_read(o, 4) == int.from_bytes(img[o:o + 4], "little"), hex(o)
    for o in range(256):
        if o == 0x68:
            continue  # (0x68, 1) is the WDT Lock register, §3.2 item 1
        assert dev.config_read(o, 1) == img[o], hex(o)


def test_regs_tables_match_spec():
    """regs.py (which the compiled core copies) against §3.1's table."""
    from wdcore import regs
    assert regs.INITIAL_CONFIG == spec_config_image()
    assert regs.WMASK == spec_wmask()
    cleared = {0x04, 0x05, 0x0C, 0x10, 0x11, 0x12, 0x13, 0x3C}   # §3.8: command, BAR0,
    assert set(regs.CONFIG_RESET_OFFSETS) == cleared               # cache line, int line


@pytest.mark.parametrize("offset", [o for o in range(256) if o != 0x68])
def test_every_byte_write_mask(ESB, offset):
    """§3.1: "Writes merge per byte, new = (old & ~wmask) | (value & wmask)" — all-ones
    then zero written to every byte (0x68 as a byte is the WDT Lock, tested in §3.4)."""
    dev = ESB()
    img, mask = spec_config_image(), spec_wmask()
    dev.config_write(offset, 1, 0xFF)
    assert dev.config_read(offset, 1) == (img[offset] & ~mask[offset]) | mask[offset]
    dev.config_write(offset, 1, 0x00)
    assert dev.config_read(offset, 1) == img[offset] & ~mask[offset]
    dev.config_write(offset, 1, 0x5A)
    assert dev.config_read(offset, 1) == (img[offset] & ~mask[offset]) | (0x5A & mask[offset])


def test_all_ones_everywhere_then_zeros(ESB):
    """§3.1: all-ones dwords to the whole space read back old | wmask; zeros read back the
    read-only bits only.  §3.2 item 3: the raw dwords at 0x60 and 0x68 leave the watchdog
    alone."""
    dev = fresh(ESB)
    img, mask = spec_config_image(), spec_wmask()
    for o in range(0, 256, 4):
        dev.config_write(o, 4, 0xFFFFFFFF)
    for o in range(0, 256, 4):
        want = bytes((img[i] & ~mask[i]) | mask[i] for i in range(o, o + 4))
        assert dev.config_read(o, 4) == int.from_bytes(want, "little"), hex(o)
    assert dev.config_read(0x60, 2) == 0      # WDT Configuration untouched
    assert wdt_lock(dev) == 0                 # watchdog stays off
    assert dev.next_deadline is None
    for o in range(0, 256, 4):
        dev.config_write(o, 4, 0)
    for o in range(0, 256, 4):
        want = bytes(img[i] & ~mask[i] for i in range(o, o + 4))
        assert dev.config_read(o, 4) == int.from_bytes(want, "little"), hex(o)
    assert dev.advance(3000 * S) == 0


def test_command_register_mask(ESB):
    """§3.1: command writable **0x0507** (I/O, memory, master, SERR#, INTx disable)."""
    dev = ESB()
    dev.config_write(0x04, 2, 0xFFFF)
    assert dev.config_read(0x04, 2) == 0x0507
    assert dev.config_read(0x06, 2) == 0      # status: "no W1C bit is ever set"
    dev.config_write(0x04, 2, 0x0002)
    assert dev.config_read(0x04, 2) == 0x0002
    dev.config_write(0x04, 4, 0xFFFFFFFF)     # status half is read-only
    assert dev.config_read(0x04, 4) == 0x00000507


def test_cache_line_and_interrupt_line_fully_writable(ESB):
    dev = ESB()
    dev.config_write(0x0C, 1, 0xFF)
    dev.config_write(0x3C, 1, 0xFF)
    assert dev.config_read(0x0C, 1) == 0xFF
    assert dev.config_read(0x3C, 1) == 0xFF
    assert dev.config_read(0x0C, 4) == 0x000000FF     # latency/header/BIST read-only
    assert dev.config_read(0x3C, 4) == 0x000000FF     # pin, min grant, max latency 0
    dev.config_write(0x3C, 4, 0xFFFFFFFF)
    assert dev.config_read(0x3C, 4) == 0x000000FF
    assert dev.config_read(0x3D, 1) == 0              # interrupt pin 0


def test_bar0_size_probe_and_base(ESB):
    """§3.1: "BAR0 size probe: all-ones reads back 0xFFFFFFF0 (16 bytes)"; bits 3:0 read 0."""
    dev = ESB()
    dev.config_write(0x10, 4, 0xFFFFFFFF)
    assert dev.config_read(0x10, 4) == 0xFFFFFFF0
    dev.config_write(0x10, 4, 0xFEBF100F)
    assert dev.config_read(0x10, 4) == 0xFEBF1000
    dev.config_write(0x10, 4, 0)
    assert dev.config_read(0x10, 4) == 0


@pytest.mark.parametrize("offset,size", [(0x00, 4), (0x02, 2), (0x06, 2), (0x08, 4),
                                         (0x0E, 1), (0x14, 4), (0x2C, 4), (0x30, 4),
                                         (0x34, 4), (0x3D, 1), (0x3E, 2)])
def test_read_only_fields_ignore_all_ones(ESB, offset, size):
    """§3.1: fields marked "–" are read-only: write all-ones, read back unchanged."""
    dev = ESB()
    before = dev.config_read(offset, size)
    dev.config_write(offset, size, (1 << (8 * size)) - 1)
    assert dev.config_read(offset, size) == before
    dev.config_write(offset, size, 0)
    assert dev.config_read(offset, size) == before


def test_per_byte_merge_across_fields(ESB):
    """§3.1: "Writes merge per byte" — one access spanning read-only and writable bytes."""
    dev = ESB()
    dev.config_write(0x03, 2, 0xFFFF)          # device-ID high byte (RO), command low
    assert dev.config_read(0x00, 4) == 0x25AB8086
    assert dev.config_read(0x04, 2) == 0x0007
    dev.config_write(0x05, 1, 0xFF)
    assert dev.config_read(0x04, 2) == 0x0507
    dev.config_write(0x05, 1, 0x00)            # byte write leaves the other byte
    assert dev.config_read(0x04, 2) == 0x0007
    dev.config_write(0x10, 1, 0xAB)            # BAR0 low byte: bits 3:0 read-only
    dev.config_write(0x12, 1, 0x34)
    assert dev.config_read(0x10, 4) == 0x003400A0
    dev.config_write(0x0F, 2, 0xFFFF)          # BIST (RO) + BAR0 low byte
    assert dev.config_read(0x0C, 4) == 0
    assert dev.config_read(0x10, 4) == 0x003400F0
    dev.config_write(0x3A, 4, 0xFFFFFFFF)      # reserved, reserved, int line, int pin
    assert dev.config_read(0x38, 4) == 0
    assert dev.config_read(0x3C, 4) == 0x000000FF


# ---------------------------------------------------------------------------------
# 3. Configuration accesses (SPEC §3.2)
# ---------------------------------------------------------------------------------

def test_byte_write_to_0x60_is_raw(ESB):
    """§3.2 item 3 (probe): "a byte write 0x24 to 0x60 reads back only at 8 bits"."""
    dev = fresh(ESB)
    dev.config_write(0x60, 1, 0x24)
    assert dev.config_read(0x60, 1) == 0x24
    assert dev.config_read(0x60, 4) == 0x24          # raw dword too
    assert dev.config_read(0x60, 2) == 0             # WDT Configuration untouched
    # and the device still runs at 1 kHz with reboot enabled
    load(dev, 10, 10)
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == T0 + dur(10, False)
    assert dev.advance_to(T0 + 2 * dur(10)) == 1


def test_word_write_to_0x60_leaves_raw_bytes(ESB):
    """§3.2 item 3: raw bytes and device state are independent, both ways."""
    dev = ESB()
    dev.config_write(0x60, 2, 0x0024)
    assert dev.config_read(0x60, 2) == 0x0024
    assert dev.config_read(0x60, 1) == 0
    assert dev.config_read(0x60, 4) == 0
    dev.config_write(0x60, 4, 0xA5A5A5A5)            # raw dword: WDT config unchanged
    assert dev.config_read(0x60, 2) == 0x0024
    assert dev.config_read(0x60, 4) == 0xA5A5A5A5
    dev.config_write(0x61, 2, 0xFFFF)                # raw word at 0x61
    assert dev.config_read(0x60, 4) == 0xA5FFFFA5
    assert dev.config_read(0x60, 2) == 0x0024
    assert dev.config_read(0x61, 1) == 0xFF


def test_dword_write_2_to_0x68_is_raw(ESB):
    """§3.2 item 3 (probe): "a dword write 2 to 0x68 reads back as a dword while the
    watchdog stays off"."""
    dev = fresh(ESB)
    dev.config_write(0x68, 4, 2)
    assert dev.config_read(0x68, 4) == 2
    assert wdt_lock(dev) == 0
    assert dev.next_deadline is None
    assert dev.advance(3000 * S) == 0
    assert dev.events == []


@pytest.mark.parametrize("offset,size", [(0x68, 2), (0x67, 2), (0x66, 4), (0x67, 4),
                                         (0x68, 4), (0x5F, 2), (0x5F, 4), (0x60, 4),
                                         (0x61, 1), (0x69, 1), (0x6B, 1)])
def test_other_widths_at_0x60_0x6b_are_raw(ESB, offset, size):
    """§3.2 item 2: "Anything else, other widths at 0x60–0x6B included, is a raw access"."""
    dev = fresh(ESB)
    allones = (1 << (8 * size)) - 1
    dev.config_write(offset, size, allones)
    assert dev.config_read(offset, size) == allones
    assert dev.config_read(0x60, 2) == 0
    assert wdt_lock(dev) == 0
    assert dev.next_deadline is None


def test_byte_0x68_special_leaves_raw(ESB):
    """§3.2: exactly (0x68, 1) is the WDT Lock; the raw byte underneath is untouched."""
    dev = fresh(ESB)
    dev.config_write(0x68, 1, 0x02)
    assert wdt_lock(dev) == 0x02
    assert dev.config_read(0x68, 2) == 0
    assert dev.config_read(0x68, 4) == 0
    dev.config_write(0x68, 4, 0x000000FD)
    assert wdt_lock(dev) == 0x02
    assert dev.config_read(0x68, 4) == 0xFD


def test_lanes_past_0xff_read_zero(ESB):
    """§3.2 item 2 (probe): "lanes past 0xFF read 0 (probe: dword at 0xFF = 0x000000A1"."""
    dev = ESB()
    dev.config_write(0xFF, 1, 0xA1)
    assert dev.config_read(0xFF, 4) == 0x000000A1
    assert dev.config_read(0xFF, 2) == 0x00A1
    assert dev.config_read(0xFF, 1) == 0xA1
    dev.config_write(0xFE, 1, 0x5C)
    assert dev.config_read(0xFD, 4) == 0x00A15C00


def test_writes_past_0xff_are_dropped(ESB):
    """§3.2 item 2: bytes offset … min(offset+size, 256)−1; no wrap to 0x00."""
    dev = ESB()
    dev.config_write(0xFE, 4, 0x44332211)
    assert dev.config_read(0xFE, 2) == 0x2211
    assert dev.config_read(0xFE, 4) == 0x2211
    assert dev.config_read(0x00, 4) == 0x25AB8086
    dev.config_write(0xFF, 4, 0xFFFFFF00)
    assert dev.config_read(0xFF, 1) == 0x00
    assert dev.config_read(0x40, 4) == 0


def test_dword_at_1_is_bytes_1_to_4(ESB):
    """§3.2 item 2 (probe): "dword at 1 = bytes 1–4"."""
    dev = ESB()
    assert dev.config_read(1, 4) == 0x0025AB80
    dev.config_write(0x04, 2, 0x0507)
    assert dev.config_read(1, 4) == 0x0725AB80
    assert dev.config_read(3, 2) == 0x0725
    assert dev.config_read(0x0B, 2) == 0x0008


def test_unaligned_raw_accesses(ESB):
    """§3.2: "size 1/2/4, any alignment"."""
    dev = ESB()
    dev.config_write(0x41, 2, 0xBEEF)
    assert dev.config_read(0x40, 4) == 0x00BEEF00
    dev.config_write(0x43, 4, 0x11223344)
    assert dev.config_read(0x40, 4) == 0x44BEEF00
    assert dev.config_read(0x44, 4) == 0x00112233
    assert dev.config_read(0x42, 4) == 0x223344BE
    assert dev.config_read(0x45, 2) == 0x1122
    dev.config_write(0x0F, 4, 0xFFFFFFFF)          # BIST (RO) + BAR0 bytes 0x10..0x12
    assert dev.config_read(0x10, 4) == 0x00FFFFF0


# ---------------------------------------------------------------------------------
# 4. WDT Configuration, word at 0x60 (SPEC §3.3)
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("profile,want", [("qemu", 0x0027), ("qemu-7.2", 0x0035)])
def test_0x60_all_ones(ESB, profile, want):
    """§3.3 (probe): "0xFFFF reads back 0x0035 in qemu-7.2, 0x0027 in qemu"."""
    dev = ESB(profile=profile)
    dev.config_write(0x60, 2, 0xFFFF)
    assert dev.config_read(0x60, 2) == want


@pytest.mark.parametrize("profile,written,read", [
    # §3.3 (probe): "in qemu-7.2 writes of 0,1,2,3,0x10,0x13 read 0,1,0,1,0x10,0x11"
    ("qemu-7.2", 0x00, 0x00), ("qemu-7.2", 0x01, 0x01), ("qemu-7.2", 0x02, 0x00),
    ("qemu-7.2", 0x03, 0x01), ("qemu-7.2", 0x10, 0x10), ("qemu-7.2", 0x13, 0x11),
    # §1.2: INT_TYPE mask 0x03 in "qemu"
    ("qemu", 0x00, 0x00), ("qemu", 0x01, 0x01), ("qemu", 0x02, 0x02),
    ("qemu", 0x03, 0x03), ("qemu", 0x10, 0x00), ("qemu", 0x13, 0x03),
])
def test_0x60_int_type_mask(ESB, profile, written, read):
    dev = ESB(profile=profile)
    dev.config_write(0x60, 2, written)
    assert dev.config_read(0x60, 2) == read


def test_0x60_each_write_replaces_all_three(ESB):
    """§3.3: "Each write replaces all three; other bits read 0. Reset 0x0000"."""
    dev = ESB()
    assert dev.config_read(0x60, 2) == 0
    dev.config_write(0x60, 2, 0x0027)
    assert dev.config_read(0x60, 2) == 0x0027
    dev.config_write(0x60, 2, 0x0001)
    assert dev.config_read(0x60, 2) == 0x0001
    dev.config_write(0x60, 2, 0xFFDB)           # every bit but 5 and 2
    assert dev.config_read(0x60, 2) == 0x0003
    dev.config_write(0x60, 2, 0x0000)
    assert dev.config_read(0x60, 2) == 0


@pytest.mark.parametrize("lock", [0x01, 0x03, 0x07])
def test_0x60_not_guarded_by_lock(ESB, lock):
    """§3.3 (probe): "Not guarded by the lock"."""
    dev = fresh(ESB)
    dev.config_write(0x68, 1, lock)
    dev.config_write(0x60, 2, 0x0024)
    assert dev.config_read(0x60, 2) == 0x0024
    dev.config_write(0x60, 2, 0x0001)
    assert dev.config_read(0x60, 2) == 0x0001
    assert wdt_lock(dev) == lock


def test_scale_change_mid_stage_applies_at_next_stage(ESB):
    """§3.3: "Nothing is rescheduled: the scale applies at the next stage start"."""
    dev, d1 = running(ESB)
    dev.config_write(0x60, 2, 0x04)                 # 1 MHz now
    assert dev.next_deadline == d1                  # current deadline unchanged
    assert dev.advance_to(d1 - 1) == 0
    assert dev.stage == 1
    assert dev.advance_to(d1) == 0
    assert dev.stage == 2
    assert dev.next_deadline == d1 + dur(10, True) == d1 + 9_600
    dev.config_write(0x60, 2, 0x00)                 # back to 1 kHz mid-stage-2
    assert dev.next_deadline == d1 + 9_600
    assert dev.advance_to(d1 + 9_600 - 1) == 0
    assert dev.advance_to(d1 + 9_600) == 1
    assert dev.events == [ev(d1 + 9_600)]


def test_scale_applies_at_ping(ESB):
    dev, d1 = running(ESB)
    dev.config_write(0x60, 2, 0x04)
    ping(dev)
    assert dev.next_deadline == dev.now + 9_600


def test_reboot_disable_set_mid_stage2_applies_at_its_expiry(ESB):
    """§3.3: "reboot-disable at the next stage-2 expiry (probe)"."""
    dev, d1 = running(ESB)
    dev.advance_to(d1 + 5)
    assert dev.stage == 2
    dev.config_write(0x60, 2, 0x20)
    assert dev.next_deadline == d1 + dur(10)
    assert dev.advance_to(d1 + dur(10)) == 0
    assert dev.events == []
    assert dev.stage == 2
    assert dev.next_deadline is None


def test_reboot_disable_cleared_mid_stage2_reboots(ESB):
    dev = fresh(ESB)
    dev.config_write(0x60, 2, 0x20)
    load(dev, 10, 10)
    dev.config_write(0x68, 1, 0x02)
    dev.advance(dur(10) + 5)
    assert dev.stage == 2
    dev.config_write(0x60, 2, 0x00)
    assert dev.advance_to(T0 + 2 * dur(10)) == 1
    assert dev.events == [ev(T0 + 2 * dur(10))]


# ---------------------------------------------------------------------------------
# 5. WDT Lock, byte at 0x68 (SPEC §3.4)
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("written,read", [(0x00, 0x00), (0x01, 0x01), (0x02, 0x02),
                                          (0x03, 0x03), (0x04, 0x04), (0x06, 0x06),
                                          (0x07, 0x07), (0xF8, 0x00), (0xFA, 0x02)])
def test_0x68_read_bits(ESB, written, read):
    """§3.4: "Read: bit 2 free_run, bit 1 enabled, bit 0 locked. Reset 0"."""
    dev = fresh(ESB)
    assert wdt_lock(dev) == 0
    dev.config_write(0x68, 1, written)
    assert wdt_lock(dev) == read
    assert (dev.next_deadline is not None) == bool(read & 0x02)


def test_0x03_enables_and_locks(ESB):
    """§3.4 item 2: "0x03 enables and locks"; item 1: "Locked: ignored entirely until a
    device reset"."""
    dev = fresh(ESB)
    dev.config_write(0x68, 1, 0x03)
    d = T0 + dur(RESET_PRELOAD)
    assert dev.next_deadline == d
    for v in (0x00, 0x02, 0x04, 0x06, 0xFF):
        dev.config_write(0x68, 1, v)
        assert wdt_lock(dev) == 0x03
        assert dev.next_deadline == d
    dev.advance(S)
    dev.reset()
    assert wdt_lock(dev) == 0
    dev.config_write(0x68, 1, 0x02)
    assert wdt_lock(dev) == 0x02


def test_0x01_locks_disabled_forever(ESB):
    """§3.4 item 2: "0x01 locks disabled, after which enabling is impossible"."""
    dev = fresh(ESB)
    dev.config_write(0x68, 1, 0x01)
    assert wdt_lock(dev) == 0x01
    for v in (0x02, 0x03, 0x06, 0x00):
        dev.config_write(0x68, 1, v)
        assert wdt_lock(dev) == 0x01
        assert dev.next_deadline is None
    ping(dev)                                        # reload does nothing while disabled
    assert dev.next_deadline is None
    assert dev.advance(3000 * S) == 0
    dev.reset()
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == dev.now + dur(RESET_PRELOAD)


def test_lock_while_running_keeps_deadline_then_ignored(ESB):
    dev, d1 = running(ESB)
    dev.config_write(0x68, 1, 0x03)                  # 1→1 with lock: no restart
    assert dev.next_deadline == d1
    dev.config_write(0x68, 1, 0x00)                  # ignored: still running
    assert wdt_lock(dev) == 0x03
    assert dev.next_deadline == d1


def test_scenario_9_nowayout_stop_fails(ESB):
    """§6.6 #9: "esb nowayout start, then stop | 0x68 stays 0x03; stop reports failure"
    (§6.1 item 5: stop = ping, CW8(0x68 ← 0), CR8(0x68) bit 1 still set = failure)."""
    dev = fresh(ESB)
    ping(dev)
    dev.config_write(0x68, 1, 0x03)
    ping(dev)
    dev.config_write(0x68, 1, 0x00)
    assert wdt_lock(dev) == 0x03
    assert wdt_lock(dev) & 0x02
    assert dev.next_deadline is not None


def test_enable_0_to_1_starts_stage_1(ESB):
    """§3.4 item 3: "Enabled 0→1: start stage 1"."""
    dev = fresh(ESB)
    load(dev, 10, 20)
    assert dev.next_deadline is None
    dev.config_write(0x68, 1, 0x02)
    assert dev.stage == 1
    assert dev.next_deadline == T0 + dur(10)
    assert dev.remaining_ns == dur(10)


def test_disable_clears_deadline_stage_unchanged(ESB):
    """§3.4 item 3: "1→0: clear the deadline, stage unchanged"."""
    dev, d1 = running(ESB)
    dev.advance_to(d1 + 7)
    assert dev.stage == 2
    dev.config_write(0x68, 1, 0x00)
    assert dev.next_deadline is None
    assert dev.remaining_ns is None
    assert dev.stage == 2
    assert dev.advance(3000 * S) == 0
    assert dev.stage == 2
    t = dev.now
    dev.config_write(0x68, 1, 0x02)                  # 0→1 again: stage 1
    assert dev.stage == 1
    assert dev.next_deadline == t + dur(10)


def test_disable_in_stage_1(ESB):
    dev, d1 = running(ESB)
    dev.config_write(0x68, 1, 0x04)                  # disabled, free_run set
    assert wdt_lock(dev) == 0x04
    assert dev.next_deadline is None
    assert dev.stage == 1
    assert dev.advance_to(d1 + 3 * dur(10)) == 0


@pytest.mark.parametrize("value", [0x02, 0x06])
@pytest.mark.parametrize("in_stage", [1, 2])
def test_enable_1_to_1_keeps_deadline(ESB, value, in_stage):
    """§3.4 item 3: "1→1: no restart (0x02 or 0x06 written to a running timer keeps its
    deadline)"."""
    dev, d1 = running(ESB)
    if in_stage == 2:
        dev.advance_to(d1 + 11)
    deadline, stage = dev.next_deadline, dev.stage
    dev.advance(100)
    dev.config_write(0x68, 1, value)
    assert wdt_lock(dev) == value
    assert dev.next_deadline == deadline
    assert dev.stage == stage


def test_lock_register_ignores_every_width_but_byte(ESB):
    """§3.2 item 1: only exactly (0x68, 1) is the WDT Lock."""
    dev = fresh(ESB)
    dev.config_write(0x68, 2, 0x0003)
    dev.config_write(0x67, 2, 0x0300)
    assert wdt_lock(dev) == 0
    assert dev.next_deadline is None


# ---------------------------------------------------------------------------------
# 6. BAR0: the unlock machine, splitting, reads, reload and the flag (SPEC §3.5, §3.7)
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("width", [1, 2, 4])
def test_unlock_by_bytes_words_or_dwords(ESB, width):
    """§3.5 required test (probe): "unlock by bytes, words or dwords" (rules 1, 2)."""
    dev, d1 = running(ESB)
    dev.mmio_write(0x0C, width, 0x80)
    dev.mmio_write(0x0C, width, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


@pytest.mark.parametrize("w1,w2", [(1, 2), (2, 1), (4, 1), (1, 4), (2, 4)])
def test_unlock_mixed_widths(ESB, w1, w2):
    dev, d1 = running(ESB)
    dev.mmio_write(0x0C, w1, 0x80)
    dev.mmio_write(0x0C, w2, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


@pytest.mark.parametrize("width", [1, 2, 4])
def test_unlock_by_width_then_load(ESB, width):
    dev = fresh(ESB)
    unlock(dev, width)
    dev.mmio_write(0x00, 4, 7)
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == T0 + dur(7)


def test_unlock_state_1_survives_unrelated_writes(ESB):
    """§3.5 required test: "state 1 survives unrelated writes" (rules 3 and 6)."""
    dev, d1 = running(ESB)
    dev.mmio_write(0x0C, 2, 0x80)
    for off, size, val in [(0x0C, 2, 0x0100), (0x00, 4, 5), (0x04, 4, 5), (0x0C, 1, 0x00),
                           (0x0D, 1, 0x01), (0x08, 4, 0xFFFFFFFF), (0x0E, 2, 0xFFFF),
                           (0x0C, 4, 0x0100), (0x00, 2, 0x0086), (0x0A, 2, 0x0086)]:
        dev.mmio_write(off, size, val)
        assert dev.next_deadline == d1, (off, size, val)   # no ping on the way
    dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)                               # preload 1 is still 10: nothing loaded


def test_second_0x86_consumes(ESB):
    """§3.5 required test: "a second 0x86 consumes" (rule 4 for a word at 0x0C)."""
    dev, d1 = running(ESB)
    unlock(dev)
    dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert dev.next_deadline == d1
    ping(dev)
    assert pinged(dev)


def test_0x86_alone_does_nothing(ESB):
    """§3.5 required test: "0x86 alone does nothing" (rule 2 needs state 1)."""
    dev, d1 = running(ESB)
    dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert dev.next_deadline == d1
    dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(0x0C, 2, 0x80)                    # only state 1 now
    dev.mmio_write(0x0C, 2, 0x0100)
    assert dev.next_deadline == d1


def test_0x80_restarts_unlock_from_any_state(ESB):
    """§3.5 rule 1: "A = 0x0C and V = 0x80 → unlock_state = 1 (from any state)"."""
    dev, d1 = running(ESB)
    unlock(dev)
    dev.mmio_write(0x0C, 2, 0x80)                    # state 2 → 1, not consumed
    dev.mmio_write(0x0C, 2, 0x0100)                  # state 1: nothing
    assert dev.next_deadline == d1
    dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


@pytest.mark.parametrize("width,value", [(4, 0x00010080), (4, 0xFF000080), (2, 0x8080),
                                         (2, 0x0180)])
def test_unlock_needs_the_whole_value(ESB, width, value):
    """§3.5 Writes: "per piece at offset A, width W, value V (whole zero-extended value)";
    rule 1 needs V = 0x80 exactly, so these do not start the unlock."""
    dev, d1 = running(ESB)
    dev.mmio_write(0x0C, width, value)
    dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert dev.next_deadline == d1


def test_byte_0x86_in_state_2_leaves_unlock_pending(ESB):
    """§3.5 rule 2 needs state 1, rule 3: bytes do nothing — an unlocked byte 0x86 at 0x0C
    neither consumes nor re-locks."""
    dev, d1 = running(ESB)
    unlock(dev)
    dev.mmio_write(0x0C, 1, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


def test_unlocked_0x0180_pings(ESB):
    """§3.5 required test: "unlocked word 0x0180 at 0x0C pings"."""
    dev, d1 = running(ESB)
    unlock(dev)
    dev.mmio_write(0x0C, 2, 0x0180)
    assert pinged(dev)
    dev.advance(50)
    dev.mmio_write(0x0C, 2, 0x0100)                  # consumed: a bare 0x0100 does nothing
    assert dev.next_deadline == dev.now - 50 + dur(10)


def test_unlocked_dword_at_0x0a_consumes_on_first_word(ESB):
    """§3.5 required test: "unlocked dword 0x01000000 at 0x0A consumes on its first word,
    no ping"."""
    dev, d1 = running(ESB)
    unlock(dev)
    dev.mmio_write(0x0A, 4, 0x01000000)
    assert dev.next_deadline == d1
    dev.mmio_write(0x0C, 2, 0x0100)                  # consumed: no ping
    assert dev.next_deadline == d1


def test_unlocked_bytes_leave_unlock_pending(ESB):
    """§3.5 required test: "unlocked bytes leave the unlock pending" (rule 3: "bytes never
    reload, load or consume, nor cancel state 1")."""
    dev, d1 = running(ESB)
    unlock(dev)
    for off in range(16):
        dev.mmio_write(off, 1, 0x01 if off != 0x0C else 0x00)
    assert dev.next_deadline == d1                   # byte 0x0D = 0x01 is no ping
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


@pytest.mark.parametrize("reg,stage_checked", [(0x00, 1), (0x04, 2)])
def test_0xfff00005_loads_5(ESB, reg, stage_checked):
    """§3.5 required test: "0xFFF00005 loads 5" (preload = V & 0xFFFFF)."""
    dev = fresh(ESB)
    load(dev, 10, 10)
    unlock(dev)
    dev.mmio_write(reg, 4, 0xFFF00005)
    dev.config_write(0x68, 1, 0x02)
    if stage_checked == 1:
        assert dev.next_deadline == T0 + dur(5) == T0 + 4_915_200
    else:
        assert dev.next_deadline == T0 + dur(10)
        dev.advance_to(T0 + dur(10))
        assert dev.next_deadline == T0 + dur(10) + dur(5)


def test_preload_registers_read_zero(ESB):
    """§3.5: preloads: "unlocked dword write loads it; reads 0"."""
    dev = fresh(ESB)
    load(dev, 0xABCDE, 0x12345)
    for off, size in [(0x00, 4), (0x04, 4), (0x00, 2), (0x02, 2), (0x06, 1)]:
        assert dev.mmio_read(off, size) == 0


@pytest.mark.parametrize("lock", [0x03, 0x07, 0x01])
def test_lock_bit_does_not_guard_mmio(ESB, lock):
    """§3.5: "The lock bit does not guard MMIO (source, probe)"."""
    dev = fresh(ESB)
    dev.config_write(0x68, 1, lock)
    load(dev, 3, 4)                                   # loads work while locked
    dev.advance(77)
    ping(dev)
    if lock & 0x02:
        assert dev.next_deadline == dev.now + dur(3)
        dev.advance_to(dev.next_deadline)
        assert dev.next_deadline == dev.now + dur(4)
    else:
        assert dev.next_deadline is None


def test_unlocked_word_at_other_offset_consumes(ESB):
    """§3.5 rule 4: "Then unlock_state = 0, whatever A"."""
    dev, d1 = running(ESB)
    unlock(dev)
    dev.mmio_write(0x0E, 2, 0x0100)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert dev.next_deadline == d1


def test_unlocked_dword_at_0x0c_consumes_no_reload(ESB):
    """§3.5 rule 5: "a dword at 0x0C consumes, no reload"."""
    dev, d1 = running(ESB)
    unlock(dev)
    dev.mmio_write(0x0C, 4, 0x0100)
    assert dev.next_deadline == d1
    dev.mmio_write(0x0C, 2, 0x0100)
    assert dev.next_deadline == d1


def test_unlocked_dword_at_0x08_consumes_no_load(ESB):
    dev, d1 = running(ESB)
    unlock(dev)
    dev.mmio_write(0x08, 4, 3)
    dev.mmio_write(0x00, 4, 3)                        # consumed: no load
    ping(dev)
    assert pinged(dev, 10)


def test_unlocked_word_does_not_load_preload(ESB):
    """§3.5: only W = 4 loads a preload; an unlocked word at 0x00 just consumes."""
    dev = fresh(ESB)
    load(dev, 10, 10)
    unlock(dev)
    dev.mmio_write(0x00, 2, 5)
    dev.mmio_write(0x00, 4, 5)                        # consumed: no load
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == T0 + dur(10)


# --- splitting (§3.5) ------------------------------------------------------------------

def test_split_word_at_0x0d_is_two_bytes(ESB):
    """§3.5: "Word at 0x0D → bytes 0x0D, 0x0E" — bytes leave the unlock pending."""
    dev, d1 = running(ESB)
    unlock(dev)
    dev.mmio_write(0x0D, 2, 0x0001)
    assert dev.next_deadline == d1
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


def test_split_word_at_0x0b_byte_at_0x0c_unlocks(ESB):
    """Word at 0x0B → bytes 0x0B, 0x0C; rule 1/2 act on the byte piece at 0x0C."""
    dev, d1 = running(ESB)
    dev.mmio_write(0x0B, 2, 0x8000)
    dev.mmio_write(0x0B, 2, 0x8600)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


def test_split_dword_at_0x0a_is_two_words(ESB):
    """§3.5: "dword at 0x0A → words 0x0A, 0x0C"."""
    dev, d1 = running(ESB)
    dev.mmio_write(0x0A, 4, 0x00800000)               # word 0x0C = 0x80: state 1
    dev.mmio_write(0x0A, 4, 0x00860000)               # word 0x0A (nothing), 0x0C = 0x86
    assert dev.next_deadline == d1
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


def test_split_dword_at_0x0b_is_byte_word_byte(ESB):
    """§3.5: "dword at 0x0B → byte, word 0x0C, byte" — the middle word pings."""
    dev, d1 = running(ESB)
    dev.mmio_write(0x0B, 4, 0x00008000)
    dev.mmio_write(0x0B, 4, 0x00008600)
    dev.mmio_write(0x0B, 4, 0xFF0100FF)
    assert pinged(dev)


def test_split_word_at_0x0d_read_with_flag(ESB):
    dev = fresh(ESB)
    trip(dev)
    assert dev.mmio_read(0x0D, 2) == 0                # two byte pieces, no word at 0x0C
    assert dev.mmio_read(0x0C, 1) == 0
    assert dev.mmio_read(0x0D, 1) == 0


# --- reads (§3.5) -----------------------------------------------------------------------

def test_reads_with_flag_set_probe_values(ESB):
    """§3.5 (probe): "with the flag set a dword read at 0x0C gives 0, at 0x0A 0x12000000,
    at 0x0B 0x00120000"; word at 0x0C → 0x1200."""
    dev = fresh(ESB)
    assert flag_word(dev) == 0
    trip(dev)
    assert dev.mmio_read(0x0C, 2) == 0x1200
    assert dev.mmio_read(0x0C, 4) == 0
    assert dev.mmio_read(0x0A, 4) == 0x12000000
    assert dev.mmio_read(0x0B, 4) == 0x00120000


@pytest.mark.parametrize("flag", [False, True])
@pytest.mark.parametrize("size", [1, 2, 4])
def test_every_read_offset_and_width(ESB, flag, size):
    """§3.5 Reads: "Per piece: word at 0x0C → 0x1200 if the previous-reboot flag is set,
    else 0; ... everything else, preloads included, 0"."""
    dev = fresh(ESB)
    if flag:
        trip(dev)
    for off in range(0, 17 - size):
        want = 0
        for o, n in pieces(off, size):
            if (o, n) == (0x0C, 2) and flag:
                want |= 0x1200 << (8 * (o - off))
        assert dev.mmio_read(off, size) == want, (off, size)


def test_reads_have_no_side_effects(ESB):
    """§3.5: "Reads never have side effects or touch the unlock state"."""
    dev, d1 = running(ESB)
    dev.mmio_write(0x0C, 2, 0x80)
    for size in (1, 2, 4):
        for off in range(0, 17 - size):
            dev.mmio_read(off, size)
    dev.mmio_write(0x0C, 2, 0x86)
    for size in (1, 2, 4):
        for off in range(0, 17 - size):
            dev.mmio_read(off, size)
    assert dev.next_deadline == d1
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


# --- reload bit 8, flag bits 9/12 (§3.5 rule 4, §3.7) ---------------------------------------

@pytest.mark.parametrize("value,pings,clears", [
    (0x0100, True, False), (0x0200, False, True), (0x1000, False, True),
    (0x0300, True, True), (0x1100, True, True), (0x1200, False, True),
    (0x0400, False, False), (0x0800, False, False), (0x2000, False, False),
    (0x8000, False, False), (0x00FF, False, False), (0x0000, False, False),
    (0xFFFF, True, True), (0xEDFF, True, False),
])
def test_reload_word_bits(ESB, value, pings, clears):
    """§3.5 rule 4: "V & 0x0100 → reload (start stage 1 if enabled); V & 0x1200 (bit 9 or
    12) → clear the previous-reboot flag. Then unlock_state = 0"."""
    dev = fresh(ESB)
    trip(dev)
    assert flag_word(dev) == 0x1200
    load(dev, 10, 10)
    dev.config_write(0x68, 1, 0x02)
    d1 = dev.next_deadline
    dev.advance(500)
    unlock(dev)
    dev.mmio_write(0x0C, 2, value)
    assert flag_word(dev) == (0 if clears else 0x1200)
    if pings:
        assert pinged(dev)
    else:
        assert dev.next_deadline == d1
    # consumed either way: a second reload/clear without unlock does nothing
    d = dev.next_deadline
    dev.advance(5)
    dev.mmio_write(0x0C, 2, 0x1300)
    assert dev.next_deadline == d
    assert flag_word(dev) == (0 if clears else 0x1200)


def test_flag_clear_needs_unlock(ESB):
    """§3.7: "Cleared by an unlocked word write to 0x0C with bit 9 or 12"."""
    dev = fresh(ESB)
    trip(dev)
    for v in (0x0200, 0x1000, 0x1200, 0x0300):
        dev.mmio_write(0x0C, 2, v)
    dev.mmio_write(0x0C, 2, 0x80)
    dev.mmio_write(0x0C, 2, 0x0300)                   # state 1 only
    assert flag_word(dev) == 0x1200
    dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(0x0C, 4, 0x0300)                   # dword: consumes, no clear (rule 5)
    assert flag_word(dev) == 0x1200
    unlock(dev, 1)
    dev.mmio_write(0x0C, 1, 0x00)                     # byte: nothing (rule 3)
    dev.mmio_write(0x0D, 1, 0x12)
    assert flag_word(dev) == 0x1200
    dev.mmio_write(0x0C, 2, 0x0200)
    assert flag_word(dev) == 0


def test_reload_while_disabled_does_nothing_but_consumes(ESB):
    """§3.6 start(s): "if not enabled, nothing (stage unchanged)"."""
    dev, d1 = running(ESB)
    dev.advance_to(d1 + 3)
    dev.config_write(0x68, 1, 0x00)                   # disabled in stage 2
    ping(dev)
    assert dev.next_deadline is None
    assert dev.stage == 2
    dev.mmio_write(0x0C, 2, 0x0100)
    dev.config_write(0x68, 1, 0x02)
    assert dev.stage == 1


def test_scenario_6_probe_after_expiry(ESB):
    """§6.6 #6: "MR16(0x0C) = 0x1200 → CARDRESET; 0 after the 0x0300 write" (§6.1 step 1:
    UNLOCK16; MR16(0x0C) — "the read keeps the unlock"; UNLOCK16; MW16(0x0C ← 0x0300))."""
    dev = fresh(ESB)
    trip(dev)
    dev.config_write(0x60, 2, 0x0003)
    assert wdt_lock(dev) & 1 == 0
    dev.config_write(0x68, 1, 0)
    unlock(dev)
    assert dev.mmio_read(0x0C, 2) & 0x0200
    unlock(dev)
    dev.mmio_write(0x0C, 2, 0x0300)
    assert dev.mmio_read(0x0C, 2) == 0
    assert dev.next_deadline is None


def test_scenario_11_legacy_init_clears_flag_via_bit_12(ESB):
    """§6.6 #11 / §6.2: UNLOCK8 everywhere, clear with MW16(0x0C ← 0x1100)."""
    dev = fresh(ESB)
    trip(dev)
    unlock(dev, 1)
    dev.mmio_write(0x0C, 2, 0x1100)
    assert flag_word(dev) == 0
    assert dev.next_deadline is None                  # watchdog off


def test_preload_writes_apply_at_their_stage_next_start(ESB):
    """§3.6: "Preload writes apply at their stage's next start (probe)"."""
    dev, d1 = running(ESB)
    load(dev, 20, 30)                                  # mid-stage-1
    assert dev.next_deadline == d1
    assert dev.advance_to(d1) == 0
    assert dev.next_deadline == d1 + dur(30)           # stage 2 uses the new preload 2
    load(dev, 40, 50)                                  # mid-stage-2
    assert dev.next_deadline == d1 + dur(30)
    dev.advance(dur(5))
    ping(dev)                                          # stage 1 uses the new preload 1
    assert dev.stage == 1
    assert dev.next_deadline == dev.now + dur(40)
    dev.advance_to(dev.next_deadline)
    assert dev.next_deadline == dev.now + dur(50)


# ---------------------------------------------------------------------------------
# 7. The two-stage timer (SPEC §3.6, §3.9, §6.6)
# ---------------------------------------------------------------------------------

NUMBERS = [
    # (preload, one_mhz, one stage ns, both stages ns) — §3.9, every row but preload 0
    (1, True, 960, 1_920),
    (1, False, 983_040, 1_966_080),
    (10, True, 9_600, 19_200),
    (10, False, 9_830_400, 19_660_800),
    (100, False, 98_304_000, 196_608_000),
    (0x200, False, 503_316_480, 1_006_632_960),
    (0x400, False, 1_006_632_960, 2_013_265_920),
    (0x3C00, False, 15_099_494_400, 30_198_988_800),
    (0xFFC00, False, 1_029_785_518_080, 2_059_571_036_160),
    (0xFFFFF, True, 1_006_632_000, 2_013_264_000),
    (0xFFFFF, False, 1_030_791_168_000, 2_061_582_336_000),
]
NUMBER_IDS = [f"{p:#x}-{'1MHz' if m else '1kHz'}" for p, m, _, _ in NUMBERS]


@pytest.mark.parametrize("preload,one_mhz,one,both", NUMBERS, ids=NUMBER_IDS)
def test_numbers_table(ESB, preload, one_mhz, one, both):
    """§3.9 table: one ns before / at / after each stage boundary; remaining_ns and stage
    along the way; the stage-2 end with reboot enabled records one event."""
    assert dur(preload, one_mhz) == one and both == 2 * one
    dev = fresh(ESB)
    dev.config_write(0x60, 2, 0x04 if one_mhz else 0x00)
    load(dev, preload, preload)
    dev.config_write(0x68, 1, 0x02)
    assert (dev.stage, dev.next_deadline, dev.remaining_ns) == (1, T0 + one, one)
    assert dev.advance_to(T0 + one // 2) == 0
    assert (dev.stage, dev.remaining_ns) == (1, one - one // 2)
    assert dev.advance_to(T0 + one - 1) == 0
    assert (dev.stage, dev.next_deadline, dev.remaining_ns) == (1, T0 + one, 1)
    assert dev.advance_to(T0 + one) == 0
    assert (dev.stage, dev.next_deadline, dev.remaining_ns) == (2, T0 + both, one)
    assert dev.advance_to(T0 + one + 1) == 0
    assert (dev.stage, dev.remaining_ns) == (2, one - 1)
    assert dev.advance_to(T0 + both - 1) == 0
    assert (dev.stage, dev.next_deadline, dev.remaining_ns) == (2, T0 + both, 1)
    assert dev.events == []
    assert dev.advance_to(T0 + both) == 1
    assert dev.events == [ev(T0 + both)]
    assert (dev.stage, dev.next_deadline, dev.remaining_ns) == (1, None, None)
    assert dev.advance_to(T0 + both + 1) == 0
    assert dev.events == [ev(T0 + both)]
    assert flag_word(dev) == 0x1200


@pytest.mark.parametrize("preload,one_mhz,one,both", NUMBERS, ids=NUMBER_IDS)
def test_numbers_table_single_advance(ESB, preload, one_mhz, one, both):
    """§1.4: "advance_to(T) handles every deadline ≤ T in order" — both stages in one call."""
    dev = fresh(ESB)
    dev.config_write(0x60, 2, 0x04 if one_mhz else 0x00)
    load(dev, preload, preload)
    dev.config_write(0x68, 1, 0x02)
    assert dev.advance(both - 1) == 0
    assert dev.stage == 2
    assert dev.advance(1) == 1
    assert dev.events == [ev(T0 + both)]


def test_different_preloads_per_stage(ESB):
    """§3.6 start(s): "deadline = now + duration(preload_s)"."""
    dev = fresh(ESB)
    load(dev, 10, 100)
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == T0 + 9_830_400
    dev.advance_to(T0 + 9_830_400)
    assert dev.next_deadline == T0 + 9_830_400 + 98_304_000
    assert dev.advance_to(T0 + 9_830_400 + 98_304_000) == 1


def test_reset_preload_both_stages(ESB):
    """§3.9 (probe): preload 0xFFFFF at 1 kHz, 2 061 582 336 000 ns for both stages."""
    dev = fresh(ESB)
    dev.config_write(0x68, 1, 0x02)
    assert dev.advance_to(T0 + 2_061_582_336_000 - 1) == 0
    assert dev.advance_to(T0 + 2_061_582_336_000) == 1


def test_ping_in_stage_2_returns_to_stage_1(ESB):
    """§3.6: "Enable 0→1 and reload both start(1), from either stage (probe: a ping in stage
    2 returns to stage 1)"; §6.6 #8: "esb ping in stage 2 (t0 + 20 s) | WATCHDOG at ping +
    30 198 988 800"."""
    dev = fresh(ESB)
    load(dev, 0x3C00, 0x3C00)
    dev.config_write(0x68, 1, 0x02)
    dev.advance_to(T0 + 20 * S)
    assert dev.stage == 2
    ping(dev)
    t = dev.now
    assert dev.stage == 1
    assert dev.next_deadline == t + 15_099_494_400
    assert dev.advance_to(t + 30_198_988_800 - 1) == 0
    assert dev.advance_to(t + 30_198_988_800) == 1
    assert dev.events == [ev(t + 30_198_988_800)]


def test_scenario_5_mainline_open_never_ping(ESB):
    """§6.6 #5: "stage 1 ends t0 + 15 099 494 400; WATCHDOG at t0 + 30 198 988 800; flag
    set; 0x68 reads 0; preloads 0xFFFFF" (§6.1 steps 1-3, heartbeat 30: preload 30 << 9)."""
    dev = fresh(ESB)
    dev.config_write(0x60, 2, 0x0003)                 # probe
    dev.config_write(0x68, 1, 0)
    unlock(dev)
    dev.mmio_read(0x0C, 2)
    unlock(dev)
    dev.mmio_write(0x0C, 2, 0x0300)
    load(dev, 30 << 9, 30 << 9)                        # set_timeout(30)
    ping(dev)
    ping(dev)                                          # start
    dev.config_write(0x68, 1, 0x02)
    t0 = dev.now
    assert dev.advance_to(t0 + 15_099_494_400 - 1) == 0
    assert dev.stage == 1
    assert dev.advance_to(t0 + 15_099_494_400) == 0
    assert dev.stage == 2
    assert dev.advance_to(t0 + 30_198_988_800 - 1) == 0
    assert dev.advance_to(t0 + 30_198_988_800) == 1
    assert dev.events == [ev(t0 + 30_198_988_800)]
    assert flag_word(dev) == 0x1200
    assert wdt_lock(dev) == 0
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == dev.now + 1_030_791_168_000   # preloads 0xFFFFF


def test_scenario_7_ping_every_10s_never_fires(ESB):
    """§6.6 #7: "esb ping every 10 s | never fires"."""
    dev = fresh(ESB)
    load(dev, 30 << 9, 30 << 9)
    dev.config_write(0x68, 1, 0x02)
    for _ in range(20):
        assert dev.advance(10 * S) == 0
        ping(dev)
    assert dev.events == []
    assert dev.stage == 1


def test_scenario_10_settimeout_while_running(ESB):
    """§6.6 #10: "esb SETTIMEOUT(10) while running | WATCHDOG 10 066 329 600 after the last
    reload" (§6.1 step 2: preload t<<9, then ping)."""
    dev = fresh(ESB)
    load(dev, 30 << 9, 30 << 9)
    dev.config_write(0x68, 1, 0x02)
    dev.advance(3 * S)
    load(dev, 10 << 9, 10 << 9)
    ping(dev)
    t = dev.now
    assert dev.advance_to(t + 10_066_329_600 - 1) == 0
    assert dev.advance_to(t + 10_066_329_600) == 1
    assert dev.events == [ev(t + 10_066_329_600)]


def test_scenario_12_freebsd_n30(ESB):
    """§6.6 #12: "esb FreeBSD n = 30, no further event | WATCHDOG 2 013 265 920 after the
    enabling write" (§6.3 item 2: P = 2^(30−20) = 0x400)."""
    dev = fresh(ESB)
    dev.config_write(0x60, 2, 0x0003)
    dev.config_write(0x68, 1, 0)
    unlock(dev)
    dev.mmio_write(0x0C, 2, 0x0300)
    unlock(dev)
    dev.mmio_write(0x0C, 2, 0x0100)
    load(dev, 0x400, 0x400)
    unlock(dev)
    dev.mmio_write(0x0C, 2, 0x0100)
    dev.config_write(0x68, 1, 0x02)
    t0 = dev.now
    assert wdt_lock(dev) == 0x02
    assert dev.advance_to(t0 + 2_013_265_920 - 1) == 0
    assert dev.advance_to(t0 + 2_013_265_920) == 1
    assert dev.advance(10_000 * S) == 0


@pytest.mark.parametrize("action", list(WatchdogAction))
def test_stage2_expiry_reboot_enabled_every_action(ESB, action):
    """§3.6 Stage-2 expiry, reboot enabled: "set the previous-reboot flag; internal reset
    (§3.8); record WatchdogEvent(t, "i6300esb", action); call on_expire. For every action
    (probe), so free-running never survives"; §3.8 internal reset keeps command, BAR0,
    cache line, interrupt line and raw 0x40–0xFF."""
    seen = []
    dev = fresh(ESB, action=action)
    dev.on_expire = seen.append
    dev.config_write(0x04, 2, 0x0507)
    dev.config_write(0x10, 4, 0xFEBF1000)
    dev.config_write(0x0C, 1, 0x10)
    dev.config_write(0x3C, 1, 0x0B)
    dev.config_write(0x40, 4, 0xDEADBEEF)
    dev.config_write(0x60, 4, 0x24242424)
    dev.config_write(0xFF, 1, 0xA1)
    cfg_before = [dev.config_read(o, 4) for o in range(0, 256, 4)]
    dev.config_write(0x60, 2, 0x0005)                 # 1 MHz, INT_TYPE 1 (reboot enabled)
    load(dev, 1, 1)
    dev.config_write(0x68, 1, 0x07)                   # enabled, locked, free_run
    unlock(dev)                                        # unlock state 2 at the expiry
    t = T0 + 1_920
    assert dev.advance_to(t - 1) == 0
    assert dev.advance_to(t) == 1
    assert dev.events == [ev(t, action)]
    assert seen == [ev(t, action)]
    assert flag_word(dev) == 0x1200
    assert wdt_lock(dev) == 0                          # disabled, unlocked, free_run 0
    assert dev.config_read(0x60, 2) == 0               # reboot enabled, 1 kHz, INT_TYPE 0
    assert dev.stage == 1
    assert dev.next_deadline is None
    assert [dev.config_read(o, 4) for o in range(0, 256, 4)] == cfg_before
    # unlock state back to 0: a bare reload does not ping after re-enabling
    dev.advance(100)
    dev.config_write(0x68, 1, 0x02)                    # lock was cleared: this works
    d = dev.now + 1_030_791_168_000                    # §6.6 #14, preloads 0xFFFFF at 1 kHz
    assert dev.next_deadline == d
    dev.advance(5)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert dev.next_deadline == d
    assert dev.advance(10 ** 13) == 1                  # free-running did not survive
    assert len(dev.events) == 2


def test_on_expire_sees_reset_device_and_keeps_its_accesses(ESB):
    """§3.6: flag and internal reset come before the event and the callback ("this order
    keeps a callback's accesses"); API.md: "while a callback runs, dev.now equals the
    event's time_ns"."""
    dev = fresh(ESB)
    seen = []

    def cb(e):
        seen.append((e, dev.now, flag_word(dev), wdt_lock(dev), dev.stage, dev.next_deadline,
                     list(dev.events)))
        dev.config_write(0x68, 1, 0x02)               # re-enable from the callback

    dev.on_expire = cb
    t = trip(dev)
    assert seen == [(ev(t), t, 0x1200, 0, 1, None, [ev(t)])]
    assert dev.next_deadline == t + 1_030_791_168_000
    assert wdt_lock(dev) == 0x02


def test_scenario_14_stage1_after_action_without_reprogramming(ESB):
    """§6.6 #14: "any stage-2 action, re-enable without reprogramming | stage 1 =
    1 030 791 168 000 ns (probe)"."""
    dev = fresh(ESB, action="none")
    load(dev, 10, 10)
    dev.config_write(0x60, 2, 0x04)
    dev.config_write(0x68, 1, 0x02)
    dev.advance(19_200)
    assert dev.events == [ev(T0 + 19_200, WatchdogAction.NONE)]
    t = dev.now
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == t + 1_030_791_168_000
    assert dev.advance_to(t + 1_030_791_168_000 - 1) == 0
    assert dev.stage == 1
    assert dev.advance_to(t + 1_030_791_168_000) == 0
    assert dev.stage == 2


def test_free_running_probe_deadlines(ESB):
    """§3.6: "reboot disabled, free_run set: start(1), no event; stages alternate (probe:
    deadlines 9 830 400, 19 660 800, 29 491 200, 39 321 600 ns for preloads 10/10)"."""
    dev = ESB()
    dev.config_write(0x60, 2, 0x20)
    load(dev, 10, 10)
    dev.config_write(0x68, 1, 0x06)
    assert dev.now == 0
    expected = [(9_830_400, 1), (19_660_800, 2), (29_491_200, 1), (39_321_600, 2)]
    for (d, stage), nxt in zip(expected, [19_660_800, 29_491_200, 39_321_600, 49_152_000]):
        assert dev.next_deadline == d
        assert dev.advance_to(d - 1) == 0
        assert dev.stage == stage
        assert dev.remaining_ns == 1
        assert dev.advance_to(d) == 0
        assert dev.stage == 3 - stage
        assert dev.next_deadline == nxt
        assert dev.advance_to(d + 1) == 0
    assert dev.events == []
    assert wdt_lock(dev) == 0x06


def test_scenario_13_reboot_disabled_no_free_run(ESB):
    """§6.6 #13: "0x60 ← 0x20, preloads 1/1, enable | stages end +983 040, +1 966 080; no
    event; 0x68 = 0x02"; §3.6: "no deadline, enabled stays 1, stage stays 2, no event
    (probe); a later reload starts stage 1"."""
    dev = fresh(ESB)
    dev.config_write(0x60, 2, 0x20)
    load(dev, 1, 1)
    dev.config_write(0x68, 1, 0x02)
    assert dev.advance_to(T0 + 983_040 - 1) == 0
    assert dev.stage == 1
    assert dev.advance_to(T0 + 983_040) == 0
    assert (dev.stage, dev.next_deadline) == (2, T0 + 1_966_080)
    assert dev.advance_to(T0 + 1_966_080 - 1) == 0
    assert dev.advance_to(T0 + 1_966_080) == 0
    assert (dev.stage, dev.next_deadline, dev.remaining_ns) == (2, None, None)
    assert wdt_lock(dev) == 0x02
    assert flag_word(dev) == 0
    assert dev.advance(3000 * S) == 0
    assert dev.events == []
    ping(dev)
    t = dev.now
    assert (dev.stage, dev.next_deadline) == (1, t + 983_040)


def test_preload_0_fires_at_the_write(ESB):
    """§3.9: "0 | any | 0 (fires at the write)"; §1.4: "A timeout of zero armed by an access
    fires at the end of that access ... at the same now"."""
    seen = []
    dev = fresh(ESB, on_expire=seen.append)
    load(dev, 0, 0)
    dev.config_write(0x68, 1, 0x02)
    assert dev.now == T0
    assert dev.events == [ev(T0)]
    assert seen == [ev(T0)]
    assert flag_word(dev) == 0x1200
    assert dev.next_deadline is None
    assert dev.stage == 1


def test_preload1_0_ends_stage_1_at_the_write(ESB):
    dev = fresh(ESB)
    load(dev, 0, 10)
    dev.config_write(0x68, 1, 0x02)
    assert dev.events == []
    assert (dev.now, dev.stage, dev.next_deadline) == (T0, 2, T0 + dur(10))
    assert dev.advance_to(T0 + dur(10)) == 1


def test_preload2_0_fires_at_the_stage_1_end(ESB):
    dev = fresh(ESB)
    load(dev, 10, 0)
    dev.config_write(0x68, 1, 0x02)
    assert dev.advance_to(T0 + dur(10) - 1) == 0
    assert dev.advance_to(T0 + dur(10)) == 1
    assert dev.events == [ev(T0 + dur(10))]


def test_preload_0_ping_fires_at_the_write(ESB):
    """A reload with preloads 0/0 fires at the end of the MMIO write."""
    dev = fresh(ESB)
    load(dev, 10, 10)
    dev.config_write(0x68, 1, 0x02)
    dev.advance(1000)
    load(dev, 0, 0)
    assert dev.events == []
    unlock(dev)
    dev.mmio_write(0x0B, 4, 0x00010000)               # byte, word 0x0C = 0x0100, byte
    assert dev.events == [ev(T0 + 1000)]
    assert dev.now == T0 + 1000


def _zero_cycle(dev) -> None:
    dev.config_write(0x60, 2, 0x20)
    load(dev, 0, 0)
    dev.config_write(0x68, 1, 0x06)


def test_zero_length_free_running_cycle_does_not_hang(impl):
    """§3.6: "Zero-length free-running cycle (reboot disabled, free_run, both preloads 0)
    ... wdcore MUST NOT hang: at a stage-2 expiry where this holds it acts as if free_run
    were clear".  Run first in a child process with a timeout, so a hang fails the test
    instead of stalling the run."""
    code = (
        "from wdcore import _select\n"
        f"E = _select.implementation({impl!r}).I6300ESB\n"
        "d = E(); d.advance(1000)\n"
        "d.config_write(0x60, 2, 0x20)\n"
        "for reg in (0, 4):\n"
        "    d.mmio_write(0x0C, 2, 0x80); d.mmio_write(0x0C, 2, 0x86); d.mmio_write(reg, 4, 0)\n"
        "d.config_write(0x68, 1, 0x06)\n"
        "d.advance(10**9); d.advance(0)\n"
        "print('done', d.stage, d.next_deadline)\n"
    )
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("zero-length free-running cycle hangs (SPEC §3.6)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["done", "2", "None"]


def test_zero_length_free_running_cycle_acts_as_free_run_clear(ESB):
    """§3.6: ... "acts as if free_run were clear": no deadline, enabled stays, stage 2, no
    event; a later reload starts stage 1 (and ends at once again)."""
    dev = fresh(ESB)
    _zero_cycle(dev)
    assert dev.now == T0
    assert (dev.stage, dev.next_deadline) == (2, None)
    assert wdt_lock(dev) == 0x06
    assert dev.events == []
    assert dev.advance(3000 * S) == 0
    load(dev, 10, 10)
    ping(dev)
    assert (dev.stage, dev.next_deadline) == (1, dev.now + dur(10))
    assert dev.advance(dur(10)) == 0
    assert dev.advance(dur(10)) == 0                   # free-running again
    assert (dev.stage, dev.next_deadline) == (1, dev.now + dur(10))


def test_zero_length_cycle_reached_mid_run(ESB):
    """Preloads set to 0/0 during a free-running stage 1: the next stage-2 start is
    zero-length and lands in the same no-hang rule."""
    dev = fresh(ESB)
    dev.config_write(0x60, 2, 0x20)
    load(dev, 10, 10)
    dev.config_write(0x68, 1, 0x06)
    load(dev, 0, 0)
    assert dev.advance_to(T0 + dur(10)) == 0
    assert (dev.stage, dev.next_deadline) == (2, None)
    assert dev.events == []


def test_free_running_with_zero_stage_1(ESB):
    """Preloads 0/10 free-running: not the zero-length cycle (the period is 9 830 400 ns);
    each stage 1 ends the instant it starts."""
    dev = fresh(ESB)
    dev.config_write(0x60, 2, 0x20)
    load(dev, 0, 10)
    dev.config_write(0x68, 1, 0x06)
    for k in range(1, 5):
        assert (dev.stage, dev.next_deadline) == (2, T0 + k * dur(10))
        assert dev.advance_to(T0 + k * dur(10)) == 0
    assert dev.events == []


def test_overdue_deadline_fires_at_now_and_remaining_is_0(ESB):
    """§1.4: "An overdue deadline (< now; ... restoring such a state) fires at the current
    now on the next advance, advance(0) included"; §3.6: "remaining_ns: deadline − now (0
    while overdue)"."""
    src = fresh(ESB)
    src.config_write(0x60, 2, 0x04)
    load(src, 1, 1)
    src.config_write(0x68, 1, 0x02)
    src.advance(960)                                   # stage 2, deadline T0 + 1920
    f = payload(src)
    assert (f["stage"], f["deadline"]) == (2, T0 + 1_920)
    f["now"] = T0 + 5_000                              # the deadline is now overdue
    data = _snapshot.wrap(_snapshot.KIND_I6300ESB, ESB_FMT.pack(*f.values()))
    dev = ESB()
    dev.restore(data)
    assert dev.remaining_ns == 0
    assert dev.next_deadline == T0 + 1_920
    assert dev.advance(0) == 1
    assert dev.events == [ev(T0 + 5_000)]
    assert dev.now == T0 + 5_000


def test_deadline_past_time_max_never_fires(ESB):
    """§3.9: "A deadline now + duration ... always fits an unsigned 64-bit field; one past
    2^63−1 never fires"; docs/design.md, the end of time: it "stays in the state and in
    snapshots, but is never reached: `next_deadline` ... is None for it"."""
    dev = fresh(ESB, t0=TIME_MAX - 100)
    dev.config_write(0x60, 2, 0x04)
    load(dev, 1, 1)
    dev.config_write(0x68, 1, 0x02)
    assert payload(dev)["deadline"] == TIME_MAX + 860
    assert dev.next_deadline is None
    assert dev.remaining_ns == 960
    assert dev.advance_to(TIME_MAX) == 0
    assert dev.stage == 1
    assert dev.remaining_ns == 860
    assert dev.next_deadline is None
    clone = ESB()
    clone.restore(dev.snapshot())
    assert payload(clone)["deadline"] == TIME_MAX + 860
    assert clone.next_deadline is None


def test_max_stage_near_time_max(ESB):
    """The longest stage (§3.9: 1 030 791 168 000 ns) armed 1 ns before the end of time:
    docs/design.md, "never reached: `next_deadline` ... is None for it"."""
    dev = fresh(ESB, t0=TIME_MAX - 1)
    dev.config_write(0x68, 1, 0x02)
    assert payload(dev)["deadline"] == TIME_MAX - 1 + 1_030_791_168_000
    assert dev.remaining_ns == 1_030_791_168_000
    assert dev.next_deadline is None
    assert dev.advance(1) == 0
    assert dev.next_deadline is None


def test_advance_counts_only_watchdog_events(ESB):
    """§1.4: "advance returns the number of WatchdogEvents produced; stage-1 expiries and
    silent stage-2 ends do not count"."""
    dev = fresh(ESB)
    dev.on_expire = lambda e: dev.config_write(0x68, 1, 0x02)
    load(dev, 0x400, 0x400)
    dev.config_write(0x68, 1, 0x02)
    # one event at +2 013 265 920, then re-armed by the callback with preloads 0xFFFFF
    n = dev.advance(2_013_265_920 + 2_061_582_336_000)
    assert n == 2
    assert [e.time_ns for e in dev.events] == [T0 + 2_013_265_920,
                                               T0 + 2_013_265_920 + 2_061_582_336_000]


# ---------------------------------------------------------------------------------
# 8. Free-running cycles cost O(1) (SPEC §3.6)
# ---------------------------------------------------------------------------------

P_MHZ = 1_920          # period of preloads 1/1 at 1 MHz: 960 + 960 ns (§3.9)


def free_running_1mhz(ESB, p1=1, p2=1, t0=7, **kw):
    dev = ESB(**kw)
    dev.advance(t0)
    dev.config_write(0x60, 2, 0x24)                    # reboot disabled, 1 MHz
    load(dev, p1, p2)
    dev.config_write(0x68, 1, 0x06)                    # enabled, free_run
    return dev


def phase(t0: int, d1: int, d2: int, T: int):
    """Where a free-running device enabled at t0 stands at T: (stage, next deadline,
    stage ends handled).  Stage 1 ends at t0 + d1 + kP, stage 2 at t0 + (k+1)P; a
    deadline equal to T has fired (§1.4)."""
    period = d1 + d2
    q, r = divmod(T - t0, period)
    ends = 2 * q + (1 if r >= d1 else 0)
    if r < d1:
        return 1, t0 + q * period + d1, ends
    return 2, t0 + (q + 1) * period, ends


@pytest.mark.parametrize("delta", [10 ** 18, 10 ** 18 - 640, 10 ** 18 + 320,
                                   10 ** 18 + 319, TIME_MAX - 7])
def test_free_running_huge_advance_is_o1(ESB, delta):
    """§3.6: "advancing over k of them MUST cost O(1), not O(k) ... Observable results equal
    cycle-by-cycle processing".  10**18 ns is ~5·10^14 cycles of 1 920 ns."""
    dev = free_running_1mhz(ESB)
    c0 = payload(dev)["counter"]
    start = time.perf_counter()
    assert dev.advance(delta) == 0
    elapsed = time.perf_counter() - start
    assert elapsed < 2.0, f"advance over ~{delta // P_MHZ} cycles took {elapsed:.1f} s"
    T = 7 + delta
    stage, deadline, ends = phase(7, 960, 960, T)
    assert dev.now == T
    assert dev.stage == stage
    assert payload(dev)["deadline"] == deadline
    # docs/design.md: a deadline past 2^63−1 ns "is never reached: `next_deadline` ... is
    # None for it" (at T = 2^63−1 the next stage end lies past it)
    assert dev.next_deadline == (deadline if deadline <= TIME_MAX else None)
    assert (dev.next_deadline is None) == (delta == TIME_MAX - 7)
    assert dev.remaining_ns == deadline - T
    assert dev.events == []
    f = payload(dev)
    # §1.4: "each arming takes a sequence number": one arming per stage end handled
    assert f["counter"] - c0 == ends
    assert f["seq"] == f["counter"] - 1
    # the same device advanced in several uneven chunks ends in the same state
    other = free_running_1mhz(ESB)
    left = delta
    for chunk in (1, 959, 960, 3 * 10 ** 17 + 11, 12345, 10 ** 17 + 3):
        if chunk <= left:
            assert other.advance(chunk) == 0
            left -= chunk
    other.advance(left)
    assert other.snapshot() == dev.snapshot()


@pytest.mark.parametrize("p1,p2,target", [(1, 1, 1_000 * P_MHZ + 5),
                                          (1, 3, 517 * 3_840 + 961),
                                          (2, 1, 700 * 2_880 + 1_920)])
def test_free_running_jump_equals_step_by_step(ESB, p1, p2, target):
    """A single advance equals stepping deadline by deadline (snapshot byte for byte)."""
    jumped = free_running_1mhz(ESB, p1, p2)
    stepped = free_running_1mhz(ESB, p1, p2)
    T = 7 + target
    assert jumped.advance_to(T) == 0
    steps = 0
    while stepped.next_deadline is not None and stepped.next_deadline <= T:
        stepped.advance_to(stepped.next_deadline)
        steps += 1
    stepped.advance_to(T)
    assert stepped.snapshot() == jumped.snapshot()
    stage, deadline, ends = phase(7, dur(p1, True), dur(p2, True), T)
    assert steps == ends
    assert (jumped.stage, jumped.next_deadline) == (stage, deadline)


def test_free_running_1khz_to_time_max(ESB):
    dev = ESB()
    dev.config_write(0x60, 2, 0x20)
    load(dev, 10, 10)
    dev.config_write(0x68, 1, 0x06)
    start = time.perf_counter()
    assert dev.advance_to(TIME_MAX) == 0
    assert time.perf_counter() - start < 2.0
    stage, deadline, _ = phase(0, 9_830_400, 9_830_400, TIME_MAX)
    assert deadline > TIME_MAX
    assert (dev.stage, payload(dev)["deadline"]) == (stage, deadline)
    # docs/design.md: "never reached: `next_deadline` ... is None for it"
    assert dev.next_deadline is None


def test_free_running_o1_with_stage1_interrupt(ESB):
    """§3.6: "Observable results equal cycle-by-cycle processing (the first GINTSR set and
    on_irq at the right time)"."""
    calls = []
    dev = free_running_1mhz(ESB, stage1_interrupt=True)
    dev.on_irq = lambda level: calls.append((level, dev.now))
    start = time.perf_counter()
    assert dev.advance(10 ** 18) == 0
    assert time.perf_counter() - start < 2.0
    assert calls == [(True, 7 + 960)]
    assert dev.irq_level is True
    stage, deadline, _ = phase(7, 960, 960, 7 + 10 ** 18)
    assert (dev.stage, dev.next_deadline) == (stage, deadline)
    # cleared by the host: the next stage-1 end raises it again, at its exact time
    dev.mmio_write(0x08, 1, 0x01)
    assert calls[-1] == (False, 7 + 10 ** 18)
    nxt = deadline if stage == 1 else deadline + 960
    assert dev.advance_to(nxt - 1) == 0
    assert dev.irq_level is False
    dev.advance(10 ** 18)
    assert calls[2:] == [(True, nxt)]


@pytest.mark.parametrize("int_type", [1, 2, 3])
def test_free_running_o1_with_extension_and_other_int_type(ESB, int_type):
    """§1.3 item 1: other INT_TYPEs change nothing, so nothing is observable per cycle."""
    calls = []
    dev = ESB(stage1_interrupt=True)
    dev.on_irq = calls.append
    dev.advance(7)
    dev.config_write(0x60, 2, 0x24 | int_type)
    load(dev, 1, 1)
    dev.config_write(0x68, 1, 0x06)
    start = time.perf_counter()
    assert dev.advance(10 ** 18) == 0
    assert time.perf_counter() - start < 2.0
    assert calls == []
    stage, deadline, _ = phase(7, 960, 960, 7 + 10 ** 18)
    assert (dev.stage, dev.next_deadline) == (stage, deadline)


def test_on_irq_that_clears_gintsr_sees_every_stage_1_end(ESB):
    """§1.3 item 2: "on_irq(level) is called at each change of level"; a host that clears
    GINTSR from the callback sees each stage-1 end of a free-running device."""
    calls = []
    dev = free_running_1mhz(ESB, stage1_interrupt=True)

    def on_irq(level):
        calls.append((level, dev.now))
        if level:
            dev.mmio_write(0x08, 1, 0x01)

    dev.on_irq = on_irq
    assert dev.advance(5 * P_MHZ) == 0
    ends = [7 + 960 + k * P_MHZ for k in range(5)]
    assert calls == [x for t in ends for x in ((True, t), (False, t))]
    assert dev.irq_level is False
    assert (dev.stage, dev.next_deadline) == (1, 7 + 5 * P_MHZ + 960)


# ---------------------------------------------------------------------------------
# 9. The stage-1 interrupt extension (SPEC §1.3)
# ---------------------------------------------------------------------------------

def s1_device(ESB, int_type=0, profile="qemu", stage1_interrupt=True, p=10):
    """Extension device with preloads p/p at 1 kHz, INT_TYPE set, enabled at T0."""
    calls = []
    dev = fresh(ESB, profile=profile, stage1_interrupt=stage1_interrupt)
    dev.on_irq = lambda level: calls.append((level, dev.now))
    dev.config_write(0x60, 2, int_type)
    load(dev, p, p)
    dev.config_write(0x68, 1, 0x02)
    return dev, calls


def test_extension_off_by_default(ESB):
    """§1.3: "With the extension off: 0x08 reads 0, irq_level is False, on_irq is never
    called"."""
    dev, calls = s1_device(ESB, stage1_interrupt=False)
    dev.advance_to(T0 + dur(10))
    assert dev.stage == 2
    assert dev.irq_level is False
    for off, size in [(0x08, 1), (0x08, 2), (0x08, 4), (0x06, 4), (0x05, 4), (0x07, 2)]:
        assert dev.mmio_read(off, size) == 0
    dev.mmio_write(0x08, 4, 1)
    dev.mmio_write(0x08, 1, 1)
    dev.reset()
    trip(dev)
    assert calls == []
    assert dev.irq_level is False


def test_extension_default_is_off(ESB):
    calls = []
    dev = fresh(ESB)
    dev.on_irq = calls.append
    load(dev, 1, 1)
    dev.config_write(0x68, 1, 0x02)
    dev.advance(dur(1))
    assert dev.stage == 2
    assert dev.mmio_read(0x08, 4) == 0
    assert dev.irq_level is False
    assert calls == []


def test_int_type_0_sets_gintsr_at_stage_1_expiry(ESB):
    """§1.3 items 1-3: "At a stage-1 expiry, if the stored INT_TYPE equals 0, GINTSR bit 0
    is set and the IRQ line goes high"; "on_irq(level) is called at each change of level,
    never otherwise"."""
    dev, calls = s1_device(ESB)
    d1 = T0 + dur(10)
    assert dev.advance_to(d1 - 1) == 0
    assert dev.irq_level is False
    assert dev.mmio_read(0x08, 4) == 0
    assert calls == []
    assert dev.advance_to(d1) == 0
    assert dev.irq_level is True
    assert calls == [(True, d1)]
    assert dev.stage == 2                              # "Stage 2 starts either way"
    assert dev.next_deadline == d1 + dur(10)
    assert dev.advance_to(d1 + 1) == 0
    assert calls == [(True, d1)]


# every (offset, size) access that covers byte 0x08
COVERING_0x08 = [(o, n) for n in (1, 2, 4) for o in range(9 - n, 9)]


@pytest.mark.parametrize("off,size", COVERING_0x08)
def test_gintsr_read_lanes(ESB, off, size):
    """§1.3 item 3: "A read piece (§3.5) covering byte 0x08 shows GINTSR in that lane;
    reads never clear it"."""
    dev, calls = s1_device(ESB)
    dev.advance_to(T0 + dur(10))
    for _ in range(3):
        assert dev.mmio_read(off, size) == 1 << (8 * (0x08 - off))
    assert dev.irq_level is True
    assert dev.mmio_read(0x09, 1) == 0
    assert dev.mmio_read(0x0A, 2) == 0
    assert calls == [(True, T0 + dur(10))]


@pytest.mark.parametrize("profile,int_type", [("qemu", 1), ("qemu", 2), ("qemu", 3),
                                              ("qemu-7.2", 0x01), ("qemu-7.2", 0x10),
                                              ("qemu-7.2", 0x11)])
def test_other_int_types_do_nothing(ESB, profile, int_type):
    """§1.3 item 1: "Any other stored type (1, 2 = SMI, 3, and 0x10/0x11 in qemu-7.2)
    changes nothing ... Stage 2 starts either way"."""
    dev, calls = s1_device(ESB, int_type=int_type, profile=profile)
    assert dev.config_read(0x60, 2) == int_type
    assert dev.advance_to(T0 + dur(10)) == 0
    assert dev.stage == 2
    assert dev.irq_level is False
    assert dev.mmio_read(0x08, 4) == 0
    assert calls == []


def test_qemu_7_2_int_type_0x02_stores_0(ESB):
    """§3.3: in qemu-7.2 a write of 2 reads 0 — the stored type is 0, so the IRQ fires."""
    dev, calls = s1_device(ESB, int_type=0x02, profile="qemu-7.2")
    assert dev.config_read(0x60, 2) == 0
    dev.advance_to(T0 + dur(10))
    assert dev.irq_level is True


def test_int_type_is_read_at_the_stage_1_expiry(ESB):
    """§3.3: "INT_TYPE at the next stage-1 expiry"."""
    dev, calls = s1_device(ESB, int_type=2)
    dev.config_write(0x60, 2, 0)                     # changed mid-stage-1
    dev.advance_to(T0 + dur(10))
    assert dev.irq_level is True
    dev2, calls2 = s1_device(ESB, int_type=0)
    dev2.config_write(0x60, 2, 3)
    dev2.advance_to(T0 + dur(10))
    assert dev2.irq_level is False
    assert calls2 == []


def _raised(ESB, **kw):
    dev, calls = s1_device(ESB, **kw)
    dev.advance_to(T0 + dur(10))
    assert dev.irq_level is True
    calls.clear()
    return dev, calls


@pytest.mark.parametrize("offset,size", COVERING_0x08)
@pytest.mark.parametrize("state", [0, 1, 2])
def test_write_1_clears_gintsr_whatever_the_unlock_state(ESB, offset, size, state):
    """§1.3 item 4: "A write piece covering byte 0x08 with bit 0 set in that lane clears
    GINTSR (line low), whatever the unlock state"."""
    dev, calls = _raised(ESB)
    if state >= 1:
        dev.mmio_write(0x0C, 2, 0x80)
    if state == 2:
        dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(offset, size, 1 << (8 * (0x08 - offset)))
    assert dev.irq_level is False
    assert dev.mmio_read(0x08, 4) == 0
    assert calls == [(False, dev.now)]
    dev.mmio_write(0x08, 1, 1)                         # already low: no further call
    assert calls == [(False, dev.now)]


@pytest.mark.parametrize("offset,size,value", [
    (0x08, 1, 0x00), (0x08, 1, 0xFE), (0x08, 2, 0xFF00), (0x08, 4, 0xFFFFFF00),
    (0x09, 1, 0x01), (0x0A, 2, 0x0001), (0x0C, 4, 0xFFFFFFFF), (0x04, 4, 0xFFFFFFFF),
    (0x06, 2, 0xFFFF), (0x07, 1, 0x01), (0x05, 4, 0xFEFFFFFF),
])
def test_writes_without_bit_0_in_lane_0x08_leave_gintsr(ESB, offset, size, value):
    dev, calls = _raised(ESB)
    dev.mmio_write(offset, size, value)
    assert dev.irq_level is True
    assert dev.mmio_read(0x08, 1) == 1
    assert calls == []


def test_gintsr_clear_keeps_unlock_effect_word(ESB):
    """§1.3 item 4: "the piece keeps its QEMU effect on the unlock machine" — an unlocked
    word at 0x08 consumes the unlock (§3.5 rule 4)."""
    dev, calls = _raised(ESB)
    d = dev.next_deadline
    unlock(dev)
    dev.mmio_write(0x08, 2, 0x0001)
    assert dev.irq_level is False
    dev.mmio_write(0x0C, 2, 0x0100)                    # consumed: no ping
    assert dev.next_deadline == d
    assert dev.stage == 2


def test_gintsr_clear_keeps_unlock_effect_byte(ESB):
    """... an unlocked byte at 0x08 leaves the unlock pending (§3.5 rule 3)."""
    dev, calls = _raised(ESB)
    unlock(dev)
    dev.mmio_write(0x08, 1, 0x01)
    assert dev.irq_level is False
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


def test_gintsr_clear_keeps_unlock_effect_dword(ESB):
    """... an unlocked dword at 0x08 consumes the unlock without loading (§3.5 rule 5)."""
    dev, calls = _raised(ESB)
    unlock(dev)
    dev.mmio_write(0x08, 4, 0x00000001)
    assert dev.irq_level is False
    dev.mmio_write(0x00, 4, 3)                         # consumed: no load
    ping(dev)
    assert pinged(dev, 10)


def test_gintsr_clear_in_state_1_keeps_state_1(ESB):
    dev, calls = _raised(ESB)
    dev.mmio_write(0x0C, 2, 0x80)
    dev.mmio_write(0x08, 2, 0x0001)                    # state 1, word: rule 6, nothing
    assert dev.irq_level is False
    dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert pinged(dev)


def test_ping_disable_and_stage_2_leave_gintsr(ESB):
    """§1.3 item 5: "Ping, disable and stage 2 leave GINTSR alone"."""
    dev, calls = _raised(ESB)
    assert dev.stage == 2
    dev.advance(5)
    assert dev.irq_level is True
    ping(dev)
    assert dev.irq_level is True
    assert dev.stage == 1
    dev.config_write(0x68, 1, 0x00)
    assert dev.irq_level is True
    dev.config_write(0x68, 1, 0x02)
    assert dev.irq_level is True
    assert calls == []


def test_gintsr_survives_silent_stage_2_end_and_next_stage_1(ESB):
    """§1.3 item 5 and item 2 ("never otherwise"): a silent stage-2 end keeps it; a second
    stage-1 end with GINTSR already set does not call on_irq again."""
    dev, calls = s1_device(ESB)
    dev.config_write(0x60, 2, 0x20)                     # reboot disabled, INT_TYPE 0
    dev.config_write(0x68, 1, 0x06)                     # add free_run (1→1)
    dev.advance_to(T0 + 4 * dur(10) + dur(10))          # 3 stage-1 ends, 2 stage-2 ends
    assert calls == [(True, T0 + dur(10))]
    assert dev.irq_level is True
    dev.mmio_write(0x08, 4, 1)
    assert calls[-1] == (False, dev.now)
    dev.advance_to(T0 + 7 * dur(10))                   # next stage-1 end: 7 × dur(10)
    assert calls[-1] == (True, T0 + 7 * dur(10))
    assert len(calls) == 3


def test_reset_clears_gintsr(ESB):
    """§1.3 item 5: "every device reset (§3.8) ... clears it"."""
    dev, calls = _raised(ESB)
    dev.reset()
    assert dev.irq_level is False
    assert dev.mmio_read(0x08, 4) == 0
    assert calls == [(False, dev.now)]


def test_internal_reset_clears_gintsr_before_the_event(ESB):
    """§1.3 item 5: "including the internal one after a stage-2 action"; §3.6 order: flag,
    internal reset, record the event, call on_expire."""
    order = []
    dev, calls = s1_device(ESB)
    dev.on_irq = lambda level: order.append(("irq", level, dev.now))
    dev.on_expire = lambda e: order.append(("expire", e.time_ns, dev.irq_level))
    d1, d2 = T0 + dur(10), T0 + 2 * dur(10)
    assert dev.advance_to(d2) == 1
    assert order == [("irq", True, d1), ("irq", False, d2), ("expire", d2, False)]
    assert dev.irq_level is False
    assert dev.mmio_read(0x08, 4) == 0


# ---------------------------------------------------------------------------------
# 10. Resets (SPEC §3.8)
# ---------------------------------------------------------------------------------

def test_reset_keeps_raw_and_flag_clears_the_rest(ESB):
    """§3.8: reset() = system reset: watchdog state as at construction; "previous-reboot
    flag | kept"; "command, BAR0, cache line, interrupt line → 0 | yes"; "raw 0x40–0xFF |
    kept"."""
    dev = fresh(ESB, action="debug")
    trip(dev)
    dev.config_write(0x04, 2, 0x0507)
    dev.config_write(0x10, 4, 0xFEBF1000)
    dev.config_write(0x0C, 1, 0x40)
    dev.config_write(0x3C, 1, 0x0A)
    raw = bytes((i * 37 + 11) & 0xFF for i in range(0x40, 0x100))
    for i, b in enumerate(raw):
        if 0x40 + i != 0x68:
            dev.config_write(0x40 + i, 1, b)
    dev.config_write(0x68, 2, raw[0x28] | (raw[0x29] << 8))
    dev.config_write(0x60, 2, 0x0021)
    load(dev, 10, 10)
    dev.config_write(0x68, 1, 0x07)
    dev.advance(dur(10) + 1)
    unlock(dev)
    assert dev.stage == 2
    t = dev.now
    dev.reset()
    assert dev.now == t
    assert dev.action is WatchdogAction.DEBUG
    assert flag_word(dev) == 0x1200
    for o, size in [(0x04, 2), (0x10, 4), (0x0C, 1), (0x3C, 1)]:
        assert dev.config_read(o, size) == 0
    assert dev.config_read(0x00, 4) == 0x25AB8086
    assert bytes(dev.config_read(o, 1) for o in range(0x40, 0x100) if o != 0x68) == \
        bytes(b for i, b in enumerate(raw) if 0x40 + i != 0x68)
    assert dev.config_read(0x68, 2) == raw[0x28] | (raw[0x29] << 8)
    assert dev.config_read(0x60, 2) == 0
    assert wdt_lock(dev) == 0
    assert dev.stage == 1
    assert dev.next_deadline is None
    assert dev.remaining_ns is None
    # unlock state 0: a bare reload after enabling does nothing
    dev.config_write(0x68, 1, 0x02)
    assert dev.next_deadline == t + 1_030_791_168_000  # preloads 0xFFFFF, 1 kHz
    dev.advance(1)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert dev.next_deadline == t + 1_030_791_168_000


def test_reset_flag_zero_stays_zero(ESB):
    dev = fresh(ESB)
    dev.reset()
    assert flag_word(dev) == 0


def test_reset_matches_construction_for_the_watchdog(ESB):
    """§3.8: construction and reset() give the same watchdog state (snapshot fields)."""
    dev = fresh(ESB, stage1_interrupt=True)
    dev.config_write(0x60, 2, 0x0027)
    load(dev, 3, 4)
    dev.config_write(0x68, 1, 0x07)
    dev.mmio_write(0x0C, 2, 0x80)
    dev.reset()
    f = payload(dev)
    assert (f["armed"], f["deadline"], f["seq"], f["enabled"], f["locked"], f["free_run"],
            f["reboot_disabled"], f["one_mhz"], f["int_type"], f["preload1"], f["preload2"],
            f["stage"], f["unlock"], f["prev_reboot"], f["gintsr"]) == \
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFFFFF, 0xFFFFF, 1, 0, 0, 0)
    assert f["cfg"] == spec_config_image()


# ---------------------------------------------------------------------------------
# 11. Snapshot / restore, pickle, deepcopy (SPEC §3.10, API.md)
# ---------------------------------------------------------------------------------

def _history(dev):
    """A fixed history on a device built with profile="qemu-7.2", stage1_interrupt=True:
    an expiry (flag set), raw config bytes, then a free-running countdown in stage 2 with
    GINTSR set and the unlock machine in state 1."""
    dev.advance(3 * S + 17)
    dev.action = "debug"
    trip(dev)
    dev.config_write(0x04, 2, 0x0002)
    dev.config_write(0x10, 4, 0xFEBF1000)
    dev.config_write(0x50, 4, 0xCAFEF00D)
    dev.config_write(0x60, 2, 0x0030)                  # reboot disabled, INT_TYPE 0x10
    dev.config_write(0x60, 2, 0x0020)                  # INT_TYPE 0
    load(dev, 10, 20)
    dev.config_write(0x68, 1, 0x06)
    dev.advance(dur(10) + 1234)                         # stage 2, GINTSR raised
    dev.mmio_write(0x0C, 2, 0x80)


def _future(dev):
    out = []
    calls = []
    dev.on_irq = lambda level: calls.append((level, dev.now))
    for step in (S // 1000, dur(20) - 1234 - S // 1000 - 1, 1, 1, dur(10)):
        n = dev.advance(step)
        out.append((n, dev.now, dev.stage, dev.next_deadline, dev.remaining_ns,
                    dev.irq_level))
    dev.mmio_write(0x08, 1, 1)                          # clear GINTSR
    dev.mmio_write(0x0C, 2, 0x86)                       # completes the pending unlock
    dev.mmio_write(0x0C, 2, 0x0300)                     # ping + clear flag
    out.append((dev.now, dev.stage, dev.next_deadline, flag_word(dev), wdt_lock(dev)))
    dev.config_write(0x60, 2, 0x0000)                   # reboot enabled again
    out.append((dev.advance(dur(10) + dur(20)), dev.now, dev.next_deadline))
    out.append(dev.config_read(0x50, 4))
    return out, calls, list(dev.events)


def _history_device(cls):
    dev = cls(profile="qemu-7.2", stage1_interrupt=True)
    _history(dev)
    return dev


def test_snapshot_records_every_field(ESB):
    """§3.10: "As §2.3 plus profile, extension flag, every field of §3.6, GINTSR and the 256
    raw configuration bytes" (layout: docs/snapshot.md)."""
    dev = _history_device(ESB)
    snap = dev.snapshot()
    assert isinstance(snap, bytes)
    f = payload(dev)
    assert f["now"] == dev.now
    assert f["action"] == list(WatchdogAction).index(WatchdogAction.DEBUG)
    assert f["armed"] == 1
    assert f["deadline"] == dev.next_deadline
    assert f["seq"] < f["counter"]
    assert f["profile"] == 1                           # docs/snapshot.md: 1 = qemu-7.2
    assert f["s1i"] == 1
    assert (f["enabled"], f["locked"], f["free_run"], f["reboot_disabled"],
            f["one_mhz"], f["int_type"]) == (1, 0, 1, 1, 0, 0)
    assert (f["preload1"], f["preload2"]) == (10, 20)
    assert (f["stage"], f["unlock"], f["prev_reboot"], f["gintsr"]) == (2, 1, 1, 1)
    assert f["cfg"] == bytes(dev.config_read(o, 1) if o != 0x68 else dev.config_read(o, 2) & 0xFF
                             for o in range(256))


def test_restore_gives_identical_future(ESB):
    """API.md: restore gives the "exact state incl. pending deadline"."""
    a = _history_device(ESB)
    snap = a.snapshot()
    b = ESB(profile="qemu-7.2", stage1_interrupt=True)  # as built: a restore keeps them
    b.restore(snap)
    assert b.snapshot() == snap
    assert (b.now, b.stage, b.next_deadline, b.remaining_ns, b.irq_level) == \
        (a.now, a.stage, a.next_deadline, a.remaining_ns, a.irq_level)
    a.clear_events()
    t_clear = a.next_deadline + 1 + dur(10)     # _future's fifth step ends here
    fa, fb = _future(a), _future(b)
    assert fa == fb
    t_end = t_clear + dur(10) + dur(20)
    assert fb[1] == [(False, t_clear), (True, t_clear + dur(10)), (False, t_end)]
    assert fb[2] == [ev(t_end, WatchdogAction.DEBUG)]
    assert fb[0][-2] == (1, t_end, None)
    assert fb[0][-1] == 0xCAFEF00D
    assert a.snapshot() == b.snapshot()


def test_restore_carries_profile_and_extension(ESB):
    """§3.10: the snapshot holds the profile and the extension flag; docs/snapshot.md: each
    "must match the restoring device's", as a Machine's must match the Machine's.  A device
    built with the same profile and extension takes the state; any other is refused with
    ValueError, the device unchanged."""
    src = _history_device(ESB)                          # "qemu-7.2", extension on
    dev = ESB(profile="qemu-7.2", stage1_interrupt=True)
    dev.restore(src.snapshot())
    assert dev.snapshot() == src.snapshot()
    dev.config_write(0x60, 2, 0x0013)
    assert dev.config_read(0x60, 2) == 0x0011           # the 7.2 mask (§3.3)
    assert dev.mmio_read(0x08, 1) == 1                  # extension on, GINTSR set
    for built, differs in [(dict(), "profile"), (dict(stage1_interrupt=True), "profile"),
                           (dict(profile="qemu-7.2"), "stage1_interrupt")]:
        other = ESB(**built)
        before = other.snapshot()
        with pytest.raises(ValueError, match=rf"data holds an i6300esb whose {differs} "
                                             r"differs from this device's"):
            other.restore(src.snapshot())
        assert other.snapshot() == before
        assert (other.profile, other.stage1_interrupt) == (built.get("profile", "qemu"),
                                                           built.get("stage1_interrupt", False))
    back = ESB(profile="qemu-7.2", stage1_interrupt=True)
    with pytest.raises(ValueError, match="whose profile differs from this device's "
                                         r"\('qemu', not 'qemu-7.2'\)"):
        back.restore(ESB().snapshot())
    back.config_write(0x60, 2, 0x0013)
    assert back.config_read(0x60, 2) == 0x0011          # still the 7.2 mask


def test_restore_does_not_touch_events_or_callbacks(ESB):
    """§2.3 (via §3.10): "Event logs and callbacks are not state: not in snapshots,
    untouched by restore"."""
    src = _history_device(ESB)
    snap = src.snapshot()
    seen = []
    dev = fresh(ESB, on_expire=seen.append, profile="qemu-7.2", stage1_interrupt=True)
    irq = lambda level: None                            # noqa: E731
    dev.on_irq = irq
    trip(dev)
    assert len(seen) == 1
    log = dev.events
    before = list(log)
    cb = dev.on_expire
    dev.restore(snap)
    assert dev.events is log
    assert dev.events == before
    assert dev.on_expire is cb
    assert dev.on_irq is irq


def test_snapshot_excludes_events_and_callbacks(ESB):
    a = _history_device(ESB)
    b = _history_device(ESB)
    b.on_expire = lambda e: None
    b.on_irq = lambda level: None
    b.clear_events()
    assert a.snapshot() == b.snapshot()


def test_compiled_and_twin_snapshots_identical_and_interchangeable():
    """§3.10: "Both implementations MUST write byte-identical snapshots for identical states
    and accept each other's"."""
    try:
        Compiled = _select.implementation("compiled").I6300ESB
    except (ImportError, ValueError) as exc:
        pytest.skip(f"compiled core unavailable: {exc}")
    Twin = _select.implementation("python").I6300ESB
    c, p = _history_device(Compiled), _history_device(Twin)
    assert c.snapshot() == p.snapshot()
    c0, p0 = Compiled(), Twin()
    assert c0.snapshot() == p0.snapshot()
    c1, p1 = free_running_1mhz(Compiled), free_running_1mhz(Twin)
    c1.advance(10 ** 18)
    p1.advance(10 ** 18)
    assert c1.snapshot() == p1.snapshot()
    built = dict(profile="qemu-7.2", stage1_interrupt=True)  # as _history_device's
    c_from_p, p_from_c = Compiled(**built), Twin(**built)
    c_from_p.restore(p.snapshot())
    p_from_c.restore(c.snapshot())
    assert c_from_p.snapshot() == p_from_c.snapshot() == c.snapshot()
    assert _future(c_from_p) == _future(p_from_c)
    assert c_from_p.snapshot() == p_from_c.snapshot()


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickle_and_deepcopy(ESB, how):
    """API.md: "copy.deepcopy(dev) and pickle round-trip work (callbacks are not
    pickled)"."""
    seen = []
    dev = _history_device(ESB)
    dev.on_expire = seen.append
    dev.on_irq = lambda level: None
    clone = pickle.loads(pickle.dumps(dev)) if how == "pickle" else copy.deepcopy(dev)
    # a pickle loads in the implementation selected where it is loaded (issue 10 item 10),
    # a deepcopy keeps the original's
    assert type(clone) is (_select.implementation().I6300ESB if how == "pickle" else type(dev))
    assert clone is not dev
    assert clone.snapshot() == dev.snapshot()
    assert (clone.now, clone.stage, clone.next_deadline, clone.irq_level) == \
        (dev.now, dev.stage, dev.next_deadline, dev.irq_level)
    assert clone.action is WatchdogAction.DEBUG
    assert clone.on_expire is None
    assert clone.on_irq is None
    assert clone.events is not dev.events
    # independent
    snap = dev.snapshot()
    clone.mmio_write(0x08, 1, 1)
    clone.config_write(0x68, 1, 0x00)
    clone.advance(S)
    assert dev.snapshot() == snap
    assert dev.irq_level is True
    assert seen == []
