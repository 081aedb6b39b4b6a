"""The i6300ESB's registers as data, with the datasheet's names (SPEC.md §3).

The Python twin uses these tables directly; the compiled core has C copies, which
tests/test_i6300esb.py checks against these.
"""
from __future__ import annotations

PROFILES = ("qemu", "qemu-7.2")
#: INT_TYPE bits kept by a WDT Configuration write, by profile (SPEC.md §1.2)
INT_TYPE_MASK = (0x03, 0x11)

# --- PCI configuration space (256 bytes) -------------------------------------------
CFG_SIZE = 0x100
PCI_VENDOR_ID = 0x8086
PCI_DEVICE_ID = 0x25AB
PCI_CLASS = 0x088000          # base 0x08 (system peripheral), sub 0x80 (other), prog-if 0
PCI_SUBSYSTEM_VENDOR = 0x1AF4
PCI_SUBSYSTEM_ID = 0x1100
PCI_COMMAND = 0x04
PCI_COMMAND_MEMORY = 0x02     # memory decoding on: BAR0 is reachable
PCI_BAR0 = 0x10
BAR0_SIZE = 16

CFG_WDT_CONFIG = 0x60         # WDT Configuration, 16-bit access only
CFG_WDT_LOCK = 0x68           # WDT Lock, 8-bit access only
CFG_RAW_FIRST = 0x40          # 0x40..0xff: raw bytes, every bit writable, kept by reset

# WDT Configuration bits
WDT_REBOOT_DISABLE = 0x20     # bit 5: 1 = the stage-2 expiry does not reboot
WDT_1MHZ = 0x04               # bit 2: 1 = 1 MHz scale (preload << 5), 0 = 1 kHz (<< 15)
# WDT Lock bits
WDT_FREE_RUN = 0x04           # bit 2: stage 2 ending with reboot disabled restarts stage 1
WDT_ENABLE = 0x02             # bit 1
WDT_LOCK = 0x01               # bit 0: the register is frozen until a reset


def _config_rows():
    """(offset, size, reset value, writable mask, cleared by reset) per field."""
    return [
        (0x00, 2, PCI_VENDOR_ID, 0, False),
        (0x02, 2, PCI_DEVICE_ID, 0, False),
        (0x04, 2, 0x0000, 0x0507, True),       # command: I/O, memory, master, SERR#, INTx disable
        (0x06, 2, 0x0000, 0, False),           # status
        (0x08, 4, PCI_CLASS << 8, 0, False),   # revision 0, class code
        (0x0C, 1, 0x00, 0xFF, True),           # cache line size
        (0x0D, 3, 0x000000, 0, False),         # latency, header type 0, BIST
        (0x10, 4, 0x00000000, 0xFFFFFFF0, True),  # BAR0: 16-byte 32-bit memory BAR
        (0x2C, 2, PCI_SUBSYSTEM_VENDOR, 0, False),
        (0x2E, 2, PCI_SUBSYSTEM_ID, 0, False),
        (0x3C, 1, 0x00, 0xFF, True),           # interrupt line
    ]


def _build():
    init, wmask, reset = bytearray(CFG_SIZE), bytearray(CFG_SIZE), []
    for off, size, value, mask, cleared in _config_rows():
        for i in range(size):
            init[off + i] = (value >> (8 * i)) & 0xFF
            wmask[off + i] = (mask >> (8 * i)) & 0xFF
            if cleared:
                reset.append(off + i)
    for o in range(CFG_RAW_FIRST, CFG_SIZE):
        wmask[o] = 0xFF
    return bytes(init), bytes(wmask), tuple(reset)


#: configuration bytes at construction, writable bits per byte, and the bytes a
#: system reset returns to their construction value
INITIAL_CONFIG, WMASK, CONFIG_RESET_OFFSETS = _build()

# --- BAR0 registers -------------------------------------------------------------------
MMIO_SIZE = 16
REG_PRELOAD1 = 0x00           # Preload Value 1 (20 bits), unlocked dword write
REG_PRELOAD2 = 0x04           # Preload Value 2
REG_GINTSR = 0x08             # General Interrupt Status (extension only): bit 0, W1C
REG_RELOAD = 0x0C             # Reload: the unlock sequence target, ping, flag
UNLOCK1, UNLOCK2 = 0x80, 0x86
RELOAD_PING = 0x0100          # bit 8: reload (restart stage 1)
RELOAD_CLEAR_FLAG = 0x1200    # bit 9 (or 12, as old Linux drivers write): clear the flag
RELOAD_READ_FLAG = 0x1200     # word read of 0x0C while the previous-reboot flag is set
PRELOAD_MASK = 0xFFFFF
PRELOAD_RESET = 0xFFFFF

# --- time ---------------------------------------------------------------------------------
PCI_CLOCK_NS = 30             # one PCI clock, as QEMU counts it
SHIFT_1KHZ, SHIFT_1MHZ = 15, 5
MAX_STAGE_NS = (PRELOAD_MASK << SHIFT_1KHZ) * PCI_CLOCK_NS   # 1 030 791 168 000


def duration_ns(preload: int, one_mhz: bool) -> int:
    """Length of a stage: (preload << 5 or << 15) PCI clocks of 30 ns (SPEC.md §3.6)."""
    return (preload << (SHIFT_1MHZ if one_mhz else SHIFT_1KHZ)) * PCI_CLOCK_NS


def piece_size(offset: int, left: int) -> int:
    """QEMU's access split: the largest power of two <= left dividing offset (0 divides all)."""
    n = 4
    while n > left or (offset & (n - 1)):
        n >>= 1
    return n
