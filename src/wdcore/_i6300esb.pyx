# cython: language_level=3
"""The Intel 6300ESB watchdog, compiled (SPEC.md 3; 1.3 for the stage-1 interrupt).
Twin: _i6300esb_py.py.  Registers: wdcore.regs (offsets and bits through _regs.pxd)."""
cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.string cimport memcpy
from wdcore._core cimport (CALL_CONFIG_WRITE, CALL_MMIO_WRITE, WD_COUNTER_MAX, TimerRecord,
                          Watchdog, WD_DUE, WD_SIGNAL, guard_enter, guard_leave, snap_ld,
                          snap_read_timer, snap_st, arg_config_offset, arg_size,
                          arg_value, arg_window_offset, piece_size)
from wdcore._regs cimport *

from wdcore._core_py import rebuild
from wdcore import _snapshot, regs
from wdcore._core_py import check_bool, check_callback
from wdcore.actions import WatchdogAction

# configuration bytes at construction, writable bits, bytes cleared by a system reset
cdef uint8_t INITIAL_CONFIG[256]
cdef uint8_t WMASK[256]
cdef uint8_t RESET_CLEARS[256]
for _o in range(ESB_CFG_SIZE):
    INITIAL_CONFIG[_o] = regs.INITIAL_CONFIG[_o]
    WMASK[_o] = regs.WMASK[_o]
    RESET_CLEARS[_o] = _o in regs.CONFIG_RESET_OFFSETS
cdef int INT_TYPE_MASK[2]
INT_TYPE_MASK[0] = regs.INT_TYPE_MASK[0]
INT_TYPE_MASK[1] = regs.INT_TYPE_MASK[1]
# the configuration space's read-only bits and their values, 8 bytes a word (little-endian)
cdef enum:
    CFG_WORDS = 32
assert ESB_CFG_SIZE == 8 * CFG_WORDS
cdef uint64_t READ_ONLY_MASK[CFG_WORDS]
cdef uint64_t READ_ONLY_VALUE[CFG_WORDS]
for _w in range(CFG_WORDS):
    READ_ONLY_MASK[_w] = int.from_bytes(bytes(~regs.WMASK[8 * _w + _b] & 0xFF for _b in range(8)), "little")
    READ_ONLY_VALUE[_w] = int.from_bytes(bytes(regs.INITIAL_CONFIG[8 * _w + _b] & ~regs.WMASK[8 * _w + _b] & 0xFF
                                               for _b in range(8)), "little")

# the snapshot's kind and payload fields (_snapshot.I6300ESBState), by offset
cdef int SNAP_KIND = _snapshot.KIND_I6300ESB
cdef Py_ssize_t SNAP_SIZE = _snapshot.I6300ESB_LAYOUT.size
cdef uint64_t MAX_STAGE_NS = _snapshot.I6300ESBState.MAX_DEADLINE_NS
_O = _snapshot.I6300ESB_LAYOUT.offsets
cdef Py_ssize_t S_PROFILE = _O["profile"], S_S1I = _O["stage1_interrupt"], S_ENABLED = _O["enabled"]
cdef Py_ssize_t S_LOCKED = _O["locked"], S_FREE_RUN = _O["free_run"]
cdef Py_ssize_t S_REBOOT_DISABLED = _O["reboot_disabled"], S_ONE_MHZ = _O["one_mhz"]
cdef Py_ssize_t S_INT_TYPE = _O["int_type"], S_PRELOAD1 = _O["preload1"], S_PRELOAD2 = _O["preload2"]
cdef Py_ssize_t S_STAGE = _O["stage"], S_UNLOCK = _O["unlock_state"]
cdef Py_ssize_t S_PREV_REBOOT = _O["prev_reboot"], S_GINTSR = _O["gintsr"], S_CONFIG = _O["config"]
# the layout's one-byte flags (each 0 or 1) but the timer's own (snap_read_timer checks it)
_FLAGS = [_O[r.name] for r in _snapshot.I6300ESB_LAYOUT.rows if r.code == "?" and r.name != "armed"]
cdef enum:
    MAX_FLAGS = 16
assert len(_FLAGS) <= MAX_FLAGS
cdef int N_FLAGS = len(_FLAGS)
cdef Py_ssize_t S_FLAGS[MAX_FLAGS]
for _i, _f in enumerate(_FLAGS):
    S_FLAGS[_i] = _f


cdef inline uint64_t duration_ns(uint32_t preload, bint one_mhz) noexcept nogil:
    """Length of a stage: (preload << 5 or << 15) PCI clocks of 30 ns (SPEC.md 3.6)."""
    return (<uint64_t>preload << (ESB_SHIFT_1MHZ if one_mhz else ESB_SHIFT_1KHZ)) * ESB_PCI_CLOCK_NS


@cython.final
cdef class I6300ESB(Watchdog):
    """Intel 6300ESB watchdog (QEMU ``i6300esb``), PCI 8086:25ab."""

    KIND = "i6300esb"

    def __init__(self, *, action=WatchdogAction.RESET, on_expire=None, profile="qemu",
                 stage1_interrupt=False):
        if profile not in regs.PROFILES:
            raise ValueError(f"profile must be one of {', '.join(regs.PROFILES)}; got {profile!r}")
        check_bool(stage1_interrupt, "stage1_interrupt")
        Watchdog.__init__(self, action=action, on_expire=on_expire)
        self.profile_code = regs.PROFILES.index(profile)
        self.int_mask = INT_TYPE_MASK[self.profile_code]
        self.s1i = stage1_interrupt
        self._on_irq = None
        memcpy(self.cfg, INITIAL_CONFIG, ESB_CFG_SIZE)
        self.c_watchdog_reset()

    cdef int c_watchdog_reset(self) except -1:
        """The watchdog part of every reset (SPEC.md 3.8); the flag survives."""
        self.c_disarm()
        self.enabled = False
        self.locked = False
        self.free_run = False
        self.reboot_disabled = False
        self.one_mhz = False
        self.int_type = 0
        self.preload[0] = ESB_PRELOAD_VALUE_1_RESET
        self.preload[1] = ESB_PRELOAD_VALUE_2_RESET
        self.stage_no = 1
        self.unlock_state = 0
        self.c_set_gintsr(False)
        return 0

    # --- configuration space ---------------------------------------------------------
    def config_read(self, offset, size):
        """A configuration read of ``size`` bytes at ``offset`` (0..0xff)."""
        cdef unsigned int o = arg_config_offset(offset)
        cdef int s = arg_size(size)
        return self.c_config_read(o, s)

    def config_write(self, offset, size, value):
        """A configuration write of ``size`` bytes at ``offset`` (0..0xff)."""
        cdef unsigned int o
        cdef int s
        cdef uint32_t v
        cdef int nested = guard_enter(&self.guard, self, CALL_CONFIG_WRITE)  # 1: from a callback
        try:
            o = arg_config_offset(offset)
            s = arg_size(size)
            v = arg_value(value, s)
            self.c_end_access(self.c_config_write(o, s, v))
            if not nested:  # nested: held for the call in progress
                self.c_raise_errors()
        finally:
            if not nested:
                guard_leave(&self.guard)

    cdef uint32_t c_config_read(self, unsigned int offset, int size) noexcept nogil:
        cdef uint32_t value = 0
        cdef int i
        if offset == ESB_CFG_WDT_CONFIG and size == 2:
            return ((ESB_CFG_WDT_CONFIG_REBOOT_DISABLE if self.reboot_disabled else 0)
                    | (ESB_CFG_WDT_CONFIG_OUTPUT_1MHZ if self.one_mhz else 0) | self.int_type)
        if offset == ESB_CFG_WDT_LOCK and size == 1:
            return ((ESB_CFG_WDT_LOCK_FREE_RUN if self.free_run else 0)
                    | (ESB_CFG_WDT_LOCK_ENABLE if self.enabled else 0)
                    | (ESB_CFG_WDT_LOCK_LOCK if self.locked else 0))
        for i in range(size):
            if offset + i < ESB_CFG_SIZE:  # lanes past 0xff read 0
                value |= <uint32_t>self.cfg[offset + i] << (8 * i)
        return value

    cdef int c_config_write(self, unsigned int offset, int size, uint32_t value) noexcept nogil:
        cdef bint was_enabled
        cdef int i
        cdef unsigned int o
        if offset == ESB_CFG_WDT_CONFIG and size == 2:
            self.reboot_disabled = (value & ESB_CFG_WDT_CONFIG_REBOOT_DISABLE) != 0
            self.one_mhz = (value & ESB_CFG_WDT_CONFIG_OUTPUT_1MHZ) != 0
            self.int_type = value & self.int_mask
        elif offset == ESB_CFG_WDT_LOCK and size == 1:
            if not self.locked:
                was_enabled = self.enabled
                self.locked = (value & ESB_CFG_WDT_LOCK_LOCK) != 0
                self.free_run = (value & ESB_CFG_WDT_LOCK_FREE_RUN) != 0
                self.enabled = (value & ESB_CFG_WDT_LOCK_ENABLE) != 0
                if self.enabled and not was_enabled:
                    self.c_start(1)
                elif not self.enabled:
                    self.c_disarm()
        else:
            for i in range(size):
                o = offset + i
                if o < ESB_CFG_SIZE:
                    self.cfg[o] = (self.cfg[o] & ~WMASK[o]) | (((value >> (8 * i)) & 0xFF) & WMASK[o])
        return WD_DUE if self.c_due(self.timer.now) else 0

    # --- BAR0 registers ------------------------------------------------------------------
    def mmio_read(self, offset, size):
        """A read of ``size`` bytes at ``offset`` relative to BAR0 (offset + size <= 16)."""
        cdef int s = arg_size(size)
        cdef unsigned int o = arg_window_offset(offset, s, ESB_SIZE, "BAR0")
        return self.c_mmio_read(o, s)

    def mmio_write(self, offset, size, value):
        """A write of ``size`` bytes at ``offset`` relative to BAR0 (offset + size <= 16)."""
        cdef int s
        cdef uint32_t v
        cdef unsigned int o
        cdef int nested = guard_enter(&self.guard, self, CALL_MMIO_WRITE)  # 1: from a callback
        try:
            s = arg_size(size)
            v = arg_value(value, s)
            o = arg_window_offset(offset, s, ESB_SIZE, "BAR0")
            self.c_end_access(self.c_mmio_write(o, s, v))
            if not nested:  # nested: held for the call in progress
                self.c_raise_errors()
        finally:
            if not nested:
                guard_leave(&self.guard)

    cdef uint32_t c_mmio_read(self, unsigned int offset, int size) noexcept nogil:
        cdef uint32_t value = 0, piece
        cdef unsigned int pos = offset, end = offset + size
        cdef int n
        while pos < end:
            n = piece_size(pos, end - pos)
            piece = 0
            if pos == ESB_RELOAD and n == 2:
                piece = ESB_RELOAD_READ_FLAG if self.prev_reboot else 0
            elif self.s1i and pos <= ESB_GINTSR < pos + n:
                piece = (<uint32_t>self.gintsr) << (8 * (ESB_GINTSR - pos))
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
            if pos == ESB_RELOAD and v == ESB_UNLOCK1:
                self.unlock_state = 1
            elif pos == ESB_RELOAD and v == ESB_UNLOCK2 and self.unlock_state == 1:
                self.unlock_state = 2
            elif n == 1:
                pass  # bytes never reload, load or consume
            elif n == 2 and self.unlock_state == 2:
                if pos == ESB_RELOAD:
                    if v & ESB_RELOAD_PING:
                        self.c_start(1)
                    if v & ESB_RELOAD_CLEAR_FLAG:
                        self.prev_reboot = False
                self.unlock_state = 0
            elif n == 4 and self.unlock_state == 2:
                if pos == ESB_PRELOAD_VALUE_1:
                    self.preload[0] = v & ESB_PRELOAD_MASK
                elif pos == ESB_PRELOAD_VALUE_2:
                    self.preload[1] = v & ESB_PRELOAD_MASK
                self.unlock_state = 0
            if (self.s1i and pos <= ESB_GINTSR < pos + n
                    and (v >> (8 * (ESB_GINTSR - pos))) & 1 and self.gintsr):
                self.gintsr = False  # write 1 to clear; on_irq is told after the access
                flags |= WD_SIGNAL
            pos += n
        if self.c_due(self.timer.now):
            flags |= WD_DUE
        return flags

    cdef uint64_t c_bar0(self) noexcept nogil:
        """BAR0's base while the device decodes memory, else 0 (SPEC.md 5.3: command bit
        1 set, base not 0 and at most 0xFFFFFFE0)."""
        cdef uint64_t base
        if not self.cfg[ESB_CFG_COMMAND] & ESB_CFG_COMMAND_MEMORY:
            return 0
        base = (self.cfg[ESB_CFG_BAR0] | (<uint64_t>self.cfg[ESB_CFG_BAR0 + 1] << 8)
                | (<uint64_t>self.cfg[ESB_CFG_BAR0 + 2] << 16) | (<uint64_t>self.cfg[ESB_CFG_BAR0 + 3] << 24))
        base &= ESB_CFG_BAR0_ADDR_MASK
        if base > ESB_CFG_BAR0_BASE_MAX:
            return 0
        return base

    # --- the two-stage timer -----------------------------------------------------------------
    cdef void c_start(self, int stage) noexcept nogil:
        if not self.enabled:
            return
        self.stage_no = stage
        self.c_arm(duration_ns(self.preload[stage - 1], self.one_mhz))

    cdef int c_set_gintsr(self, bint level) except -1:
        cdef bint changed = level != self.gintsr
        self.gintsr = level
        if changed and self._on_irq is not None:
            self.c_call(self._on_irq, level)
        return 0

    cdef int c_signal(self) except -1:
        if self._on_irq is not None:
            self.c_call(self._on_irq, self.gintsr)
        return 0

    cdef int c_fire(self) except -1:
        """One stage end; 1 when it is the expiry (stage 2 with reboot enabled)."""
        self.c_disarm()
        if self.stage_no == 1:
            # stage 2 first, then the line: an interrupt handler (on_irq) sees stage 2
            # counting, and its accesses (a reload, a preload) act on that
            self.c_start(2)
            if self.s1i and self.int_type == 0:
                self.c_set_gintsr(True)
            return 0
        if self.reboot_disabled:
            if self.free_run and (self.preload[0] or self.preload[1]):
                self.c_start(1)  # free-running: stages alternate, no event
            # else (or a zero-length cycle, which would spin): stay in stage 2, idle
            return 0
        self.prev_reboot = True
        self.c_watchdog_reset()  # the device resets itself; BAR0 and command stay
        return 1

    cdef void c_skip(self, uint64_t limit) noexcept nogil:
        """Jump whole free-running cycles that end before ``limit`` (SPEC.md 3.6): no
        events, GINTSR already at its level, the arming counter moving by two a cycle."""
        cdef uint64_t period, k
        if not (self.reboot_disabled and self.free_run and self.enabled and self.timer.armed):
            return
        if self.s1i and self.int_type == 0 and not self.gintsr:
            return  # the next stage-1 end is observable
        period = duration_ns(self.preload[0], self.one_mhz) + duration_ns(self.preload[1], self.one_mhz)
        if period == 0 or self.timer.deadline < self.timer.now or self.timer.deadline >= limit:
            return
        k = (limit - 1 - self.timer.deadline) // period
        if k > 0:
            self.timer.deadline += k * period
            self.counter.value += 2 * k  # < 2**64: k periods of >= 960 ns fit in 2**63 ns
            if self.counter.value > WD_COUNTER_MAX:
                self.counter.value = WD_COUNTER_MAX  # saturated, as c_arm
            self.timer.seq = self.counter.value - 1

    cdef int c_reset(self) except -1:
        """Power-on/system reset: the watchdog, and command, BAR0, cache line and
        interrupt line; raw 0x40..0xff and the previous-reboot flag survive."""
        cdef int o
        self.c_watchdog_reset()
        for o in range(ESB_CFG_SIZE):
            if RESET_CLEARS[o]:
                self.cfg[o] = INITIAL_CONFIG[o]
        return 0

    # --- state -------------------------------------------------------------------------------
    @property
    def remaining_ns(self):
        """Time left in the current stage in ns, or None when not counting."""
        if not self.timer.armed:
            return None
        return self.timer.deadline - self.timer.now if self.timer.deadline > self.timer.now else 0

    @property
    def stage(self):
        """The stage counting or last counted: 1 or 2."""
        return self.stage_no

    @property
    def on_irq(self):
        """None or a callable taking the new level (bool) of the stage-1 interrupt line."""
        return self._on_irq

    @on_irq.setter
    def on_irq(self, fn):
        check_callback(fn, "on_irq")
        self._on_irq = fn

    @property
    def irq_level(self):
        """The stage-1 interrupt line (GINTSR bit 0; only with stage1_interrupt=True)."""
        return self.gintsr

    @property
    def profile(self):
        return regs.PROFILES[self.profile_code]

    @property
    def stage1_interrupt(self):
        return self.s1i

    # --- snapshot (the record: _snapshot.I6300ESBState) ---------------------------------
    STATE = _snapshot.I6300ESBState

    cdef int c_snap_kind(self) noexcept nogil:
        return SNAP_KIND

    cdef Py_ssize_t c_store(self, uint8_t* out) noexcept nogil:
        if out == NULL:
            return SNAP_SIZE
        self.c_store_timer(out)
        out[S_PROFILE] = <uint8_t>self.profile_code
        out[S_S1I] = self.s1i
        out[S_ENABLED] = self.enabled
        out[S_LOCKED] = self.locked
        out[S_FREE_RUN] = self.free_run
        out[S_REBOOT_DISABLED] = self.reboot_disabled
        out[S_ONE_MHZ] = self.one_mhz
        out[S_INT_TYPE] = <uint8_t>self.int_type
        snap_st(out + S_PRELOAD1, self.preload[0], 4)
        snap_st(out + S_PRELOAD2, self.preload[1], 4)
        out[S_STAGE] = <uint8_t>self.stage_no
        out[S_UNLOCK] = <uint8_t>self.unlock_state
        out[S_PREV_REBOOT] = self.prev_reboot
        out[S_GINTSR] = self.gintsr
        memcpy(out + S_CONFIG, self.cfg, ESB_CFG_SIZE)
        return SNAP_SIZE

    cdef bint c_load(self, const uint8_t* p, Py_ssize_t n, bint apply) noexcept nogil:
        """_snapshot.I6300ESBState.unpack's checks, and check_configuration's."""
        cdef TimerRecord r
        cdef int i
        cdef uint32_t preload1, preload2
        if apply:  # checked before: only the decoding counts
            snap_read_timer(p, &r, MAX_STAGE_NS)
            self.c_load_timer(&r)
            self.enabled = p[S_ENABLED]
            self.locked = p[S_LOCKED]
            self.free_run = p[S_FREE_RUN]
            self.reboot_disabled = p[S_REBOOT_DISABLED]
            self.one_mhz = p[S_ONE_MHZ]
            self.int_type = p[S_INT_TYPE]
            self.preload[0] = <uint32_t>snap_ld(p + S_PRELOAD1, 4)
            self.preload[1] = <uint32_t>snap_ld(p + S_PRELOAD2, 4)
            self.stage_no = p[S_STAGE]
            self.unlock_state = p[S_UNLOCK]
            self.prev_reboot = p[S_PREV_REBOOT]
            self.gintsr = p[S_GINTSR]
            memcpy(self.cfg, p + S_CONFIG, ESB_CFG_SIZE)
            return True
        if n != SNAP_SIZE or not snap_read_timer(p, &r, MAX_STAGE_NS):
            return False
        for i in range(N_FLAGS):
            if p[S_FLAGS[i]] > 1:
                return False
        # the device's own configuration (which is a valid one)
        if p[S_PROFILE] != self.profile_code or p[S_S1I] != self.s1i:
            return False
        preload1 = <uint32_t>snap_ld(p + S_PRELOAD1, 4)
        preload2 = <uint32_t>snap_ld(p + S_PRELOAD2, 4)
        if (p[S_INT_TYPE] & ~self.int_mask or preload1 > ESB_PRELOAD_MASK
                or preload2 > ESB_PRELOAD_MASK or (p[S_STAGE] != 1 and p[S_STAGE] != 2)
                or p[S_UNLOCK] > 2 or (p[S_GINTSR] and not p[S_S1I])
                or (r.armed and not p[S_ENABLED])):
            return False
        for i in range(CFG_WORDS):  # read-only bits as at construction, 8 bytes a step
            if snap_ld(p + S_CONFIG + 8 * i, 8) & READ_ONLY_MASK[i] != READ_ONLY_VALUE[i]:
                return False
        return True

    def _state(self):
        return _snapshot.I6300ESBState(
            **self._timer_fields(), profile=self.profile_code, stage1_interrupt=self.s1i, enabled=self.enabled,
            locked=self.locked, free_run=self.free_run, reboot_disabled=self.reboot_disabled,
            one_mhz=self.one_mhz, int_type=self.int_type, preload1=self.preload[0],
            preload2=self.preload[1], stage=self.stage_no, unlock_state=self.unlock_state,
            prev_reboot=self.prev_reboot, gintsr=self.gintsr, config=self.cfg[:ESB_CFG_SIZE])

    def _apply(self, state):
        """Take a validated I6300ESBState."""
        cdef bytes cfg = state.config
        self._apply_timer(state)
        self.profile_code = state.profile
        self.int_mask = INT_TYPE_MASK[state.profile]
        self.s1i = state.stage1_interrupt
        self.enabled = state.enabled
        self.locked = state.locked
        self.free_run = state.free_run
        self.reboot_disabled = state.reboot_disabled
        self.one_mhz = state.one_mhz
        self.int_type = state.int_type
        self.preload[0] = state.preload1
        self.preload[1] = state.preload2
        self.stage_no = state.stage
        self.unlock_state = state.unlock_state
        self.prev_reboot = state.prev_reboot
        self.gintsr = state.gintsr
        memcpy(self.cfg, <const char*>cfg, ESB_CFG_SIZE)

    def __repr__(self):
        timer = (f"stage {self.stage_no} deadline={self.timer.deadline}" if self.timer.armed
                 else f"stage {self.stage_no} idle")
        return f"<I6300ESB (compiled) now={self.timer.now} {timer} action={self.action.value}>"


def _from_snapshot(data):
    """Unpickle what this module's I6300ESB pickled as before the Watchdog base (wdcore
    0.1's first releases): like new pickles (_core_py.rebuild), in the implementation
    selected where it is loaded."""
    return rebuild(I6300ESB.KIND, data)
