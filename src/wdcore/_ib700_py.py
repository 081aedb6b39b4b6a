"""The IB700 in plain Python: the fallback, and the oracle for the compiled core.

Same API and behaviour as ``_ib700.pyx``, bit for bit (SPEC.md §2).  No cleverness
here on purpose: this file is what the compiled core is checked against.
"""
from __future__ import annotations

from wdcore import _snapshot
from wdcore._args import check_bytes, check_delta, check_port, check_size, check_time, check_value
from wdcore.actions import ACTION_CODE, ACTIONS, WatchdogAction, WatchdogEvent, coerce_action, deliver

#: I/O ports: 0x441/0x442 stop the timer, 0x443/0x444 (re)start it.
IB700_PORT_FIRST = 0x441
IB700_PORT_LAST = 0x444
IB700_STOP_LAST = 0x442

#: Timeout per index (low nibble of the start write): 30 - 2*index seconds.
TIMEOUT_NS = tuple((30 - 2 * i) * 1_000_000_000 for i in range(16))


class ArmCounter:
    """Source of arming sequence numbers; a Machine shares one among its devices so
    that equal deadlines fire in arming order across devices (SPEC.md §1.4)."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0) -> None:
        self.value = value


class IB700:
    """iBase IB700 watchdog (QEMU ``ib700``)."""

    def __init__(self, *, action: WatchdogAction | str = WatchdogAction.RESET,
                 on_expire=None) -> None:
        self._action = ACTION_CODE[coerce_action(action)]
        self.on_expire = on_expire
        self._events: list[WatchdogEvent] = []
        self._now = 0
        self._armed = False
        self._deadline = 0
        self._seq = 0
        self._counter = ArmCounter()
        self._sink = None          # the Machine's expiry hook
        self._timers_on = True     # False while a Machine is stopped
        self._expiries = 0         # WatchdogEvents produced so far (advance's return value)

    # --- guest side -----------------------------------------------------------
    def io_write(self, port, size, value) -> None:
        port = check_port(port)
        size = check_size(size)
        value = check_value(value, size)
        if size == 4 or port < IB700_PORT_FIRST or port > IB700_PORT_LAST:
            return  # dwords reach no handler; other ports are not ours
        self._write_byte(port, value & 0xFF)
        if size == 2 and (port == 0x441 or port == 0x443):
            self._write_byte(port + 1, value >> 8)  # 0x442/0x444 words: high byte dropped
        if self._armed and self._deadline <= self._now and self._timers_on:
            self._expire()  # a zero timeout fires at the end of the access

    def io_read(self, port, size) -> int:
        check_port(port)
        size = check_size(size)
        return (1 << (8 * size)) - 1

    def _write_byte(self, port: int, byte: int) -> None:
        if port <= IB700_STOP_LAST:
            self._armed = False
            self._deadline = 0
            self._seq = 0
        else:
            self._armed = True
            self._deadline = self._now + TIMEOUT_NS[byte & 0x0F]
            self._seq = self._counter.value
            self._counter.value += 1

    # --- time -------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self._now

    @property
    def next_deadline(self):
        return self._deadline if self._armed else None

    def advance(self, delta_ns) -> int:
        return self._run_until(check_delta(self._now, delta_ns))

    def advance_to(self, t_ns) -> int:
        return self._run_until(check_time(self._now, t_ns))

    def _run_until(self, t: int) -> int:
        before = self._expiries  # callbacks may cause more expiries: count them all
        while self._timers_on and self._armed and self._deadline <= t:
            self._expire()
        self._now = t
        return self._expiries - before

    def _expire(self) -> int:
        if self._deadline > self._now:
            self._now = self._deadline  # an overdue deadline fires at the current now
        self._armed = False
        self._deadline = 0
        self._seq = 0
        self._expiries += 1
        deliver(WatchdogEvent(self._now, "ib700", ACTIONS[self._action]), self._events, self.on_expire, self._sink)
        return 1

    # --- Machine hooks (not public API) ---------------------------------------------
    def _due_key(self, t: int):
        """``(deadline, seq)`` when an expiry is due by ``t``, else None."""
        if self._armed and self._deadline <= t and self._timers_on:
            return (self._deadline, self._seq)
        return None

    def _set_now(self, t: int) -> None:
        self._now = t

    def _share_counter(self, counter: ArmCounter) -> None:
        self._counter = counter

    # --- configuration, events ---------------------------------------------------------
    @property
    def action(self) -> WatchdogAction:
        return ACTIONS[self._action]

    @action.setter
    def action(self, action) -> None:
        self._action = ACTION_CODE[coerce_action(action)]

    @property
    def events(self) -> list[WatchdogEvent]:
        return self._events

    def clear_events(self) -> None:
        self._events.clear()

    # --- reset, snapshot --------------------------------------------------------------
    def reset(self) -> None:
        self._armed = False
        self._deadline = 0
        self._seq = 0

    def snapshot(self) -> bytes:
        return _snapshot.pack_ib700(self._now, self._action, self._armed, self._deadline,
                                    self._seq, self._counter.value)

    def restore(self, data) -> None:
        fields = _snapshot.unpack_ib700(check_bytes(data))
        self._apply(fields)

    def _apply(self, fields) -> None:
        now, action, armed, deadline, seq, counter = fields
        self._now = now
        self._action = action
        self._armed = bool(armed)
        self._deadline = deadline
        self._seq = seq
        self._counter.value = counter

    def __reduce__(self):
        return (_from_snapshot, (self.snapshot(),))

    def __repr__(self) -> str:
        armed = f"deadline={self._deadline}" if self._armed else "disarmed"
        return f"<IB700 (python) now={self._now} {armed} action={ACTIONS[self._action].value}>"


def _from_snapshot(data: bytes) -> IB700:
    dev = IB700()
    dev.restore(data)
    return dev
