"""The shared core in plain Python: the twin of ``_core.pyx``/``_core.pxd``.

What every watchdog has, written once:

- host-argument checks (every error names the parameter as spelled in the public
  signature; the compiled core decides in C *whether* an argument is bad and calls these
  to raise, so both implementations give the same messages);
- :class:`ArmCounter`, the arming numbers a Machine's devices share (SPEC.md §1.4);
- :func:`piece_size`, QEMU's split of an access into aligned pieces (SPEC.md §3.5, §5.1);
- :class:`Timer`, one device's deadline, and the functions a Machine's timer list uses on it;
- :class:`Watchdog`, the base every device derives from: time, the deadline, the action,
  the event log, ``on_expire``, pickling.  A device adds only its register logic and three
  hooks: ``c_fire`` (what reaching the deadline does), ``c_skip`` (unobservable cycles)
  and ``c_reset`` (its system reset); ``c_signal`` if it has a line to report.

The ``c_*`` names are the C-level contract of ``_core.pxd``; this twin crosses the same
boundary under the same names, so the Python Machine core drives a device exactly as the
compiled one does.
"""
from __future__ import annotations

import functools
import operator
import threading
from typing import (TYPE_CHECKING, Any, Callable, Concatenate, Optional, ParamSpec, Protocol,
                    Tuple, Type, TypedDict, TypeVar)

from wdcore.regs import PC_BUS
from wdcore.actions import ACTION_CODE, ACTIONS, WatchdogAction, WatchdogEvent, coerce_action

TIME_MAX_NS = (1 << 63) - 1  #: largest virtual time, ns
#: the arming counter's ceiling: arming from 0 never gets there (2**63 armings); at it,
#: the counter stays and every arming takes number COUNTER_MAX - 1 (docs/snapshot.md)
COUNTER_MAX = 1 << 63
CONFIG_SPACE_SIZE = PC_BUS.const("CONFIG_SPACE_SIZE")  #: a PCI function's configuration bytes

#: flags returned by a device's access methods (``c_*_write``)
WD_DUE = 1      #: a deadline is due at the end of the access: fire it at the current now
WD_SIGNAL = 2   #: the device has a line change to report: call ``c_signal`` (needs Python)


# --- host-argument checks ------------------------------------------------------------
def as_int(value: object, name: str) -> int:
    """``value`` as a Python int (anything with ``__index__``), else ``TypeError``."""
    if type(value) is int:
        return value
    try:
        # any object: one without __index__ raises the TypeError turned into ours below
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None


def check_size(size: object) -> int:
    s = as_int(size, "size")
    if s != 1 and s != 2 and s != 4:
        raise ValueError(f"size must be 1, 2 or 4, not {s}")
    return s


def check_value(value: object, size: int) -> int:
    v = as_int(value, "value")
    if v < 0 or v >> (8 * size):
        raise ValueError(f"value {v:#x} does not fit in {size} byte(s)"
                         if v >= 0 else f"value must be >= 0, not {v}")
    return v


def check_port(port: object) -> int:
    p = as_int(port, "port")
    if p < 0 or p > 0xFFFF:
        raise ValueError(f"port must be in 0..0xffff, not {p:#x}" if p >= 0
                         else f"port must be in 0..0xffff, not {p}")
    return p


def check_addr(addr: object, size: int) -> int:
    a = as_int(addr, "addr")
    if a < 0 or a >= 1 << 64:
        raise ValueError(f"addr must be in 0..2**64-1, not {a}")
    if a + size > 1 << 64:
        raise ValueError(f"addr {a:#x} + size {size} runs past the end of memory (2**64)")
    return a


def check_config_offset(offset: object) -> int:
    """An offset into a 256-byte PCI configuration space."""
    off = as_int(offset, "offset")
    if off < 0 or off >= CONFIG_SPACE_SIZE:
        raise ValueError(f"offset must be in 0..0xff, not {off}")
    return off


def check_window_offset(offset: object, size: int, window: int, name: str) -> int:
    """An access of ``size`` bytes at ``offset`` inside a ``window``-byte register block."""
    off = as_int(offset, "offset")
    if off < 0 or off + size > window:
        raise ValueError(f"offset {off} with size {size} is outside the {window}-byte {name}")
    return off


def check_delta(now: int, delta_ns: object) -> int:
    """The absolute target ``now + delta_ns``, validated."""
    d = as_int(delta_ns, "delta_ns")
    if d < 0:
        raise ValueError(f"delta_ns must be >= 0, not {d}")
    if d > TIME_MAX_NS - now:
        raise ValueError(f"delta_ns {d} would move time past 2**63-1 ns (now is {now})")
    return now + d


def check_time(now: int, t_ns: object) -> int:
    t = as_int(t_ns, "t_ns")
    if t < 0 or t > TIME_MAX_NS:
        raise ValueError(f"t_ns must be in 0..2**63-1, not {t}")
    if t < now:
        raise ValueError(f"t_ns {t} is before now ({now}): time only moves forward")
    return t


def check_bytes(data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    return bytes(data)


def raise_held(errors: list[BaseException]) -> None:
    """Raise the first exception a callback raised (held in ``errors``), emptying the
    list; nothing when it is empty.  The end of a host call, for a device and a Machine."""
    if errors:
        first = errors[0]
        del errors[:]
        raise first


def check_callback(fn: object, name: str) -> None:
    """A callback is None or callable; anything else is host misuse, refused when set."""
    if fn is not None and not callable(fn):
        raise TypeError(f"{name} must be None or callable, not {type(fn).__name__}")


def check_bool(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, not {type(value).__name__}")
    return value


def piece_size(offset: int, left: int) -> int:
    """QEMU's access split: the largest power of two <= left (at most 4) that divides
    offset (0 divides all)."""
    n = 4
    while n > left or (offset & (n - 1)):
        n >>= 1
    return n


# --- arming numbers, timers -------------------------------------------------------------
# --- the busy guard: one call at a time (docs/design.md "Threads, callbacks, re-entry") -----
#: The public calls a guard tells apart, by code (_core.pxd's CALL_* enum, position for
#: position: tests/test_structure.py), each with whether a callback may make it while a
#: call of the same object is in progress on its own thread.  Guest accesses nest: they
#: join the operation in progress, at the callback's now (its requests act, and its
#: callbacks' exceptions propagate, at that operation's end), as do clearing the log and
#: setting the action.  What moves time or the run state, resets, runs, snapshots or
#: restores would cut the operation in two, and does not nest.
CALLS: Tuple[Tuple[str, bool], ...] = (
    ("io_write", True), ("io_read", True), ("mem_write", True), ("mem_read", True),
    ("config_write", True), ("mmio_write", True), ("advance", False), ("advance_to", False),
    ("pause", False), ("resume", False), ("system_reset", False), ("reset", False),
    ("clear_events", True), ("action", True), ("run", False), ("snapshot", False),
    ("restore", False))
(CALL_IO_WRITE, CALL_IO_READ, CALL_MEM_WRITE, CALL_MEM_READ, CALL_CONFIG_WRITE, CALL_MMIO_WRITE,
 CALL_ADVANCE, CALL_ADVANCE_TO, CALL_PAUSE, CALL_RESUME, CALL_SYSTEM_RESET, CALL_RESET,
 CALL_CLEAR_EVENTS, CALL_ACTION, CALL_RUN, CALL_SNAPSHOT, CALL_RESTORE) = range(len(CALLS))
#: a Guard's thread while its device belongs to a Machine: the device's own acting calls
#: are refused for good (the Machine drives it through the C-level contract)
GUARD_OWNED = -1


def guard_conflict(owner: object, call: int, holder: int, owned: bool, same_thread: bool) -> None:
    """A call reached a busy guard: return when it may nest (a read from a callback of
    the call in progress), else raise the RuntimeError that names the conflict.  Shared
    by both implementations (the compiled guard calls it only on a conflict)."""
    name, nests = CALLS[call]
    cls = type(owner).__name__
    if owned:
        raise RuntimeError(f"{cls}.{name}: this device belongs to a Machine; drive it through "
                           "the Machine (its bus, advance, action, system_reset, restore)")
    if same_thread:
        if nests:
            return
        raise RuntimeError(f"{cls}.{name} called from a callback while {cls}.{CALLS[holder][0]} "
                           "is in progress: only guest accesses, clear_events and setting the "
                           "action can nest; make this call after that one returns")
    raise RuntimeError(f"{cls}.{name}: this {cls} is in use by another thread "
                       f"({cls}.{CALLS[holder][0]}); use it from one thread at a time")


class Guard:
    """Which thread is inside which public call of one object (a Machine, a standalone
    device); the twin of _core.pxd's Guard.  ``enter`` returns True when the call may go
    on (then ``leave`` at its end), False when it nests (no ``leave``), or raises."""

    __slots__ = ("_lock", "thread", "call", "nested")

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the check-and-set of thread, atomic in Python code
        self.thread = 0                # ident of the thread inside a call; 0 when idle
        self.call = 0                  # the CALL_* code of that call
        self.nested = 0                # nested calls in progress (the compiled methods' flag)

    def enter(self, owner: object, call: int) -> bool:
        if self._lock.acquire(False):
            self.thread, self.call = threading.get_ident(), call
            return True
        # thread is 0 only in the instant after another thread's acquire: not ours either
        guard_conflict(owner, call, self.call, self.thread == GUARD_OWNED,
                       self.thread == threading.get_ident())
        return False

    def leave(self) -> None:
        self.thread = 0  # before the release: a failed enter never sees its own ident stale
        self._lock.release()

    def own(self) -> None:
        """The object now belongs to a Machine: every later enter conflicts."""
        if not self._lock.acquire(False):
            raise RuntimeError("a device joins a Machine while one of its calls is in progress")
        self.thread = GUARD_OWNED


def guarded(call: int) -> Callable[[Callable[Concatenate[_G, _P], _R]], Callable[Concatenate[_G, _P], _R]]:
    """The twin's form of the compiled methods' guard: the method runs inside
    ``self._guard`` as public call ``call`` (a nested call runs without entering)."""
    def wrap(fn: Callable[Concatenate[_G, _P], _R]) -> Callable[Concatenate[_G, _P], _R]:
        def method(self: _G, /, *args: _P.args, **kw: _P.kwargs) -> _R:
            guard = self._guard
            if not guard.enter(self, call):
                guard.nested += 1  # a nested call ends no operation (methods test it)
                try:
                    return fn(self, *args, **kw)
                finally:
                    guard.nested -= 1
            try:
                return fn(self, *args, **kw)
            finally:
                guard.leave()
        functools.update_wrapper(method, fn)
        return method
    return wrap


class ArmCounter:
    """Source of arming sequence numbers; a Machine shares one among its devices so
    that equal deadlines fire in arming order across devices (SPEC.md §1.4)."""

    __slots__ = ("value",)

    def __init__(self, value: int = 0) -> None:
        self.value = value


class Timer:
    """One device's deadline (the C struct ``Timer``)."""

    __slots__ = ("now", "deadline", "seq", "armed", "running")

    def __init__(self) -> None:
        self.now = 0          # current virtual time, ns
        self.deadline = 0     # absolute ns; meaningful only while armed
        self.seq = 0          # arming number of deadline; 0 when disarmed
        self.armed = False
        self.running = True   # False while the owning Machine is stopped


def timer_due(t: Timer, when: int) -> bool:
    """Whether the timer fires by ``when``."""
    return t.running and t.armed and t.deadline <= when


def timer_before(a: Timer, b: Timer) -> bool:
    """Whether ``a`` fires before ``b`` when both are due: QEMU's FIFO order of equal
    deadlines, by arming number."""
    return a.deadline < b.deadline or (a.deadline == b.deadline and a.seq < b.seq)


if TYPE_CHECKING:
    class _Record(Protocol):
        """A device's snapshot record (``_snapshot.DeviceState``), as the base uses it."""

        @property
        def now(self) -> int: ...
        @property
        def action(self) -> int: ...
        @property
        def armed(self) -> bool: ...
        @property
        def deadline(self) -> int: ...
        @property
        def seq(self) -> int: ...
        @property
        def counter(self) -> int: ...
        def pack(self) -> bytes: ...

    class _TimerFields(TypedDict):
        """The fields every device record starts with (``Watchdog._timer_fields``)."""

        now: int
        action: int
        armed: bool
        deadline: int
        seq: int
        counter: int

    _W = TypeVar("_W", bound="Watchdog")

    class _Guarded(Protocol):
        """What ``guarded`` methods belong to: an object with a busy guard."""

        _guard: Guard

    _G = TypeVar("_G", bound=_Guarded)
    _P = ParamSpec("_P")
    _R = TypeVar("_R")


# --- the device base ----------------------------------------------------------------
class Watchdog:
    """What every watchdog device has; the devices add their registers (``_core.pxd``)."""

    KIND = "watchdog"  #: the device name carried by its events

    def __init__(self, *, action: WatchdogAction | str = WatchdogAction.RESET,
                 on_expire: Optional[Callable[[WatchdogEvent], object]] = None) -> None:
        self._timer = Timer()
        self._counter = ArmCounter()
        self._action_code = ACTION_CODE[coerce_action(action)]
        self._log: list[WatchdogEvent] = []
        self._expiries = 0     # WatchdogEvents produced so far (advance's return value)
        # callbacks' exceptions, held until the end of the host call (a Machine's list)
        self._errors: list[BaseException] = []
        self._on_expire: Optional[Callable[[WatchdogEvent], object]] = None
        self.on_expire = on_expire
        self._guard = Guard()  # one call at a time; owned for good once in a Machine

    if TYPE_CHECKING:  # each device class has its own (its record, _snapshot's); not here at run time
        def _state(self) -> _Record: ...

    # --- the C-level contract -------------------------------------------------------
    def c_arm(self, duration_ns: int) -> None:
        """Set the deadline ``duration_ns`` from now, with the next arming number."""
        t = self._timer
        t.armed = True
        t.deadline = t.now + duration_ns
        if self._counter.value < COUNTER_MAX:
            t.seq = self._counter.value
            self._counter.value += 1
        else:  # saturated (only a made-up snapshot gets here): the order becomes the devices'
            t.seq = COUNTER_MAX - 1

    def c_disarm(self) -> None:
        t = self._timer
        t.armed = False
        t.deadline = 0
        t.seq = 0

    def c_due(self, when: int) -> bool:
        return timer_due(self._timer, when)

    def c_timer(self) -> Timer:
        """The device's Timer, for a Machine's timer list: it reads ``armed`` and
        ``deadline`` and writes only ``now`` and ``running``."""
        return self._timer

    def c_action_code(self) -> int:
        """The action code in force (an index into ACTIONS), for a Machine's delivery."""
        return self._action_code

    def c_set_action_code(self, code: int) -> None:
        """Set the action in force by code (a Machine's ``action``: its devices' own
        setters refuse, as they are the Machine's)."""
        self._action_code = code

    def c_join(self, counter: ArmCounter, errors: list[BaseException]) -> None:
        """The device becomes a Machine's: it shares the Machine's arming counter and
        error list, and its own acting calls are refused from now on."""
        self._guard.own()
        self._counter = counter
        self._errors = errors

    def c_expire(self) -> int:
        """Reach the current deadline: now moves to it (an overdue one fires at the
        current now), the device's ``c_fire`` acts; returns 1 for an expiry event, which
        the caller then reports (``c_notify`` and, in a Machine, its effect)."""
        t = self._timer
        if t.deadline > t.now:
            t.now = t.deadline
        if self.c_fire():
            self._expiries += 1
            return 1
        return 0

    def c_notify(self) -> None:
        """Report the expiry just handled: the device's event log, then ``on_expire``."""
        event = WatchdogEvent(self._timer.now, self.KIND, ACTIONS[self._action_code])
        self._log.append(event)
        if self._on_expire is not None:
            self.c_call(self._on_expire, event)

    def c_call(self, fn: Callable[[Any], object], arg: object) -> None:
        """Call a host callback; an exception it raises is held in the error list and
        propagates at the end of the host call, after the operation completed."""
        try:
            fn(arg)
        except BaseException as exc:  # noqa: BLE001 - held, not lost
            self._errors.append(exc)

    def c_raise_errors(self) -> None:
        """A standalone device's end of a host call: raise the first held exception."""
        raise_held(self._errors)

    def c_run_until(self, t: int) -> int:
        """A standalone device's advance: every deadline <= t in order, then now = t."""
        before = self._expiries  # callbacks may cause more expiries: count them all
        while self.c_due(t):
            self.c_skip(t + 1)
            if self.c_expire():
                self.c_notify()
        self._timer.now = t
        return self._expiries - before

    def c_end_access(self, flags: int) -> None:
        """A standalone device after a guest access: report a line change, then fire
        what the access made due (a zero-length timeout fires at its end, at now)."""
        if flags & WD_SIGNAL:
            self.c_signal()
        while self.c_due(self._timer.now):
            if self.c_expire():
                self.c_notify()

    # --- device hooks ---------------------------------------------------------------------
    def c_fire(self) -> int:  # pragma: no cover - every device overrides it
        raise NotImplementedError

    def c_skip(self, limit: int) -> None:
        """Jump cycles that end before ``limit`` and nobody can observe; none by default."""

    def c_signal(self) -> None:
        """Report a line change flagged by WD_SIGNAL; none by default."""

    def c_reset(self) -> None:  # pragma: no cover - every device overrides it
        raise NotImplementedError

    # --- the shared public surface (API.md "Devices") ---------------------------------------
    @property
    def now(self) -> int:
        """Current virtual time, ns."""
        return self._timer.now

    @property
    def next_deadline(self) -> Optional[int]:
        """Absolute time of the next timer event in ns, or None when idle or when it lies
        past the end of virtual time (2**63-1 ns), where it is never reached."""
        t = self._timer
        return t.deadline if t.armed and t.deadline <= TIME_MAX_NS else None

    @guarded(CALL_ADVANCE)
    def advance(self, delta_ns: int) -> int:
        """Move time forward by ``delta_ns`` ns; returns the expiries handled."""
        n = self.c_run_until(check_delta(self._timer.now, delta_ns))
        self.c_raise_errors()
        return n

    @guarded(CALL_ADVANCE_TO)
    def advance_to(self, t_ns: int) -> int:
        """Move time to ``t_ns`` ns (>= now); returns the expiries handled."""
        n = self.c_run_until(check_time(self._timer.now, t_ns))
        self.c_raise_errors()
        return n

    @property
    def on_expire(self) -> Optional[Callable[[WatchdogEvent], object]]:
        """None or a callable taking the WatchdogEvent, called at each expiry."""
        return self._on_expire

    @on_expire.setter
    def on_expire(self, fn: Optional[Callable[[WatchdogEvent], object]]) -> None:
        check_callback(fn, "on_expire")
        self._on_expire = fn

    @property
    def action(self) -> WatchdogAction:
        return ACTIONS[self._action_code]

    @action.setter
    @guarded(CALL_ACTION)
    def action(self, action: WatchdogAction | str) -> None:
        self._action_code = ACTION_CODE[coerce_action(action)]

    @property
    def events(self) -> list[WatchdogEvent]:
        return self._log

    def clear_events(self) -> None:
        self._log.clear()

    @guarded(CALL_RESET)
    def reset(self) -> None:
        """The device's power-on/system reset (SPEC.md)."""
        self.c_reset()
        self.c_raise_errors()

    def snapshot(self) -> bytes:
        """The device's state as versioned, checksummed bytes (docs/snapshot.md)."""
        return self._state().pack()

    def _timer_fields(self) -> _TimerFields:
        """The fields every device record starts with (_snapshot.IB700State's)."""
        t = self._timer
        return {"now": t.now, "action": self._action_code, "armed": t.armed,
                "deadline": t.deadline, "seq": t.seq, "counter": self._counter.value}

    def _apply_timer(self, state: _Record) -> None:
        t = self._timer
        t.now, self._action_code, t.armed = state.now, state.action, state.armed
        t.deadline, t.seq, self._counter.value = state.deadline, state.seq, state.counter

    @guarded(CALL_RESTORE)
    def restore(self, data: bytes) -> None:
        """Take back a snapshot; bad data is a ValueError and changes nothing."""
        # every device class has STATE and _apply, a pair of its own record type
        state = self.STATE.unpack(check_bytes(data))  # type: ignore[attr-defined]
        state.check_configuration(self)  # what the device was built with stays
        self._apply(state)  # type: ignore[attr-defined]

    def __reduce__(self) -> Tuple[Callable[[str, bytes], object], Tuple[str, bytes]]:
        # the kind, not the class: the pickle loads in the implementation selected there
        return (rebuild, (self.KIND, self.snapshot()))

    def __deepcopy__(self: _W, memo: dict[int, object]) -> _W:
        return restored(type(self), self.snapshot())  # a copy keeps its implementation


def rebuild(kind: str | type, data: bytes) -> object:
    """Unpickle: a new device of ``kind`` ("ib700", "i6300esb"; pickles of older
    releases give its class) restored from its snapshot, in the implementation selected
    where the pickle is loaded (``wdcore.implementation()``: the compiled core unless
    WDCORE_NO_EXTENSIONS is set or it is missing)."""
    from wdcore._select import implementation  # here: _select loads the cores, which import this
    name = kind if isinstance(kind, str) else getattr(kind, "KIND", None)
    return restored(implementation().device(name), data)


def restored(cls: Type[_W], data: bytes) -> _W:
    """A new device of ``cls``, built with the configuration ``data`` holds (its
    record's ``configuration()``) and restored from it."""
    state = cls.STATE.unpack(check_bytes(data))  # type: ignore[attr-defined]
    dev = cls(**state.configuration())
    dev._apply(state)  # type: ignore[attr-defined]
    return dev
