"""The Machine: watchdogs on a minimal PC bus, with QEMU's action semantics.

A thin wrapper.  It validates the configuration, builds the devices, owns the QMP-shaped
event log and the snapshot format, and hands every access, time step and run-state
change to a *core*: ``_machine.pyx`` (compiled) or ``_machine_py.py`` (its twin).  The
per-access methods (``io_write``, ``io_read``, ``mem_write``, ``mem_read``, ``advance``,
``advance_to``) are the core's own, bound on the instance, so a host calling them from
its I/O hooks pays no wrapper cost.
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from wdcore import _snapshot
from wdcore import ops as _ops
from wdcore._args import as_int, check_bytes
from wdcore._select import implementation as _implementation
from wdcore.actions import ACTION_CODE, ACTIONS, WatchdogAction, coerce_action
from wdcore.regs import PROFILES

__all__ = ["Machine", "RunResult", "DEVICE_KINDS"]

#: device kinds a Machine can hold, in snapshot order
DEVICE_KINDS = ("ib700", "i6300esb")
REBOOT_ACTIONS = ("reset", "shutdown")
STATUSES = ("running", "watchdog", "paused", "prelaunch", "shutdown", "poweroff")

_MACHINE = struct.Struct("<BBBBB QBBIQ")  # config: kinds, slot, profile, reboot, s1i;
#                                            state: now, status, action, cfg addr, counter
_LEN = struct.Struct("<I")


@dataclass
class RunResult:
    """What ``Machine.run`` did: ops executed (the one that powered off or shut down
    included), values read (in order), and the events logged during the run."""

    ops_executed: int
    reads: list = field(default_factory=list)
    events: list = field(default_factory=list)


class Machine:
    """Watchdog devices on a PC bus, driven by a host through port I/O, memory and time."""

    def __init__(self, devices=None, *, action=WatchdogAction.RESET, esb_slot=2,
                 profile="qemu", reboot_action="reset", stage1_interrupt=False,
                 implementation=None):
        kinds = self._check_devices(devices)
        slot = as_int(esb_slot, "esb_slot")
        if not 0 <= slot <= 31:
            raise ValueError(f"esb_slot must be in 0..31, not {slot}")
        if profile not in PROFILES:
            raise ValueError(f"profile must be one of {', '.join(PROFILES)}; got {profile!r}")
        if reboot_action not in REBOOT_ACTIONS:
            raise ValueError(f"reboot_action must be 'reset' or 'shutdown'; got {reboot_action!r}")
        if not isinstance(stage1_interrupt, bool):
            raise TypeError(f"stage1_interrupt must be a bool, not {type(stage1_interrupt).__name__}")
        action = coerce_action(action)
        impl = _implementation(implementation)

        self._kinds = kinds
        self._esb_slot = slot
        self._profile = profile
        self._reboot_action = reboot_action
        self._stage1_interrupt = stage1_interrupt
        self._implementation = impl["name"]
        self._counter = impl["ArmCounter"]()
        self.ib700 = impl["ib700"].IB700(action=action) if "ib700" in kinds else None
        self.i6300esb = (impl["i6300esb"].I6300ESB(action=action, profile=profile,
                                                   stage1_interrupt=stage1_interrupt)
                         if "i6300esb" in kinds else None)
        self._devices = [d for d in (self.ib700, self.i6300esb) if d is not None]
        self._events: list[dict] = []
        self._capture: list[dict] | None = None  # events of the run in progress
        self.on_event = None
        self._core = impl["machine"].MachineCore(self.ib700, self.i6300esb, self._counter, slot,
                                                 reboot_action == "shutdown",
                                                 ACTION_CODE[action], self._log)
        core = self._core
        self.io_write = core.io_write
        self.io_read = core.io_read
        self.mem_write = core.mem_write
        self.mem_read = core.mem_read
        self.advance = core.advance
        self.advance_to = core.advance_to

    @staticmethod
    def _check_devices(devices) -> tuple[str, ...]:
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

    # --- the host's side (documented in API.md; the access methods are bound in __init__) -
    def io_write(self, port, size, value) -> None:  # replaced by the core's, see __init__
        self._core.io_write(port, size, value)

    def io_read(self, port, size) -> int:
        return self._core.io_read(port, size)

    def mem_write(self, addr, size, value) -> None:
        self._core.mem_write(addr, size, value)

    def mem_read(self, addr, size) -> int:
        return self._core.mem_read(addr, size)

    def advance(self, delta_ns) -> int:
        return self._core.advance(delta_ns)

    def advance_to(self, t_ns) -> int:
        return self._core.advance_to(t_ns)

    @property
    def now(self) -> int:
        return self._core.now

    @property
    def next_deadline(self):
        return self._core.next_deadline

    @property
    def status(self) -> str:
        return STATUSES[self._core.status]

    @property
    def events(self) -> list[dict]:
        return self._events

    def clear_events(self) -> None:
        self._events.clear()

    @property
    def implementation(self) -> str:
        return self._implementation

    @property
    def action(self) -> WatchdogAction:
        return ACTIONS[self._core.action_code]

    @action.setter
    def action(self, action) -> None:
        self._core.set_action(ACTION_CODE[coerce_action(action)])

    def pause(self) -> None:
        self._core.pause()

    def resume(self) -> None:
        self._core.resume()

    def system_reset(self) -> None:
        self._core.system_reset()

    def _log(self, name: str, data: dict, time_ns: int) -> None:
        entry = {"event": name, "data": data, "time_ns": time_ns}
        self._events.append(entry)
        if self._capture is not None:
            self._capture.append(entry)
        if self.on_event is not None:
            self.on_event(entry)

    # --- op streams ---------------------------------------------------------------------------
    def run(self, ops) -> RunResult:
        """Execute an op stream: bytes in the binary encoding (docs/ops.md), or a list of
        op tuples.  Each op is one operation (requests act at its end).  Stops after
        the op that shut the Machine down or powered it off."""
        if isinstance(ops, (bytes, bytearray, memoryview)):
            data = bytes(ops)
        elif isinstance(ops, (list, tuple)):
            data = _ops.encode(ops)  # validates every op first
        else:
            raise TypeError(f"ops must be bytes or a list of op tuples, not {type(ops).__name__}")
        self._capture = captured = []
        try:
            executed, reads = self._core.run(data)
        finally:
            self._capture = None
        return RunResult(executed, reads, captured)

    # --- snapshot ---------------------------------------------------------------------------
    def _config_tuple(self) -> tuple[int, int, int, int, int]:
        mask = sum(1 << i for i, k in enumerate(DEVICE_KINDS) if k in self._kinds)
        return (mask, self._esb_slot, PROFILES.index(self._profile),
                REBOOT_ACTIONS.index(self._reboot_action), int(self._stage1_interrupt))

    def snapshot(self) -> bytes:
        now, status, action, config_address = self._core.get_state()
        head = _MACHINE.pack(*self._config_tuple(), now, status, action, config_address,
                             self._counter.value)
        body = b"".join(_LEN.pack(len(s)) + s for s in (d.snapshot() for d in self._devices))
        return _snapshot.wrap(_snapshot.KIND_MACHINE, head + body)

    def restore(self, data) -> None:
        payload = _snapshot.unwrap(check_bytes(data), _snapshot.KIND_MACHINE)
        if len(payload) < _MACHINE.size:
            raise ValueError("data has the wrong payload size for a machine snapshot")
        fields = _MACHINE.unpack_from(payload)
        config, (now, status, action, config_address, counter) = fields[:5], fields[5:]
        if config != self._config_tuple():
            raise ValueError("data is a snapshot of a differently configured Machine "
                             "(devices, esb_slot, profile, reboot_action or stage1_interrupt)")
        _snapshot.check_time_field(now, "now")
        if status >= len(STATUSES):
            raise ValueError(f"data holds an unknown status code {status}")
        if action >= len(ACTIONS):
            raise ValueError(f"data holds an unknown action code {action}")
        states, pos = [], _MACHINE.size
        for dev in self._devices:
            if pos + _LEN.size > len(payload):
                raise ValueError("data is truncated")
            (n,) = _LEN.unpack_from(payload, pos)
            blob = payload[pos + _LEN.size:pos + _LEN.size + n]
            if len(blob) != n:
                raise ValueError("data is truncated")
            state = (_snapshot.unpack_ib700(blob) if dev is self.ib700
                     else self._check_esb_state(_snapshot.unpack_i6300esb(blob)))
            if state[0] != now or state[1] != action:
                raise ValueError("data holds a device whose time or action disagrees with the machine")
            # the devices share the machine's arming counter: one value, everywhere
            if state[5] != counter:
                raise ValueError("data holds a device arming counter that differs from the machine's")
            if state[2] and state[4] >= counter:
                raise ValueError("data holds a device arming number from the future")
            states.append(state)
            pos += _LEN.size + n
        if pos != len(payload):
            raise ValueError("data has trailing bytes")
        # validated: apply
        for dev, state in zip(self._devices, states):
            dev._apply(state)
        self._counter.value = counter
        self._core.set_state(now, status, action, config_address)

    def _check_esb_state(self, state):
        if state[6] != PROFILES.index(self._profile) or bool(state[7]) != self._stage1_interrupt:
            raise ValueError("data holds an i6300esb whose profile or stage1_interrupt "
                             "differs from the machine's")
        return state

    def __reduce__(self):
        return (_machine_from_snapshot, (self._kinds, self._esb_slot, self._profile,
                                         self._reboot_action, self._stage1_interrupt,
                                         self._implementation, self.snapshot()))

    def __repr__(self) -> str:
        return (f"<Machine ({self._implementation}) now={self.now} status={self.status} "
                f"action={self.action.value} devices={','.join(self._kinds)}>")


def _machine_from_snapshot(kinds, slot, profile, reboot, s1i, impl, data) -> Machine:
    m = Machine(kinds, esb_slot=slot, profile=profile, reboot_action=reboot,
                stage1_interrupt=s1i, implementation=impl)
    m.restore(data)
    return m
