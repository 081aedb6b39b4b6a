"""The Intel 6300ESB watchdog in plain Python: the fallback, and the oracle for the
compiled core (``_i6300esb.pyx``).  Behaviour: SPEC.md §3 (and §1.3 for the opt-in
stage-1 interrupt), bit for bit: register logic only, on the shared
:class:`~wdcore._core_py.Watchdog` base.  No cleverness here on purpose.
"""
from __future__ import annotations

from typing import Callable, Optional

from wdcore import _snapshot
from wdcore._core_py import (CALL_CONFIG_WRITE, CALL_MMIO_WRITE, COUNTER_MAX, WD_DUE, WD_SIGNAL, Watchdog,
                             check_bool, check_callback, guarded, rebuild, check_config_offset, check_size, check_value, check_window_offset,
                             piece_size)
from wdcore.actions import WatchdogAction, WatchdogEvent
from wdcore.regs import (CFG_SIZE, CFG_WDT_CONFIG, CFG_WDT_LOCK, CONFIG_RESET_OFFSETS,
                         ESB_CONFIG, INITIAL_CONFIG, INT_TYPE_MASK, MMIO_SIZE, PCI_BAR0,
                         PCI_COMMAND, PCI_COMMAND_MEMORY, PCI_CLOCK_NS, PRELOAD_MASK,
                         PRELOAD_RESET, PROFILES, REG_GINTSR, REG_PRELOAD1, REG_PRELOAD2,
                         REG_RELOAD, RELOAD_CLEAR_FLAG, RELOAD_PING, RELOAD_READ_FLAG,
                         SHIFT_1KHZ, SHIFT_1MHZ, UNLOCK1, UNLOCK2, WDT_1MHZ, WDT_ENABLE,
                         WDT_FREE_RUN, WDT_LOCK, WDT_REBOOT_DISABLE, WMASK)

BAR0_ADDR_MASK = ESB_CONFIG.const("BAR0_ADDR_MASK")
BAR0_BASE_MAX = ESB_CONFIG.const("BAR0_BASE_MAX")


def duration_ns(preload: int, one_mhz: bool) -> int:
    """Length of a stage: (preload << 5 or << 15) PCI clocks of 30 ns (SPEC.md §3.6)."""
    return (preload << (SHIFT_1MHZ if one_mhz else SHIFT_1KHZ)) * PCI_CLOCK_NS


class I6300ESB(Watchdog):
    """Intel 6300ESB watchdog (QEMU ``i6300esb``), PCI 8086:25ab."""

    KIND = "i6300esb"

    def __init__(self, *, action: WatchdogAction | str = WatchdogAction.RESET,
                 on_expire: Optional[Callable[[WatchdogEvent], object]] = None,
                 profile: str = "qemu", stage1_interrupt: bool = False) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
        check_bool(stage1_interrupt, "stage1_interrupt")
        super().__init__(action=action, on_expire=on_expire)
        self._profile_code = PROFILES.index(profile)
        self._int_mask = INT_TYPE_MASK[self._profile_code]
        self._s1i = stage1_interrupt
        self._on_irq: Optional[Callable[[bool], object]] = None
        self._prev_reboot = False
        self._gintsr = False
        self._cfg = bytearray(INITIAL_CONFIG)
        self.c_watchdog_reset()

    def c_watchdog_reset(self) -> None:
        """The watchdog part of every reset (SPEC.md §3.8); the flag survives."""
        self.c_disarm()
        self._enabled = False
        self._locked = False
        self._free_run = False
        self._reboot_disabled = False
        self._one_mhz = False
        self._int_type = 0
        self._preload = list(PRELOAD_RESET)  # per row: Preload Value 1, 2
        self._stage_no = 1
        self._unlock_state = 0
        self.c_set_gintsr(False)

    # --- configuration space --------------------------------------------------------
    def config_read(self, offset: int, size: int) -> int:
        """A configuration read of ``size`` bytes at ``offset`` (0..0xff)."""
        off = check_config_offset(offset)
        size = check_size(size)
        return self.c_config_read(off, size)

    @guarded(CALL_CONFIG_WRITE)
    def config_write(self, offset: int, size: int, value: int) -> None:
        """A configuration write of ``size`` bytes at ``offset`` (0..0xff)."""
        off = check_config_offset(offset)
        size = check_size(size)
        value = check_value(value, size)
        self.c_end_access(self.c_config_write(off, size, value))
        if not self._guard.nested:  # nested: held for the operation in progress
            self.c_raise_errors()

    def c_config_read(self, off: int, size: int) -> int:
        if off == CFG_WDT_CONFIG and size == 2:
            return ((WDT_REBOOT_DISABLE if self._reboot_disabled else 0)
                    | (WDT_1MHZ if self._one_mhz else 0) | self._int_type)
        if off == CFG_WDT_LOCK and size == 1:
            return ((WDT_FREE_RUN if self._free_run else 0) | (WDT_ENABLE if self._enabled else 0)
                    | (WDT_LOCK if self._locked else 0))
        value = 0
        for i in range(size):
            if off + i < CFG_SIZE:  # lanes past 0xff read 0
                value |= self._cfg[off + i] << (8 * i)
        return value

    def c_config_write(self, off: int, size: int, value: int) -> int:
        if off == CFG_WDT_CONFIG and size == 2:
            self._reboot_disabled = bool(value & WDT_REBOOT_DISABLE)
            self._one_mhz = bool(value & WDT_1MHZ)
            self._int_type = value & self._int_mask
        elif off == CFG_WDT_LOCK and size == 1:
            if not self._locked:
                was_enabled = self._enabled
                self._locked = bool(value & WDT_LOCK)
                self._free_run = bool(value & WDT_FREE_RUN)
                self._enabled = bool(value & WDT_ENABLE)
                if self._enabled and not was_enabled:
                    self.c_start(1)
                elif not self._enabled:
                    self.c_disarm()
        else:
            for i in range(size):
                o = off + i
                if o < CFG_SIZE:
                    byte = (value >> (8 * i)) & 0xFF
                    self._cfg[o] = (self._cfg[o] & ~WMASK[o]) | (byte & WMASK[o])
        return WD_DUE if self.c_due(self._timer.now) else 0

    # --- BAR0 registers -----------------------------------------------------------------
    def mmio_read(self, offset: int, size: int) -> int:
        """A read of ``size`` bytes at ``offset`` relative to BAR0 (offset + size <= 16)."""
        size = check_size(size)
        off = check_window_offset(offset, size, MMIO_SIZE, "BAR0")
        return self.c_mmio_read(off, size)

    @guarded(CALL_MMIO_WRITE)
    def mmio_write(self, offset: int, size: int, value: int) -> None:
        """A write of ``size`` bytes at ``offset`` relative to BAR0 (offset + size <= 16)."""
        size = check_size(size)
        value = check_value(value, size)
        off = check_window_offset(offset, size, MMIO_SIZE, "BAR0")
        self.c_end_access(self.c_mmio_write(off, size, value))
        if not self._guard.nested:  # nested: held for the operation in progress
            self.c_raise_errors()

    def c_mmio_read(self, off: int, size: int) -> int:
        value, pos = 0, off
        while pos < off + size:
            n = piece_size(pos, off + size - pos)
            piece = 0
            if pos == REG_RELOAD and n == 2:
                piece = RELOAD_READ_FLAG if self._prev_reboot else 0
            elif self._s1i and pos <= REG_GINTSR < pos + n:
                piece = int(self._gintsr) << (8 * (REG_GINTSR - pos))
            value |= piece << (8 * (pos - off))
            pos += n
        return value

    def c_mmio_write(self, off: int, size: int, value: int) -> int:
        flags, pos = 0, off
        while pos < off + size:
            n = piece_size(pos, off + size - pos)
            flags |= self._write_piece(pos, n, (value >> (8 * (pos - off))) & ((1 << (8 * n)) - 1))
            pos += n
        if self.c_due(self._timer.now):
            flags |= WD_DUE
        return flags

    def _write_piece(self, addr: int, width: int, v: int) -> int:
        if addr == REG_RELOAD and v == UNLOCK1:
            self._unlock_state = 1
        elif addr == REG_RELOAD and v == UNLOCK2 and self._unlock_state == 1:
            self._unlock_state = 2
        elif width == 1:
            pass  # bytes never reload, load or consume
        elif width == 2 and self._unlock_state == 2:
            if addr == REG_RELOAD:
                if v & RELOAD_PING:
                    self.c_start(1)
                if v & RELOAD_CLEAR_FLAG:
                    self._prev_reboot = False
            self._unlock_state = 0
        elif width == 4 and self._unlock_state == 2:
            if addr == REG_PRELOAD1:
                self._preload[0] = v & PRELOAD_MASK
            elif addr == REG_PRELOAD2:
                self._preload[1] = v & PRELOAD_MASK
            self._unlock_state = 0
        if (self._s1i and addr <= REG_GINTSR < addr + width
                and (v >> (8 * (REG_GINTSR - addr))) & 1 and self._gintsr):
            self._gintsr = False  # write 1 to clear; on_irq is told after the access
            return WD_SIGNAL
        return 0

    def c_bar0(self) -> int:
        """BAR0's base while the device decodes memory, else 0 (SPEC.md §5.3: command bit
        1 set, base not 0 and at most 0xFFFFFFE0)."""
        if not self._cfg[PCI_COMMAND] & PCI_COMMAND_MEMORY:
            return 0
        base = int.from_bytes(self._cfg[PCI_BAR0:PCI_BAR0 + 4], "little") & BAR0_ADDR_MASK
        return 0 if base > BAR0_BASE_MAX else base

    # --- the two-stage timer ----------------------------------------------------------------
    def c_start(self, stage: int) -> None:
        if not self._enabled:
            return
        self._stage_no = stage
        self.c_arm(duration_ns(self._preload[stage - 1], self._one_mhz))

    def c_set_gintsr(self, level: bool) -> None:
        changed = level != self._gintsr
        self._gintsr = level
        if changed and self._on_irq is not None:
            self.c_call(self._on_irq, level)

    def c_signal(self) -> None:
        if self._on_irq is not None:
            self.c_call(self._on_irq, self._gintsr)

    def c_fire(self) -> int:
        """One stage end; 1 when it is the expiry (stage 2 with reboot enabled)."""
        self.c_disarm()
        if self._stage_no == 1:
            # stage 2 first, then the line: an interrupt handler (on_irq) sees stage 2
            # counting, and its accesses (a reload, a preload) act on that
            self.c_start(2)
            if self._s1i and self._int_type == 0:
                self.c_set_gintsr(True)
            return 0
        if self._reboot_disabled:
            if self._free_run and (self._preload[0] or self._preload[1]):
                self.c_start(1)  # free-running: stages alternate, no event
            # else (or a zero-length cycle, which would spin): stay in stage 2, idle
            return 0
        self._prev_reboot = True
        self.c_watchdog_reset()  # the device resets itself; BAR0 and command stay
        return 1

    def c_skip(self, limit: int) -> None:
        """Jump whole free-running cycles whose ends are all before ``limit``.

        Equal, observably, to handling each stage end one by one: no events, GINTSR
        already at its level, and the arming counter moves by two per cycle."""
        t = self._timer
        if not (self._reboot_disabled and self._free_run and self._enabled and t.armed):
            return
        if self._s1i and self._int_type == 0 and not self._gintsr:
            return  # the next stage-1 end is observable (GINTSR rises)
        period = duration_ns(self._preload[0], self._one_mhz) + duration_ns(self._preload[1], self._one_mhz)
        if period == 0 or t.deadline < t.now or t.deadline >= limit:
            return
        k = (limit - 1 - t.deadline) // period
        if k > 0:
            t.deadline += k * period
            self._counter.value = min(self._counter.value + 2 * k, COUNTER_MAX)  # saturated, as c_arm
            t.seq = self._counter.value - 1

    def c_reset(self) -> None:
        """Power-on/system reset: the watchdog, and command, BAR0, cache line and
        interrupt line; raw 0x40..0xff and the previous-reboot flag survive."""
        self.c_watchdog_reset()
        for o in CONFIG_RESET_OFFSETS:
            self._cfg[o] = INITIAL_CONFIG[o]

    # --- state -------------------------------------------------------------------------------
    @property
    def remaining_ns(self) -> Optional[int]:
        """Time left in the current stage in ns, or None when not counting."""
        t = self._timer
        return max(t.deadline - t.now, 0) if t.armed else None

    @property
    def stage(self) -> int:
        """The stage counting or last counted: 1 or 2."""
        return self._stage_no

    @property
    def on_irq(self) -> Optional[Callable[[bool], object]]:
        """None or a callable taking the new level (bool) of the stage-1 interrupt line."""
        return self._on_irq

    @on_irq.setter
    def on_irq(self, fn: Optional[Callable[[bool], object]]) -> None:
        check_callback(fn, "on_irq")
        self._on_irq = fn

    @property
    def irq_level(self) -> bool:
        """The stage-1 interrupt line (GINTSR bit 0; only with stage1_interrupt=True)."""
        return self._gintsr

    @property
    def profile(self) -> str:
        return PROFILES[self._profile_code]

    @property
    def stage1_interrupt(self) -> bool:
        return self._s1i

    # --- snapshot (the record: _snapshot.I6300ESBState) ---------------------------------
    STATE = _snapshot.I6300ESBState

    def _state(self) -> _snapshot.I6300ESBState:
        return _snapshot.I6300ESBState(
            **self._timer_fields(), profile=self._profile_code, stage1_interrupt=self._s1i, enabled=self._enabled,
            locked=self._locked, free_run=self._free_run, reboot_disabled=self._reboot_disabled,
            one_mhz=self._one_mhz, int_type=self._int_type, preload1=self._preload[0],
            preload2=self._preload[1], stage=self._stage_no, unlock_state=self._unlock_state,
            prev_reboot=self._prev_reboot, gintsr=self._gintsr, config=bytes(self._cfg))

    def _apply(self, state: _snapshot.I6300ESBState) -> None:
        """Take a validated I6300ESBState."""
        self._apply_timer(state)
        self._profile_code = state.profile
        self._int_mask = INT_TYPE_MASK[state.profile]
        self._s1i = state.stage1_interrupt
        self._enabled = state.enabled
        self._locked = state.locked
        self._free_run = state.free_run
        self._reboot_disabled = state.reboot_disabled
        self._one_mhz = state.one_mhz
        self._int_type = state.int_type
        self._preload = [state.preload1, state.preload2]
        self._stage_no = state.stage
        self._unlock_state = state.unlock_state
        self._prev_reboot = state.prev_reboot
        self._gintsr = state.gintsr
        self._cfg = bytearray(state.config)

    def __repr__(self) -> str:
        t = self._timer
        timer = f"stage {self._stage_no} deadline={t.deadline}" if t.armed else f"stage {self._stage_no} idle"
        return f"<I6300ESB (python) now={t.now} {timer} action={self.action.value}>"


def _from_snapshot(data: bytes) -> object:
    """Unpickle what this module's I6300ESB pickled as before the Watchdog base (wdcore
    0.1's first releases): like new pickles (_core_py.rebuild), in the implementation
    selected where it is loaded."""
    return rebuild(I6300ESB.KIND, data)
