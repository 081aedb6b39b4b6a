# The compiled i6300ESB (SPEC.md 3; 1.3 for the stage-1 interrupt extension): register
# logic only, on the Watchdog base (_core.pxd).  Twin: _i6300esb_py.py.
#
# Access methods take any in-range offset/size/value (a guest's) and never fail; they
# return WD_DUE / WD_SIGNAL flags for the caller to act on with the GIL.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
cimport cython
from wdcore._core cimport Watchdog
from wdcore._regs cimport ESB_CFG_SIZE

@cython.final
cdef class I6300ESB(Watchdog):
    cdef bint enabled             # WDT Lock bit 1
    cdef bint locked              # WDT Lock bit 0: 0x68 frozen until a reset
    cdef bint free_run            # WDT Lock bit 2
    cdef bint reboot_disabled     # WDT Configuration bit 5
    cdef bint one_mhz             # WDT Configuration bit 2: preload << 5 instead of << 15
    cdef bint prev_reboot         # previous-reboot flag: survives every reset
    cdef bint gintsr              # GINTSR bit 0 (stage-1 interrupt extension only)
    cdef bint s1i                 # stage1_interrupt extension on
    cdef int int_type             # WDT Configuration INT_TYPE as stored (masked by profile)
    cdef int int_mask             # the profile's INT_TYPE mask
    cdef int profile_code         # index into regs.PROFILES
    cdef int stage_no             # 1 or 2
    cdef int unlock_state         # 0, 1 after 0x80, 2 after 0x80 0x86
    cdef uint32_t preload[2]      # Preload Value 1 and 2, 20 bits each
    cdef uint8_t cfg[ESB_CFG_SIZE]  # PCI configuration bytes (0x60/0x68 special access aside)
    cdef public object on_irq     # None or callable(level: bool)

    # configuration space: offset 0..0xff; lanes past 0xff read 0 and drop writes
    cdef uint32_t c_config_read(self, unsigned int offset, int size) noexcept nogil
    cdef int c_config_write(self, unsigned int offset, int size, uint32_t value) noexcept nogil
    # BAR0 registers: offset + size <= 16, split into aligned pieces as QEMU does
    cdef uint32_t c_mmio_read(self, unsigned int offset, int size) noexcept nogil
    cdef int c_mmio_write(self, unsigned int offset, int size, uint32_t value) noexcept nogil
    # BAR0's base address while the device decodes memory, else 0 (SPEC.md 5.3)
    cdef uint64_t c_bar0(self) noexcept nogil
    cdef void c_start(self, int stage) noexcept nogil
    cdef int c_set_gintsr(self, bint level) except -1
    cdef int c_watchdog_reset(self) except -1
