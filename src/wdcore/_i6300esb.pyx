# cython: language_level=3
"""The Intel 6300ESB watchdog, compiled (SPEC.md 3; 1.3 for the stage-1 interrupt).
Twin: _i6300esb_py.py.  Register tables come from wdcore.regs."""
cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from wdcore._core cimport (ArmCounter, as_ll, arg_delta, arg_size, arg_time, arg_value,
                           piece_size, raise_value)

from wdcore import _snapshot, regs
from wdcore._args import check_bytes
from wdcore.actions import ACTION_CODE, ACTIONS, WatchdogAction, WatchdogEvent, coerce_action, deliver
from wdcore._i6300esb_py import check_cfg_offset, check_mmio_offset

cdef enum:
    CFG_SIZE = 0x100
    CFG_WDT_CONFIG = 0x60
    CFG_WDT_LOCK = 0x68
    CFG_COMMAND = 0x04
    COMMAND_MEMORY = 0x02
    CFG_BAR0 = 0x10
    WDT_REBOOT_DISABLE = 0x20
    WDT_1MHZ = 0x04
    WDT_FREE_RUN = 0x04
    WDT_ENABLE = 0x02
    WDT_LOCK = 0x01
    MMIO_SIZE = 16
    REG_PRELOAD1 = 0x00
    REG_PRELOAD2 = 0x04
    REG_GINTSR = 0x08
    REG_RELOAD = 0x0C
    UNLOCK1 = 0x80
    UNLOCK2 = 0x86
    RELOAD_PING = 0x0100
    RELOAD_CLEAR_FLAG = 0x1200
    RELOAD_READ_FLAG = 0x1200
    PRELOAD_MASK = 0xFFFFF
    PRELOAD_RESET = 0xFFFFF
    PCI_CLOCK_NS = 30
    SHIFT_1KHZ = 15
    SHIFT_1MHZ = 5

# configuration bytes at construction, writable bits, bytes cleared by a system reset
cdef uint8_t INITIAL_CONFIG[256]
cdef uint8_t WMASK[256]
cdef uint8_t RESET_CLEARS[256]
for _o in range(CFG_SIZE):
    INITIAL_CONFIG[_o] = regs.INITIAL_CONFIG[_o]
    WMASK[_o] = regs.WMASK[_o]
    RESET_CLEARS[_o] = _o in regs.CONFIG_RESET_OFFSETS
cdef int INT_TYPE_MASK[2]
INT_TYPE_MASK[0] = regs.INT_TYPE_MASK[0]
INT_TYPE_MASK[1] = regs.INT_TYPE_MASK[1]
assert regs.PCI_CLOCK_NS == PCI_CLOCK_NS and regs.PRELOAD_RESET == PRELOAD_RESET
assert (regs.CFG_WDT_CONFIG, regs.CFG_WDT_LOCK, regs.REG_RELOAD) == (CFG_WDT_CONFIG, CFG_WDT_LOCK, REG_RELOAD)

cdef tuple _ACTIONS = ACTIONS


cdef inline uint64_t duration_ns(uint32_t preload, bint one_mhz) noexcept nogil:
    return (<uint64_t>preload << (SHIFT_1MHZ if one_mhz else SHIFT_1KHZ)) * PCI_CLOCK_NS


cdef inline unsigned int arg_cfg_offset(object offset) except? 0xFFFFFFFF:
    cdef int ovf = 0
    cdef long long o = as_ll(offset, "offset", &ovf)
    if ovf or o < 0 or o >= CFG_SIZE:
        check_cfg_offset(offset)
    return <unsigned int>o


cdef inline unsigned int arg_mmio_offset(object offset, int size) except? 0xFFFFFFFF:
    cdef int ovf = 0
    cdef long long o = as_ll(offset, "offset", &ovf)
    if ovf or o < 0 or o + size > MMIO_SIZE:
        check_mmio_offset(offset, size)
    return <unsigned int>o


@cython.final
cdef class I6300ESB:
    """Intel 6300ESB watchdog (QEMU ``i6300esb``), PCI 8086:25ab."""

    def __init__(self, *, action=WatchdogAction.RESET, on_expire=None, profile="qemu",
                 stage1_interrupt=False):
        if profile not in regs.PROFILES:
            raise ValueError(f"profile must be one of {', '.join(regs.PROFILES)}; got {profile!r}")
        if not isinstance(stage1_interrupt, bool):
            raise TypeError(f"stage1_interrupt must be a bool, not {type(stage1_interrupt).__name__}")
        self.action_code = ACTION_CODE[coerce_action(action)]
        self.profile_code = regs.PROFILES.index(profile)
        self.int_mask = INT_TYPE_MASK[self.profile_code]
        self.s1i = stage1_interrupt
        self.on_expire = on_expire
        self.on_irq = None
        self._sink = None
        self._events = []
        self.counter = ArmCounter()
        self._timers_on = True
        memcpy(self.cfg, INITIAL_CONFIG, CFG_SIZE)
        self.c_watchdog_reset()

    cdef int c_watchdog_reset(self) except -1:
        """The watchdog part of every reset (SPEC.md 3.8); the flag survives."""
        self.c_stop()
        self.enabled = False
        self.locked = False
        self.free_run = False
        self.reboot_disabled = False
        self.one_mhz = False
        self.int_type = 0
        self.preload[0] = PRELOAD_RESET
        self.preload[1] = PRELOAD_RESET
        self.stage = 1
        self.unlock_state = 0
        self.c_set_gintsr(False)
        return 0

    # --- configuration space ---------------------------------------------------------
    def config_read(self, offset, size):
        cdef unsigned int o = arg_cfg_offset(offset)
        cdef int s = arg_size(size)
        return <uint32_t>self.c_config_read(o, s)

    def config_write(self, offset, size, value):
        cdef unsigned int o = arg_cfg_offset(offset)
        cdef int s = arg_size(size)
        cdef uint32_t v = arg_value(value, s)
        self.c_end_access(self.c_config_write(o, s, v))

    cdef int c_config_read(self, unsigned int offset, int size) noexcept nogil:
        cdef uint32_t value = 0
        cdef int i
        if offset == CFG_WDT_CONFIG and size == 2:
            return ((WDT_REBOOT_DISABLE if self.reboot_disabled else 0)
                    | (WDT_1MHZ if self.one_mhz else 0) | self.int_type)
        if offset == CFG_WDT_LOCK and size == 1:
            return ((WDT_FREE_RUN if self.free_run else 0) | (WDT_ENABLE if self.enabled else 0)
                    | (WDT_LOCK if self.locked else 0))
        for i in range(size):
            if offset + i < CFG_SIZE:  # lanes past 0xff read 0
                value |= <uint32_t>self.cfg[offset + i] << (8 * i)
        return <int>value

    cdef int c_config_write(self, unsigned int offset, int size, uint32_t value) noexcept nogil:
        cdef bint was_enabled
        cdef int i
        cdef unsigned int o
        if offset == CFG_WDT_CONFIG and size == 2:
            self.reboot_disabled = (value & WDT_REBOOT_DISABLE) != 0
            self.one_mhz = (value & WDT_1MHZ) != 0
            self.int_type = value & self.int_mask
        elif offset == CFG_WDT_LOCK and size == 1:
            if not self.locked:
                was_enabled = self.enabled
                self.locked = (value & WDT_LOCK) != 0
                self.free_run = (value & WDT_FREE_RUN) != 0
                self.enabled = (value & WDT_ENABLE) != 0
                if self.enabled and not was_enabled:
                    self.c_start(1)
                elif not self.enabled:
                    self.c_stop()
        else:
            for i in range(size):
                o = offset + i
                if o < CFG_SIZE:
                    self.cfg[o] = (self.cfg[o] & ~WMASK[o]) | (((value >> (8 * i)) & 0xFF) & WMASK[o])
        return WD_DUE if self.c_due(self.now_ns) else 0

    # --- BAR0 registers ------------------------------------------------------------------
    def mmio_read(self, offset, size):
        cdef int s = arg_size(size)
        cdef unsigned int o = arg_mmio_offset(offset, s)
        return self.c_mmio_read(o, s)

    def mmio_write(self, offset, size, value):
        cdef int s = arg_size(size)
        cdef uint32_t v = arg_value(value, s)
        cdef unsigned int o = arg_mmio_offset(offset, s)
        self.c_end_access(self.c_mmio_write(o, s, v))

    cdef uint32_t c_mmio_read(self, unsigned int offset, int size) noexcept nogil:
        cdef uint32_t value = 0, piece
        cdef unsigned int pos = offset, end = offset + size
        cdef int n
        while pos < end:
            n = piece_size(pos, end - pos)
            piece = 0
            if pos == REG_RELOAD and n == 2:
                piece = RELOAD_READ_FLAG if self.prev_reboot else 0
            elif self.s1i and pos <= REG_GINTSR < pos + n:
                piece = (<uint32_t>self.gintsr) << (8 * (REG_GINTSR - pos))
            value |= piece << (8 * (pos - offset))
            pos += n
        return value

    cdef int c_mmio_write(self, unsigned int offset, int size, uint32_t value) noexcept nogil:
        cdef unsigned int pos = offset, end = offset + size
        cdef int n, flags = 0
        cdef uint32_t v
        while pos < end:
            n = piece_size(pos, end - pos)
            v = (value >> (8 * (pos - offset))) & ((<uint32_t>0xFFFFFFFFU) >> (32 - 8 * n))
            if pos == REG_RELOAD and v == UNLOCK1:
                self.unlock_state = 1
            elif pos == REG_RELOAD and v == UNLOCK2 and self.unlock_state == 1:
                self.unlock_state = 2
            elif n == 1:
                pass  # bytes never reload, load or consume
            elif n == 2 and self.unlock_state == 2:
                if pos == REG_RELOAD:
                    if v & RELOAD_PING:
                        self.c_start(1)
                    if v & RELOAD_CLEAR_FLAG:
                        self.prev_reboot = False
                self.unlock_state = 0
            elif n == 4 and self.unlock_state == 2:
                if pos == REG_PRELOAD1:
                    self.preload[0] = v & PRELOAD_MASK
                elif pos == REG_PRELOAD2:
                    self.preload[1] = v & PRELOAD_MASK
                self.unlock_state = 0
            if (self.s1i and pos <= REG_GINTSR < pos + n
                    and (v >> (8 * (REG_GINTSR - pos))) & 1 and self.gintsr):
                self.gintsr = False  # write 1 to clear
                flags |= WD_IRQ_CHANGED
            pos += n
        if self.c_due(self.now_ns):
            flags |= WD_DUE
        return flags

    # --- the two-stage timer -----------------------------------------------------------------
    cdef void c_start(self, int stage) noexcept nogil:
        if not self.enabled:
            return
        self.stage = stage
        self.armed = True
        self.deadline_ns = self.now_ns + duration_ns(self.preload[stage - 1], self.one_mhz)
        self.seq = self.counter.value
        self.counter.value += 1

    cdef void c_stop(self) noexcept nogil:
        self.armed = False
        self.deadline_ns = 0
        self.seq = 0

    cdef bint c_due(self, uint64_t t) noexcept nogil:
        return self._timers_on and self.armed and self.deadline_ns <= t

    cdef int c_set_gintsr(self, bint level) except -1:
        cdef bint changed = level != self.gintsr
        self.gintsr = level
        if changed and self.on_irq is not None:
            self.on_irq(level)
        return 0

    cdef int c_end_access(self, int flags) except -1:
        if flags & WD_IRQ_CHANGED and self.on_irq is not None:
            self.on_irq(self.gintsr)
        # a zero-length stage armed by the access fires at its end, at the same now
        while self.c_due(self.now_ns):
            self.c_expire()
        return 0

    cdef int c_expire(self) except -1:
        """Handle the current deadline (one stage end); returns WatchdogEvents produced."""
        if self.deadline_ns > self.now_ns:
            self.now_ns = self.deadline_ns  # an overdue deadline fires at the current now
        self.c_stop()
        if self.stage == 1:
            if self.s1i and self.int_type == 0:
                self.c_set_gintsr(True)
            self.c_start(2)
            return 0
        if self.reboot_disabled:
            if self.free_run and (self.preload[0] or self.preload[1]):
                self.c_start(1)  # free-running: stages alternate, no event
            # else (or a zero-length cycle, which would spin): stay in stage 2, idle
            return 0
        self.prev_reboot = True
        self.c_watchdog_reset()  # the device resets itself; BAR0 and command stay
        self.expiries += 1
        deliver(WatchdogEvent(self.now_ns, "i6300esb", _ACTIONS[self.action_code]), self._events, self.on_expire, self._sink)
        return 1

    cdef void c_skip_cycles(self, uint64_t limit) noexcept nogil:
        """Jump whole free-running cycles that end before ``limit`` (SPEC.md 3.6): no
        events, GINTSR already at its level, the arming counter moving by two a cycle."""
        cdef uint64_t period, k
        if not (self.reboot_disabled and self.free_run and self.enabled and self.armed):
            return
        if self.s1i and self.int_type == 0 and not self.gintsr:
            return  # the next stage-1 end is observable
        period = duration_ns(self.preload[0], self.one_mhz) + duration_ns(self.preload[1], self.one_mhz)
        if period == 0 or self.deadline_ns < self.now_ns or self.deadline_ns >= limit:
            return
        k = (limit - 1 - self.deadline_ns) // period
        if k > 0:
            self.deadline_ns += k * period
            self.counter.value += 2 * k
            self.seq = self.counter.value - 1

    # --- time ------------------------------------------------------------------------------------
    @property
    def now(self):
        return self.now_ns

    @property
    def next_deadline(self):
        return self.deadline_ns if self.armed else None

    @property
    def remaining_ns(self):
        if not self.armed:
            return None
        return self.deadline_ns - self.now_ns if self.deadline_ns > self.now_ns else 0

    @property
    def stage(self):
        return self.stage

    @property
    def irq_level(self):
        return self.gintsr

    def advance(self, delta_ns):
        return self.c_run_until(arg_delta(self.now_ns, delta_ns))

    def advance_to(self, t_ns):
        return self.c_run_until(arg_time(self.now_ns, t_ns))

    cdef int c_run_until(self, uint64_t t) except -1:
        cdef uint64_t before = self.expiries
        while self.c_due(t):
            self.c_skip_cycles(t + 1)
            self.c_expire()
        self.now_ns = t
        return <int>(self.expiries - before)

    # --- Machine hooks (not public API; the compiled Machine core uses the c_* level) ---
    def _share_counter(self, ArmCounter counter not None):
        self.counter = counter

    cdef uint64_t c_bar0(self) noexcept nogil:
        """BAR0's base while the device decodes memory, else 0 (SPEC.md 5.3: command bit
        1 set, base not 0 and at most 0xFFFFFFE0)."""
        cdef uint64_t base
        if not self.cfg[CFG_COMMAND] & COMMAND_MEMORY:
            return 0
        base = (self.cfg[CFG_BAR0] | (<uint64_t>self.cfg[CFG_BAR0 + 1] << 8)
                | (<uint64_t>self.cfg[CFG_BAR0 + 2] << 16) | (<uint64_t>self.cfg[CFG_BAR0 + 3] << 24))
        base &= 0xFFFFFFF0U
        if base > 0xFFFFFFE0U:
            return 0
        return base

    # --- configuration, events -----------------------------------------------------------------------
    @property
    def action(self):
        return _ACTIONS[self.action_code]

    @action.setter
    def action(self, action):
        self.action_code = ACTION_CODE[coerce_action(action)]

    @property
    def profile(self):
        return regs.PROFILES[self.profile_code]

    @property
    def stage1_interrupt(self):
        return self.s1i

    @property
    def events(self):
        return self._events

    def clear_events(self):
        self._events.clear()

    # --- reset, snapshot ------------------------------------------------------------------------------
    def reset(self):
        """Power-on/system reset: the watchdog, and command, BAR0, cache line and
        interrupt line; raw 0x40..0xff and the previous-reboot flag survive."""
        cdef int o
        self.c_watchdog_reset()
        for o in range(CFG_SIZE):
            if RESET_CLEARS[o]:
                self.cfg[o] = INITIAL_CONFIG[o]

    def snapshot(self):
        return _snapshot.pack_i6300esb(
            self.now_ns, self.action_code, self.armed, self.deadline_ns, self.seq,
            self.counter.value, self.profile_code, self.s1i, self.enabled, self.locked,
            self.free_run, self.reboot_disabled, self.one_mhz, self.int_type, self.preload[0],
            self.preload[1], self.stage, self.unlock_state, self.prev_reboot, self.gintsr,
            bytes(self.cfg[:CFG_SIZE]))

    def restore(self, data):
        self._apply(_snapshot.unpack_i6300esb(check_bytes(data)))

    def _apply(self, f):
        cdef bytes cfg
        (self.now_ns, self.action_code, self.armed, self.deadline_ns, self.seq,
         self.counter.value, self.profile_code, self.s1i, self.enabled, self.locked,
         self.free_run, self.reboot_disabled, self.one_mhz, self.int_type, self.preload[0],
         self.preload[1], self.stage, self.unlock_state, self.prev_reboot, self.gintsr,
         cfg) = f
        self.int_mask = INT_TYPE_MASK[self.profile_code]
        memcpy(self.cfg, <const char*>cfg, CFG_SIZE)

    def __reduce__(self):
        return (_from_snapshot, (self.snapshot(),))

    def __repr__(self):
        timer = (f"stage {self.stage} deadline={self.deadline_ns}" if self.armed
                 else f"stage {self.stage} idle")
        return f"<I6300ESB (compiled) now={self.now_ns} {timer} action={_ACTIONS[self.action_code].value}>"


def _from_snapshot(data):
    dev = I6300ESB()
    dev.restore(data)
    return dev


@cython.final
cdef class CallFloor:
    """Empty methods with the i6300ESB's signatures, for the benchmarks' floor."""

    def config_write(self, offset, size, value):
        pass

    def mmio_write(self, offset, size, value):
        pass

    def advance(self, delta_ns):
        pass
