# The compiled i6300ESB (SPEC.md 3; 1.3 for the stage-1 interrupt extension): register
# logic only, on the Watchdog base (_core.pxd).  Twin: _i6300esb_py.py.
#
# Access methods take any in-range offset/size/value (a guest's) and never fail; they
# return WD_DUE / WD_SIGNAL flags for the caller to act on with the GIL.
#
# C-level contract (conventions: _core.pxd's header).  Offsets are bytes into the
# configuration space (0..0xff) or into BAR0 (0..15); sizes are bytes; values are the
# access's little-endian lanes.  Reads have no side effect.  A standalone i6300ESB driven
# from nogil code:
#   - a write: flags = dev.c_config_write(...) or dev.c_mmio_write(...); a non-zero flags
#     goes to dev.c_end_access(flags) inside `with gil:` (on_irq, then a due deadline);
#   - time to t: if dev.c_due(t), dev.c_run_until(t) inside `with gil:` (stage ends,
#     expiries); else dev.timer.now = t, without the GIL.
# A Machine's i6300ESB is driven through the Machine (c_io_write on 0xCF8/0xCFC,
# c_mem_write at c_bar0()), never here.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
cimport cython
from wdcore._core cimport Watchdog
from wdcore._regs cimport ESB_CFG_SIZE

@cython.final
cdef class I6300ESB(Watchdog):
    # Fields: read them freely (C fields without the GIL, on_irq with it); the register
    # accesses change them, a host writes none (restore() does).
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
    cdef int stage_no             # 1 or 2: the stage counting, or the last one counted
    cdef int unlock_state         # 0, 1 after 0x80, 2 after 0x80 0x86
    cdef uint32_t preload[2]      # Preload Value 1 and 2, 20 bits each; a stage lasts
                                  # (preload << 15, or << 5 at 1 MHz) * 30 ns
    cdef uint8_t cfg[ESB_CFG_SIZE]  # PCI configuration bytes (0x60/0x68 special access aside)
    cdef object _on_irq           # None or callable(level: bool) (the on_irq property); GIL

    # --- configuration space: offset 0..0xff; lanes past 0xff read 0 and drop writes ---
    # The caller ensures offset <= 0xff (arg_config_offset) and size in {1, 2, 4}
    # (arg_size); for writes, value < 2**(8*size) (arg_value).  Outside that the result
    # is undefined.  0x60 is special for word accesses only, 0x68 for byte accesses only
    # (other widths see the raw bytes), as in QEMU.
    # A configuration read: nogil, never fails, no side effect.  Returns the `size`-byte
    # value.
    cdef uint32_t c_config_read(self, unsigned int offset, int size) noexcept nogil
    # A configuration write: nogil, never fails.  Returns WD_DUE when a deadline is due at
    # the end of the access (enabling with a zero preload), else 0; never WD_SIGNAL.
    cdef int c_config_write(self, unsigned int offset, int size, uint32_t value) noexcept nogil
    # --- BAR0 registers: offset + size <= 16, split into aligned pieces as QEMU does -----
    # The caller ensures size in {1, 2, 4} and offset + size <= 16 (arg_size, then
    # arg_window_offset(offset, size, ESB_SIZE, "BAR0")); for writes, value <
    # 2**(8*size) (arg_value).  Outside that the result is undefined.
    # A BAR0 read: nogil, never fails, no side effect.  Returns the `size`-byte value
    # (unmodelled lanes read 0).
    cdef uint32_t c_mmio_read(self, unsigned int offset, int size) noexcept nogil
    # A BAR0 write: nogil, never fails.  Returns WD_DUE (a deadline due at the end of the
    # access: a reload with a zero preload) | WD_SIGNAL (GINTSR cleared: on_irq is to be
    # told, c_signal), or 0.
    cdef int c_mmio_write(self, unsigned int offset, int size, uint32_t value) noexcept nogil
    # BAR0's base address while the device decodes memory, else 0 (SPEC.md 5.3): a
    # physical address in bytes, 16-byte aligned, at most 0xFFFFFFE0 (command bit 1 set,
    # base not 0).  nogil, never fails.  Read it per access; it changes with config writes.
    cdef uint64_t c_bar0(self) noexcept nogil
    # --- internal -------------------------------------------------------------------------
    # Start stage 1 or 2 (the caller ensures one of them) when enabled: arm for its
    # length.  nogil, never fails.
    cdef void c_start(self, int stage) noexcept nogil
    # Set GINTSR bit 0 to `level`; on a change, call on_irq(level) (an exception
    # it raises is held in `errors`, see Watchdog.c_call).  Returns 0.  Needs the GIL.
    cdef int c_set_gintsr(self, bint level) except -1
    # The watchdog part of every reset (SPEC.md 3.8; the previous-reboot flag survives).
    # Returns 0 (on_irq's exception is held in `errors`).  Needs the GIL.
    cdef int c_watchdog_reset(self) except -1
