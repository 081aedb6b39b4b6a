"""The Machine's core in plain Python: the PC bus, the timer list, run state, QEMU's
requests, expiry delivery and the event log.  The fallback, and the oracle for
``_machine.pyx``, which it mirrors in behaviour, line for line.

It reaches a device only through the Watchdog contract (``_core_py``) for time and
expiries, and through the device's own ``c_*`` access methods for the bus.
Behaviour: SPEC.md §4 (actions, requests at the end of the operation, run states) and
§5 (port splitting, configuration mechanism #1, BAR0 decode).
"""
from __future__ import annotations

import signal
import threading
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union

from wdcore import ops as _ops
from wdcore._core_py import (CALL_ACTION, CALL_ADVANCE, CALL_ADVANCE_TO, CALL_CLEAR_EVENTS,
                             CALL_IO_READ, CALL_IO_WRITE, CALL_MEM_READ, CALL_MEM_WRITE,
                             CALL_PAUSE, CALL_RESUME, CALL_RUN, CALL_SYSTEM_RESET, WD_DUE,
                             WD_SIGNAL, ArmCounter, Guard, Timer, Watchdog, check_addr, check_callback,
                             check_delta, check_port, check_size, check_time, check_value,
                             guarded, piece_size, raise_held, timer_before, timer_due)
from wdcore.actions import (ACTION_CODE, ACTIONS, EFFECTS, GUEST_RESET, HOST_RESET, RUN_STATES,
                            Request, RunState, WatchdogAction, coerce_action)
from wdcore.regs import (BAR0_SIZE, IB700_PORT_FIRST, IB700_PORT_LAST, PC_BUS,
                         PCI_CONFIG_ADDRESS, PCI_CONFIG_DATA, PCI_CONFIG_END)

# run states, by code: positions in actions.RUN_STATES
RUNNING, WATCHDOG, PAUSED, PRELAUNCH, SHUTDOWN, POWEROFF = (RUN_STATES.index(s) for s in RunState)
REQ_SHUTDOWN, REQ_RESET, REQ_POWERDOWN, REQ_STOP = (int(r) for r in Request)
RUN_END, RUN_FINISHED, RUN_MAX_OPS, RUN_MAX_EVENTS, RUN_ERROR = range(len(_ops.RUN_STOPS))
CONFIG_ENABLE, CONFIG_BUS, CONFIG_DEVICE, CONFIG_FUNCTION, CONFIG_OFFSET = (
    PC_BUS.bit("CONFIG_ADDRESS", f) for f in ("ENABLE", "BUS", "DEVICE", "FUNCTION", "OFFSET"))
CONFIG_DEVICE_SHIFT = PC_BUS.const("CONFIG_DEVICE_SHIFT")

if TYPE_CHECKING:
    #: one entry of the event log (machine.MachineEvent's shape)
    _Event = dict[str, object]

    class _Device(Protocol):
        """The Watchdog contract (``_core_py.Watchdog``'s c_* methods), as the core uses it."""

        @property
        def action(self) -> WatchdogAction: ...
        @action.setter
        def action(self, action: Union[WatchdogAction, str]) -> None: ...
        def c_join(self, counter: ArmCounter, errors: list[BaseException]) -> None: ...
        def c_timer(self) -> Timer: ...
        def c_action_code(self) -> int: ...
        def c_set_action_code(self, code: int) -> None: ...
        def clear_events(self) -> None: ...
        def c_skip(self, limit: int) -> None: ...
        def c_expire(self) -> int: ...
        def c_notify(self) -> None: ...
        def c_signal(self) -> None: ...
        def c_reset(self) -> None: ...

    class _PortDevice(_Device, Protocol):
        """The IB700 on the bus: its ports."""

        def c_write(self, port: int, size: int, value: int) -> int: ...

    class _PciDevice(_Device, Protocol):
        """The i6300ESB on the bus: its configuration space and BAR0."""

        def c_config_read(self, off: int, size: int) -> int: ...
        def c_config_write(self, off: int, size: int, value: int) -> int: ...
        def c_mmio_read(self, off: int, size: int) -> int: ...
        def c_mmio_write(self, off: int, size: int, value: int) -> int: ...
        def c_bar0(self) -> int: ...


def _ones(n: int) -> int:
    return (1 << (8 * n)) - 1


def _io_region_base(addr: int) -> int:
    """First port of the region holding ``addr`` for the split (SPEC.md §5.1):
    CONFIG_ADDRESS, CONFIG_DATA, or the unclaimed space counted from port 0."""
    if PCI_CONFIG_ADDRESS <= addr < PCI_CONFIG_DATA:
        return PCI_CONFIG_ADDRESS
    if PCI_CONFIG_DATA <= addr < PCI_CONFIG_END:
        return PCI_CONFIG_DATA
    return 0


class _SigintBetweenOps:
    """The twin's run holds a Ctrl-C until the op in progress has ended, as the compiled
    run sees signals only between ops and in host callbacks: on the main thread,
    SIGINT's Python handler is replaced for the run by one that notes the signal, and
    ``deliver`` (between two ops) or the run's end calls the original with it (the
    default raises KeyboardInterrupt).  A signal that lands inside a host callback is
    the callback's at once (so Ctrl-C still breaks a callback that hangs), exactly as
    the compiled core's callbacks see it.  Elsewhere, or with a handler that is not
    Python's, it does nothing."""

    def __init__(self) -> None:
        self.held: Optional[tuple[int, Any]] = None
        self.handler: Optional[Callable[[int, Any], object]] = None

    def __enter__(self) -> _SigintBetweenOps:
        if threading.current_thread() is threading.main_thread():
            handler = signal.getsignal(signal.SIGINT)
            if callable(handler):
                self.handler = handler
                signal.signal(signal.SIGINT, self.hold)
        return self

    def hold(self, signum: int, frame: Any) -> None:
        # inside a callback when a frame that calls one (c_call, c_log) is an outer frame:
        # their only call is the callback, inside the try that holds its exception
        outer = frame.f_back if frame is not None else None
        while outer is not None:
            if outer.f_code in _CALLBACK_CALLERS:
                assert self.handler is not None  # installed only with one (__enter__)
                self.handler(signum, frame)
                return
            outer = outer.f_back
        self.held = (signum, frame)

    def deliver(self) -> None:
        if self.held is not None and self.handler is not None:
            signum, frame = self.held
            self.held = None
            self.handler(signum, frame)

    def __exit__(self, *exc: object) -> None:
        if self.handler is not None:
            signal.signal(signal.SIGINT, self.handler)
            self.deliver()


class MachineCore:
    """Routing, time, run state, requests and the event log of one Machine."""

    def __init__(self, ib700: Optional[_PortDevice], i6300esb: Optional[_PciDevice],
                 counter: ArmCounter, esb_slot: int, reboot_shutdown: bool,
                 action_code: int) -> None:
        # callbacks' exceptions (its own and its devices'), held until the end of the operation
        self.__errors: list[BaseException] = []
        self.__ib = ib700
        self.__esb = i6300esb
        self.__devices: tuple[_Device, ...] = tuple(d for d in (ib700, i6300esb) if d is not None)
        for dev in self.__devices:
            dev.c_join(counter, self.__errors)
        self._guard = Guard()  # the public call in progress, and its thread
        self.__timers = [dev.c_timer() for dev in self.__devices]
        self.__esb_slot = esb_slot
        self.__reboot_shutdown = reboot_shutdown
        self.__action_no = action_code
        self.__now_ns = 0
        self.__status_no = RUNNING
        self.__cfg_addr = 0
        self.__requests = 0
        self.__reset_data: Optional[dict[str, object]] = None  # data of the pending reset or shutdown request
        self.__expiries = 0               # WATCHDOG events so far
        self.__logged = 0                 # events logged so far (a run's events bound)
        self.__log: list[_Event] = []
        self.__capture: Optional[list[_Event]] = None  # the events of the run in progress
        self.__on_event: Optional[Callable[[_Event], object]] = None

    # --- port I/O -------------------------------------------------------------------------
    @guarded(CALL_IO_WRITE)
    def io_write(self, port: int, size: int, value: int) -> None:
        """A guest OUT of ``size`` bytes to ``port``."""
        port = check_port(port)
        size = check_size(size)
        value = check_value(value, size)
        self.c_io_write(port, size, value)
        if not self._guard.nested:  # nested: part of the operation in progress, which ends it
            self.c_end_operation()

    @guarded(CALL_IO_READ)
    def io_read(self, port: int, size: int) -> int:
        """A guest IN of ``size`` bytes from ``port`` (from a callback: the value at that
        instant, inside the operation in progress)."""
        port = check_port(port)
        size = check_size(size)
        return self.c_io_read(port, size)  # a read ends no operation: it raises no request

    def c_io_write(self, port: int, size: int, value: int) -> None:
        if self.__status_no >= SHUTDOWN:
            return
        off = 0
        while off < size:
            addr = port + off
            if self.__ib is not None and IB700_PORT_FIRST <= addr <= IB700_PORT_LAST:
                n = size - off  # the IB700 block takes all remaining bytes as one access
                self.c_access_done(self.__ib, self.__ib.c_write(addr, n, (value >> (8 * off)) & _ones(n)))
            else:
                base = _io_region_base(addr)
                n = piece_size(addr - base, size - off)
                piece = (value >> (8 * off)) & _ones(n)
                if base == PCI_CONFIG_ADDRESS:
                    if addr == PCI_CONFIG_ADDRESS and n == 4:
                        self.__cfg_addr = piece
                elif base == PCI_CONFIG_DATA:
                    offset = self.c_config_target(addr - PCI_CONFIG_DATA)
                    if offset >= 0:
                        # offset >= 0 only with an i6300ESB (c_config_target)
                        self.c_access_done(self.__esb, self.__esb.c_config_write(offset, n, piece))  # type: ignore[arg-type, union-attr]
            off += n

    def c_io_read(self, port: int, size: int) -> int:
        if self.__status_no >= SHUTDOWN:
            return _ones(size)
        result, off = 0, 0
        while off < size:
            addr = port + off
            if self.__ib is not None and IB700_PORT_FIRST <= addr <= IB700_PORT_LAST:
                n = size - off
                piece = _ones(n)  # the IB700 reads all-ones
            else:
                base = _io_region_base(addr)
                n = piece_size(addr - base, size - off)
                if base == PCI_CONFIG_ADDRESS:
                    piece = self.__cfg_addr & _ones(n)
                elif base == PCI_CONFIG_DATA:
                    offset = self.c_config_target(addr - PCI_CONFIG_DATA)
                    # offset >= 0 only with an i6300ESB (c_config_target)
                    piece = _ones(n) if offset < 0 else self.__esb.c_config_read(offset, n) & _ones(n)  # type: ignore[union-attr]
                else:
                    piece = _ones(n)  # unclaimed
            result |= piece << (8 * off)
            off += n
        return result

    def c_config_target(self, k: int) -> int:
        """Configuration mechanism #1: the i6300ESB's register offset for data port
        offset k, or -1 (bit 31 clear, another function, or no i6300ESB; §5.2)."""
        ca = self.__cfg_addr
        if not ca & CONFIG_ENABLE or self.__esb is None:
            return -1
        if (ca & CONFIG_BUS or (ca & CONFIG_DEVICE) >> CONFIG_DEVICE_SHIFT != self.__esb_slot
                or ca & CONFIG_FUNCTION):
            return -1
        return (ca & CONFIG_OFFSET) | k  # bits 1:0 are OR-ed with the data port offset, not added

    # --- memory ----------------------------------------------------------------------------
    @guarded(CALL_MEM_WRITE)
    def mem_write(self, addr: int, size: int, value: int) -> None:
        """A guest store of ``size`` bytes at physical ``addr``."""
        size = check_size(size)
        addr = check_addr(addr, size)
        value = check_value(value, size)
        self.c_mem_write(addr, size, value)
        if not self._guard.nested:
            self.c_end_operation()

    @guarded(CALL_MEM_READ)
    def mem_read(self, addr: int, size: int) -> int:
        """A guest load of ``size`` bytes at physical ``addr`` (from a callback: the value
        at that instant)."""
        size = check_size(size)
        addr = check_addr(addr, size)
        return self.c_mem_read(addr, size)

    def c_mem_write(self, addr: int, size: int, value: int) -> None:
        if self.__status_no >= SHUTDOWN:
            return
        bar = self.__esb.c_bar0() if self.__esb is not None else 0  # re-read per access, never cached
        off = 0
        while off < size:
            a = addr + off
            inside = bar != 0 and bar <= a < bar + BAR0_SIZE
            n = piece_size(a - bar if inside else a, size - off)
            if inside:  # elsewhere: unassigned, the write is dropped
                # inside only with an i6300ESB (bar is 0 without one)
                self.c_access_done(self.__esb, self.__esb.c_mmio_write(a - bar, n, (value >> (8 * off)) & _ones(n)))  # type: ignore[arg-type, union-attr]
            off += n

    def c_mem_read(self, addr: int, size: int) -> int:
        if self.__status_no >= SHUTDOWN:
            return 0
        bar = self.__esb.c_bar0() if self.__esb is not None else 0
        result, off = 0, 0
        while off < size:
            a = addr + off
            inside = bar != 0 and bar <= a < bar + BAR0_SIZE
            n = piece_size(a - bar if inside else a, size - off)
            if inside:  # unassigned memory reads 0 per lane
                # inside only with an i6300ESB (bar is 0 without one)
                result |= self.__esb.c_mmio_read(a - bar, n) << (8 * off)  # type: ignore[union-attr]
            off += n
        return result

    def c_access_done(self, dev: _Device, flags: int) -> None:
        """After one device access: its line change, then what it made due at now (a
        zero-length timeout fires at the end of its access)."""
        if flags & WD_SIGNAL:
            dev.c_signal()
        if flags & WD_DUE:
            self.c_fire_due(self.__now_ns)

    # --- time -------------------------------------------------------------------------------
    @property
    def now(self) -> int:
        """Current virtual time, ns."""
        return self.__now_ns

    @property
    def next_deadline(self) -> Optional[int]:
        """The earliest device deadline in ns while running, else None; None too when it
        lies past the end of virtual time (2**63-1 ns), where it is never reached."""
        d = self.c_next_deadline()
        return d if d is not None and d <= _ops.TIME_MAX_NS else None

    def c_next_deadline(self) -> Optional[int]:
        """The earliest armed deadline while running, past the end of time too, else None
        (a bare clock_step saturates it)."""
        if self.__status_no != RUNNING:
            return None
        armed = [t.deadline for t in self.__timers if t.armed]
        return min(armed) if armed else None

    @guarded(CALL_ADVANCE)
    def advance(self, delta_ns: int) -> int:
        """Move time forward by ``delta_ns`` ns; returns the expiries handled."""
        return self.c_run_until(check_delta(self.__now_ns, delta_ns))

    @guarded(CALL_ADVANCE_TO)
    def advance_to(self, t_ns: int) -> int:
        """Move time to ``t_ns`` ns (>= now); returns the expiries handled."""
        return self.c_run_until(check_time(self.__now_ns, t_ns))

    def c_run_until(self, t: int) -> int:
        before = self.__expiries  # counts expiries caused by callbacks too
        if self.__status_no == RUNNING:
            self.c_fire_due(t)
            if self.__status_no == POWEROFF:  # QEMU exited inside the expiry: time stays there
                self.c_end_operation()
                return self.__expiries - before
        self.c_set_now(t)
        self.c_end_operation()
        return self.__expiries - before

    def c_fire_due(self, t: int) -> None:
        """Handle every device deadline <= t, one at a time, in (deadline, arming) order."""
        while self.__status_no == RUNNING:
            best = -1
            for i, timer in enumerate(self.__timers):
                if timer_due(timer, t) and (best < 0 or timer_before(timer, self.__timers[best])):
                    best = i
            if best < 0:
                break
            self.c_expire_one(best, t)

    def c_expire_one(self, i: int, t: int) -> None:
        dev = self.__devices[i]
        # whole unobservable cycles that end before anything else is due are jumped
        # in O(1) (SPEC.md §3.6)
        limit = min([t + 1] + [other.deadline for j, other in enumerate(self.__timers)
                               if j != i and timer_due(other, t)])
        dev.c_skip(limit)
        if self.__timers[i].deadline > self.__now_ns:
            self.c_set_now(self.__timers[i].deadline)  # overdue deadlines fire at the current now
        if dev.c_expire():
            self.c_deliver(dev)

    def c_deliver(self, dev: _Device) -> None:
        """The one place an expiry becomes its effect (SPEC.md §4.2, §4.5): the device's
        log and on_expire, then, even if that raised, WATCHDOG and the action's effect."""
        code, when = dev.c_action_code(), self.__now_ns
        try:
            dev.c_notify()
        finally:
            self.__expiries += 1
            effect = EFFECTS[code]
            self.c_log("WATCHDOG", {"action": ACTIONS[code].value}, when)
            if effect.immediate_event is not None:
                self.c_log(effect.immediate_event, {}, when)
            if effect.power_off:
                self.__requests = 0
                self.c_set_status(POWEROFF)
            else:
                if effect.request & REQ_RESET:
                    self.c_request_reset(GUEST_RESET)
                self.__requests |= int(effect.request) & ~REQ_RESET

    def c_set_now(self, t: int) -> None:
        self.__now_ns = t
        for timer in self.__timers:
            timer.now = t

    # --- run state -------------------------------------------------------------------------
    @property
    def status_code(self) -> int:
        return self.__status_no

    @property
    def action(self) -> WatchdogAction:
        """The action in force; settable at any time, like QMP watchdog-set-action."""
        return ACTIONS[self.__action_no]

    @action.setter
    @guarded(CALL_ACTION)
    def action(self, action: Union[WatchdogAction, str]) -> None:
        code = ACTION_CODE[coerce_action(action)]
        self.__action_no = code
        for dev in self.__devices:
            dev.c_set_action_code(code)

    @guarded(CALL_PAUSE)
    def pause(self) -> None:
        """Like QMP stop."""
        if self.__status_no == RUNNING:
            self.c_set_status(PAUSED)
            self.c_log("STOP", {}, self.__now_ns)
        self.c_end_operation()

    @guarded(CALL_RESUME)
    def resume(self) -> None:
        """Like QMP cont."""
        if self.__status_no in (WATCHDOG, PAUSED, PRELAUNCH):
            self.c_set_status(RUNNING)
            self.c_log("RESUME", {}, self.__now_ns)
            self.c_fire_due(self.__now_ns)
        self.c_end_operation()

    @guarded(CALL_SYSTEM_RESET)
    def system_reset(self) -> None:
        """Like QMP system_reset: every device's reset, at the end of the call."""
        if self.__status_no < SHUTDOWN:
            self.c_request_reset(HOST_RESET)
        self.c_end_operation()

    def c_set_status(self, status: int) -> None:
        self.__status_no = status
        for timer in self.__timers:
            timer.running = status == RUNNING

    def c_request_reset(self, data: dict[str, object]) -> None:
        kind = REQ_SHUTDOWN if self.__reboot_shutdown else REQ_RESET  # -no-reboot
        if not self.__requests & kind:
            self.__requests |= kind
            self.__reset_data = data

    def c_end_operation(self) -> None:
        """QEMU's main loop after a command: shutdown, reset, powerdown, stop; then the
        first exception a callback raised during the operation propagates."""
        while self.__requests:  # a callback's access during the processing may raise more
            self.c_process_requests()
        if self.__errors:
            self.c_raise_errors()

    def c_raise_errors(self) -> None:
        raise_held(self.__errors)

    def c_process_requests(self) -> None:
        requests, self.__requests = self.__requests, 0
        if self.__status_no >= SHUTDOWN:
            return
        if requests & REQ_SHUTDOWN:
            # set with the RESET or SHUTDOWN bit (c_request_reset)
            self.c_log("SHUTDOWN", dict(self.__reset_data), self.__now_ns)  # type: ignore[arg-type]
            self.c_set_status(SHUTDOWN)
            return
        if requests & REQ_RESET:
            for dev in self.__devices:
                dev.c_reset()
            # set with the RESET or SHUTDOWN bit (c_request_reset)
            self.c_log("RESET", dict(self.__reset_data), self.__now_ns)  # type: ignore[arg-type]
            if self.__status_no != RUNNING:
                self.c_set_status(PRELAUNCH)
        if requests & REQ_POWERDOWN:
            self.c_log("POWERDOWN", {}, self.__now_ns)
        if requests & REQ_STOP and self.__status_no == RUNNING:
            self.c_set_status(WATCHDOG)
            self.c_log("STOP", {}, self.__now_ns)

    # --- the event log ------------------------------------------------------------------------
    def c_log(self, name: str, data: dict[str, object], time_ns: int) -> None:
        entry: _Event = {"event": name, "data": data, "time_ns": time_ns}
        self.__logged += 1
        self.__log.append(entry)
        if self.__capture is not None:
            self.__capture.append(entry)
        if self.__on_event is not None:
            try:
                self.__on_event(entry)
            except BaseException as exc:  # noqa: BLE001 - held: raised at the end of the operation
                self.__errors.append(exc)

    @property
    def on_event(self) -> Optional[Callable[[_Event], object]]:
        """None or a callable taking each event dict as it is logged."""
        return self.__on_event

    @on_event.setter
    def on_event(self, fn: Optional[Callable[[_Event], object]]) -> None:
        check_callback(fn, "on_event")
        self.__on_event = fn

    @property
    def events(self) -> list[_Event]:
        """The QMP-shaped event log (API.md)."""
        return self.__log

    @guarded(CALL_CLEAR_EVENTS)
    def clear_events(self) -> None:
        """Empty the event log, and the devices' own logs of WatchdogEvents."""
        self.__log.clear()
        for dev in self.__devices:
            dev.clear_events()

    # --- the guard, for the front's calls (machine.py: snapshot, restore) --------------------
    def _guard_enter(self, call: int) -> bool:
        """Enter the guard for public call ``call``: True when entered (then
        _guard_leave), False when it nests; RuntimeError when refused."""
        return self._guard.enter(self, call)

    def _guard_leave(self) -> None:
        self._guard.leave()

    # --- op streams ---------------------------------------------------------------------------
    @guarded(CALL_RUN)
    def run_stream(self, data: bytes, max_ops: int, max_events: int, result: Any) -> None:
        """Execute a binary op stream within the bounds (< 0: none); fills ``result`` (a
        machine.RunResult) also when an exception ends the run."""
        reads: list[int] = []
        executed, consumed, stop = 0, 0, RUN_ERROR
        events_before, n = self.__logged, len(data)
        stream = _ops.iter_decode(data)
        self.__capture = []
        try:
            with _SigintBetweenOps() as sigint:
                while True:
                    # between two ops: every bound, and a Ctrl-C that came during the last
                    if self.__status_no >= SHUTDOWN:
                        stop = RUN_FINISHED
                        break
                    if consumed >= n:
                        stop = RUN_END
                        break
                    if max_ops >= 0 and executed >= max_ops:
                        stop = RUN_MAX_OPS
                        break
                    if max_events >= 0 and self.__logged - events_before >= max_events:
                        stop = RUN_MAX_EVENTS
                        break
                    sigint.deliver()
                    step = next(stream, None)
                    if step is None:  # a trailing partial op: not consumed
                        stop = RUN_END
                        break
                    # the op is consumed and counted before it runs: one that raises at
                    # its end has still happened
                    op, consumed = step
                    executed += 1
                    self.c_run_op(op, reads)
        finally:
            result.ops_executed, result.reads, result.events = executed, reads, self.__capture
            result.bytes_consumed, result.stopped = consumed, _ops.RUN_STOPS[stop]
            self.__capture = None

    def c_run_op(self, op: _ops.Op, reads: list[int]) -> None:
        """One op of a run, as one operation (the compiled c_run's loop body)."""
        # name fixes the op's arity (ops.decode), which mypy cannot see: the
        # ignore[misc] below are for indexing the ops.Op union
        name = op[0]
        if name == "clock_step":
            if len(op) == 1:  # bare: to the earliest deadline, if any (saturated below)
                target = self.c_next_deadline()
                if target is None:
                    target = self.__now_ns
            else:
                target = self.__now_ns + op[1]
            self.c_run_until(min(target, _ops.TIME_MAX_NS))  # saturates at 2**63-1 ns
        elif name == "clock_set":
            self.c_run_until(max(op[1], self.__now_ns))  # type: ignore[misc]
        else:
            size = _ops.WIDTH[name[-1]]
            kind = name[0]
            if kind == "o":
                self.c_io_write(op[1], size, op[2])  # type: ignore[misc]
            elif kind == "i":
                reads.append(self.c_io_read(op[1], size))  # type: ignore[misc]
            elif kind == "w":
                self.c_mem_write(op[1], size, op[2])  # type: ignore[misc]
            else:
                reads.append(self.c_mem_read(op[1], size))  # type: ignore[misc]
            self.c_end_operation()

    # --- snapshots: the twin has no codec of its own; machine.py's (_snapshot) is the oracle --
    def _snapshot_bytes(self, config: bytes) -> Optional[bytes]:
        """The compiled core writes the snapshot itself; the twin leaves it to the front."""
        return None

    def _restore_bytes(self, data: object, config: bytes) -> int:
        """The compiled core restores in C (1 applied, 0 refused); the twin: -1, the
        front's codec does it."""
        return -1

    # --- state for snapshots --------------------------------------------------------------------
    def get_state(self) -> tuple[int, int, int, int]:
        """(now, status code, action code, PCI CONFIG_ADDRESS)."""
        return self.__now_ns, self.__status_no, self.__action_no, self.__cfg_addr

    def set_state(self, now: int, status: int, action_code: int, config_address: int) -> None:
        self.__now_ns = now
        self.__action_no = action_code
        self.__cfg_addr = config_address
        self.__requests = 0
        self.c_set_status(status)


#: the code of the twin's functions that call host callbacks (_SigintBetweenOps.hold)
_CALLBACK_CALLERS = frozenset({Watchdog.c_call.__code__, MachineCore.c_log.__code__})
