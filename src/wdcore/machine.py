"""The Machine: watchdogs on a minimal PC bus, with QEMU's action semantics.

``Machine`` holds what is the same on both implementations: it validates the
configuration, builds the devices, and owns the snapshot format and ``run``'s op
encoding.  Everything else — the per-access methods, time, the run state, requests and
the event log — it *inherits* from the implementation's core: ``Machine(...)`` makes an
instance of a subclass that derives from ``Machine`` and from ``_machine.MachineCore``
(compiled) or ``_machine_py.MachineCore`` (its twin), chosen by ``implementation``.  A
host calling ``m.io_write`` from its I/O hooks calls the core's method directly.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import (TYPE_CHECKING, Callable, Dict, Iterable, List, Optional, Tuple, Type, TypedDict,
                    TypeVar, Union)

from wdcore import _snapshot
from wdcore import ops as _ops
from wdcore._core_py import CALL_RESTORE, CALL_SNAPSHOT, as_int, check_bool, check_bytes
from wdcore._select import Implementation
from wdcore._select import implementation as _implementation
from wdcore.actions import ACTIONS, RUN_STATES, RunState, WatchdogAction, coerce_action
from wdcore.regs import PROFILES

if TYPE_CHECKING:
    from types import SimpleNamespace

    from typing_extensions import Self

    _M = TypeVar("_M", bound="Machine")

__all__ = ["Machine", "RunResult", "MachineEvent", "DEVICE_KINDS"]

#: device kinds a Machine can hold, in snapshot order
DEVICE_KINDS = ("ib700", "i6300esb")
REBOOT_ACTIONS = ("reset", "shutdown")


class MachineEvent(TypedDict):
    """One entry of ``Machine.events``, shaped like a QMP event: ``event`` is QEMU's name
    (WATCHDOG, RESET, STOP, RESUME, SHUTDOWN, POWERDOWN; NMI is wdcore's, for
    inject-nmi), ``data`` QEMU's data, ``time_ns`` the virtual time in ns."""

    event: str
    data: Dict[str, object]
    time_ns: int


@dataclass(slots=True)
class RunResult:
    """What ``Machine.run`` did.  An exception that ends a run (a callback's, Ctrl-C)
    carries the run's result so far as its ``run_result`` attribute."""

    ops_executed: int                                         #: the one that finished the Machine included
    reads: List[int] = field(default_factory=list)            #: values read, in order
    events: List[MachineEvent] = field(default_factory=list)  #: events logged during the run
    #: bytes of the binary stream executed, whole ops only: ``data[bytes_consumed:]``
    #: resumes the run exactly where it stopped
    bytes_consumed: int = 0
    #: why it stopped (ops.RUN_STOPS): "end" of the stream (a trailing partial op stays
    #: unconsumed), "finished" (shutdown or poweroff), "max_ops", "max_events", "error"
    stopped: str = "end"


class Machine:
    """Watchdog devices on a PC bus, driven by a host through port I/O, memory and time.

    The access and time methods (``io_write``, ``io_read``, ``mem_write``, ``mem_read``,
    ``advance(delta_ns)``, ``advance_to(t_ns)``, ``now`` and ``next_deadline`` in ns,
    ``pause``, ``resume``, ``system_reset``, ``action``, ``events``, ``clear_events``,
    ``on_event``) come from the implementation's core; see API.md."""

    _concrete: Dict[Tuple[type, str], type] = {}  # (front class, implementation name) -> the class instances have

    if TYPE_CHECKING:
        # set on the class instances have (_machine_class)
        _impl: Implementation
        _front: Type[Machine]
        # what the core provides (_machine.pyi's MachineCore, declaration for declaration:
        # tests/test_types.py), for type checkers (API.md); not at run time
        @property
        def on_event(self) -> Optional[Callable[[MachineEvent], object]]: ...
        @on_event.setter
        def on_event(self, fn: Optional[Callable[[MachineEvent], object]]) -> None: ...
        @property
        def now(self) -> int: ...
        @property
        def next_deadline(self) -> Optional[int]: ...
        @property
        def events(self) -> List[MachineEvent]: ...
        @property
        def status_code(self) -> int: ...
        @property
        def action(self) -> WatchdogAction: ...
        @action.setter
        def action(self, action: Union[WatchdogAction, str]) -> None: ...
        def io_write(self, port: int, size: int, value: int) -> None: ...
        def io_read(self, port: int, size: int) -> int: ...
        def mem_write(self, addr: int, size: int, value: int) -> None: ...
        def mem_read(self, addr: int, size: int) -> int: ...
        def advance(self, delta_ns: int) -> int: ...
        def advance_to(self, t_ns: int) -> int: ...
        def pause(self) -> None: ...
        def resume(self) -> None: ...
        def system_reset(self) -> None: ...
        def clear_events(self) -> None: ...
        def _guard_enter(self, call: int) -> bool: ...
        def _guard_leave(self) -> None: ...
        def _snapshot_bytes(self, config: bytes) -> Optional[bytes]: ...
        def _restore_bytes(self, data: object, config: bytes) -> int: ...
        def run_stream(self, data: bytes, max_ops: int, max_events: int, result: RunResult) -> None: ...
        def get_state(self) -> Tuple[int, int, int, int]: ...
        def set_state(self, now: int, status: int, action_code: int, config_address: int) -> None: ...

    def __new__(cls, *args: object, implementation: Optional[str] = None, **kw: object) -> Self:
        if "_impl" not in vars(cls):  # Machine or a host's subclass of it
            cls = _machine_class(cls, _implementation(implementation))
        return super().__new__(cls)

    def __init__(self, devices: Optional[Iterable[str]] = None, *,
                 action: Union[WatchdogAction, str] = WatchdogAction.RESET, esb_slot: int = 2,
                 profile: str = "qemu", reboot_action: str = "reset", stage1_interrupt: bool = False,
                 implementation: Optional[str] = None) -> None:
        kinds = self._check_devices(devices)
        slot = as_int(esb_slot, "esb_slot")
        if not 0 <= slot <= 31:
            raise ValueError(f"esb_slot must be in 0..31, not {slot}")
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
        if reboot_action not in REBOOT_ACTIONS:
            raise ValueError(f"reboot_action must be 'reset' or 'shutdown'; got {reboot_action!r}")
        check_bool(stage1_interrupt, "stage1_interrupt")
        action = coerce_action(action)
        impl = self._impl

        self._kinds = kinds
        self._esb_slot = slot
        self._profile = profile
        self._reboot_action = reboot_action
        self._stage1_interrupt = stage1_interrupt
        # the snapshot header's five configuration codes, for the core's C codec
        self._snap_config = bytes(self._config_fields().values())
        self._counter = impl.ArmCounter()
        self.ib700 = impl.IB700(action=action) if "ib700" in kinds else None
        self.i6300esb = (impl.I6300ESB(action=action, profile=profile,
                                       stage1_interrupt=stage1_interrupt)
                         if "i6300esb" in kinds else None)
        self._devices = [d for d in (self.ib700, self.i6300esb) if d is not None]
        # the class of self derives from impl.MachineCore (_machine_class), which
        # Implementation types only as a class
        impl.MachineCore.__init__(self, self.ib700, self.i6300esb, self._counter, slot,  # type: ignore[misc]
                                  reboot_action == "shutdown", ACTIONS.index(action))

    @staticmethod
    def _check_devices(devices: object) -> Tuple[str, ...]:
        if devices is None:
            return DEVICE_KINDS
        if isinstance(devices, str) or not hasattr(devices, "__iter__"):
            raise TypeError("devices must be a sequence of device names, like ('ib700',)")
        kinds = tuple(devices)
        for k in kinds:
            if k not in DEVICE_KINDS:
                raise ValueError(f"devices: unknown device {k!r}; known: {', '.join(DEVICE_KINDS)}")
        if len(set(kinds)) != len(kinds):
            raise ValueError("devices: each device may appear once")
        return kinds

    @property
    def implementation(self) -> str:
        """"compiled" or "python": the core this Machine derives from."""
        return self._impl.name

    @property
    def status(self) -> RunState:
        """QEMU's run-state name (a :class:`RunState`, equal to the plain string)."""
        return RUN_STATES[self.status_code]

    # --- op streams ---------------------------------------------------------------------------
    def run(self, ops: Union[bytes, List[_ops.Op], Tuple[_ops.Op, ...]], *,
            max_ops: Optional[int] = None, max_events: Optional[int] = None) -> RunResult:
        """Execute an op stream: bytes in the binary encoding (docs/ops.md), or a list of
        op tuples.  Each op is one operation (requests act at its end).  Stops after
        the op that shut the Machine down or powered it off, before an op once
        ``max_ops`` ops ran, or after the op during which the run's events reached
        ``max_events`` (each op logs a handful at most); ``RunResult.bytes_consumed`` and
        ``stopped`` say where and why.  Ctrl-C stops it between two ops."""
        if isinstance(ops, (bytes, bytearray, memoryview)):
            data = bytes(ops)
        elif isinstance(ops, (list, tuple)):
            data = _ops.encode(ops)  # validates every op first
        else:
            raise TypeError(f"ops must be bytes or a list of op tuples, not {type(ops).__name__}")
        # the core's run fills every field, also when an exception ends the run; a run
        # refused before it starts (the guard, a bound) leaves them unset
        result: RunResult = _new_result(RunResult)
        try:
            self.run_stream(data, -1 if max_ops is None else _bound(max_ops, "max_ops"),
                            -1 if max_events is None else _bound(max_events, "max_events"), result)
        except BaseException as exc:
            if hasattr(result, "stopped"):
                exc.run_result = result  # type: ignore[attr-defined]  # documented above
            raise
        return result

    # --- snapshot (the record: _snapshot.MachineState) -------------------------------------
    def _config_fields(self) -> Dict[str, int]:
        """The MachineState fields that hold this Machine's configuration."""
        return {"device_mask": sum(bit for bit, k in zip(_snapshot.DEVICE_BITS, DEVICE_KINDS)
                                   if k in self._kinds),
                "esb_slot": self._esb_slot, "profile": PROFILES.index(self._profile),
                "reboot_action": REBOOT_ACTIONS.index(self._reboot_action),
                "stage1_interrupt": int(self._stage1_interrupt)}

    def snapshot(self) -> bytes:
        """Everything but the event log and callbacks, as bytes (docs/snapshot.md)."""
        self._guard_enter(CALL_SNAPSHOT)  # never nests: entered, or RuntimeError
        try:
            data = self._snapshot_bytes(self._snap_config)  # the compiled core's C codec
            if data is not None:
                return data
            now, status, action, config_address = self.get_state()
            return _snapshot.MachineState(
                **self._config_fields(), now=now, status=status, action=action,
                config_address=config_address, counter=self._counter.value,
                devices=tuple(d.snapshot() for d in self._devices)).pack()
        finally:
            self._guard_leave()

    def restore(self, data: bytes) -> None:
        """Take back a snapshot of a Machine of this configuration; bad data is a
        ValueError and changes nothing."""
        self._guard_enter(CALL_RESTORE)
        try:
            done = self._restore_bytes(data, self._snap_config)  # the compiled core's C codec
            if done != 1:  # refused in C, not bytes, or the twin: the codec that words it
                self._restore(data)
                if done == 0:
                    raise AssertionError("a snapshot refused by the compiled checks only")
        finally:
            self._guard_leave()

    def _restore(self, data: bytes) -> None:
        records = []

        def check_device(i: int, blob: bytes, header: SimpleNamespace) -> None:
            # the devices of this configuration, in order; each must agree with the header
            dev = self._devices[i]
            rec = dev.STATE.unpack(blob)
            if dev is self.i6300esb and (rec.profile != PROFILES.index(self._profile)
                                         or rec.stage1_interrupt != self._stage1_interrupt):
                raise ValueError("data holds an i6300esb whose profile or stage1_interrupt "
                                 "differs from the machine's")
            if rec.now != header.now or rec.action != header.action:
                raise ValueError("data holds a device whose time or action disagrees with the machine")
            # the devices share the machine's arming counter: one value, everywhere
            if rec.counter != header.counter:
                raise ValueError("data holds a device arming counter that differs from the machine's")
            records.append(rec)

        state = _snapshot.MachineState.unpack(check_bytes(data), self._config_fields(), check_device)
        # validated: apply
        for dev, rec in zip(self._devices, records):
            dev._apply(rec)
        self._counter.value = state.counter
        self.set_state(state.now, state.status, state.action, state.config_address)

    def __reduce__(self) -> Tuple[Callable[..., Machine], Tuple[object, ...]]:
        # the front class, not the implementation: the pickle loads in the one selected there
        return (_machine_from_snapshot, (self._front, self._kinds, self._esb_slot, self._profile,
                                         self._reboot_action, self._stage1_interrupt,
                                         self.snapshot()))

    def __deepcopy__(self, memo: Dict[int, object]) -> Machine:
        # a copy keeps its implementation
        return _built(self._front, (self._kinds, self._esb_slot, self._profile, self._reboot_action,
                                    self._stage1_interrupt), self.snapshot(), self.implementation)

    def __repr__(self) -> str:
        return (f"<Machine ({self.implementation}) now={self.now} status={self.status.value} "
                f"action={self.action.value} devices={','.join(self._kinds)}>")


_new_result = object.__new__  # a RunResult without __init__: run_stream sets every field


def _bound(value: Optional[int], name: str) -> int:
    """A run bound for the core: None is none (-1), else an int >= 0."""
    if value is None:
        return -1
    n = as_int(value, name)
    if n < 0:
        raise ValueError(f"{name} must be >= 0 or None, not {n}")
    return min(n, (1 << 62))  # beyond any stream: fits the core's Py_ssize_t


def _machine_class(front: Type[_M], impl: Implementation) -> Type[_M]:
    """The class a ``front`` (Machine, or a host's subclass) instance has on one
    implementation: the front's methods first, then the core's."""
    key = (front, impl.name)
    cls = Machine._concrete.get(key)
    if cls is None:
        cls = type(front.__name__, (front, impl.MachineCore),
                   {"_impl": impl, "_front": front, "__module__": front.__module__,
                    "__qualname__": front.__qualname__,
                    "__doc__": f"{front.__doc__}\n\n    Implementation: {impl.name}."})
        Machine._concrete[key] = cls
    return cls


def _machine_from_snapshot(*args: object) -> Machine:
    """Unpickle: (front class, kinds, slot, profile, reboot, s1i, snapshot), built in the
    implementation selected where the pickle is loaded.  Older pickles lack the front
    class (made before Machine had one) or hold the implementation's name after s1i
    (made before pickles loaded in the selected one): it is ignored.  (Typed as
    objects: whatever a pickle holds.)"""
    front, rest = (args[0], args[1:]) if isinstance(args[0], type) else (Machine, args)
    return _built(front, rest[:5], rest[-1], None)


def _built(front: object, config: Tuple[object, ...], data: object,
           impl: Optional[str]) -> Machine:
    """A Machine of class ``front`` on implementation ``impl`` (None: the selected one),
    configured by (kinds, slot, profile, reboot, s1i) and restored from ``data``."""
    kinds, slot, profile, reboot, s1i = config
    m: Machine = front(kinds, esb_slot=slot, profile=profile,  # type: ignore[operator]
                       reboot_action=reboot, stage1_interrupt=s1i, implementation=impl)
    m.restore(data)  # type: ignore[arg-type]  # a pickle's object: restore checks it is bytes
    return m

