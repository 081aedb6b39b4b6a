"""Every register and port wdcore models, declared once, as rows (SPEC.md §2, §3, §5).

A row is a :class:`Reg`: its name as in the datasheet or QEMU, its offset within its
space, its width in bytes, its reset value, its writable mask and what a system reset
does to it.  Bit fields are :class:`Bits` rows naming the bits of one register.

- The Python twins read these rows (and the tables built from them) directly.
- The compiled core cimports ``_regs.pxd``, a file of C enums *generated* from these rows
  (``python3 tools/gen_regs_pxd.py``); ``tests/test_structure.py`` fails when
  the file and the rows disagree.  Byte tables (the i6300ESB's configuration image and
  writable masks) are copied into C arrays at import.

A new device adds its spaces here, in the same form, and lists them in ``SPACES``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

__all__ = ["Reg", "Bits", "Space", "SPACES"]


@dataclass(frozen=True)
class Reg:
    """One register (or port range) of a space."""

    name: str           #: as in the datasheet or QEMU
    offset: int         #: within its space (a port number for port spaces)
    width: int          #: bytes
    reset: int = 0      #: value at power-on
    wmask: int = 0      #: bits a guest write can change (0: read-only or side effect only)
    on_reset: str = "keeps"  #: what a system reset does: "restores" (back to ``reset``) or "keeps"
    #: (the i6300ESB's watchdog registers are also restored by its own stage-2 reset)
    doc: str = ""


@dataclass(frozen=True)
class Bits:
    """Named bits (masks) of one register."""

    reg: str
    masks: tuple[tuple[str, int], ...]  #: (name, mask) pairs
    doc: str = ""


@dataclass(frozen=True)
class Space:
    """An address space of registers: a port block, a configuration space, a BAR."""

    prefix: str         #: C enum prefix in _regs.pxd
    size: int           #: bytes the space spans (0 for a set of absolute ports)
    regs: tuple[Reg, ...]
    bits: tuple[Bits, ...] = ()
    consts: tuple[tuple[str, int], ...] = ()  #: (name, value) pairs: values that are not registers
    doc: str = ""

    def __getitem__(self, name: str) -> Reg:
        for r in self.regs:
            if r.name == name:
                return r
        raise KeyError(name)

    def bit(self, reg: str, name: str) -> int:
        for b in self.bits:
            if b.reg == reg:
                return dict(b.masks)[name]
        raise KeyError(f"{reg}.{name}")

    def const(self, name: str) -> int:
        return dict(self.consts)[name]


# --- IB700 (SPEC.md §2): two write-only port pairs ------------------------------------
IB700_PORTS = Space("IB700", 0, regs=(
    Reg("WDT_STOP", 0x441, 2, doc="0x441/0x442: any byte written stops the timer"),
    Reg("WDT_START", 0x443, 2, doc="0x443/0x444: (re)start with the timeout index in bits 3:0"),
), bits=(
    Bits("WDT_START", (("INDEX", 0x0F),), "the timeout index: 30 - 2*index seconds"),
), consts=(
    ("PORT_FIRST", 0x441), ("PORT_LAST", 0x444),
    ("TIMEOUT_MAX_S", 30), ("TIMEOUT_STEP_S", 2),   # index i: 30 - 2*i seconds
), doc="iBase IB700: ports 0x441..0x444, reads all-ones")

# --- the PC bus (SPEC.md §5): configuration mechanism #1 -------------------------------
PC_BUS = Space("PCI", 0, regs=(
    Reg("CONFIG_ADDRESS", 0xCF8, 4, doc="enable bit 31, bus 23:16, device 15:11, function 10:8, register 7:2"),
    Reg("CONFIG_DATA", 0xCFC, 4, doc="the addressed dword; byte lanes 0xCFC..0xCFF"),
), bits=(
    Bits("CONFIG_ADDRESS", (("ENABLE", 0x80000000), ("BUS", 0x00FF0000), ("DEVICE", 0x0000F800),
                            ("FUNCTION", 0x00000700), ("OFFSET", 0x000000FF)),
         "the fields of CONFIG_ADDRESS; OFFSET keeps bits 1:0, which QEMU ORs with the data "
         "port's offset (SPEC.md §5.2)"),
), consts=(
    ("CONFIG_END", 0xD00), ("CONFIG_DEVICE_SHIFT", 11), ("CONFIG_SPACE_SIZE", 0x100),
), doc="PCI configuration mechanism #1 on the PC's I/O ports")

# --- i6300ESB configuration space (SPEC.md §3.1, §3.2) ---------------------------------
ESB_CONFIG = Space("ESB_CFG", 0x100, regs=(
    Reg("VENDOR_ID", 0x00, 2, 0x8086),
    Reg("DEVICE_ID", 0x02, 2, 0x25AB),
    Reg("COMMAND", 0x04, 2, 0x0000, 0x0507, "restores",
        doc="I/O, memory, bus master, SERR#, INTx disable"),
    Reg("STATUS", 0x06, 2, 0x0000),
    Reg("REVISION_CLASS", 0x08, 4, 0x088000 << 8, doc="revision 0; class 08 80 00 (other system peripheral)"),
    Reg("CACHE_LINE_SIZE", 0x0C, 1, 0x00, 0xFF, "restores"),
    Reg("LATENCY_HEADER_BIST", 0x0D, 3, 0x000000, doc="latency 0, header type 0, no BIST"),
    Reg("BAR0", 0x10, 4, 0x00000000, 0xFFFFFFF0, "restores", doc="16-byte 32-bit memory BAR"),
    Reg("SUBSYSTEM_VENDOR_ID", 0x2C, 2, 0x1AF4),
    Reg("SUBSYSTEM_ID", 0x2E, 2, 0x1100),
    Reg("INTERRUPT_LINE", 0x3C, 1, 0x00, 0xFF, "restores"),
    Reg("RAW", 0x40, 0xC0, 0, (1 << (8 * 0xC0)) - 1,
        doc="0x40..0xff: raw bytes, every bit writable, kept by reset (0x60/0x68 aside)"),
    Reg("WDT_CONFIG", 0x60, 2, 0, 0x0037, "restores",
        doc="WDT Configuration: 16-bit accesses only; INT_TYPE bits kept by profile"),
    Reg("WDT_LOCK", 0x68, 1, 0, 0x07, "restores", doc="WDT Lock: 8-bit accesses only"),
), bits=(
    Bits("COMMAND", (("MEMORY", 0x02),), "memory decoding on: BAR0 is reachable"),
    Bits("WDT_CONFIG", (("REBOOT_DISABLE", 0x20), ("OUTPUT_1MHZ", 0x04)),
         "bit 5: stage 2 does not reboot; bit 2: preload << 5 (1 MHz) instead of << 15 (1 kHz)"),
    Bits("WDT_LOCK", (("FREE_RUN", 0x04), ("ENABLE", 0x02), ("LOCK", 0x01)),
         "bit 2: free-running; bit 1: enable; bit 0: frozen until a reset"),
), consts=(
    ("BAR0_ADDR_MASK", 0xFFFFFFF0), ("BAR0_BASE_MAX", 0xFFFFFFE0),
), doc="Intel 6300ESB watchdog, PCI 8086:25ab, 256-byte configuration space")

# --- i6300ESB BAR0 (SPEC.md §3.3..§3.7) -----------------------------------------------
ESB_BAR0 = Space("ESB", 16, regs=(
    Reg("PRELOAD_VALUE_1", 0x00, 4, 0xFFFFF, 0xFFFFF, "restores",
        doc="stage 1 length; unlocked dword writes only"),
    Reg("PRELOAD_VALUE_2", 0x04, 4, 0xFFFFF, 0xFFFFF, "restores", doc="stage 2 length"),
    Reg("GINTSR", 0x08, 4, 0, 0x1, "restores",
        doc="General Interrupt Status (extension only): bit 0, write 1 to clear"),
    Reg("RELOAD", 0x0C, 2, 0, doc="unlock sequence target; unlocked word write: ping, clear the "
        "flag; a word read shows the previous-reboot flag, which every reset keeps"),
), bits=(
    Bits("RELOAD", (("PING", 0x0100), ("CLEAR_FLAG", 0x1200), ("READ_FLAG", 0x1200)),
         "bit 8 reloads stage 1; bit 9 (or 12, as old Linux writes) clears the flag; "
         "a word read shows 0x1200 while the previous-reboot flag is set"),
), consts=(
    ("UNLOCK1", 0x80), ("UNLOCK2", 0x86), ("PRELOAD_MASK", 0xFFFFF),
    ("PCI_CLOCK_NS", 30), ("SHIFT_1KHZ", 15), ("SHIFT_1MHZ", 5),
), doc="the i6300ESB's 16-byte memory BAR")

#: every space, in the order _regs.pxd lists them
SPACES = (IB700_PORTS, PC_BUS, ESB_CONFIG, ESB_BAR0)

# --- i6300ESB profiles (SPEC.md §1.2) ---------------------------------------------------
PROFILES = ("qemu", "qemu-7.2")
#: INT_TYPE bits kept by a WDT Configuration write, by profile
INT_TYPE_MASK = (0x03, 0x11)


def _config_image() -> tuple[bytes, bytes, tuple[int, ...]]:
    """Configuration bytes at construction, writable bits per byte, and the bytes a
    system reset returns to their construction value (from ESB_CONFIG's rows)."""
    init, wmask, reset = bytearray(ESB_CONFIG.size), bytearray(ESB_CONFIG.size), []
    for r in ESB_CONFIG.regs:
        if r.name in ("WDT_CONFIG", "WDT_LOCK"):
            continue  # special accesses, not bytes of the image
        for i in range(r.width):
            init[r.offset + i] = (r.reset >> (8 * i)) & 0xFF
            wmask[r.offset + i] = (r.wmask >> (8 * i)) & 0xFF
            if r.on_reset == "restores":
                reset.append(r.offset + i)
    return bytes(init), bytes(wmask), tuple(reset)


INITIAL_CONFIG, WMASK, CONFIG_RESET_OFFSETS = _config_image()

# --- names used across the Python side (all derived from the rows above) ---------------
CFG_SIZE = ESB_CONFIG.size
PCI_VENDOR_ID = ESB_CONFIG["VENDOR_ID"].reset
PCI_DEVICE_ID = ESB_CONFIG["DEVICE_ID"].reset
PCI_COMMAND = ESB_CONFIG["COMMAND"].offset
PCI_COMMAND_MEMORY = ESB_CONFIG.bit("COMMAND", "MEMORY")
PCI_BAR0 = ESB_CONFIG["BAR0"].offset
CFG_WDT_CONFIG = ESB_CONFIG["WDT_CONFIG"].offset
CFG_WDT_LOCK = ESB_CONFIG["WDT_LOCK"].offset
WDT_REBOOT_DISABLE = ESB_CONFIG.bit("WDT_CONFIG", "REBOOT_DISABLE")
WDT_1MHZ = ESB_CONFIG.bit("WDT_CONFIG", "OUTPUT_1MHZ")
WDT_FREE_RUN = ESB_CONFIG.bit("WDT_LOCK", "FREE_RUN")
WDT_ENABLE = ESB_CONFIG.bit("WDT_LOCK", "ENABLE")
WDT_LOCK = ESB_CONFIG.bit("WDT_LOCK", "LOCK")

MMIO_SIZE = BAR0_SIZE = ESB_BAR0.size
REG_PRELOAD1 = ESB_BAR0["PRELOAD_VALUE_1"].offset
REG_PRELOAD2 = ESB_BAR0["PRELOAD_VALUE_2"].offset
REG_GINTSR = ESB_BAR0["GINTSR"].offset
REG_RELOAD = ESB_BAR0["RELOAD"].offset
UNLOCK1, UNLOCK2 = ESB_BAR0.const("UNLOCK1"), ESB_BAR0.const("UNLOCK2")
RELOAD_PING = ESB_BAR0.bit("RELOAD", "PING")
RELOAD_CLEAR_FLAG = ESB_BAR0.bit("RELOAD", "CLEAR_FLAG")
RELOAD_READ_FLAG = ESB_BAR0.bit("RELOAD", "READ_FLAG")
PRELOAD_MASK = ESB_BAR0.const("PRELOAD_MASK")
PRELOAD_RESET = (ESB_BAR0["PRELOAD_VALUE_1"].reset, ESB_BAR0["PRELOAD_VALUE_2"].reset)
PCI_CLOCK_NS = ESB_BAR0.const("PCI_CLOCK_NS")
SHIFT_1KHZ, SHIFT_1MHZ = ESB_BAR0.const("SHIFT_1KHZ"), ESB_BAR0.const("SHIFT_1MHZ")
MAX_STAGE_NS = (PRELOAD_MASK << SHIFT_1KHZ) * PCI_CLOCK_NS   # 1 030 791 168 000

IB700_PORT_FIRST = IB700_PORTS.const("PORT_FIRST")
IB700_PORT_LAST = IB700_PORTS.const("PORT_LAST")
IB700_START = IB700_PORTS["WDT_START"].offset
IB700_MAX_TIMEOUT_NS = IB700_PORTS.const("TIMEOUT_MAX_S") * 1_000_000_000
PCI_CONFIG_ADDRESS = PC_BUS["CONFIG_ADDRESS"].offset
PCI_CONFIG_DATA = PC_BUS["CONFIG_DATA"].offset
PCI_CONFIG_END = PC_BUS.const("CONFIG_END")
PCI_CONFIG_ENABLE = PC_BUS.bit("CONFIG_ADDRESS", "ENABLE")
IB700_INDEX = IB700_PORTS.bit("WDT_START", "INDEX")
#: the IB700's timeout per index (the low nibble of the start write), ns
IB700_TIMEOUT_NS = tuple((IB700_PORTS.const("TIMEOUT_MAX_S") - IB700_PORTS.const("TIMEOUT_STEP_S") * i)
                         * 1_000_000_000 for i in range(IB700_INDEX + 1))


def _pxd_entries() -> Iterator[tuple[Space, list[tuple[str, int]]]]:
    """(C name, value) for every row offset and reset, bit and constant."""
    for sp in SPACES:
        entries = [(f"{sp.prefix}_SIZE", sp.size)] if sp.size else []
        for r in sp.regs:
            entries.append((f"{sp.prefix}_{r.name}", r.offset))
            if r.width <= 4:
                entries.append((f"{sp.prefix}_{r.name}_RESET", r.reset))
        for b in sp.bits:
            entries += [(f"{sp.prefix}_{b.reg}_{name}", mask) for name, mask in b.masks]
        entries += [(f"{sp.prefix}_{name}", value) for name, value in sp.consts]
        yield sp, entries


def pxd_text() -> str:
    """The text of ``_regs.pxd``: a C enum per space (names PREFIX_REG for offsets,
    PREFIX_REG_RESET, PREFIX_REG_BIT, PREFIX_CONST); values that do not fit a C int
    become unsigned macros."""
    out = ["# Generated from wdcore/regs.py by tools/gen_regs_pxd.py; do not edit.",
           "# tests/test_structure.py checks that this file matches the rows.",
           "#",
           "# C-level contract: compile-time constants (no GIL, nothing to fail), cimported",
           "# by the core and re-exported by __init__.pxd.  Names and units:",
           "#   PREFIX_REG        the register's offset in bytes within its space; an absolute",
           "#                     I/O port number for the port spaces (IB700, PCI)",
           "#   PREFIX_REG_RESET  its value at power-on (registers of at most 4 bytes)",
           "#   PREFIX_REG_FIELD  a bit mask within the register",
           "#   PREFIX_SIZE       the space's size in bytes",
           "#   other names       constants: ports, values, masks; _S is seconds, _NS virtual",
           "#                     ns, SHIFT a bit count",
           ""]
    wide = []
    for sp, entries in _pxd_entries():
        out += [f"# {sp.doc}", "cdef enum:"]
        for name, value in entries:
            if value > 0x7FFFFFFF:
                wide.append((name, value))
            else:
                out.append(f"    {name} = {value:#x}")
        out.append("")
    if wide:
        out += ["# values above 2**31-1, as unsigned C constants", "cdef extern from *:", '    """']
        out += [f"    #define WD_{name} {value:#x}U" for name, value in wide]
        out.append('    """')
        out += [f'    const unsigned int {name} "WD_{name}"' for name, value in wide]
        out.append("")
    return "\n".join(out)

