# Generated from wdcore/regs.py by tools/gen_regs_pxd.py; do not edit.
# tests/test_structure.py checks that this file matches the rows.
#
# C-level contract: compile-time constants (no GIL, nothing to fail), cimported
# by the core and re-exported by __init__.pxd.  Names and units:
#   PREFIX_REG        the register's offset in bytes within its space; an absolute
#                     I/O port number for the port spaces (IB700, PCI)
#   PREFIX_REG_RESET  its value at power-on (registers of at most 4 bytes)
#   PREFIX_REG_FIELD  a bit mask within the register
#   PREFIX_SIZE       the space's size in bytes
#   other names       constants: ports, values, masks; _S is seconds, _NS virtual
#                     ns, SHIFT a bit count

# iBase IB700: ports 0x441..0x444, reads all-ones
cdef enum:
    IB700_WDT_STOP = 0x441
    IB700_WDT_STOP_RESET = 0x0
    IB700_WDT_START = 0x443
    IB700_WDT_START_RESET = 0x0
    IB700_WDT_START_INDEX = 0xf
    IB700_PORT_FIRST = 0x441
    IB700_PORT_LAST = 0x444
    IB700_TIMEOUT_MAX_S = 0x1e
    IB700_TIMEOUT_STEP_S = 0x2

# PCI configuration mechanism #1 on the PC's I/O ports
cdef enum:
    PCI_CONFIG_ADDRESS = 0xcf8
    PCI_CONFIG_ADDRESS_RESET = 0x0
    PCI_CONFIG_DATA = 0xcfc
    PCI_CONFIG_DATA_RESET = 0x0
    PCI_CONFIG_ADDRESS_BUS = 0xff0000
    PCI_CONFIG_ADDRESS_DEVICE = 0xf800
    PCI_CONFIG_ADDRESS_FUNCTION = 0x700
    PCI_CONFIG_ADDRESS_OFFSET = 0xff
    PCI_CONFIG_END = 0xd00
    PCI_CONFIG_DEVICE_SHIFT = 0xb
    PCI_CONFIG_SPACE_SIZE = 0x100

# Intel 6300ESB watchdog, PCI 8086:25ab, 256-byte configuration space
cdef enum:
    ESB_CFG_SIZE = 0x100
    ESB_CFG_VENDOR_ID = 0x0
    ESB_CFG_VENDOR_ID_RESET = 0x8086
    ESB_CFG_DEVICE_ID = 0x2
    ESB_CFG_DEVICE_ID_RESET = 0x25ab
    ESB_CFG_COMMAND = 0x4
    ESB_CFG_COMMAND_RESET = 0x0
    ESB_CFG_STATUS = 0x6
    ESB_CFG_STATUS_RESET = 0x0
    ESB_CFG_REVISION_CLASS = 0x8
    ESB_CFG_REVISION_CLASS_RESET = 0x8800000
    ESB_CFG_CACHE_LINE_SIZE = 0xc
    ESB_CFG_CACHE_LINE_SIZE_RESET = 0x0
    ESB_CFG_LATENCY_HEADER_BIST = 0xd
    ESB_CFG_LATENCY_HEADER_BIST_RESET = 0x0
    ESB_CFG_BAR0 = 0x10
    ESB_CFG_BAR0_RESET = 0x0
    ESB_CFG_SUBSYSTEM_VENDOR_ID = 0x2c
    ESB_CFG_SUBSYSTEM_VENDOR_ID_RESET = 0x1af4
    ESB_CFG_SUBSYSTEM_ID = 0x2e
    ESB_CFG_SUBSYSTEM_ID_RESET = 0x1100
    ESB_CFG_INTERRUPT_LINE = 0x3c
    ESB_CFG_INTERRUPT_LINE_RESET = 0x0
    ESB_CFG_RAW = 0x40
    ESB_CFG_WDT_CONFIG = 0x60
    ESB_CFG_WDT_CONFIG_RESET = 0x0
    ESB_CFG_WDT_LOCK = 0x68
    ESB_CFG_WDT_LOCK_RESET = 0x0
    ESB_CFG_COMMAND_MEMORY = 0x2
    ESB_CFG_WDT_CONFIG_REBOOT_DISABLE = 0x20
    ESB_CFG_WDT_CONFIG_OUTPUT_1MHZ = 0x4
    ESB_CFG_WDT_LOCK_FREE_RUN = 0x4
    ESB_CFG_WDT_LOCK_ENABLE = 0x2
    ESB_CFG_WDT_LOCK_LOCK = 0x1

# the i6300ESB's 16-byte memory BAR
cdef enum:
    ESB_SIZE = 0x10
    ESB_PRELOAD_VALUE_1 = 0x0
    ESB_PRELOAD_VALUE_1_RESET = 0xfffff
    ESB_PRELOAD_VALUE_2 = 0x4
    ESB_PRELOAD_VALUE_2_RESET = 0xfffff
    ESB_GINTSR = 0x8
    ESB_GINTSR_RESET = 0x0
    ESB_RELOAD = 0xc
    ESB_RELOAD_RESET = 0x0
    ESB_RELOAD_PING = 0x100
    ESB_RELOAD_CLEAR_FLAG = 0x1200
    ESB_RELOAD_READ_FLAG = 0x1200
    ESB_UNLOCK1 = 0x80
    ESB_UNLOCK2 = 0x86
    ESB_PRELOAD_MASK = 0xfffff
    ESB_PCI_CLOCK_NS = 0x1e
    ESB_SHIFT_1KHZ = 0xf
    ESB_SHIFT_1MHZ = 0x5

# values above 2**31-1, as unsigned C constants
cdef extern from *:
    """
    #define WD_PCI_CONFIG_ADDRESS_ENABLE 0x80000000U
    #define WD_ESB_CFG_BAR0_ADDR_MASK 0xfffffff0U
    #define WD_ESB_CFG_BAR0_BASE_MAX 0xffffffe0U
    """
    const unsigned int PCI_CONFIG_ADDRESS_ENABLE "WD_PCI_CONFIG_ADDRESS_ENABLE"
    const unsigned int ESB_CFG_BAR0_ADDR_MASK "WD_ESB_CFG_BAR0_ADDR_MASK"
    const unsigned int ESB_CFG_BAR0_BASE_MAX "WD_ESB_CFG_BAR0_BASE_MAX"
