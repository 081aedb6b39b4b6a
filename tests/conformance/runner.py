"""Differential runs: one op sequence on a real QEMU and on wdcore, compared op by op.

An op is a tuple in qtest vocabulary — ``("outb", port, value)``, ``("inw", port)``,
``("writel", addr, value)``, ``("readb", addr)``, ``("clock_step", ns)``,
``("clock_set", ns)`` — or a QMP command: ``("qmp", "stop")``, ``("qmp", "cont")``,
``("qmp", "system_reset")``, ``("qmp", "watchdog-set-action", action)``.

After every op (and QEMU's ``clock_step 0`` barrier) the comparison covers: the reply
line (read values, clock), the run status, the non-WATCHDOG events in order (RESET,
SHUTDOWN, STOP, RESUME, POWERDOWN with their data), and the WATCHDOG events after
applying QMP's one-per-second throttle (SPEC.md §4.6) to wdcore's unthrottled log.
At the end, QEMU's "watchdog: timer fired" lines (one per ``debug`` expiry, never
throttled) are counted against wdcore's debug expiries.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from tests.conformance.qemu import Qemu, QemuExited

S = 1_000_000_000
THROTTLE_NS = S  # QMP sends at most one WATCHDOG per second of (here: virtual) time

_WIDTH = {"b": 1, "w": 2, "l": 4}


@dataclass(frozen=True)
class Config:
    """One QEMU command line and the matching Machine."""

    action: str = "reset"
    no_reboot: bool = False
    esb_slot: int = 3

    def machine_kwargs(self) -> dict:
        return {"action": self.action, "esb_slot": self.esb_slot, "profile": "qemu-7.2",
                "reboot_action": "shutdown" if self.no_reboot else "reset"}


def qtest_line(op: tuple) -> str | None:
    """The qtest text of an op, or None for a QMP op."""
    name = op[0]
    if name == "qmp":
        return None
    if name.startswith(("out", "write")):
        return f"{name} {op[1]:#x} {op[2]:#x}"
    if name.startswith(("in", "read")):
        return f"{name} {op[1]:#x}"
    if name == "clock_step" and len(op) == 1:
        return "clock_step"
    return f"{name} {op[1]}"


def format_op(op: tuple) -> str:
    line = qtest_line(op)
    return line if line is not None else "# qmp " + " ".join(str(x) for x in op[1:])


def reproducer(config: Config, ops: list[tuple]) -> str:
    head = (f"# qemu-system-x86_64 -machine pc,pit=off -accel qtest -nodefaults -device ib700 "
            f"-device i6300esb,addr={config.esb_slot:#x} -action watchdog={config.action}"
            f"{' -no-reboot' if config.no_reboot else ''}")
    return "\n".join([head] + [format_op(op) for op in ops])


# --- wdcore side -----------------------------------------------------------------------

def wdcore_reply(m, op: tuple) -> str:
    """Apply one op to a Machine; the reply QEMU's qtest server would print."""
    name = op[0]
    if name == "qmp":
        cmd = op[1]
        if cmd == "stop":
            m.pause()
        elif cmd == "cont":
            m.resume()
        elif cmd == "system_reset":
            m.system_reset()
        elif cmd == "watchdog-set-action":
            m.action = op[2]
        return "OK"
    if name in ("outb", "outw", "outl"):
        m.io_write(op[1], _WIDTH[name[-1]], op[2])
        return "OK"
    if name in ("inb", "inw", "inl"):
        return f"OK 0x{m.io_read(op[1], _WIDTH[name[-1]]):04x}"
    if name in ("writeb", "writew", "writel"):
        m.mem_write(op[1], _WIDTH[name[-1]], op[2])
        return "OK"
    if name in ("readb", "readw", "readl"):
        return f"OK 0x{m.mem_read(op[1], _WIDTH[name[-1]]):016x}"
    if name == "clock_step":
        m.advance(op[1])
        return f"OK {m.now}"
    if name == "clock_set":
        if op[1] > m.now:
            m.advance_to(op[1])
        return f"OK {m.now}"
    raise ValueError(f"unknown op {op!r}")


class Throttle:
    """QMP's WATCHDOG rate limit, replayed on wdcore's log (SPEC.md §4.6): the first
    event goes out at once and opens a 1 s window; inside it only the latest is kept,
    sent when the window closes, which opens the next window.  The window's timer is
    on the virtual clock and waits while the VM is stopped.  Where a WATCHDOG falls
    exactly on a window's end, QEMU's order depends on its timer list: ``ambiguous``
    is set and the caller stops comparing WATCHDOGs for that sequence."""

    def __init__(self) -> None:
        self.window_end: int | None = None
        self.pending: dict | None = None
        self.ambiguous = False

    def run_to(self, t: int) -> list[dict]:
        out = []
        while self.window_end is not None and self.window_end <= t:
            if self.pending is not None:
                out.append(self.pending)
                self.pending = None
                self.window_end += THROTTLE_NS
            else:
                self.window_end = None
        return out

    def event(self, t: int, data: dict) -> list[dict]:
        out = self.run_to(t - 1)
        if self.window_end == t:
            self.ambiguous = True
        out += self.run_to(t)
        if self.window_end is None:
            out.append(data)
            self.window_end = t + THROTTLE_NS
        else:
            self.pending = data
        return out


@dataclass
class Step:
    """What one op produced, on one side."""

    reply: str
    status: str
    events: list = field(default_factory=list)      # non-WATCHDOG (name, data), in order
    watchdogs: list = field(default_factory=list)   # WATCHDOG data, in emission order


def run_wdcore(config: Config, ops: list[tuple], implementation: str):
    from wdcore import Machine

    m = Machine(implementation=implementation, **config.machine_kwargs())
    throttle = Throttle()
    steps, debug_fires = [], 0
    for op in ops:
        if m.status in ("shutdown", "poweroff"):
            break  # QEMU has exited
        n = len(m.events)
        running_before = m.status == "running"
        reply = wdcore_reply(m, op)
        events, watchdogs = [], []
        for e in m.events[n:]:
            if e["event"] == "WATCHDOG":
                watchdogs += throttle.event(e["time_ns"], e["data"])
                debug_fires += e["data"]["action"] == "debug"
            elif e["event"] == "NMI":
                continue  # wdcore only: QEMU shows nothing under qtest (SPEC.md §4.1)
            else:
                if e["event"] == "RESUME" and throttle.window_end is not None \
                        and throttle.window_end <= e["time_ns"]:
                    if any(x["event"] == "WATCHDOG" for x in m.events[n:]):
                        throttle.ambiguous = True  # overdue window vs overdue expiries
                    watchdogs += throttle.run_to(e["time_ns"])
                events.append((e["event"], e["data"]))
        if m.status != "poweroff" and (running_before or m.status == "running"):
            watchdogs += throttle.run_to(m.now)
        steps.append(Step(reply, m.status, events, watchdogs))
    return steps, debug_fires, throttle.ambiguous


# --- QEMU side ------------------------------------------------------------------------------

def run_qemu(config: Config, ops: list[tuple]):
    steps = []
    with Qemu(action=config.action, no_reboot=config.no_reboot, esb_slot=config.esb_slot) as q:
        for op in ops:
            if q.exited:
                break
            line = qtest_line(op)
            try:
                if line is None:
                    q.qmp(op[1], **({"action": op[2]} if len(op) > 2 else {}))
                    reply = "OK"
                else:
                    reply = q.cmd(line)
            except QemuExited:
                reply = None  # poweroff: QEMU exits inside the command, without a reply
            events, status = q.settle()
            plain, watchdogs = [], []
            for e in events:
                if e["event"] == "WATCHDOG":
                    watchdogs.append(e["data"])
                else:
                    plain.append((e["event"], e.get("data", {})))
            steps.append(Step(reply, status, plain, watchdogs))
        q.close()
        debug_fires = sum(1 for line in q.stderr_lines if line.strip() == "watchdog: timer fired")
    return steps, debug_fires


# --- comparison ------------------------------------------------------------------------------

@dataclass
class Mismatch:
    index: int
    what: str
    qemu: object
    wdcore: object

    def __str__(self) -> str:
        return f"op {self.index}: {self.what}: QEMU {self.qemu!r}, wdcore {self.wdcore!r}"


def compare(config: Config, ops: list[tuple], implementation: str,
            qemu_result=None) -> Mismatch | None:
    """First difference between QEMU and wdcore on ``ops``, or None."""
    q_steps, q_debug = qemu_result if qemu_result is not None else run_qemu(config, ops)
    w_steps, w_debug, ambiguous = run_wdcore(config, ops, implementation)
    for i, (q, w) in enumerate(zip(q_steps, w_steps)):
        if q.reply is None:  # QEMU powered off inside this op
            if w.status != "poweroff":
                return Mismatch(i, "QEMU exited (poweroff) in this op", "exit", w.status)
            return None
        if q.reply != w.reply:
            return Mismatch(i, "reply", q.reply, w.reply)
        if q.status != w.status:
            return Mismatch(i, "status", q.status, w.status)
        if q.events != w.events:
            return Mismatch(i, "events", q.events, w.events)
        if not ambiguous and q.watchdogs != w.watchdogs:
            return Mismatch(i, "WATCHDOG events (throttled)", q.watchdogs, w.watchdogs)
    if len(q_steps) != len(w_steps):
        return Mismatch(min(len(q_steps), len(w_steps)), "length of run (QEMU exited?)",
                        len(q_steps), len(w_steps))
    if q_debug != w_debug:
        return Mismatch(len(ops), "debug expiries ('watchdog: timer fired' lines)", q_debug, w_debug)
    return None


def shrink(config: Config, ops: list[tuple], implementation: str, budget: int = 400) -> list[tuple]:
    """A smaller op list that still mismatches (delta debugging: chunks, then single ops)."""
    best = list(ops)
    tries = 0
    chunk = max(len(best) // 2, 1)
    while chunk >= 1 and tries < budget:
        i, progress = 0, False
        while i < len(best) and tries < budget:
            candidate = best[:i] + best[i + chunk:]
            tries += 1
            if candidate and compare(config, candidate, implementation) is not None:
                best, progress = candidate, True
            else:
                i += chunk
        if not progress:
            chunk //= 2
    return best
