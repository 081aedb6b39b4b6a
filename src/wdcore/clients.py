"""The real clients of the watchdogs, as op lists (SPEC.md §6).

Every function here returns a list of op tuples in the :mod:`wdcore.ops` vocabulary
(``("outl", 0xCF8, v)``, ``("writew", addr, v)``, ``("readw", addr)``,
``("clock_step", ns)``, ...), ready for ``Machine.run(ops)``, ``ops.encode`` or a qtest
script.  Nothing here touches a Machine: the builders only say which accesses a driver
makes, in which order.

Where a driver decides something from a value it read (a lock bit, a boot status), the
op list contains the read, and a small helper next to the builder interprets the value
the caller got back (``RunResult.reads``).  Where a driver *writes* something computed
from a read (FreeBSD's read-modify-write of the lock register), the builder takes that
value as an argument: an op list cannot contain its own results.

Layout, one section per client:

- bus helpers: PCI configuration mechanism #1 and plain accesses;
- ``firmware``: finding the i6300ESB and placing its BAR0 (SPEC.md §6, first paragraph);
- i6300ESB register helpers (``esb_unlock``, ``esb_reload``, ``esb_preloads``);
- ``linux_i6300esb`` (§6.1), ``linux_i6300esb_legacy`` (§6.2), ``freebsd_i6300esbwd`` (§6.3);
- ``linux_ib700wdt`` (§6.4), ``linux_ib700wdt_2_6`` (§6.5);
- ``qemu_wdt_ib700_test`` (§6.7).

A new device's real clients get a section of their own here, built from the same bus
helpers.
"""
from __future__ import annotations

from wdcore.ops import SUFFIX, Op
from wdcore.regs import (
    IB700_PORTS,
    IB700_START,
    PC_BUS,
    PCI_CONFIG_ADDRESS,
    PCI_CONFIG_DATA,
    CFG_WDT_CONFIG,
    CFG_WDT_LOCK,
    PCI_BAR0,
    PCI_COMMAND,
    PCI_COMMAND_MEMORY,
    PCI_DEVICE_ID,
    PCI_VENDOR_ID,
    REG_PRELOAD1,
    REG_PRELOAD2,
    REG_RELOAD,
    RELOAD_PING,
    UNLOCK1,
    UNLOCK2,
    WDT_ENABLE,
    WDT_LOCK,
)

__all__ = [
    "CONFIG_ADDRESS", "CONFIG_DATA", "IB700_DISABLE", "IB700_ARM", "ESB_ID",
    "pci_address", "pci_config_read", "pci_config_write", "io_read", "io_write",
    "mem_read", "mem_write", "clock_step",
    "firmware", "esb_unlock", "esb_reload", "esb_preloads",
    "linux_i6300esb", "linux_i6300esb_legacy", "freebsd_i6300esbwd",
    "linux_ib700wdt", "linux_ib700wdt_2_6", "qemu_wdt_ib700_test",
]

S = 1_000_000_000

CONFIG_ADDRESS = PCI_CONFIG_ADDRESS   # PCI configuration mechanism #1 (SPEC.md §5.2)
CONFIG_DATA = PCI_CONFIG_DATA         # ... data, 0xCFC..0xCFF
CONFIG_ENABLE = PC_BUS.bit("CONFIG_ADDRESS", "ENABLE")  # CONFIG_ADDRESS bit 31
IB700_DISABLE = IB700_PORTS["WDT_STOP"].offset   # SPEC.md §2.1: a byte here stops the timer
IB700_ARM = IB700_START                          # SPEC.md §2.1: a byte here arms table[v & 0x0F]

#: the dword at configuration offset 0 of the i6300ESB (SPEC.md §3.1)
ESB_ID = PCI_DEVICE_ID << 16 | PCI_VENDOR_ID



# =====================================================================================
# Bus helpers
# =====================================================================================

def io_write(port: int, size: int, value: int) -> list[Op]:
    return [(f"out{SUFFIX[size]}", port, value)]


def io_read(port: int, size: int) -> list[Op]:
    return [(f"in{SUFFIX[size]}", port)]


def mem_write(addr: int, size: int, value: int) -> list[Op]:
    return [(f"write{SUFFIX[size]}", addr, value)]


def mem_read(addr: int, size: int) -> list[Op]:
    return [(f"read{SUFFIX[size]}", addr)]


def clock_step(ns: int | None = None) -> list[Op]:
    """A step of ``ns``, or with no argument a step to the next deadline."""
    return [("clock_step",)] if ns is None else [("clock_step", ns)]


def pci_address(slot: int, offset: int, *, bus: int = 0, function: int = 0) -> int:
    """The CONFIG_ADDRESS dword selecting ``offset``'s dword of bus:slot.function."""
    return CONFIG_ENABLE | bus << 16 | slot << 11 | function << 8 | (offset & 0xFC)


def pci_config_read(slot: int, offset: int, size: int, *, bus: int = 0,
                    function: int = 0) -> list[Op]:
    """CONFIG_ADDRESS, then a read of ``size`` bytes at CONFIG_DATA + (offset & 3)
    (SPEC.md §5.2).  One read: its value is the configuration field."""
    return (io_write(CONFIG_ADDRESS, 4, pci_address(slot, offset, bus=bus, function=function))
            + io_read(CONFIG_DATA + (offset & 3), size))


def pci_config_write(slot: int, offset: int, size: int, value: int, *, bus: int = 0,
                     function: int = 0) -> list[Op]:
    """CONFIG_ADDRESS, then a write of ``size`` bytes at CONFIG_DATA + (offset & 3)
    (SPEC.md §5.2)."""
    return (io_write(CONFIG_ADDRESS, 4, pci_address(slot, offset, bus=bus, function=function))
            + io_write(CONFIG_DATA + (offset & 3), size, value))


# =====================================================================================
# Firmware / PCI core: finding the i6300ESB, placing BAR0 (SPEC.md §6)
# =====================================================================================

class firmware:
    """What the firmware and the OS's PCI core do before any driver runs (SPEC.md §6,
    "i6300ESB bring-up"): scan bus 0 by dword reads of offset 0, size BAR0 with
    all-ones, place it, turn memory decoding on."""

    @staticmethod
    def read_id(slot: int) -> list[Op]:
        """The scan's probe of one slot: one read, ``ESB_ID`` where the i6300ESB is."""
        return pci_config_read(slot, 0x00, 4)

    @staticmethod
    def scan(slot: int, *, first: int = 0) -> list[Op]:
        """A scan from ``first`` that stops at ``slot``, where the device is (one read
        per slot; the last one reads ``ESB_ID``)."""
        return [op for dev in range(first, slot + 1) for op in firmware.read_id(dev)]

    @staticmethod
    def size_bar0(slot: int) -> list[Op]:
        """BAR0 ← 0xFFFFFFFF, then its read-back (0xFFFFFFF0: 16 bytes, SPEC.md §3.1)."""
        return pci_config_write(slot, PCI_BAR0, 4, 0xFFFFFFFF) + pci_config_read(slot, PCI_BAR0, 4)

    @staticmethod
    def bar_size(readback: int) -> int:
        """The size a BAR0 sizing read-back announces."""
        return ((~readback & 0xFFFFFFFF) | 0xF) + 1

    @staticmethod
    def place_bar0(slot: int, bar: int) -> list[Op]:
        """BAR0 ← ``bar``."""
        return pci_config_write(slot, PCI_BAR0, 4, bar)

    @staticmethod
    def enable_memory(slot: int, command: int = 0) -> list[Op]:
        """Command ← ``command`` | memory decoding (SPEC.md §5.3).  A PCI core reads the
        command register first (``pci_config_read(slot, PCI_COMMAND, 2)``) and passes
        what it read; after a reset that is 0, the default."""
        return pci_config_write(slot, PCI_COMMAND, 2, command | PCI_COMMAND_MEMORY)

    @staticmethod
    def assign_bar0(slot: int, bar: int) -> list[Op]:
        """place_bar0 + enable_memory on a command register known to be 0."""
        return firmware.place_bar0(slot, bar) + firmware.enable_memory(slot)

    @staticmethod
    def bring_up(slot: int, bar: int, *, first: int = 0) -> list[Op]:
        """scan + size_bar0 + assign_bar0.  Reads: one ID per scanned slot, then the
        sizing read-back."""
        return firmware.scan(slot, first=first) + firmware.size_bar0(slot) + firmware.assign_bar0(slot, bar)


# =====================================================================================
# i6300ESB BAR0 registers (SPEC.md §3.5), shared by its drivers
# =====================================================================================

def esb_unlock(bar: int, size: int = 2) -> list[Op]:
    """The unlock sequence, 0x80 then 0x86 at BAR0 + 0x0C: UNLOCK16 with ``size`` 2,
    UNLOCK8 with 1 (SPEC.md §6 notation; §3.5 write rules 1-2)."""
    return mem_write(bar + REG_RELOAD, size, UNLOCK1) + mem_write(bar + REG_RELOAD, size, UNLOCK2)


def esb_reload(bar: int, value: int = RELOAD_PING, *, unlock_size: int = 2) -> list[Op]:
    """Unlock, then the word ``value`` to the reload register: 0x0100 pings, bit 9 or
    12 clears the previous-reboot flag (SPEC.md §3.5 rule 4)."""
    return esb_unlock(bar, unlock_size) + mem_write(bar + REG_RELOAD, 2, value)


def esb_preloads(bar: int, preload1: int, preload2: int, *, unlock_size: int = 2) -> list[Op]:
    """Unlock + MW32(0x00 ← preload1), unlock + MW32(0x04 ← preload2) (§3.5 rule 5)."""
    return (esb_unlock(bar, unlock_size) + mem_write(bar + REG_PRELOAD1, 4, preload1)
            + esb_unlock(bar, unlock_size) + mem_write(bar + REG_PRELOAD2, 4, preload2))


def _lock_read(slot: int) -> list[Op]:
    return pci_config_read(slot, CFG_WDT_LOCK, 1)


def _lock_write(slot: int, value: int) -> list[Op]:
    return pci_config_write(slot, CFG_WDT_LOCK, 1, value)


# =====================================================================================
# Linux mainline drivers/watchdog/i6300esb.c (SPEC.md §6.1)
# =====================================================================================

class linux_i6300esb:
    """Linux mainline ``i6300esb`` (SPEC.md §6.1).  ``slot`` is the PCI device number
    found by the scan, ``bar`` where the firmware placed BAR0."""

    HEARTBEAT_DEFAULT = 30
    HEARTBEAT_MIN, HEARTBEAT_MAX = 1, 2046
    CONFIG = 0x0003               # what probe writes to WDT Configuration (INT_TYPE 3)
    CLEAR_FLAG = 0x0300           # probe's clear: bits 9 and 8
    CARDRESET = 0x0200            # the reload-register bit the driver reads as CARDRESET

    #: the ``unlock`` size this driver uses (UNLOCK16); the legacy driver overrides it
    UNLOCK_SIZE = 2

    @classmethod
    def preload(cls, heartbeat: int) -> int:
        """§6.1: "preload = t << 9" for a heartbeat of t = 1..2046 s (``ValueError``
        outside, where the driver refuses it)."""
        if not cls.HEARTBEAT_MIN <= heartbeat <= cls.HEARTBEAT_MAX:
            raise ValueError(f"heartbeat {heartbeat} outside 1..2046 s")
        return heartbeat << 9

    @classmethod
    def unlock(cls, bar: int) -> list[Op]:
        return esb_unlock(bar, cls.UNLOCK_SIZE)

    @classmethod
    def ping(cls, bar: int) -> list[Op]:
        """§6.1 step 4: UNLOCK16; MW16(0x0C ← 0x0100)."""
        return esb_reload(bar, RELOAD_PING, unlock_size=cls.UNLOCK_SIZE)

    keepalive = ping

    @classmethod
    def boot_status(cls, bar: int) -> list[Op]:
        """Unlock, then MR16(0x0C): one read (the read keeps the unlock, §6.1 step 1)."""
        return cls.unlock(bar) + mem_read(bar + REG_RELOAD, 2)

    @classmethod
    def cardreset(cls, reload_word: int) -> bool:
        """What the driver concludes from the boot_status read."""
        return bool(reload_word & cls.CARDRESET)

    @classmethod
    def clear_boot_status(cls, bar: int) -> list[Op]:
        """Unlock, then MW16(0x0C ← 0x0300) (§6.1 step 1)."""
        return esb_reload(bar, cls.CLEAR_FLAG, unlock_size=cls.UNLOCK_SIZE)

    @classmethod
    def set_timeout(cls, bar: int, heartbeat: int) -> list[Op]:
        """§6.1 step 2: both preloads ← t << 9, then a reload."""
        p = cls.preload(heartbeat)
        return esb_preloads(bar, p, p, unlock_size=cls.UNLOCK_SIZE) + cls.ping(bar)

    @classmethod
    def probe(cls, slot: int, bar: int, heartbeat: int = HEARTBEAT_DEFAULT) -> list[Op]:
        """§6.1 step 1, then set_timeout(heartbeat).  Reads, in order: the lock byte
        (``nowayout_already_set``) and the reload word (``cardreset``)."""
        return (pci_config_write(slot, CFG_WDT_CONFIG, 2, cls.CONFIG)
                + _lock_read(slot) + _lock_write(slot, 0x00)
                + cls.boot_status(bar) + cls.clear_boot_status(bar)
                + cls.set_timeout(bar, heartbeat))

    @staticmethod
    def nowayout_already_set(lock_byte: int) -> bool:
        """What probe concludes from its lock-register read (bit 0)."""
        return bool(lock_byte & WDT_LOCK)

    @classmethod
    def start(cls, slot: int, bar: int, nowayout: bool = False) -> list[Op]:
        """§6.1 step 3 (open): a reload, then CW8(0x68 ← 0x02, or 0x03 with nowayout)."""
        return cls.ping(bar) + _lock_write(slot, WDT_ENABLE | (WDT_LOCK if nowayout else 0))

    @classmethod
    def stop(cls, slot: int, bar: int) -> list[Op]:
        """§6.1 step 5: a reload, CW8(0x68 ← 0), then CR8(0x68): one read, see
        ``stop_failed``."""
        return cls.ping(bar) + _lock_write(slot, 0x00) + _lock_read(slot)

    @staticmethod
    def stop_failed(lock_byte: int) -> bool:
        """§6.1: "bit 1 still set = failure"."""
        return bool(lock_byte & WDT_ENABLE)


# =====================================================================================
# Linux legacy i6300esb v0.03/v0.04 (SPEC.md §6.2)
# =====================================================================================

class linux_i6300esb_legacy(linux_i6300esb):
    """Linux legacy ``i6300esb`` v0.03/v0.04 (SPEC.md §6.2): as the mainline driver but
    with UNLOCK8, a bit-0 boot-status test, the flag cleared with 0x1100, init ending
    with stop (testing the lock bit), and open = ping + enable."""

    UNLOCK_SIZE = 1
    CLEAR_FLAG = 0x1100           # bits 12 and 8: why QEMU honours bit 12
    CARDRESET = 0x0001            # the precedence bug: never set in 0x1200
    GETSTATUS = 0x64              # GETSTATUS reads this raw configuration dword

    @classmethod
    def init(cls, slot: int, bar: int, heartbeat: int = linux_i6300esb.HEARTBEAT_DEFAULT) -> list[Op]:
        """§6.2 item 3: probe, then stop.  Reads: probe's two, then stop's lock byte
        (see ``stop_failed``)."""
        return cls.probe(slot, bar, heartbeat) + cls.stop(slot, bar)

    @staticmethod
    def stop_failed(lock_byte: int) -> bool:
        """§6.2 item 3: the legacy stop tests bit 0 (lock)."""
        return bool(lock_byte & WDT_LOCK)

    # start (§6.2 item 4: ping, then CW8(0x68 <- 0x02 | nowayout)) is the mainline one

    @classmethod
    def getstatus(cls, slot: int) -> list[Op]:
        """§6.2 item 4: the raw configuration dword at 0x64 (one read)."""
        return pci_config_read(slot, cls.GETSTATUS, 4)


# =====================================================================================
# FreeBSD i6300esbwd (SPEC.md §6.3)
# =====================================================================================

class freebsd_i6300esbwd:
    """FreeBSD ``i6300esbwd`` (SPEC.md §6.3).  The driver keeps a ``locked`` flag
    learnt from the lock register; the builders take it as an argument."""

    CONFIG = 0x0003
    EINVAL, EPERM = 22, 1

    @staticmethod
    def read_lock(slot: int) -> list[Op]:
        """CR8(0x68): one read (bit 0 = locked)."""
        return _lock_read(slot)

    @staticmethod
    def locked(lock_byte: int) -> bool:
        return bool(lock_byte & WDT_LOCK)

    @staticmethod
    def attach(slot: int, bar: int, *, locked: bool = False) -> list[Op]:
        """§6.3 step 1: CW16(0x60 ← 0x0003); CR8(0x68) (one read); CW8(0x68 ← 0) unless
        that read showed the lock (pass it as ``locked``); UNLOCK16; MW16(0x0C ← 0x0300).
        The same as ``attach_begin`` + ``attach_end``, for a caller that looks at the
        read before going on."""
        return freebsd_i6300esbwd.attach_begin(slot) + freebsd_i6300esbwd.attach_end(slot, bar, locked=locked)

    @staticmethod
    def attach_begin(slot: int) -> list[Op]:
        """attach up to its lock-register read (one read; ``locked(value)``)."""
        return pci_config_write(slot, CFG_WDT_CONFIG, 2, freebsd_i6300esbwd.CONFIG) + _lock_read(slot)

    @staticmethod
    def attach_end(slot: int, bar: int, *, locked: bool) -> list[Op]:
        """The rest of attach, given what attach_begin's read showed."""
        return ([] if locked else _lock_write(slot, 0x00)) + esb_reload(bar, 0x0300)

    @staticmethod
    def valid_interval(n: int) -> bool:
        """§6.3 step 2: EINVAL unless n = 0 or 20 <= n < 40."""
        return n == 0 or 20 <= n < 40

    @staticmethod
    def preload(n: int) -> int:
        """P = 2^(n-20) for an interval of 2^n ns."""
        return 1 << (n - 20)

    @staticmethod
    def event(slot: int, bar: int, n: int, *, locked: bool = False) -> list[Op]:
        """§6.3 step 2 for an interval n with 20 <= n < 40: reload, both preloads ← P,
        reload, then unless ``locked`` CW8(0x68 ← 0x02) and CR8(0x68) (one read, the
        new ``locked``).  For n = 0 see ``event_disable``."""
        if not 20 <= n < 40:
            raise ValueError(f"interval {n} is not 20..39 (n = 0: event_disable)")
        p = freebsd_i6300esbwd.preload(n)
        return (esb_reload(bar) + esb_preloads(bar, p, p) + esb_reload(bar)
                + ([] if locked else _lock_write(slot, WDT_ENABLE) + _lock_read(slot)))

    @staticmethod
    def event_disable_reload(bar: int) -> list[Op]:
        """§6.3 step 2, n = 0, first part: the reload every event starts with.  The
        driver then returns EPERM if locked, else reads CR8(0x68) (``read_lock``) and
        writes ``event_disable(slot, that value)``."""
        return esb_reload(bar)

    @staticmethod
    def event_disable(slot: int, lock_byte: int) -> list[Op]:
        """§6.3 step 2, n = 0, the write: CW8(0x68 ← lock_byte & ~0x02)."""
        return _lock_write(slot, lock_byte & ~WDT_ENABLE & 0xFF)

    @staticmethod
    def sysctl_lock(slot: int, lock_byte: int) -> list[Op]:
        """§6.3 step 3: CW8(0x68 ← lock_byte | 1), ``lock_byte`` being what CR8(0x68)
        (``read_lock``) returned just before."""
        return _lock_write(slot, lock_byte | WDT_LOCK)


# =====================================================================================
# Linux drivers/watchdog/ib700wdt.c (SPEC.md §6.4, §6.5)
# =====================================================================================

class linux_ib700wdt:
    """Linux ``ib700wdt``, current (SPEC.md §6.4): t = 0..30 s, default 30."""

    TIMEOUT_DEFAULT = 30

    @staticmethod
    def index(timeout: int) -> int:
        """The byte written to 0x443 for a timeout: 15 − (t+1)/2, integer division
        (t rounds up to even; t = 0 → 0 s).  ``ValueError`` outside 0..30 (EINVAL)."""
        if not 0 <= timeout <= 30:
            raise ValueError(f"timeout {timeout} outside 0..30 s")
        return 15 - (timeout + 1) // 2

    @staticmethod
    def ping(timeout: int = TIMEOUT_DEFAULT) -> list[Op]:
        """§6.4 item 1 (open, KEEPALIVE, write(), ENABLECARD, SETTIMEOUT, close
        without 'V'): outb(index(t) → 0x443)."""
        return io_write(IB700_ARM, 1, linux_ib700wdt.index(timeout))

    start = keepalive = set_timeout = ping

    @staticmethod
    def stop() -> list[Op]:
        """§6.4 item 3 (DISABLECARD, close with 'V', shutdown): outb(0 → 0x441)."""
        return io_write(IB700_DISABLE, 1, 0)


class linux_ib700wdt_2_6:
    """Linux ``ib700wdt``, 2.6 era (SPEC.md §6.5): the driver keeps a table index,
    starting at 0 (30 s)."""

    INDEX_DEFAULT = 0
    TABLE = tuple(30 - 2 * i for i in range(16))   # the driver's copy of SPEC.md §2.2

    @staticmethod
    def index(n: int) -> int:
        """§6.5 item 2: the first i from 15 down to 0 with table[i] > n; −1 if none
        (n = 30).  ``ValueError`` outside 0..30 (the driver's EINVAL)."""
        if not 0 <= n <= 30:
            raise ValueError(f"timeout {n} outside 0..30 s")
        i = 15
        while i > -1 and not linux_ib700wdt_2_6.TABLE[i] > n:
            i -= 1
        return i

    @staticmethod
    def ping(index: int = INDEX_DEFAULT) -> list[Op]:
        """§6.5 item 1: outb(index → 0x443); index −1 goes out as the byte 0xFF."""
        return io_write(IB700_ARM, 1, index & 0xFF)

    start = ping

    @staticmethod
    def stop() -> list[Op]:
        """§6.5 item 3 (close with 'V', reboot): outb(0 → 0x441)."""
        return io_write(IB700_DISABLE, 1, 0)


# =====================================================================================
# QEMU tests/qtest/wdt_ib700-test.c (SPEC.md §6.7)
# =====================================================================================

class qemu_wdt_ib700_test:
    """QEMU's own IB700 qtest (SPEC.md §6.7), from t = 0 on a fresh machine."""

    #: the sequence's WATCHDOG, and the end of the step that contains it
    EXPIRY_NS, END_NS = 49 * S, 50 * S

    @staticmethod
    def ops() -> list[Op]:
        """Steps 1-7: step 40 s; arm 0x0E (2 s); step 1 s, arm 0x0E; step 1 s,
        outb(1 → 0x441); step 3 s; arm 0x0D (4 s) at 45 s; step 3 s; step 2 s (the
        WATCHDOG at 49 s)."""
        return (clock_step(40 * S) + io_write(IB700_ARM, 1, 0x0E)
                + clock_step(S) + io_write(IB700_ARM, 1, 0x0E)
                + clock_step(S) + io_write(IB700_DISABLE, 1, 1)
                + clock_step(3 * S) + io_write(IB700_ARM, 1, 0x0D)
                + clock_step(3 * S) + clock_step(2 * S))
