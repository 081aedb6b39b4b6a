"""The Machine: watchdogs on a minimal PC bus, with QEMU's action semantics.

The bus owns addresses; devices see ``(port, size, value)``.  Port I/O is split into
pieces exactly as QEMU's memory core splits it (SPEC.md §5.1).  Expiries are turned
into their effect in one place (``_on_expiry`` with :func:`wdcore.actions.effect_of`);
reset, stop, powerdown and shutdown requests act at the end of the host call during
which they were raised, as in QEMU's main loop (SPEC.md §4.2).
"""
from __future__ import annotations

import struct
from dataclasses import dataclass, field

from wdcore import _snapshot
from wdcore._args import (as_int, check_bytes, check_delta, check_port, check_size,
                          check_time, check_value)
from wdcore._select import implementation as _implementation
from wdcore.regs import BAR0_SIZE, PROFILES, piece_size
from wdcore import ops as _ops
from wdcore.actions import ACTION_CODE, ACTIONS, WatchdogAction, coerce_action, effect_of

__all__ = ["Machine", "RunResult", "DEVICE_KINDS"]

#: device kinds a Machine can hold, in snapshot order
DEVICE_KINDS = ("ib700", "i6300esb")
REBOOT_ACTIONS = ("reset", "shutdown")
STATUSES = ("running", "watchdog", "paused", "prelaunch", "shutdown", "poweroff")
_STOPPED = ("watchdog", "paused", "prelaunch")
_FINISHED = ("shutdown", "poweroff")

# Port map (SPEC.md §5.2)
IB700_FIRST, IB700_END = 0x441, 0x445
PCI_CONFIG_ADDRESS, PCI_CONFIG_DATA, PCI_CONFIG_END = 0xCF8, 0xCFC, 0xD00
IO_SPACE_END = 0x10000

_GUEST_RESET = {"guest": True, "reason": "guest-reset"}
_HOST_RESET = {"guest": False, "reason": "host-qmp-system-reset"}

_MACHINE = struct.Struct("<BBBBB QBBIQ")  # config: kinds, slot, profile, reboot, s1i;
#                                            state: now, status, action, cfg addr, counter
_LEN = struct.Struct("<I")
_WIDTHS = {"b": 1, "w": 2, "l": 4}


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
        for dev in self._devices:
            dev._share_counter(self._counter)
            dev._sink = self._on_expiry

        self._now = 0
        self._status = "running"
        self._action = action
        self._config_address = 0
        self._requests: dict[str, dict | None] = {}
        self._expiries = 0  # WATCHDOG events so far (advance's return value)
        self._events: list[dict] = []
        self._capture: list[dict] | None = None  # events of the run in progress
        self.on_event = None

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

    # --- properties -------------------------------------------------------------------
    @property
    def now(self) -> int:
        return self._now

    @property
    def status(self) -> str:
        return self._status

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
        return self._action

    @action.setter
    def action(self, action) -> None:
        action = coerce_action(action)
        self._action = action
        for dev in self._devices:
            dev.action = action

    @property
    def next_deadline(self):
        if self._status != "running":
            return None
        best = None
        for dev in self._devices:
            d = dev.next_deadline
            if d is not None and (best is None or d < best):
                best = d
        return best

    # --- port I/O -----------------------------------------------------------------------
    def io_write(self, port, size, value) -> None:
        port = check_port(port)
        size = check_size(size)
        value = check_value(value, size)
        if self._status in _FINISHED:
            return
        for addr, n, shift in self._io_pieces(port, size):
            piece = (value >> shift) & ((1 << (8 * n)) - 1)
            if IB700_FIRST <= addr < IB700_END and self.ib700 is not None:
                self.ib700.io_write(addr, n, piece)
            elif PCI_CONFIG_ADDRESS <= addr < PCI_CONFIG_DATA:
                if addr == PCI_CONFIG_ADDRESS and n == 4:
                    self._config_address = piece
            elif PCI_CONFIG_DATA <= addr < PCI_CONFIG_END:
                self._config_data_write(addr - PCI_CONFIG_DATA, n, piece)
        self._end_operation()

    def io_read(self, port, size) -> int:
        port = check_port(port)
        size = check_size(size)
        if self._status in _FINISHED:
            return (1 << (8 * size)) - 1
        result = 0
        for addr, n, shift in self._io_pieces(port, size):
            if PCI_CONFIG_ADDRESS <= addr < PCI_CONFIG_DATA:
                piece = self._config_address & ((1 << (8 * n)) - 1)
            elif PCI_CONFIG_DATA <= addr < PCI_CONFIG_END:
                piece = self._config_data_read(addr - PCI_CONFIG_DATA, n)
            else:  # the IB700 and unclaimed ports read all-ones
                piece = (1 << (8 * n)) - 1
            result |= piece << shift
        self._end_operation()
        return result

    def _io_pieces(self, port: int, size: int):
        """Pieces ``(port, nbytes, shift)`` as QEMU's memory core delivers them."""
        pieces = []
        off = 0
        while off < size:
            addr = port + off
            left = size - off
            if IB700_FIRST <= addr < IB700_END and self.ib700 is not None:
                n = left  # the IB700 block takes all remaining bytes as one access
            else:
                if PCI_CONFIG_ADDRESS <= addr < PCI_CONFIG_DATA:
                    base = PCI_CONFIG_ADDRESS
                elif PCI_CONFIG_DATA <= addr < PCI_CONFIG_END:
                    base = PCI_CONFIG_DATA
                else:
                    base = 0
                n = piece_size(addr - base, left)
            pieces.append((addr, n, 8 * off))
            off += n
        return pieces

    def _config_target(self, k: int):
        """Configuration mechanism #1: the i6300ESB and its register offset, or None for
        an empty slot or a disabled CONFIG_ADDRESS (SPEC.md §5.2)."""
        ca = self._config_address
        if not ca & 0x80000000 or self.i6300esb is None:
            return None
        bus, dev, fn = (ca >> 16) & 0xFF, (ca >> 11) & 0x1F, (ca >> 8) & 0x07
        if bus != 0 or dev != self._esb_slot or fn != 0:
            return None
        return (ca & 0xFF) | k  # bits 1:0 are OR-ed with the data port offset, not added

    def _config_data_write(self, k: int, n: int, value: int) -> None:
        offset = self._config_target(k)
        if offset is not None:
            self.i6300esb.config_write(offset, n, value)

    def _config_data_read(self, k: int, n: int) -> int:
        offset = self._config_target(k)
        if offset is None:
            return (1 << (8 * n)) - 1
        return self.i6300esb.config_read(offset, n)

    # --- memory -------------------------------------------------------------------------
    def mem_write(self, addr, size, value) -> None:
        addr = _check_addr(addr)
        size = check_size(size)
        value = check_value(value, size)
        _check_span(addr, size)
        if self._status not in _FINISHED:
            for a, n, shift, bar in self._mem_pieces(addr, size):
                if bar is not None:  # elsewhere: unassigned, the write is dropped
                    self.i6300esb.mmio_write(a - bar, n, (value >> shift) & ((1 << (8 * n)) - 1))
        self._end_operation()

    def mem_read(self, addr, size) -> int:
        addr = _check_addr(addr)
        size = check_size(size)
        _check_span(addr, size)
        result = 0
        if self._status not in _FINISHED:
            for a, n, shift, bar in self._mem_pieces(addr, size):
                if bar is not None:  # unassigned memory reads 0 per lane
                    result |= self.i6300esb.mmio_read(a - bar, n) << shift
        self._end_operation()
        return result

    def _mem_pieces(self, addr: int, size: int):
        """Pieces ``(addr, nbytes, shift, bar0_base_or_None)`` (SPEC.md §5.1, §5.3).
        The BAR window is re-evaluated per access, never cached."""
        bar = self.i6300esb._bar0() if self.i6300esb is not None else None
        pieces, off = [], 0
        while off < size:
            a = addr + off
            inside = bar is not None and bar <= a < bar + BAR0_SIZE
            n = piece_size(a - bar if inside else a, size - off)
            pieces.append((a, n, 8 * off, bar if inside else None))
            off += n
        return pieces

    # --- time ---------------------------------------------------------------------------
    def advance(self, delta_ns) -> int:
        return self._run_until(check_delta(self._now, delta_ns))

    def advance_to(self, t_ns) -> int:
        return self._run_until(check_time(self._now, t_ns))

    def _run_until(self, t: int) -> int:
        before = self._expiries  # counts expiries caused by callbacks too
        if self._status == "running":
            self._fire_due(t)
            if self._status == "poweroff":  # QEMU exited inside the expiry: time stays there
                return self._expiries - before
        self._set_now(t)
        self._end_operation()
        return self._expiries - before

    def _fire_due(self, t: int) -> None:
        """Handle every device deadline <= t, one at a time, in (deadline, arming) order."""
        while self._status == "running":
            due = [(key, i) for i, dev in enumerate(self._devices)
                   if (key := dev._due_key(t)) is not None]
            if not due:
                break
            best_key, best_i = min(due)
            best_dev = self._devices[best_i]
            if hasattr(best_dev, "_skip_cycles"):
                # whole free-running cycles ending before anything else is due are
                # unobservable: jump them in O(1) (SPEC.md §3.6)
                limit = min([t + 1] + [key[0] for key, i in due if i != best_i])
                best_dev._skip_cycles(limit)
                best_key = best_dev._due_key(t)
            if best_key[0] > self._now:
                self._set_now(best_key[0])  # overdue deadlines fire at the current now
            best_dev._expire()

    def _set_now(self, t: int) -> None:
        self._now = t
        for dev in self._devices:
            dev._set_now(t)

    # --- run state ------------------------------------------------------------------------
    def pause(self) -> None:
        if self._status == "running":
            self._set_status("paused")
            self._log("STOP", {})
        self._end_operation()

    def resume(self) -> None:
        if self._status in _STOPPED:
            self._set_status("running")
            self._log("RESUME", {})
            self._fire_due(self._now)
        self._end_operation()

    def system_reset(self) -> None:
        if self._status not in _FINISHED:
            self._request_reset(_HOST_RESET)
        self._end_operation()

    def _set_status(self, status: str) -> None:
        self._status = status
        running = status == "running"
        for dev in self._devices:
            dev._timers_on = running

    def _request_reset(self, data: dict) -> None:
        if self._reboot_action == "shutdown":
            self._requests.setdefault("shutdown", data)  # QEMU's -no-reboot
        else:
            self._requests.setdefault("reset", data)

    def _on_expiry(self, event) -> None:
        """The one place an expiry becomes its effect (SPEC.md §4.2)."""
        self._expiries += 1
        self._log("WATCHDOG", {"action": event.action.value}, event.time_ns)
        effect = effect_of(event.action)
        if effect.immediate_event is not None:
            self._log(effect.immediate_event, {}, event.time_ns)
        if effect.power_off:
            self._requests.clear()
            self._set_status("poweroff")
        elif effect.request == "reset":
            self._request_reset(_GUEST_RESET)
        elif effect.request is not None:
            self._requests.setdefault(effect.request, None)

    def _end_operation(self) -> None:
        """QEMU's main loop after a command: shutdown, reset, powerdown, stop."""
        if not self._requests:
            return
        requests, self._requests = self._requests, {}
        if self._status in _FINISHED:
            return
        if "shutdown" in requests:
            self._log("SHUTDOWN", dict(requests["shutdown"]))
            self._set_status("shutdown")
            return
        if "reset" in requests:
            for dev in self._devices:
                dev.reset()
            self._log("RESET", dict(requests["reset"]))
            if self._status != "running":
                self._set_status("prelaunch")
        if "powerdown" in requests:
            self._log("POWERDOWN", {})
        if "stop" in requests and self._status == "running":
            self._set_status("watchdog")
            self._log("STOP", {})

    def _log(self, name: str, data: dict, time_ns: int | None = None) -> None:
        entry = {"event": name, "data": data, "time_ns": self._now if time_ns is None else time_ns}
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
            decoded = _ops.decode(ops)
        elif isinstance(ops, (list, tuple)):
            decoded = _ops.decode(_ops.encode(ops))  # validates every op first
        else:
            raise TypeError(f"ops must be bytes or a list of op tuples, not {type(ops).__name__}")
        reads: list[int] = []
        self._capture = captured = []
        executed = 0
        try:
            for op in decoded:
                if self._status in _FINISHED:
                    break
                self._run_op(op, reads)
                executed += 1
        finally:
            self._capture = None
        return RunResult(executed, reads, captured)

    def _run_op(self, op: tuple, reads: list) -> None:
        name = op[0]
        if name == "clock_step":
            if len(op) == 1:  # bare: to the next deadline, if any
                target = self.next_deadline
                if target is None:
                    self._end_operation()
                    return
            else:
                target = self._now + op[1]
            self._run_until(min(target, _ops.TIME_MAX_NS))  # time saturates at 2**63-1 ns
        elif name == "clock_set":
            self._run_until(max(op[1], self._now))
        else:
            size = _WIDTHS[name[-1]]
            if name[0] == "o":
                self.io_write(op[1], size, op[2])
            elif name[0] == "i":
                reads.append(self.io_read(op[1], size))
            elif name[0] == "w":
                self.mem_write(op[1], size, op[2])
            else:
                reads.append(self.mem_read(op[1], size))

    # --- snapshot ---------------------------------------------------------------------------
    def _config_tuple(self) -> tuple[int, int, int, int, int]:
        mask = sum(1 << i for i, k in enumerate(DEVICE_KINDS) if k in self._kinds)
        return (mask, self._esb_slot, PROFILES.index(self._profile),
                REBOOT_ACTIONS.index(self._reboot_action), int(self._stage1_interrupt))

    def snapshot(self) -> bytes:
        head = _MACHINE.pack(*self._config_tuple(), self._now, STATUSES.index(self._status),
                             ACTION_CODE[self._action], self._config_address, self._counter.value)
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
            if state[5] > counter or (state[2] and state[4] >= counter):
                raise ValueError("data holds a device arming number from the future")
            states.append(state)
            pos += _LEN.size + n
        if pos != len(payload):
            raise ValueError("data has trailing bytes")
        # validated: apply
        for dev, state in zip(self._devices, states):
            dev._apply(state)
        self._counter.value = counter
        self._now = now
        self._action = ACTIONS[action]
        self._config_address = config_address
        self._requests = {}
        self._set_status(STATUSES[status])

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
        return (f"<Machine ({self._implementation}) now={self._now} status={self._status} "
                f"action={self._action.value} devices={','.join(self._kinds)}>")


def _machine_from_snapshot(kinds, slot, profile, reboot, s1i, impl, data) -> Machine:
    m = Machine(kinds, esb_slot=slot, profile=profile, reboot_action=reboot,
                stage1_interrupt=s1i, implementation=impl)
    m.restore(data)
    return m


def _check_addr(addr) -> int:
    a = as_int(addr, "addr")
    if a < 0 or a >= 1 << 64:
        raise ValueError(f"addr must be in 0..2**64-1, not {a}")
    return a


def _check_span(addr: int, size: int) -> None:
    if addr + size > 1 << 64:
        raise ValueError(f"addr {addr:#x} + size {size} runs past the end of memory (2**64)")
