"""The Machine's core in plain Python: bus routing, time across devices, run state and
QEMU's request handling.  The fallback, and the oracle for ``_machine.pyx``.

The public ``wdcore.Machine`` (machine.py) is a thin wrapper: it validates its
configuration, builds the devices, owns the event log, and hands accesses and time
to a core.  Behaviour: SPEC.md §4 (actions, requests at the end of the operation,
run states) and §5 (port splitting, configuration mechanism #1, BAR0 decode).
"""
from __future__ import annotations

from wdcore import ops as _ops
from wdcore._args import check_delta, check_port, check_size, check_time, check_value, as_int
from wdcore.actions import ACTIONS, effect_of
from wdcore.regs import BAR0_SIZE, piece_size

# run states, by code (snapshot order)
RUNNING, WATCHDOG, PAUSED, PRELAUNCH, SHUTDOWN, POWEROFF = range(6)
STATUSES = ("running", "watchdog", "paused", "prelaunch", "shutdown", "poweroff")
# main-loop requests, in the order QEMU handles them
REQ_SHUTDOWN, REQ_RESET, REQ_POWERDOWN, REQ_STOP = 1, 2, 4, 8

IB700_FIRST, IB700_END = 0x441, 0x445
PCI_CONFIG_ADDRESS, PCI_CONFIG_DATA, PCI_CONFIG_END = 0xCF8, 0xCFC, 0xD00
GUEST_RESET = {"guest": True, "reason": "guest-reset"}
HOST_RESET = {"guest": False, "reason": "host-qmp-system-reset"}
_WIDTHS = {"b": 1, "w": 2, "l": 4}


def check_addr(addr, size: int) -> int:
    a = as_int(addr, "addr")
    if a < 0 or a >= 1 << 64:
        raise ValueError(f"addr must be in 0..2**64-1, not {a}")
    if a + size > 1 << 64:
        raise ValueError(f"addr {a:#x} + size {size} runs past the end of memory (2**64)")
    return a


class MachineCore:
    """Routing, time and run state for one Machine's devices."""

    def __init__(self, ib700, i6300esb, counter, esb_slot: int, reboot_shutdown: bool,
                 action_code: int, log) -> None:
        self.ib700 = ib700
        self.i6300esb = i6300esb
        self.devices = [d for d in (ib700, i6300esb) if d is not None]
        self.counter = counter
        self.esb_slot = esb_slot
        self.reboot_shutdown = reboot_shutdown
        self.action_code = action_code
        self.log = log                  # log(name, data, time_ns): the wrapper's event log
        self.now = 0
        self.status = RUNNING
        self.config_address = 0
        self.requests = 0
        self.reset_data = None          # data of the pending reset or shutdown request
        self.expiries = 0               # WATCHDOG events so far
        for dev in self.devices:
            dev._share_counter(counter)
            dev._sink = self._on_expiry

    # --- port I/O -------------------------------------------------------------------------
    def io_write(self, port, size, value) -> None:
        port = check_port(port)
        size = check_size(size)
        value = check_value(value, size)
        self._io_write(port, size, value)
        self._end_operation()

    def io_read(self, port, size) -> int:
        port = check_port(port)
        size = check_size(size)
        value = self._io_read(port, size)
        self._end_operation()
        return value

    def _io_write(self, port: int, size: int, value: int) -> None:
        if self.status >= SHUTDOWN:
            return
        for addr, n, shift in self._io_pieces(port, size):
            piece = (value >> shift) & ((1 << (8 * n)) - 1)
            if IB700_FIRST <= addr < IB700_END and self.ib700 is not None:
                self.ib700.io_write(addr, n, piece)
            elif PCI_CONFIG_ADDRESS <= addr < PCI_CONFIG_DATA:
                if addr == PCI_CONFIG_ADDRESS and n == 4:
                    self.config_address = piece
            elif PCI_CONFIG_DATA <= addr < PCI_CONFIG_END:
                offset = self._config_target(addr - PCI_CONFIG_DATA)
                if offset is not None:
                    self.i6300esb.config_write(offset, n, piece)

    def _io_read(self, port: int, size: int) -> int:
        if self.status >= SHUTDOWN:
            return (1 << (8 * size)) - 1
        result = 0
        for addr, n, shift in self._io_pieces(port, size):
            if PCI_CONFIG_ADDRESS <= addr < PCI_CONFIG_DATA:
                piece = self.config_address & ((1 << (8 * n)) - 1)
            elif PCI_CONFIG_DATA <= addr < PCI_CONFIG_END:
                offset = self._config_target(addr - PCI_CONFIG_DATA)
                piece = ((1 << (8 * n)) - 1 if offset is None
                         else self.i6300esb.config_read(offset, n))
            else:  # the IB700 and unclaimed ports read all-ones
                piece = (1 << (8 * n)) - 1
            result |= piece << shift
        return result

    def _io_pieces(self, port: int, size: int):
        """Pieces ``(port, nbytes, shift)`` as QEMU's memory core delivers them (§5.1)."""
        pieces, off = [], 0
        while off < size:
            addr, left = port + off, size - off
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
        """Configuration mechanism #1: the i6300ESB's register offset for data port
        offset k, or None (bit 31 clear, another function, or no i6300ESB; §5.2)."""
        ca = self.config_address
        if not ca & 0x80000000 or self.i6300esb is None:
            return None
        if (ca >> 16) & 0xFF or ((ca >> 11) & 0x1F) != self.esb_slot or (ca >> 8) & 0x07:
            return None
        return (ca & 0xFF) | k  # bits 1:0 are OR-ed with the data port offset, not added

    # --- memory ----------------------------------------------------------------------------
    def mem_write(self, addr, size, value) -> None:
        size = check_size(size)
        addr = check_addr(addr, size)
        value = check_value(value, size)
        self._mem_write(addr, size, value)
        self._end_operation()

    def mem_read(self, addr, size) -> int:
        size = check_size(size)
        addr = check_addr(addr, size)
        value = self._mem_read(addr, size)
        self._end_operation()
        return value

    def _mem_write(self, addr: int, size: int, value: int) -> None:
        if self.status >= SHUTDOWN:
            return
        for a, n, shift, bar in self._mem_pieces(addr, size):
            if bar is not None:  # elsewhere: unassigned, the write is dropped
                self.i6300esb.mmio_write(a - bar, n, (value >> shift) & ((1 << (8 * n)) - 1))

    def _mem_read(self, addr: int, size: int) -> int:
        result = 0
        if self.status >= SHUTDOWN:
            return 0
        for a, n, shift, bar in self._mem_pieces(addr, size):
            if bar is not None:  # unassigned memory reads 0 per lane
                result |= self.i6300esb.mmio_read(a - bar, n) << shift
        return result

    def _mem_pieces(self, addr: int, size: int):
        """Pieces ``(addr, nbytes, shift, bar0_base_or_None)`` (§5.1, §5.3); the BAR
        window is re-evaluated per access, never cached."""
        bar = self.i6300esb._bar0() if self.i6300esb is not None else None
        pieces, off = [], 0
        while off < size:
            a = addr + off
            inside = bar is not None and bar <= a < bar + BAR0_SIZE
            n = piece_size(a - bar if inside else a, size - off)
            pieces.append((a, n, 8 * off, bar if inside else None))
            off += n
        return pieces

    # --- time -------------------------------------------------------------------------------
    @property
    def next_deadline(self):
        if self.status != RUNNING:
            return None
        best = None
        for dev in self.devices:
            d = dev.next_deadline
            if d is not None and (best is None or d < best):
                best = d
        return best

    def advance(self, delta_ns) -> int:
        return self._run_until(check_delta(self.now, delta_ns))

    def advance_to(self, t_ns) -> int:
        return self._run_until(check_time(self.now, t_ns))

    def _run_until(self, t: int) -> int:
        before = self.expiries  # counts expiries caused by callbacks too
        if self.status == RUNNING:
            self._fire_due(t)
            if self.status == POWEROFF:  # QEMU exited inside the expiry: time stays there
                return self.expiries - before
        self._set_now(t)
        self._end_operation()
        return self.expiries - before

    def _fire_due(self, t: int) -> None:
        """Handle every device deadline <= t, one at a time, in (deadline, arming) order."""
        while self.status == RUNNING:
            due = [(key, i) for i, dev in enumerate(self.devices)
                   if (key := dev._due_key(t)) is not None]
            if not due:
                break
            best_key, best_i = min(due)
            best_dev = self.devices[best_i]
            if best_dev is self.i6300esb:
                # whole free-running cycles ending before anything else is due are
                # unobservable: jump them in O(1) (SPEC.md §3.6)
                limit = min([t + 1] + [key[0] for key, i in due if i != best_i])
                best_dev._skip_cycles(limit)
                best_key = best_dev._due_key(t)
            if best_key[0] > self.now:
                self._set_now(best_key[0])  # overdue deadlines fire at the current now
            best_dev._expire()

    def _set_now(self, t: int) -> None:
        self.now = t
        for dev in self.devices:
            dev._set_now(t)

    # --- run state -------------------------------------------------------------------------
    def pause(self) -> None:
        if self.status == RUNNING:
            self._set_status(PAUSED)
            self.log("STOP", {}, self.now)
        self._end_operation()

    def resume(self) -> None:
        if self.status in (WATCHDOG, PAUSED, PRELAUNCH):
            self._set_status(RUNNING)
            self.log("RESUME", {}, self.now)
            self._fire_due(self.now)
        self._end_operation()

    def system_reset(self) -> None:
        if self.status < SHUTDOWN:
            self._request_reset(HOST_RESET)
        self._end_operation()

    def set_action(self, code: int) -> None:
        self.action_code = code
        for dev in self.devices:
            dev.action = ACTIONS[code]

    def _set_status(self, status: int) -> None:
        self.status = status
        for dev in self.devices:
            dev._timers_on = status == RUNNING

    def _request_reset(self, data: dict) -> None:
        kind = REQ_SHUTDOWN if self.reboot_shutdown else REQ_RESET  # -no-reboot
        if not self.requests & kind:
            self.requests |= kind
            self.reset_data = data

    def _on_expiry(self, event) -> None:
        """The one place an expiry becomes its effect (SPEC.md §4.2)."""
        self.expiries += 1
        self.log("WATCHDOG", {"action": event.action.value}, event.time_ns)
        effect = effect_of(event.action)
        if effect.immediate_event is not None:
            self.log(effect.immediate_event, {}, event.time_ns)
        if effect.power_off:
            self.requests = 0
            self._set_status(POWEROFF)
        elif effect.request == "reset":
            self._request_reset(GUEST_RESET)
        elif effect.request == "powerdown":
            self.requests |= REQ_POWERDOWN
        elif effect.request == "stop":
            self.requests |= REQ_STOP

    def _end_operation(self) -> None:
        """QEMU's main loop after a command: shutdown, reset, powerdown, stop."""
        if not self.requests:
            return
        requests, self.requests = self.requests, 0
        if self.status >= SHUTDOWN:
            return
        if requests & REQ_SHUTDOWN:
            self.log("SHUTDOWN", dict(self.reset_data), self.now)
            self._set_status(SHUTDOWN)
            return
        if requests & REQ_RESET:
            for dev in self.devices:
                dev.reset()
            self.log("RESET", dict(self.reset_data), self.now)
            if self.status != RUNNING:
                self._set_status(PRELAUNCH)
        if requests & REQ_POWERDOWN:
            self.log("POWERDOWN", {}, self.now)
        if requests & REQ_STOP and self.status == RUNNING:
            self._set_status(WATCHDOG)
            self.log("STOP", {}, self.now)

    # --- op streams ---------------------------------------------------------------------------
    def run(self, data: bytes):
        """Execute a binary op stream; returns (ops executed, values read)."""
        reads: list[int] = []
        executed = 0
        for op in _ops.decode(data):
            if self.status >= SHUTDOWN:
                break
            name = op[0]
            if name == "clock_step":
                if len(op) == 1:  # bare: to the next deadline, if any
                    target = self.next_deadline
                    if target is None:
                        target = self.now
                else:
                    target = self.now + op[1]
                self._run_until(min(target, _ops.TIME_MAX_NS))  # saturates at 2**63-1 ns
            elif name == "clock_set":
                self._run_until(max(op[1], self.now))
            else:
                size = _WIDTHS[name[-1]]
                kind = name[0]
                if kind == "o":
                    self._io_write(op[1], size, op[2])
                elif kind == "i":
                    reads.append(self._io_read(op[1], size))
                elif kind == "w":
                    self._mem_write(op[1], size, op[2])
                else:
                    reads.append(self._mem_read(op[1], size))
                self._end_operation()
            executed += 1
        return executed, reads

    # --- state for snapshots --------------------------------------------------------------------
    def get_state(self):
        return self.now, self.status, self.action_code, self.config_address

    def set_state(self, now: int, status: int, action_code: int, config_address: int) -> None:
        self.now = now
        self.action_code = action_code
        self.config_address = config_address
        self.requests = 0
        self._set_status(status)
