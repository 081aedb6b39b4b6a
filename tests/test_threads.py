"""Issue 10, item 1: one thread at a time.  A Machine (or a standalone device) used from a
second thread while one of its calls is in progress raises RuntimeError "<cls>.<call>:
this <cls> is in use by another thread (<cls>.<call in progress>)" and changes nothing;
the call in progress finishes exactly as it would alone.  Plain property reads are not
guarded.  Both implementations; the compiled run releases the GIL for its loop, the twin
is made to switch threads often (sys.setswitchinterval).

No timing assertions: a call "in progress" is made deterministic by a callback of that
call that waits (releasing the GIL) until the other thread has tried everything.
"""
from __future__ import annotations

import random
import re
import sys
import threading
from collections import Counter

import pytest

from tests.conftest import S
from wdcore import WatchdogAction, _select, ops

WAIT = 60  # seconds a blocked callback waits for the other thread at most (never reached)


def bus_config_write(m, offset, size, value, slot=2):
    m.io_write(0xCF8, 4, 0x8000_0000 | (slot << 11) | (offset & 0xFC))
    m.io_write(0xCFC + (offset & 3), size, value)


@pytest.fixture
def switch_often():
    """Make the interpreter switch threads as often as it can (the twin's races)."""
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        yield
    finally:
        sys.setswitchinterval(old)


def busy_message(cls, call, holder):
    return f"{cls}.{call}: this {cls} is in use by another thread ({cls}.{holder})"


def event_key(e):
    return (e["event"], e["time_ns"], tuple(sorted(e["data"].items())))


# =============================================================================================
# Every guarded call from another thread, while each kind of call is in progress
# =============================================================================================

#: every acting Machine call, as another thread makes it
CONTENDERS = {
    "io_write": lambda m, snap: m.io_write(0x443, 1, 0x0F),
    "io_read": lambda m, snap: m.io_read(0xCF8, 4),
    "mem_write": lambda m, snap: m.mem_write(0xFEBF_000C, 1, 0x80),
    "mem_read": lambda m, snap: m.mem_read(0xFEBF_0008, 1),
    "advance": lambda m, snap: m.advance(S),
    "advance_to": lambda m, snap: m.advance_to(m.now + S),
    "pause": lambda m, snap: m.pause(),
    "resume": lambda m, snap: m.resume(),
    "system_reset": lambda m, snap: m.system_reset(),
    "clear_events": lambda m, snap: m.clear_events(),
    "action": lambda m, snap: setattr(m, "action", "pause"),
    "run": lambda m, snap: m.run(ops.encode([("clock_step", S), ("outb", 0x443, 0x0F)])),
    "snapshot": lambda m, snap: m.snapshot(),
    "restore": lambda m, snap: m.restore(snap),
}


def refusals(contenders, obj, snap):
    """Each contender's attempt on ``obj``: its RuntimeError's message, or None when it
    was not refused."""
    errors = {}
    for name, contender in contenders.items():
        try:
            contender(obj, snap)
        except RuntimeError as exc:
            errors[name] = str(exc)
        else:
            errors[name] = None
    return errors


def setup_machine(make_machine):
    m = make_machine(action="none")
    bus_config_write(m, 0x10, 4, 0xFEBF_0000)     # BAR0, with memory decoding
    bus_config_write(m, 0x04, 2, 0x0002)
    bus_config_write(m, 0x68, 1, 0x02)            # the i6300ESB counts
    m.io_write(0x443, 1, 0x0E)                    # the IB700 expires at 2 s
    return m


#: the call in progress: (prepare, the call), with a callback of it that blocks
def _hold_on_expire(m, block):
    m.ib700.on_expire = lambda _e: block()


def _hold_on_event(name):
    def prepare(m, block):
        m.on_event = lambda e: block() if e["event"] == name else None
    return prepare


def _paused(prepare):
    def both(m, block):
        m.pause()
        prepare(m, block)
    return both


HOLDERS = {
    "advance": (_hold_on_expire, lambda m: m.advance(5 * S)),
    "advance_to": (_hold_on_expire, lambda m: m.advance_to(5 * S)),
    "io_write": (_hold_on_expire, lambda m: m.io_write(0x443, 1, 0x0F)),
    "run": (_hold_on_expire, lambda m: m.run(ops.encode([("clock_step", S), ("inl", 0xCF8),
                                                           ("clock_step", 4 * S)]))),
    "pause": (_hold_on_event("STOP"), lambda m: m.pause()),
    "resume": (_paused(_hold_on_event("RESUME")), lambda m: m.resume()),
    "system_reset": (_hold_on_event("RESET"), lambda m: m.system_reset()),
}


def hold_in_other_thread(m, prepare, call):
    """Run ``call(m)`` in a second thread until a callback of it blocks; returns
    (release, join) -- join() gives what the call returned."""
    entered, release = threading.Event(), threading.Event()
    out = {}

    def block():
        if not entered.is_set():
            entered.set()
            assert release.wait(WAIT)

    prepare(m, block)

    def target():
        try:
            out["result"] = call(m)
        except BaseException as exc:  # noqa: BLE001 - reported by join
            out["error"] = exc

    t = threading.Thread(target=target)
    t.start()
    assert entered.wait(WAIT), out.get("error")

    def join():
        t.join(WAIT)
        assert not t.is_alive()
        if "error" in out:
            raise out["error"]
        return out.get("result")
    return release, join


@pytest.mark.parametrize("holder", list(HOLDERS))
def test_every_call_from_another_thread_is_refused_while_a_call_is_in_progress(make_machine,
                                                                               holder):
    prepare, call = HOLDERS[holder]
    m = setup_machine(make_machine)
    snap = m.snapshot()
    release, join = hold_in_other_thread(m, prepare, call)
    try:
        errors = refusals(CONTENDERS, m, snap)
        # plain reads are not guarded
        reads = (m.now, m.status, list(m.events), m.next_deadline, m.action,
                 m.ib700.next_deadline, m.i6300esb.config_read(0x68, 1))
    finally:
        release.set()
    result = join()
    for name, message in errors.items():
        expected = busy_message("Machine", name, holder)
        assert message is not None and message.startswith(expected), (name, message)
    assert reads[-1] == (0 if holder == "system_reset" else 0x02)  # reset before RESET is logged
    assert reads[4] == WatchdogAction.NONE
    # nothing the other thread tried happened: the Machine is that of the call made alone
    ref = setup_machine(make_machine)
    prepare(ref, lambda: None)
    ref_result = call(ref)
    assert m.snapshot() == ref.snapshot() and m.events == ref.events
    if holder == "run":
        assert (result.ops_executed, result.reads, result.events) == (
            ref_result.ops_executed, ref_result.reads, ref_result.events)
    # and the guard is free again, for any thread
    m.advance(S)
    assert m.now == ref.now + S


#: a standalone device's acting calls, from another thread
DEVICE_CONTENDERS = {
    "ib700": {
        "io_write": lambda d, snap: d.io_write(0x443, 1, 0x0F),
        "advance": lambda d, snap: d.advance(S),
        "advance_to": lambda d, snap: d.advance_to(d.now + S),
        "reset": lambda d, snap: d.reset(),
        "restore": lambda d, snap: d.restore(snap),
        "action": lambda d, snap: setattr(d, "action", "pause"),
    },
    "i6300esb": {
        "config_write": lambda d, snap: d.config_write(0x68, 1, 0x00),
        "mmio_write": lambda d, snap: d.mmio_write(0x0C, 1, 0x80),
        "advance": lambda d, snap: d.advance(S),
        "advance_to": lambda d, snap: d.advance_to(d.now + S),
        "reset": lambda d, snap: d.reset(),
        "restore": lambda d, snap: d.restore(snap),
        "action": lambda d, snap: setattr(d, "action", "pause"),
    },
}


def setup_device(impl, kind):
    imp = _select.implementation(impl)
    if kind == "ib700":
        dev = imp.IB700(action="none")
        dev.io_write(0x443, 1, 0x0E)
    else:
        dev = imp.I6300ESB(action="none")
        dev.config_write(0x68, 1, 0x02)
    return dev


@pytest.mark.parametrize("kind", ["ib700", "i6300esb"])
def test_a_standalone_devices_calls_from_another_thread_are_refused(impl, kind):
    dev = setup_device(impl, kind)
    snap = dev.snapshot()
    end = 5 * S if kind == "ib700" else 2 * dev.remaining_ns
    release, join = hold_in_other_thread(
        dev, lambda d, block: setattr(d, "on_expire", lambda _e: block()),
        lambda d: d.advance(end))
    try:
        errors = refusals(DEVICE_CONTENDERS[kind], dev, snap)
        reads = (dev.now, dev.next_deadline, list(dev.events), dev.snapshot())
    finally:
        release.set()
    assert join() == 1
    cls = "IB700" if kind == "ib700" else "I6300ESB"
    for name, message in errors.items():
        assert message is not None and message.startswith(busy_message(cls, name, "advance")), name
    assert len(reads[2]) == 1 and isinstance(reads[3], bytes)
    ref = setup_device(impl, kind)
    ref.advance(end)
    assert dev.snapshot() == ref.snapshot() and dev.events == ref.events
    dev.advance(1)
    assert dev.now == end + 1


# =============================================================================================
# (a) While a long run is inside its loop, another thread's calls are refused
# =============================================================================================

THREAD_CALLS = ["io_write", "advance", "snapshot", "restore", "run", "pause", "system_reset",
                "action"]
#: the long run's loop, per implementation: 300 000 ops compiled (the GIL released for
#: them), 60 000 on the twin (slow, and switching threads every microsecond)
LONG_REPEATS = {"compiled": 100_000, "python": 20_000}
STEP = 10


def long_ops(impl):
    return ([("outb", 0x443, 0x0F)]                                       # an event at 0
            + [("outb", 0x443, 0x0E), ("inl", 0xCFC), ("clock_step", STEP)] * LONG_REPEATS[impl]
            + [("clock_step", 3 * S), ("outb", 0x443, 0x0F)])            # events at the end


def test_another_threads_calls_during_a_long_run_are_refused_and_change_nothing(
        make_machine, impl, switch_often):
    long = long_ops(impl)
    data = ops.encode(long)
    end = LONG_REPEATS[impl] * STEP + 3 * S
    m = make_machine(action="none")
    snap = m.snapshot()
    started, ending, stopped = threading.Event(), threading.Event(), threading.Event()
    returned = threading.Event()
    n_watchdogs = []

    def on_event(e):
        # the first event (op 1) lets the other thread start; the last (the last op) waits
        # until it has stopped, so all of its calls fall inside the run
        if e["event"] == "WATCHDOG":
            n_watchdogs.append(e)
            if len(n_watchdogs) == 1:
                started.set()
            elif e["time_ns"] == end:
                ending.set()
                assert stopped.wait(WAIT)
    m.on_event = on_event
    attempts = []

    def contender():
        try:
            assert started.wait(WAIT)
            cycles = 0
            # at least one full cycle, then until the end (or, were the end never seen,
            # until the run has returned)
            while cycles < 1 or not (ending.is_set() or returned.is_set()):
                for name in THREAD_CALLS:
                    now_before = m.now                 # a plain read, not guarded
                    try:
                        {"io_write": lambda: m.io_write(0x443, 1, 0x0F),
                         "advance": lambda: m.advance(S),
                         "snapshot": lambda: m.snapshot(),
                         "restore": lambda: m.restore(snap),
                         "run": lambda: m.run(ops.encode([("clock_step", S)])),
                         "pause": lambda: m.pause(),
                         "system_reset": lambda: m.system_reset(),
                         "action": lambda: setattr(m, "action", "reset")}[name]()
                    except RuntimeError as exc:
                        attempts.append((name, str(exc), now_before))
                    except BaseException as exc:  # noqa: BLE001 - asserted below
                        attempts.append((name, repr(exc), now_before))
                    else:
                        attempts.append((name, None, now_before))
                cycles += 1
        finally:
            stopped.set()

    t = threading.Thread(target=contender)
    t.start()
    try:
        result = m.run(data)
    finally:
        returned.set()
        stopped.set()
        t.join(WAIT)
    assert not t.is_alive()

    assert {name for name, _, _ in attempts} == set(THREAD_CALLS)
    for name, message, _ in attempts:
        assert message is not None and message.startswith(
            busy_message("Machine", name, "run")), (name, message)
    # the other thread saw time move forward only (now is a plain read)
    seen = [now for _, _, now in attempts]
    assert seen == sorted(seen)
    # the run is exactly what it is alone
    ref = make_machine(action="none")
    ref_result = ref.run(data)
    assert result.ops_executed == ref_result.ops_executed == len(long)
    assert result.reads == ref_result.reads
    assert result.events == ref_result.events == m.events
    assert result.bytes_consumed == len(data) and result.stopped == "end"
    assert m.snapshot() == ref.snapshot()
    assert m.now == end and m.action == WatchdogAction.NONE


# =============================================================================================
# (b) Stress: several threads hammer one Machine; every call succeeds or is refused
# =============================================================================================

N_THREADS = 4
ITERATIONS = {"compiled": 400, "python": 150}


def stress_stream(rng):
    """A small op stream and the virtual time it steps: starts with a zero-length IB700
    timeout (a WATCHDOG at the run's first instant), then steps, with a re-arm between."""
    d1, d2 = rng.randrange(1, 3 * S), rng.randrange(1, 3 * S)
    body = [("outb", 0x443, 0x0F), ("clock_step", d1), ("outb", 0x443, 0x0E), ("inl", 0xCF8)]
    body += [("clock_step", 1)] * rng.choice([0, 10, 2000])   # some runs long enough to meet
    body += [("clock_step", d2)]
    return body, sum(op[1] for op in body if op[0] == "clock_step")


def hammer(m, rng, iterations, restores, log):
    """One thread's random calls; returns nothing, fills ``log``."""
    own = []  # snapshots this thread took
    for _ in range(iterations):
        kind = rng.choice(["advance", "run", "snapshot", "io_write", "action"]
                          + (["restore"] if restores else []))
        try:
            if kind == "advance":
                delta = rng.randrange(0, 2 * S)
                m.advance(delta)
                log["advanced"].append(delta)
            elif kind == "run":
                body, total = stress_stream(rng)
                before = m.now
                result = m.run(ops.encode(body))
                after = m.now
                log["runs"].append((result, total, before, after, len(body)))
            elif kind == "snapshot":
                own.append(m.snapshot())
                log["snapshots"].append(own[-1])
            elif kind == "restore":
                if own:
                    m.restore(rng.choice(own))
            elif kind == "io_write":
                m.io_write(0x443, 1, rng.choice([0x0E, 0x0F, 0x00]))
            else:
                m.action = rng.choice(["none", "debug", "inject-nmi"])
            log["ok"][kind] += 1
        except RuntimeError as exc:
            log["refused"].append((kind, str(exc)))
        except BaseException as exc:  # noqa: BLE001 - anything else is a failure
            log["other"].append((kind, repr(exc)))


@pytest.mark.parametrize("restores", [False, True], ids=["accounting", "with_restores"])
def test_threads_hammering_one_machine_lose_nothing(make_machine, impl, restores, switch_often):
    m = make_machine(action="none")
    log = {"advanced": [], "runs": [], "snapshots": [], "refused": [], "other": [],
           "ok": Counter()}
    lock = threading.Lock()
    barrier = threading.Barrier(N_THREADS)

    def worker(seed):
        mine = {"advanced": [], "runs": [], "snapshots": [], "refused": [], "other": [],
                "ok": Counter()}
        barrier.wait(WAIT)
        hammer(m, random.Random(seed), ITERATIONS[impl], restores, mine)
        with lock:
            for k, v in mine.items():
                if k == "ok":
                    log["ok"].update(v)
                else:
                    log[k].extend(v)

    threads = [threading.Thread(target=worker, args=(1000 + i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5 * WAIT)
    assert not any(t.is_alive() for t in threads)

    assert log["other"] == []                    # success or RuntimeError, nothing else
    busy = re.compile(r"^Machine\.(\w+): this Machine is in use by another thread "
                      r"\(Machine\.(\w+)\)")
    calls = {"advance", "run", "snapshot", "restore", "io_write", "action"}
    for kind, message in log["refused"]:
        match = busy.match(message)
        assert match, message
        assert match.group(1) == kind and match.group(2) in calls, message
    assert sum(log["ok"].values()) + len(log["refused"]) == N_THREADS * ITERATIONS[impl]

    # every run's events lie in its own time span, start with its first op's expiry, and
    # are all in the Machine's log (which nobody cleared)
    logged = Counter(event_key(e) for e in m.events)
    from_runs = Counter()
    for result, total, before, after, n_ops in log["runs"]:
        assert result.ops_executed == n_ops
        assert result.events, "the run's zero-length timeout is one of its events"
        first = result.events[0]
        assert first["event"] == "WATCHDOG"
        t0 = first["time_ns"]
        assert all(t0 <= e["time_ns"] <= t0 + total for e in result.events)
        if not restores:                         # time only moved forward around it
            assert before <= t0 and t0 + total <= after
        times = [e["time_ns"] for e in result.events]
        assert times == sorted(times)
        from_runs.update(event_key(e) for e in result.events)
    assert not from_runs - logged                # a sub-multiset of m.events
    if not restores:
        # no virtual time was lost or gained: exactly the successful advances and runs
        assert m.now == sum(log["advanced"]) + sum(total for _, total, *_ in log["runs"])
        times = [e["time_ns"] for e in m.events]
        assert times == sorted(times)
    # every snapshot taken restores, and round-trips
    for snap in log["snapshots"] + [m.snapshot()]:
        other = make_machine()
        other.restore(snap)
        assert other.snapshot() == snap
    assert all(result.stopped == "end" for result, *_ in log["runs"])
