"""Golden tests for ``wdcore.clients``: the real drivers' access sequences, written out by
hand from SPEC.md.

Every other test takes its accesses *from* ``wdcore.clients``; this file is the one place
that checks clients.py itself says what the drivers do.  Each expected op list below is a
literal, or built from the tiny helpers of section 0, which transcribe SPEC.md's notation
(§6 "CW16/CW8/CR8 config word/byte write/read; MW16/MW32/MR16 MMIO; UNLOCK16 = MW16(0x0C ←
0x80), MW16(0x0C ← 0x86); UNLOCK8 the same with bytes", and §5.2 configuration mechanism
#1).  No expected value is computed by calling clients.py.  The SPEC line each list encodes
is quoted next to it.

Where clients.py disagrees with SPEC.md, the test is written per the SPEC and marked
``xfail(strict=True)`` with the section in its reason.

The last section runs a few of these hand-written lists on a Machine (both
implementations) and checks the times the SPEC's timings imply.
"""
from __future__ import annotations

import pytest

from tests.conftest import S
from wdcore import clients
from wdcore.clients import (
    firmware,
    freebsd_i6300esbwd,
    linux_i6300esb,
    linux_i6300esb_legacy,
    linux_ib700wdt,
    linux_ib700wdt_2_6,
    qemu_wdt_ib700_test,
)

# =============================================================================================
# 0. SPEC notation as small literal helpers
# =============================================================================================

SLOT = 3                 # a PCI device number on bus 0 (any of 0..31)
BAR = 0xFEBF0000         # a BAR0 in the PCI hole (§7.3 item 6)

# §5.2: "0xCF8–0xCFB: CONFIG_ADDRESS. 0xCFC–0xCFF: CONFIG_DATA"
CONFIG_ADDRESS, CONFIG_DATA = 0xCF8, 0xCFC
# §2.1: "0x441, 0x442 | disable" / "0x443, 0x444 | arm"
IB_DISABLE, IB_ARM = 0x441, 0x443
# §3.5: "0x00 Preload Value 1", "0x04 Preload Value 2", "0x0C Reload"
PRELOAD1, PRELOAD2, RELOAD = 0x00, 0x04, 0x0C
# §3.1: "0x04 command", "0x10 BAR0"; §3.3 "WDT Configuration — word at 0x60";
# §3.4 "WDT Lock — byte at 0x68"
COMMAND, BAR0, WDT_CONFIG, WDT_LOCK = 0x04, 0x10, 0x60, 0x68


def cfg_addr(slot, off, bus=0, function=0):
    """§5.2 (brief): CONFIG_ADDRESS = 0x80000000 | bus<<16 | device<<11 | function<<8 |
    (offset & 0xFC)."""
    return 0x80000000 | bus << 16 | slot << 11 | function << 8 | (off & 0xFC)


# the helper against hand-computed dwords
assert cfg_addr(0, 0x00) == 0x80000000
assert cfg_addr(3, 0x60) == 0x80001860
assert cfg_addr(3, 0x68) == 0x80001868
assert cfg_addr(2, 0x6A) == 0x80001068
assert cfg_addr(31, 0xFF, bus=1, function=7) == 0x8001FFFC


def _cfg(kind, slot, off, value=None):
    """§5.2: "CONFIG_ADDRESS, then the data port 0xCFC + (offset & 3)"."""
    port = CONFIG_DATA + (off & 3)
    data = (kind, port) if value is None else (kind, port, value)
    return [("outl", CONFIG_ADDRESS, cfg_addr(slot, off)), data]


def cw32(slot, off, v): return _cfg("outl", slot, off, v)
def cw16(slot, off, v): return _cfg("outw", slot, off, v)    # §6 "CW16"
def cw8(slot, off, v): return _cfg("outb", slot, off, v)     # §6 "CW8"
def cr32(slot, off): return _cfg("inl", slot, off)
def cr16(slot, off): return _cfg("inw", slot, off)
def cr8(slot, off): return _cfg("inb", slot, off)            # §6 "CR8"
def mw32(off, v): return [("writel", BAR + off, v)]          # §6 "MW32"
def mw16(off, v): return [("writew", BAR + off, v)]          # §6 "MW16"
def mr16(off): return [("readw", BAR + off)]                 # §6 "MR16"


def unlock16():
    """§6: "UNLOCK16 = MW16(0x0C ← 0x80), MW16(0x0C ← 0x86)"; §3.5 write rules 1-2."""
    return mw16(RELOAD, 0x80) + mw16(RELOAD, 0x86)


def unlock8():
    """§6: "UNLOCK8 the same with bytes"."""
    return [("writeb", BAR + RELOAD, 0x80), ("writeb", BAR + RELOAD, 0x86)]


# the helpers against fully literal tuples
assert cw16(3, 0x60, 3) == [("outl", 0xCF8, 0x80001860), ("outw", 0xCFC, 0x0003)]
assert cw8(3, 0x69, 7) == [("outl", 0xCF8, 0x80001868), ("outb", 0xCFD, 7)]
assert cr8(3, 0x68) == [("outl", 0xCF8, 0x80001868), ("inb", 0xCFC)]
assert unlock16() == [("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86)]
assert unlock8() == [("writeb", 0xFEBF000C, 0x80), ("writeb", 0xFEBF000C, 0x86)]


def reads(ops):
    """How many values an op list reads (what ``RunResult.reads`` will hold)."""
    return sum(op[0].startswith(("in", "read")) for op in ops)


def well_formed(ops):
    """Every op a tuple of the ops vocabulary (docs/ops.md) with in-range fields."""
    from wdcore import ops as _ops
    _ops.encode(ops)      # raises for anything outside the vocabulary
    return True


# =============================================================================================
# 1. Module constants and the bus helpers (§5.2, §3.1, §2.1)
# =============================================================================================

def test_constants():
    # §5.2 "0xCF8–0xCFB: CONFIG_ADDRESS. 0xCFC–0xCFF: CONFIG_DATA"
    assert clients.CONFIG_ADDRESS == 0xCF8
    assert clients.CONFIG_DATA == 0xCFC
    # §2.1 "0x441, 0x442 | disable" ; "0x443, 0x444 | arm"
    assert clients.IB700_DISABLE == 0x441
    assert clients.IB700_ARM == 0x443
    # §3.1 "0x00 / 0x02 | vendor / device | 0x8086 / 0x25AB"; §6 "until 0x25AB8086"
    assert clients.ESB_ID == 0x25AB8086


@pytest.mark.parametrize("slot, off, bus, function, expected", [
    # §5.2: 0x80000000 | bus<<16 | device<<11 | function<<8 | (offset & 0xFC)
    (0, 0x00, 0, 0, 0x80000000),
    (2, 0x60, 0, 0, 0x80001060),
    (3, 0x68, 0, 0, 0x80001868),
    (3, 0x6B, 0, 0, 0x80001868),   # bits 1:0 of the offset go to the data port instead
    (31, 0x10, 0, 0, 0x8000F810),
    (5, 0x3C, 1, 0, 0x8001283C),
    (0, 0x04, 0, 1, 0x80000104),
    (31, 0xFF, 255, 7, 0x80FFFFFC),
])
def test_pci_address(slot, off, bus, function, expected):
    assert clients.pci_address(slot, off, bus=bus, function=function) == expected


def test_pci_config_access_ops():
    # §5.2: CONFIG_ADDRESS by an outl at 0xCF8, then the data port 0xCFC + (offset & 3)
    assert clients.pci_config_read(3, 0x00, 4) == [("outl", 0xCF8, 0x80001800), ("inl", 0xCFC)]
    assert clients.pci_config_read(3, 0x68, 1) == [("outl", 0xCF8, 0x80001868), ("inb", 0xCFC)]
    assert clients.pci_config_read(3, 0x62, 2) == [("outl", 0xCF8, 0x80001860), ("inw", 0xCFE)]
    assert clients.pci_config_read(3, 0x6B, 1) == [("outl", 0xCF8, 0x80001868), ("inb", 0xCFF)]
    assert clients.pci_config_write(3, 0x60, 2, 0x0003) == [
        ("outl", 0xCF8, 0x80001860), ("outw", 0xCFC, 0x0003)]
    assert clients.pci_config_write(3, 0x69, 1, 0x5A) == [
        ("outl", 0xCF8, 0x80001868), ("outb", 0xCFD, 0x5A)]
    assert clients.pci_config_write(4, 0x10, 4, 0xE0000000, bus=1, function=2) == [
        ("outl", 0xCF8, 0x80012210), ("outl", 0xCFC, 0xE0000000)]


def test_plain_access_helpers():
    # the ops vocabulary (src/wdcore/ops.py): ("outb", port, value), ("inw", port), ...
    assert clients.io_write(0x443, 1, 0x0E) == [("outb", 0x443, 0x0E)]
    assert clients.io_write(0x441, 2, 0x0E00) == [("outw", 0x441, 0x0E00)]
    assert clients.io_read(0xCFC, 4) == [("inl", 0xCFC)]
    assert clients.mem_write(0x1000, 4, 5) == [("writel", 0x1000, 5)]
    assert clients.mem_read(0x100C, 2) == [("readw", 0x100C)]
    assert clients.clock_step(7) == [("clock_step", 7)]
    assert clients.clock_step() == [("clock_step",)]


# =============================================================================================
# 2. Firmware bring-up (§6, first paragraph)
# =============================================================================================
# §6: "scan bus 0 devices 0–31 via dword reads of offset 0 until 0x25AB8086; BAR0 ← 0xFFFFFFFF,
# read 0xFFFFFFF0; BAR0 ← base; set command bit 1."

SCAN_TO_3 = [                                   # one dword read of offset 0 per device 0..3
    ("outl", 0xCF8, 0x80000000), ("inl", 0xCFC),
    ("outl", 0xCF8, 0x80000800), ("inl", 0xCFC),
    ("outl", 0xCF8, 0x80001000), ("inl", 0xCFC),
    ("outl", 0xCF8, 0x80001800), ("inl", 0xCFC),
]
SIZE_BAR0_3 = [                                 # "BAR0 ← 0xFFFFFFFF, read 0xFFFFFFF0"
    ("outl", 0xCF8, 0x80001810), ("outl", 0xCFC, 0xFFFFFFFF),
    ("outl", 0xCF8, 0x80001810), ("inl", 0xCFC),
]
PLACE_BAR0_3 = [("outl", 0xCF8, 0x80001810), ("outl", 0xCFC, BAR)]     # "BAR0 ← base"
ENABLE_MEMORY_3 = [("outl", 0xCF8, 0x80001804), ("outw", 0xCFC, 0x0002)]  # "command bit 1"


def test_firmware_read_id():
    assert firmware.read_id(3) == [("outl", 0xCF8, 0x80001800), ("inl", 0xCFC)]
    assert firmware.read_id(31) == [("outl", 0xCF8, 0x8000F800), ("inl", 0xCFC)]


def test_firmware_scan():
    assert firmware.scan(3) == SCAN_TO_3
    assert firmware.scan(3, first=2) == SCAN_TO_3[4:]
    assert firmware.scan(0) == SCAN_TO_3[:2]
    full = firmware.scan(31)
    assert len(full) == 64 and reads(full) == 32
    assert full[-2:] == [("outl", 0xCF8, 0x8000F800), ("inl", 0xCFC)]


def test_firmware_size_place_enable():
    assert firmware.size_bar0(3) == SIZE_BAR0_3
    assert firmware.place_bar0(3, BAR) == PLACE_BAR0_3
    assert firmware.enable_memory(3) == ENABLE_MEMORY_3
    # a PCI core passes the command it read: bit 1 is OR-ed in
    assert firmware.enable_memory(3, 0x0001) == [("outl", 0xCF8, 0x80001804), ("outw", 0xCFC, 0x0003)]
    assert firmware.assign_bar0(3, BAR) == PLACE_BAR0_3 + ENABLE_MEMORY_3
    assert firmware.bring_up(3, BAR) == SCAN_TO_3 + SIZE_BAR0_3 + PLACE_BAR0_3 + ENABLE_MEMORY_3
    assert firmware.bring_up(3, BAR, first=3) == SCAN_TO_3[6:] + SIZE_BAR0_3 + PLACE_BAR0_3 + ENABLE_MEMORY_3


def test_firmware_bar_size():
    # §3.1: "BAR0 size probe: all-ones reads back 0xFFFFFFF0 (16 bytes)"
    assert firmware.bar_size(0xFFFFFFF0) == 16
    assert firmware.bar_size(0xFFFFF000) == 0x1000


# =============================================================================================
# 3. i6300ESB register helpers (§3.5, §6 notation)
# =============================================================================================

def test_esb_unlock_widths():
    # §3.5 writes rules 1-2; §6 "UNLOCK16 = MW16(0x0C ← 0x80), MW16(0x0C ← 0x86)"
    assert clients.esb_unlock(BAR) == [("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86)]
    assert clients.esb_unlock(BAR, 2) == unlock16()
    # "UNLOCK8 the same with bytes"
    assert clients.esb_unlock(BAR, 1) == [("writeb", 0xFEBF000C, 0x80), ("writeb", 0xFEBF000C, 0x86)]


def test_esb_reload_and_preloads():
    # §6.1 step 4 "UNLOCK16; MW16(0x0C ← 0x0100)"
    assert clients.esb_reload(BAR) == unlock16() + mw16(RELOAD, 0x0100)
    assert clients.esb_reload(BAR, 0x0300) == unlock16() + mw16(RELOAD, 0x0300)
    # UNLOCK8 then the *word* reload (§6.2 item 1 changes only the unlock)
    assert clients.esb_reload(BAR, 0x1100, unlock_size=1) == unlock8() + mw16(RELOAD, 0x1100)
    # §6.1 step 2 "UNLOCK16; MW32(0x00 ← t<<9); UNLOCK16; MW32(0x04 ← t<<9)"
    assert clients.esb_preloads(BAR, 0x3C00, 0x200) == (
        unlock16() + mw32(PRELOAD1, 0x3C00) + unlock16() + mw32(PRELOAD2, 0x200))
    assert clients.esb_preloads(BAR, 1, 2, unlock_size=1) == (
        unlock8() + mw32(PRELOAD1, 1) + unlock8() + mw32(PRELOAD2, 2))


# =============================================================================================
# 4. Linux mainline i6300esb (§6.1)
# =============================================================================================
# §6.1 "Heartbeat t = 1..2046 s, default 30; preload = t << 9."

@pytest.mark.parametrize("t, preload", [
    (1, 0x200),        # §3.9 "0x200 (Linux 1 s)"
    (2, 0x400),
    (10, 0x1400),
    (30, 0x3C00),      # §3.9 "0x3C00 (Linux default 30 s)"
    (2046, 0xFFC00),   # §3.9 "0xFFC00 (Linux max 2046 s)"
])
def test_mainline_preload(t, preload):
    assert linux_i6300esb.preload(t) == preload


@pytest.mark.parametrize("t", [0, -1, 2047, 4096])
def test_mainline_preload_out_of_range(t):
    # §6.1 "Heartbeat t = 1..2046 s": the driver refuses anything else
    with pytest.raises(ValueError):
        linux_i6300esb.preload(t)
    with pytest.raises(ValueError):
        linux_i6300esb.set_timeout(BAR, t)


def test_mainline_defaults():
    # §6.1 "default 30"
    assert linux_i6300esb.HEARTBEAT_DEFAULT == 30
    assert (linux_i6300esb.HEARTBEAT_MIN, linux_i6300esb.HEARTBEAT_MAX) == (1, 2046)


# §6.1 step 2: "set_timeout(t): UNLOCK16; MW32(0x00 ← t<<9); UNLOCK16; MW32(0x04 ← t<<9);
# UNLOCK16; MW16(0x0C ← 0x0100)."
SET_TIMEOUT_30 = [
    ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86), ("writel", 0xFEBF0000, 0x3C00),
    ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86), ("writel", 0xFEBF0004, 0x3C00),
    ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86), ("writew", 0xFEBF000C, 0x0100),
]


def mainline_set_timeout(t):
    p = t << 9                                       # "preload = t << 9"
    return (unlock16() + mw32(PRELOAD1, p) + unlock16() + mw32(PRELOAD2, p)
            + unlock16() + mw16(RELOAD, 0x0100))


assert mainline_set_timeout(30) == SET_TIMEOUT_30


@pytest.mark.parametrize("t", [1, 10, 30, 2046])
def test_mainline_set_timeout(t):
    assert linux_i6300esb.set_timeout(BAR, t) == mainline_set_timeout(t)


def test_mainline_set_timeout_literal():
    assert linux_i6300esb.set_timeout(BAR, 30) == SET_TIMEOUT_30


def test_mainline_probe():
    # §6.1 step 1: "CW16(0x60 ← 0x0003); CR8(0x68), bit 0 → "nowayout already set";
    # CW8(0x68 ← 0); UNLOCK16; MR16(0x0C), bit 9 → boot status CARDRESET (the read keeps the
    # unlock); UNLOCK16; MW16(0x0C ← 0x0300); then step 2."
    head = [
        ("outl", 0xCF8, 0x80001860), ("outw", 0xCFC, 0x0003),      # CW16(0x60 ← 0x0003)
        ("outl", 0xCF8, 0x80001868), ("inb", 0xCFC),               # CR8(0x68)
        ("outl", 0xCF8, 0x80001868), ("outb", 0xCFC, 0x00),        # CW8(0x68 ← 0)
        ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86),  # UNLOCK16
        ("readw", 0xFEBF000C),                                       # MR16(0x0C)
        ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86),  # UNLOCK16
        ("writew", 0xFEBF000C, 0x0300),                              # MW16(0x0C ← 0x0300)
    ]
    assert linux_i6300esb.probe(SLOT, BAR) == head + SET_TIMEOUT_30      # default 30
    assert linux_i6300esb.probe(SLOT, BAR, 10) == head + mainline_set_timeout(10)
    assert reads(linux_i6300esb.probe(SLOT, BAR)) == 2


def test_mainline_boot_status_read_and_clear():
    # §6.1 step 1: "UNLOCK16; MR16(0x0C)" ... "UNLOCK16; MW16(0x0C ← 0x0300)"
    assert linux_i6300esb.boot_status(BAR) == unlock16() + mr16(RELOAD)
    assert linux_i6300esb.clear_boot_status(BAR) == unlock16() + mw16(RELOAD, 0x0300)


def test_mainline_start():
    # §6.1 step 3: "start (open): UNLOCK16; MW16(0x0C ← 0x0100); CW8(0x68 ← 0x02, or 0x03
    # with nowayout)."
    assert linux_i6300esb.start(SLOT, BAR) == [
        ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86),
        ("writew", 0xFEBF000C, 0x0100),
        ("outl", 0xCF8, 0x80001868), ("outb", 0xCFC, 0x02),
    ]
    assert linux_i6300esb.start(SLOT, BAR, nowayout=True) == (
        unlock16() + mw16(RELOAD, 0x0100) + cw8(SLOT, WDT_LOCK, 0x03))


def test_mainline_ping():
    # §6.1 step 4: "ping: UNLOCK16; MW16(0x0C ← 0x0100)."
    expected = [("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86),
                ("writew", 0xFEBF000C, 0x0100)]
    assert linux_i6300esb.ping(BAR) == expected
    assert linux_i6300esb.keepalive(BAR) == expected


def test_mainline_stop():
    # §6.1 step 5: "stop: UNLOCK16; MW16(0x0C ← 0x0100); CW8(0x68 ← 0); CR8(0x68)"
    assert linux_i6300esb.stop(SLOT, BAR) == [
        ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86),
        ("writew", 0xFEBF000C, 0x0100),
        ("outl", 0xCF8, 0x80001868), ("outb", 0xCFC, 0x00),
        ("outl", 0xCF8, 0x80001868), ("inb", 0xCFC),
    ]


@pytest.mark.parametrize("word, expected", [
    # §6.1 "MR16(0x0C), bit 9 → boot status CARDRESET"; §3.5 "word read 0x1200 or 0"
    (0x1200, True), (0x0200, True), (0x0000, False), (0x1000, False), (0x0001, False),
])
def test_mainline_cardreset(word, expected):
    assert linux_i6300esb.cardreset(word) is expected


@pytest.mark.parametrize("lock, expected", [
    # §6.1 "CR8(0x68), bit 0 → "nowayout already set""; §3.4 "bit 0 locked"
    (0x00, False), (0x01, True), (0x02, False), (0x03, True), (0x07, True), (0x06, False),
])
def test_mainline_nowayout_already_set(lock, expected):
    assert linux_i6300esb.nowayout_already_set(lock) is expected


@pytest.mark.parametrize("lock, expected", [
    # §6.1 step 5 "CR8(0x68): bit 1 still set = failure"; §3.4 "bit 1 enabled"
    (0x00, False), (0x01, False), (0x02, True), (0x03, True), (0x04, False),
])
def test_mainline_stop_failed(lock, expected):
    assert linux_i6300esb.stop_failed(lock) is expected


# =============================================================================================
# 5. Linux legacy i6300esb v0.03/v0.04 (§6.2)
# =============================================================================================
# §6.2 "As 6.1 except: 1. UNLOCK8 (byte writes) everywhere."

def legacy_set_timeout(t):
    p = t << 9
    return (unlock8() + mw32(PRELOAD1, p) + unlock8() + mw32(PRELOAD2, p)
            + unlock8() + mw16(RELOAD, 0x0100))


def legacy_probe(t=30):
    # 6.1 step 1 with UNLOCK8, and "clears with MW16(0x0C ← 0x1100), bits 12 and 8"
    return (cw16(SLOT, WDT_CONFIG, 0x0003) + cr8(SLOT, WDT_LOCK) + cw8(SLOT, WDT_LOCK, 0)
            + unlock8() + mr16(RELOAD) + unlock8() + mw16(RELOAD, 0x1100)
            + legacy_set_timeout(t))


LEGACY_STOP = [                                   # 6.1 step 5 with UNLOCK8
    ("writeb", 0xFEBF000C, 0x80), ("writeb", 0xFEBF000C, 0x86),
    ("writew", 0xFEBF000C, 0x0100),
    ("outl", 0xCF8, 0x80001868), ("outb", 0xCFC, 0x00),
    ("outl", 0xCF8, 0x80001868), ("inb", 0xCFC),
]


def test_legacy_unlock_is_bytes():
    # §6.2 item 1 "UNLOCK8 (byte writes) everywhere"
    assert linux_i6300esb_legacy.unlock(BAR) == [("writeb", 0xFEBF000C, 0x80),
                                                 ("writeb", 0xFEBF000C, 0x86)]


def test_legacy_ping():
    assert linux_i6300esb_legacy.ping(BAR) == [
        ("writeb", 0xFEBF000C, 0x80), ("writeb", 0xFEBF000C, 0x86),
        ("writew", 0xFEBF000C, 0x0100)]


def test_legacy_set_timeout():
    assert linux_i6300esb_legacy.set_timeout(BAR, 30) == legacy_set_timeout(30)
    assert linux_i6300esb_legacy.set_timeout(BAR, 7) == legacy_set_timeout(7)


def test_legacy_boot_status_and_clear():
    # §6.2 item 2: "probe tests bit 0 of MR16(0x0C) ... and clears with MW16(0x0C ← 0x1100)"
    assert linux_i6300esb_legacy.boot_status(BAR) == unlock8() + mr16(RELOAD)
    assert linux_i6300esb_legacy.clear_boot_status(BAR) == unlock8() + [
        ("writew", 0xFEBF000C, 0x1100)]


def test_legacy_probe():
    assert linux_i6300esb_legacy.probe(SLOT, BAR) == legacy_probe()


def test_legacy_init():
    # §6.2 item 3 "module init ends with stop"
    assert linux_i6300esb_legacy.init(SLOT, BAR) == legacy_probe() + LEGACY_STOP
    assert linux_i6300esb_legacy.init(SLOT, BAR, 12) == legacy_probe(12) + LEGACY_STOP
    assert reads(linux_i6300esb_legacy.init(SLOT, BAR)) == 3


def test_legacy_stop():
    assert linux_i6300esb_legacy.stop(SLOT, BAR) == LEGACY_STOP


def test_legacy_start():
    # §6.2 item 4 "open: ping, then CW8(0x68 ← 0x02 | nowayout)"
    assert linux_i6300esb_legacy.start(SLOT, BAR) == (
        unlock8() + mw16(RELOAD, 0x0100) + cw8(SLOT, WDT_LOCK, 0x02))
    assert linux_i6300esb_legacy.start(SLOT, BAR, nowayout=True) == (
        unlock8() + mw16(RELOAD, 0x0100) + cw8(SLOT, WDT_LOCK, 0x03))


def test_legacy_getstatus():
    # §6.2 item 4 "GETSTATUS reads config dword 0x64 (raw, 0)"
    assert linux_i6300esb_legacy.getstatus(SLOT) == [("outl", 0xCF8, 0x80001864), ("inl", 0xCFC)]


@pytest.mark.parametrize("word, expected", [
    # §6.2 item 2 "tests bit 0 of MR16(0x0C) (precedence bug; never true on 0x1200)"
    (0x1200, False), (0x0200, False), (0x0000, False), (0x0001, True),
])
def test_legacy_cardreset(word, expected):
    assert linux_i6300esb_legacy.cardreset(word) is expected


@pytest.mark.parametrize("lock, expected", [
    # §6.2 item 3 "stop, whose result tests bit 0 (lock)"
    (0x00, False), (0x01, True), (0x02, False), (0x03, True),
])
def test_legacy_stop_failed(lock, expected):
    assert linux_i6300esb_legacy.stop_failed(lock) is expected


# =============================================================================================
# 6. FreeBSD i6300esbwd (§6.3)
# =============================================================================================

# §6.3 step 1 "attach: CW16(0x60 ← 0x0003); if CR8(0x68) bit 0 is clear, CW8(0x68 ← 0);
# UNLOCK16; MW16(0x0C ← 0x0300)."
FBSD_ATTACH_BEGIN = [
    ("outl", 0xCF8, 0x80001860), ("outw", 0xCFC, 0x0003),
    ("outl", 0xCF8, 0x80001868), ("inb", 0xCFC),
]
FBSD_ATTACH_CLEAR = [("outl", 0xCF8, 0x80001868), ("outb", 0xCFC, 0x00)]
FBSD_ATTACH_TAIL = [("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86),
                    ("writew", 0xFEBF000C, 0x0300)]


def test_freebsd_attach():
    assert freebsd_i6300esbwd.attach_begin(SLOT) == FBSD_ATTACH_BEGIN
    assert freebsd_i6300esbwd.attach_end(SLOT, BAR, locked=False) == FBSD_ATTACH_CLEAR + FBSD_ATTACH_TAIL
    assert freebsd_i6300esbwd.attach_end(SLOT, BAR, locked=True) == FBSD_ATTACH_TAIL
    assert freebsd_i6300esbwd.attach(SLOT, BAR) == FBSD_ATTACH_BEGIN + FBSD_ATTACH_CLEAR + FBSD_ATTACH_TAIL
    assert freebsd_i6300esbwd.attach(SLOT, BAR, locked=True) == FBSD_ATTACH_BEGIN + FBSD_ATTACH_TAIL


@pytest.mark.parametrize("n, valid", [
    # §6.3 step 2 "EINVAL unless n = 0 or 20 ≤ n < 40"
    (0, True), (1, False), (19, False), (20, True), (30, True), (39, True), (40, False),
    (63, False),
])
def test_freebsd_valid_interval(n, valid):
    assert freebsd_i6300esbwd.valid_interval(n) is valid


@pytest.mark.parametrize("n, p", [
    # §6.3 "P = 2^(n−20)"; §3.9 "0x400 (FreeBSD 2^30 ns)"
    (20, 1), (21, 2), (30, 0x400), (39, 0x80000),
])
def test_freebsd_preload(n, p):
    assert freebsd_i6300esbwd.preload(n) == p


def fbsd_event(n, locked):
    # §6.3 step 2: "UNLOCK16; MW16(0x0C ← 0x0100); then ... P = 2^(n−20): UNLOCK16;
    # MW32(0x00 ← P); UNLOCK16; MW32(0x04 ← P); UNLOCK16; MW16(0x0C ← 0x0100); if not locked,
    # CW8(0x68 ← 0x02) and CR8(0x68) to learn the lock bit."
    p = 1 << (n - 20)
    ops = (unlock16() + mw16(RELOAD, 0x0100)
           + unlock16() + mw32(PRELOAD1, p) + unlock16() + mw32(PRELOAD2, p)
           + unlock16() + mw16(RELOAD, 0x0100))
    if not locked:
        ops += cw8(SLOT, WDT_LOCK, 0x02) + cr8(SLOT, WDT_LOCK)
    return ops


def test_freebsd_event_literal_n30():
    assert freebsd_i6300esbwd.event(SLOT, BAR, 30) == [
        ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86), ("writew", 0xFEBF000C, 0x0100),
        ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86), ("writel", 0xFEBF0000, 0x400),
        ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86), ("writel", 0xFEBF0004, 0x400),
        ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86), ("writew", 0xFEBF000C, 0x0100),
        ("outl", 0xCF8, 0x80001868), ("outb", 0xCFC, 0x02),
        ("outl", 0xCF8, 0x80001868), ("inb", 0xCFC),
    ]


@pytest.mark.parametrize("n", [20, 25, 30, 39])
@pytest.mark.parametrize("locked", [False, True])
def test_freebsd_event(n, locked):
    assert freebsd_i6300esbwd.event(SLOT, BAR, n, locked=locked) == fbsd_event(n, locked)


@pytest.mark.parametrize("n", [0, 1, 19, 40])
def test_freebsd_event_rejects_other_intervals(n):
    # n = 0 is the disable path (event_disable*); the rest are EINVAL (§6.3 step 2)
    with pytest.raises(ValueError):
        freebsd_i6300esbwd.event(SLOT, BAR, n)


def test_freebsd_errno():
    # FreeBSD sys/errno.h: EPERM 1, EINVAL 22
    assert (freebsd_i6300esbwd.EPERM, freebsd_i6300esbwd.EINVAL) == (1, 22)


def test_freebsd_disable_path():
    # §6.3 step 2, n = 0: "UNLOCK16; MW16(0x0C ← 0x0100); then - n = 0: EPERM if locked,
    # else CW8(0x68 ← CR8(0x68) & ~0x02)"
    assert freebsd_i6300esbwd.event_disable_reload(BAR) == [
        ("writew", 0xFEBF000C, 0x80), ("writew", 0xFEBF000C, 0x86), ("writew", 0xFEBF000C, 0x0100)]
    assert freebsd_i6300esbwd.read_lock(SLOT) == [("outl", 0xCF8, 0x80001868), ("inb", 0xCFC)]
    assert freebsd_i6300esbwd.event_disable(SLOT, 0x02) == [("outl", 0xCF8, 0x80001868), ("outb", 0xCFC, 0x00)]
    assert freebsd_i6300esbwd.event_disable(SLOT, 0x06) == cw8(SLOT, WDT_LOCK, 0x04)
    assert freebsd_i6300esbwd.event_disable(SLOT, 0x00) == cw8(SLOT, WDT_LOCK, 0x00)
    assert freebsd_i6300esbwd.event_disable(SLOT, 0xFF) == cw8(SLOT, WDT_LOCK, 0xFD)


def test_freebsd_sysctl_lock():
    # §6.3 step 3 "sysctl lock: CW8(0x68 ← CR8(0x68) | 1)"
    assert freebsd_i6300esbwd.read_lock(SLOT) == cr8(SLOT, WDT_LOCK)
    assert freebsd_i6300esbwd.sysctl_lock(SLOT, 0x02) == [("outl", 0xCF8, 0x80001868), ("outb", 0xCFC, 0x03)]
    assert freebsd_i6300esbwd.sysctl_lock(SLOT, 0x00) == cw8(SLOT, WDT_LOCK, 0x01)
    assert freebsd_i6300esbwd.sysctl_lock(SLOT, 0x06) == cw8(SLOT, WDT_LOCK, 0x07)


@pytest.mark.parametrize("lock, expected", [
    # §3.4 "bit 0 locked"
    (0x00, False), (0x01, True), (0x02, False), (0x03, True), (0x04, False), (0x05, True),
])
def test_freebsd_locked(lock, expected):
    assert freebsd_i6300esbwd.locked(lock) is expected


# =============================================================================================
# 7. Linux ib700wdt, current (§6.4)
# =============================================================================================
# §6.4 item 1: "outb(15 − (t+1)/2 → 0x443), integer division: t rounds up to even; t = 0 → 0 s."
# §2.2: seconds = 30 − 2·index.

@pytest.mark.parametrize("t, index, seconds", [
    (0, 15, 0),      # "t = 0 → 0 s"
    (1, 14, 2),      # 15 − 2/2
    (2, 14, 2),      # 15 − 3/2
    (3, 13, 4),
    (5, 12, 6),      # §6.6 #2 "SETTIMEOUT(5) | index 12: ... 6 000 000 000"
    (28, 1, 28),
    (29, 0, 30),     # 15 − 30/2
    (30, 0, 30),     # 15 − 31/2
])
def test_ib700wdt_index(t, index, seconds):
    assert linux_ib700wdt.index(t) == index
    assert 30 - 2 * index == seconds
    assert linux_ib700wdt.ping(t) == [("outb", 0x443, index)]
    assert linux_ib700wdt.set_timeout(t) == [("outb", 0x443, index)]


@pytest.mark.parametrize("t", [-1, 31, 60])
def test_ib700wdt_out_of_range(t):
    # §6.4 item 2 "SETTIMEOUT(t): EINVAL outside 0..30"
    with pytest.raises(ValueError):
        linux_ib700wdt.index(t)
    with pytest.raises(ValueError):
        linux_ib700wdt.set_timeout(t)


def test_ib700wdt_default_and_aliases():
    # §6.4 "t = 0..30 s, default 30" → index 0
    assert linux_ib700wdt.TIMEOUT_DEFAULT == 30
    assert linux_ib700wdt.ping() == [("outb", 0x443, 0x00)]
    assert linux_ib700wdt.start() == [("outb", 0x443, 0x00)]
    assert linux_ib700wdt.keepalive(10) == [("outb", 0x443, 10)]


def test_ib700wdt_stop():
    # §6.4 item 3 "disable (DISABLECARD, close with 'V', shutdown): outb(0 → 0x441)"
    assert linux_ib700wdt.stop() == [("outb", 0x441, 0x00)]


# =============================================================================================
# 8. Linux ib700wdt, 2.6 era (§6.5)
# =============================================================================================

def test_ib700wdt_2_6_table():
    # §2.2 "seconds = 30 − 2·index": the driver's table
    assert linux_ib700wdt_2_6.TABLE == (30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0)


@pytest.mark.parametrize("n, index", [
    # §6.5 item 2 "index = first i from 15 down to 0 with table[i] > n (smallest even timeout > n)"
    (0, 14),    # table[15] = 0 is not > 0; table[14] = 2
    (1, 14),
    (2, 13),    # 2 is not > 2; table[13] = 4
    (3, 13),
    (5, 12),
    (28, 0),
    (29, 0),
    (30, -1),   # "n = 30 leaves −1"
])
def test_ib700wdt_2_6_index(n, index):
    assert linux_ib700wdt_2_6.index(n) == index


def test_ib700wdt_2_6_ping():
    # §6.5 item 1 "ping (open): outb(index → 0x443); index starts at 0 (30 s)"
    assert linux_ib700wdt_2_6.INDEX_DEFAULT == 0
    assert linux_ib700wdt_2_6.ping() == [("outb", 0x443, 0x00)]
    assert linux_ib700wdt_2_6.start() == [("outb", 0x443, 0x00)]
    assert linux_ib700wdt_2_6.ping(13) == [("outb", 0x443, 0x0D)]
    # "n = 30 leaves −1, so the ping writes 0xFF (0 s)"
    assert linux_ib700wdt_2_6.ping(-1) == [("outb", 0x443, 0xFF)]


def test_ib700wdt_2_6_stop():
    # §6.5 item 3 "close with 'V', reboot: outb(0 → 0x441)"
    assert linux_ib700wdt_2_6.stop() == [("outb", 0x441, 0x00)]


# SPEC §6.5: SETTIMEOUT is defined for 0 ≤ n ≤ 30 only; outside, the driver returns EINVAL
@pytest.mark.parametrize("n", [-1, 31])
def test_ib700wdt_2_6_out_of_range(n):
    with pytest.raises(ValueError):
        linux_ib700wdt_2_6.index(n)


# =============================================================================================
# 9. QEMU tests/qtest/wdt_ib700-test.c (§6.7)
# =============================================================================================

# §6.7: "1. step 40 s, no event; 2. outb(0x0E → 0x443) (deadline 42 s); 3. step 1 s, no event,
# outb(0x0E → 0x443) (43 s); 4. step 1 s, no event, outb(1 → 0x441); 5. step 3 s, no event;
# 6. outb(0x0D → 0x443) at 45 s (49 s); 7. step 3 s, no event; step 2 s → WATCHDOG ... at 49 s."
QTEST_OPS = [
    ("clock_step", 40_000_000_000),
    ("outb", 0x443, 0x0E),
    ("clock_step", 1_000_000_000),
    ("outb", 0x443, 0x0E),
    ("clock_step", 1_000_000_000),
    ("outb", 0x441, 0x01),
    ("clock_step", 3_000_000_000),
    ("outb", 0x443, 0x0D),
    ("clock_step", 3_000_000_000),
    ("clock_step", 2_000_000_000),
]


def test_qtest_ops():
    assert qemu_wdt_ib700_test.ops() == QTEST_OPS


def test_qtest_times():
    # "WATCHDOG with the case's action at 49 s"; "the follow-up has time_ns 50 s (§4.2)"
    assert qemu_wdt_ib700_test.EXPIRY_NS == 49_000_000_000
    assert qemu_wdt_ib700_test.END_NS == 50_000_000_000
    # the steps add up to the end of the last one
    assert sum(op[1] for op in QTEST_OPS if op[0] == "clock_step") == 50_000_000_000


def test_all_golden_lists_are_valid_ops():
    for ops in (SCAN_TO_3 + SIZE_BAR0_3, SET_TIMEOUT_30, legacy_probe(), LEGACY_STOP,
                fbsd_event(30, False), QTEST_OPS):
        assert well_formed(ops)


# =============================================================================================
# 10. The goldens on a Machine: behaviour the SPEC timings imply (both implementations)
# =============================================================================================

# §3.9: "0x3C00 (Linux default 30 s) | 1 kHz | 15 099 494 400 | 30 198 988 800"
STAGE_30S, BOTH_30S = 15_099_494_400, 30_198_988_800
assert (0x3C00 << 15) * 30 == STAGE_30S          # §3.6 "duration(P) = (P << 15) × 30 ns"
GUEST_RESET = {"guest": True, "reason": "guest-reset"}


def mainline_session():
    """Bring-up, §6.1 probe (heartbeat 30) and start, all from the hand-written lists."""
    probe = (cw16(SLOT, WDT_CONFIG, 0x0003) + cr8(SLOT, WDT_LOCK) + cw8(SLOT, WDT_LOCK, 0)
             + unlock16() + mr16(RELOAD) + unlock16() + mw16(RELOAD, 0x0300) + SET_TIMEOUT_30)
    start = unlock16() + mw16(RELOAD, 0x0100) + cw8(SLOT, WDT_LOCK, 0x02)
    return SCAN_TO_3 + SIZE_BAR0_3 + PLACE_BAR0_3 + ENABLE_MEMORY_3 + probe + start


def test_mainline_session_on_machine(make_machine):
    # §6.6 #5 "esb mainline probe + open (t0 = enable), no ping | stage 1 ends
    # t0 + 15 099 494 400; WATCHDOG at t0 + 30 198 988 800; flag set; 0x68 reads 0"
    m = make_machine(esb_slot=SLOT)
    r = m.run(mainline_session())
    # scan: devices 0..2 empty (§5.2 "all-ones"), 3 = ESB_ID; BAR0 sizing 0xFFFFFFF0 (§3.1);
    # lock byte 0 (not "nowayout already set"); reload word 0 (no CARDRESET)
    assert r.reads == [0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0x25AB8086, 0xFFFFFFF0, 0x00, 0x0000]
    assert r.events == []
    t0 = m.now                                        # no time passed: the enable is at t0
    assert m.next_deadline == t0 + STAGE_30S          # stage 1
    r = m.run([("clock_step", BOTH_30S - 1)])
    assert r.events == []
    r = m.run([("clock_step", 1)])
    assert r.events == [
        {"event": "WATCHDOG", "data": {"action": "reset"}, "time_ns": t0 + BOTH_30S},
        {"event": "RESET", "data": GUEST_RESET, "time_ns": t0 + BOTH_30S},
    ]
    # §6.6 #6 "esb probe after 5 (reset action, BAR re-mapped) | MR16(0x0C) = 0x1200 →
    # CARDRESET; 0 after the 0x0300 write"; §6.1 stop: CR8(0x68) after the stop
    again = (PLACE_BAR0_3 + ENABLE_MEMORY_3 + cr8(SLOT, WDT_LOCK)
             + unlock16() + mr16(RELOAD) + unlock16() + mw16(RELOAD, 0x0300)
             + unlock16() + mr16(RELOAD))
    r = m.run(again)
    assert r.reads == [0x00, 0x1200, 0x0000]
    assert linux_i6300esb.cardreset(r.reads[1]) is True
    assert linux_i6300esb.cardreset(r.reads[2]) is False


def test_mainline_set_timeout_while_running_on_machine(make_machine):
    # §6.6 #10 "esb SETTIMEOUT(10) while running | WATCHDOG 10 066 329 600 after the last
    # reload"
    m = make_machine(esb_slot=SLOT, action="none")
    m.run(mainline_session() + [("clock_step", 5 * S)])
    r = m.run(mainline_set_timeout(10))
    t_reload = m.now
    assert r.events == []
    r = m.run([("clock_step", 10_066_329_600 - 1)])
    assert r.events == []
    r = m.run([("clock_step", 1)])
    assert r.events == [{"event": "WATCHDOG", "data": {"action": "none"},
                         "time_ns": t_reload + 10_066_329_600}]


def test_freebsd_event_on_machine(make_machine):
    # §6.6 #12 "esb FreeBSD n = 30, no further event | WATCHDOG 2 013 265 920 after the
    # enabling write"
    m = make_machine(esb_slot=SLOT, action="none")
    r = m.run(SCAN_TO_3 + SIZE_BAR0_3 + PLACE_BAR0_3 + ENABLE_MEMORY_3
              + FBSD_ATTACH_BEGIN + FBSD_ATTACH_CLEAR + FBSD_ATTACH_TAIL + fbsd_event(30, False))
    assert r.reads[-2:] == [0x00, 0x02]     # attach's lock read; event's read: enabled, unlocked
    t0 = m.now
    r = m.run([("clock_step", 2_013_265_920)])
    assert r.events == [{"event": "WATCHDOG", "data": {"action": "none"},
                         "time_ns": t0 + 2_013_265_920}]


def test_qtest_on_machine(make_machine):
    # §6.7: "step 2 s → WATCHDOG with the case's action at 49 s"; case none → nothing more
    m = make_machine(action="none")
    r = m.run(QTEST_OPS)
    assert r.events == [{"event": "WATCHDOG", "data": {"action": "none"}, "time_ns": 49 * S}]
    assert m.now == 50 * S


@pytest.mark.parametrize("t, fire_ns", [
    (0, 0),                  # §6.6 #3 "ib700 current SETTIMEOUT(0) | WATCHDOG at the write"
    (5, 6_000_000_000),      # §6.6 #2 "index 12: WATCHDOG at t0 + 6 000 000 000"
    (30, 30_000_000_000),    # §6.6 #1 "open, never ping | WATCHDOG at t0 + 30 000 000 000"
])
def test_ib700wdt_on_machine(make_machine, t, fire_ns):
    m = make_machine(action="none")
    m.run([("clock_step", S)])
    index = 15 - (t + 1) // 2                         # §6.4 item 1
    r = m.run([("outb", 0x443, index), ("clock_step", fire_ns)])
    assert r.events == [{"event": "WATCHDOG", "data": {"action": "none"}, "time_ns": S + fire_ns}]


def test_ib700wdt_2_6_settimeout_30_on_machine(make_machine):
    # §6.6 #3 "2.6 driver SETTIMEOUT(30) | WATCHDOG at the write": index −1 goes out as 0xFF,
    # §2.2 "the high nibble is ignored", index 0xF = 0 s
    m = make_machine(action="none")
    m.run([("clock_step", S)])
    r = m.run([("outb", 0x443, 0xFF)])
    assert r.events == [{"event": "WATCHDOG", "data": {"action": "none"}, "time_ns": S}]
