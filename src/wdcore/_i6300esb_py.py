"""The Intel 6300ESB watchdog in plain Python: the fallback, and the oracle for the
compiled core (``_i6300esb.pyx``).  Behaviour: SPEC.md §3 (and §1.3 for the opt-in
stage-1 interrupt), bit for bit.  No cleverness here on purpose.
"""
from __future__ import annotations

from wdcore import _snapshot
from wdcore._args import (as_int, check_bytes, check_delta, check_size, check_time,
                          check_value)
from wdcore._ib700_py import ArmCounter
from wdcore.actions import ACTION_CODE, ACTIONS, WatchdogAction, WatchdogEvent, coerce_action, deliver
from wdcore.regs import (CFG_SIZE, CFG_WDT_CONFIG, CFG_WDT_LOCK, CONFIG_RESET_OFFSETS,
                         INITIAL_CONFIG, INT_TYPE_MASK, MMIO_SIZE, PRELOAD_MASK, PRELOAD_RESET, PROFILES,
                         REG_GINTSR, REG_PRELOAD1, REG_PRELOAD2, REG_RELOAD, RELOAD_CLEAR_FLAG,
                         RELOAD_PING, RELOAD_READ_FLAG, UNLOCK1, UNLOCK2, WDT_1MHZ,
                         WDT_FREE_RUN, WDT_ENABLE, WDT_LOCK, WDT_REBOOT_DISABLE, WMASK,
                         duration_ns, piece_size)


def check_cfg_offset(offset) -> int:
    off = as_int(offset, "offset")
    if off < 0 or off >= CFG_SIZE:
        raise ValueError(f"offset must be in 0..0xff, not {off}")
    return off


def check_mmio_offset(offset, size: int) -> int:
    off = as_int(offset, "offset")
    if off < 0 or off + size > MMIO_SIZE:
        raise ValueError(f"offset {off} with size {size} is outside the 16-byte BAR0")
    return off


class I6300ESB:
    """Intel 6300ESB watchdog (QEMU ``i6300esb``), PCI 8086:25ab."""

    def __init__(self, *, action: WatchdogAction | str = WatchdogAction.RESET, on_expire=None,
                 profile: str = "qemu", stage1_interrupt: bool = False) -> None:
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
        if not isinstance(stage1_interrupt, bool):
            raise TypeError(f"stage1_interrupt must be a bool, not {type(stage1_interrupt).__name__}")
        self._action = ACTION_CODE[coerce_action(action)]
        self._profile = PROFILES.index(profile)
        self._s1i = stage1_interrupt
        self.on_expire = on_expire
        self.on_irq = None
        self._events: list[WatchdogEvent] = []
        self._expiries = 0
        self._counter = ArmCounter()
        self._sink = None
        self._timers_on = True
        self._now = 0
        self._prev_reboot = False
        self._cfg = bytearray(INITIAL_CONFIG)
        self._gintsr = False
        self._armed = False
        self._deadline = 0
        self._seq = 0
        self._watchdog_reset()

    def _watchdog_reset(self) -> None:
        """The watchdog part of every reset (SPEC.md §3.8); the flag survives."""
        self._armed = False
        self._deadline = 0
        self._seq = 0
        self._enabled = False
        self._locked = False
        self._free_run = False
        self._reboot_disabled = False
        self._one_mhz = False
        self._int_type = 0
        self._preload = [PRELOAD_RESET, PRELOAD_RESET]
        self._stage = 1
        self._unlock = 0
        self._set_gintsr(False)

    # --- configuration space --------------------------------------------------------
    def config_read(self, offset, size) -> int:
        off = check_cfg_offset(offset)
        size = check_size(size)
        if off == CFG_WDT_CONFIG and size == 2:
            return self._wdt_config()
        if off == CFG_WDT_LOCK and size == 1:
            return self._wdt_lock()
        value = 0
        for i in range(size):
            if off + i < CFG_SIZE:  # lanes past 0xff read 0
                value |= self._cfg[off + i] << (8 * i)
        return value

    def config_write(self, offset, size, value) -> None:
        off = check_cfg_offset(offset)
        size = check_size(size)
        value = check_value(value, size)
        if off == CFG_WDT_CONFIG and size == 2:
            self._reboot_disabled = bool(value & WDT_REBOOT_DISABLE)
            self._one_mhz = bool(value & WDT_1MHZ)
            self._int_type = value & INT_TYPE_MASK[self._profile]
        elif off == CFG_WDT_LOCK and size == 1:
            if not self._locked:
                was_enabled = self._enabled
                self._locked = bool(value & WDT_LOCK)
                self._free_run = bool(value & WDT_FREE_RUN)
                self._enabled = bool(value & WDT_ENABLE)
                if self._enabled and not was_enabled:
                    self._start(1)
                elif not self._enabled:
                    self._stop()
        else:
            for i in range(size):
                o = off + i
                if o < CFG_SIZE:
                    byte = (value >> (8 * i)) & 0xFF
                    self._cfg[o] = (self._cfg[o] & ~WMASK[o]) | (byte & WMASK[o])
        self._end_access()

    def _wdt_config(self) -> int:
        return ((WDT_REBOOT_DISABLE if self._reboot_disabled else 0)
                | (WDT_1MHZ if self._one_mhz else 0) | self._int_type)

    def _wdt_lock(self) -> int:
        return ((WDT_FREE_RUN if self._free_run else 0) | (WDT_ENABLE if self._enabled else 0)
                | (WDT_LOCK if self._locked else 0))

    # --- BAR0 registers -----------------------------------------------------------------
    def mmio_read(self, offset, size) -> int:
        size = check_size(size)
        off = check_mmio_offset(offset, size)
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

    def mmio_write(self, offset, size, value) -> None:
        size = check_size(size)
        value = check_value(value, size)
        off = check_mmio_offset(offset, size)
        pos = off
        while pos < off + size:
            n = piece_size(pos, off + size - pos)
            self._write_piece(pos, n, (value >> (8 * (pos - off))) & ((1 << (8 * n)) - 1))
            pos += n
        self._end_access()

    def _write_piece(self, addr: int, width: int, v: int) -> None:
        if addr == REG_RELOAD and v == UNLOCK1:
            self._unlock = 1
        elif addr == REG_RELOAD and v == UNLOCK2 and self._unlock == 1:
            self._unlock = 2
        elif width == 1:
            pass  # bytes never reload, load or consume
        elif width == 2 and self._unlock == 2:
            if addr == REG_RELOAD:
                if v & RELOAD_PING:
                    self._start(1)
                if v & RELOAD_CLEAR_FLAG:
                    self._prev_reboot = False
            self._unlock = 0
        elif width == 4 and self._unlock == 2:
            if addr == REG_PRELOAD1:
                self._preload[0] = v & PRELOAD_MASK
            elif addr == REG_PRELOAD2:
                self._preload[1] = v & PRELOAD_MASK
            self._unlock = 0
        if self._s1i and addr <= REG_GINTSR < addr + width and (v >> (8 * (REG_GINTSR - addr))) & 1:
            self._set_gintsr(False)  # write 1 to clear

    # --- the two-stage timer ----------------------------------------------------------------
    def _duration(self, stage: int) -> int:
        return duration_ns(self._preload[stage - 1], self._one_mhz)

    def _start(self, stage: int) -> None:
        if not self._enabled:
            return
        self._stage = stage
        self._armed = True
        self._deadline = self._now + self._duration(stage)
        self._seq = self._counter.value
        self._counter.value += 1

    def _stop(self) -> None:
        self._armed = False
        self._deadline = 0
        self._seq = 0

    def _set_gintsr(self, level: bool) -> None:
        changed = level != self._gintsr
        self._gintsr = level
        if changed and self.on_irq is not None:
            self.on_irq(level)

    def _end_access(self) -> None:
        # a zero-length stage armed by the access fires at its end, at the same now
        while self._timers_on and self._armed and self._deadline <= self._now:
            self._expire()

    def _expire(self) -> int:
        """Handle the current deadline (one stage end).  Returns WatchdogEvents produced."""
        if self._deadline > self._now:
            self._now = self._deadline  # an overdue deadline fires at the current now
        self._stop()
        if self._stage == 1:
            if self._s1i and self._int_type == 0:
                self._set_gintsr(True)
            self._start(2)
            return 0
        if self._reboot_disabled:
            if self._free_run and (self._preload[0] or self._preload[1]):
                self._start(1)  # free-running: stages alternate, no event
            # else (or a zero-length cycle, which would spin): stay in stage 2, idle
            return 0
        self._prev_reboot = True
        self._watchdog_reset()  # the device resets itself; BAR0 and command stay
        self._expiries += 1
        deliver(WatchdogEvent(self._now, "i6300esb", ACTIONS[self._action]), self._events, self.on_expire, self._sink)
        return 1

    def _free_run_period(self) -> int:
        """Length of one unobservable free-running cycle, or 0 if none applies."""
        if not (self._reboot_disabled and self._free_run and self._enabled):
            return 0
        if self._s1i and self._int_type == 0 and not self._gintsr:
            return 0  # the next stage-1 end is observable (GINTSR rises)
        return self._duration(1) + self._duration(2)

    def _skip_cycles(self, limit: int) -> None:
        """Jump whole free-running cycles whose ends are all before ``limit``.

        Equal, observably, to handling each stage end one by one: no events, GINTSR
        already at its level, and the arming counter moves by two per cycle."""
        period = self._free_run_period()
        if period and self._armed and self._deadline >= self._now and self._deadline < limit:
            k = (limit - 1 - self._deadline) // period
            if k > 0:
                self._deadline += k * period
                self._counter.value += 2 * k
                self._seq = self._counter.value - 1

    # --- time -------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self._now

    @property
    def next_deadline(self):
        return self._deadline if self._armed else None

    @property
    def remaining_ns(self):
        return max(self._deadline - self._now, 0) if self._armed else None

    @property
    def stage(self) -> int:
        return self._stage

    @property
    def irq_level(self) -> bool:
        return self._gintsr

    def advance(self, delta_ns) -> int:
        return self._run_until(check_delta(self._now, delta_ns))

    def advance_to(self, t_ns) -> int:
        return self._run_until(check_time(self._now, t_ns))

    def _run_until(self, t: int) -> int:
        before = self._expiries
        while self._timers_on and self._armed and self._deadline <= t:
            self._skip_cycles(t + 1)
            self._expire()
        self._now = t
        return self._expiries - before

    # --- Machine hooks (not public API) ---------------------------------------------------------
    def _due_key(self, t: int):
        if self._armed and self._deadline <= t and self._timers_on:
            return (self._deadline, self._seq)
        return None

    def _set_now(self, t: int) -> None:
        self._now = t

    def _share_counter(self, counter: ArmCounter) -> None:
        self._counter = counter

    def _bar0(self):
        """BAR0's base while the device decodes memory, else None (SPEC.md §5.3)."""
        if not self._cfg[0x04] & 0x02:
            return None
        base = int.from_bytes(self._cfg[0x10:0x14], "little") & 0xFFFFFFF0
        if base == 0 or base > 0xFFFFFFE0:
            return None
        return base

    # --- configuration, events --------------------------------------------------------------------
    @property
    def action(self) -> WatchdogAction:
        return ACTIONS[self._action]

    @action.setter
    def action(self, action) -> None:
        self._action = ACTION_CODE[coerce_action(action)]

    @property
    def profile(self) -> str:
        return PROFILES[self._profile]

    @property
    def stage1_interrupt(self) -> bool:
        return self._s1i

    @property
    def events(self) -> list[WatchdogEvent]:
        return self._events

    def clear_events(self) -> None:
        self._events.clear()

    # --- reset, snapshot ----------------------------------------------------------------------------
    def reset(self) -> None:
        """Power-on/system reset: the watchdog, and command, BAR0, cache line and
        interrupt line; raw 0x40..0xff and the previous-reboot flag survive."""
        self._watchdog_reset()
        for o in CONFIG_RESET_OFFSETS:
            self._cfg[o] = INITIAL_CONFIG[o]

    def snapshot(self) -> bytes:
        return _snapshot.pack_i6300esb(
            self._now, self._action, self._armed, self._deadline, self._seq, self._counter.value,
            self._profile, self._s1i, self._enabled, self._locked, self._free_run,
            self._reboot_disabled, self._one_mhz, self._int_type, self._preload[0],
            self._preload[1], self._stage, self._unlock, self._prev_reboot, self._gintsr,
            bytes(self._cfg))

    def restore(self, data) -> None:
        self._apply(_snapshot.unpack_i6300esb(check_bytes(data)))

    def _apply(self, f) -> None:
        (self._now, self._action, armed, self._deadline, self._seq, self._counter.value,
         self._profile, s1i, enabled, locked, free_run, reboot_disabled, one_mhz,
         self._int_type, p1, p2, self._stage, self._unlock, prev, gintsr, cfg) = f
        self._armed, self._s1i, self._enabled, self._locked = bool(armed), bool(s1i), bool(enabled), bool(locked)
        self._free_run, self._reboot_disabled, self._one_mhz = bool(free_run), bool(reboot_disabled), bool(one_mhz)
        self._preload = [p1, p2]
        self._prev_reboot, self._gintsr = bool(prev), bool(gintsr)
        self._cfg = bytearray(cfg)

    def __reduce__(self):
        return (_from_snapshot, (self.snapshot(),))

    def __repr__(self) -> str:
        timer = f"stage {self._stage} deadline={self._deadline}" if self._armed else f"stage {self._stage} idle"
        return f"<I6300ESB (python) now={self._now} {timer} action={ACTIONS[self._action].value}>"


def _from_snapshot(data: bytes) -> I6300ESB:
    dev = I6300ESB()
    dev.restore(data)
    return dev
