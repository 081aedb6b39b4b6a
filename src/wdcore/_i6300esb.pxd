# The compiled i6300ESB (SPEC.md 3).  The c_* methods are the C-level interface for a
# compiled Machine or a downstream Cython emulator.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from wdcore._core cimport ArmCounter

cdef enum:
    WD_DUE = 1           # c_*_write result: a deadline is due at the end of the access
    WD_IRQ_CHANGED = 2   # c_*_write result: GINTSR changed; call on_irq (needs the GIL)

cdef class I6300ESB:
    cdef uint64_t now_ns          # current virtual time, ns
    cdef uint64_t deadline_ns     # absolute end of the current stage; meaningful while armed
    cdef uint64_t seq             # arming sequence number of deadline_ns (0 when idle)
    cdef uint64_t expiries        # WatchdogEvents produced so far
    cdef bint armed               # a stage is counting
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
    cdef int stage                # 1 or 2
    cdef int unlock_state         # 0, 1 after 0x80, 2 after 0x80 0x86
    cdef int action_code          # index into actions.ACTIONS
    cdef uint32_t preload[2]      # Preload Value 1 and 2, 20 bits each
    cdef uint8_t cfg[256]         # PCI configuration bytes (0x60/0x68 special access aside)
    cdef ArmCounter counter       # arming sequence source (shared within a Machine)
    cdef list _events
    cdef public bint _timers_on   # False while the owning Machine is stopped
    cdef public object on_expire  # None or callable(WatchdogEvent)
    cdef public object on_irq     # None or callable(level: bool)
    cdef public object _sink      # the owning Machine's expiry hook, or None

    cdef int c_config_read(self, unsigned int offset, int size) noexcept nogil
    cdef int c_config_write(self, unsigned int offset, int size, uint32_t value) noexcept nogil
    cdef uint32_t c_mmio_read(self, unsigned int offset, int size) noexcept nogil
    cdef int c_mmio_write(self, unsigned int offset, int size, uint32_t value) noexcept nogil
    cdef void c_start(self, int stage) noexcept nogil
    cdef void c_stop(self) noexcept nogil
    cdef bint c_due(self, uint64_t t) noexcept nogil
    cdef void c_skip_cycles(self, uint64_t limit) noexcept nogil
    cdef uint64_t c_bar0(self) noexcept nogil      # BAR0 base while decoded, else 0
    cdef int c_expire(self) except -1
    cdef int c_end_access(self, int flags) except -1
    cdef int c_run_until(self, uint64_t t) except -1
    cdef int c_set_gintsr(self, bint level) except -1
    cdef int c_watchdog_reset(self) except -1
