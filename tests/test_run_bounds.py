"""Issue 10, items 6 and 7: bounded runs and Ctrl-C, on both implementations.

- ``Machine.run(ops, max_ops=..., max_events=...)`` stops between two ops once a bound is
  reached; ``RunResult.bytes_consumed`` says where, ``stopped`` why, and
  ``data[bytes_consumed:]`` resumes exactly (the two halves make the state, reads and
  events of one run);
- an exception that ends a run (a callback's, Ctrl-C) carries the result so far as
  ``run_result``; the op it ended in has completed;
- Ctrl-C stops a run between two ops, the Machine consistent: it is the state of a
  Machine that ran only the consumed bytes;
- a restore + run + clear_events loop runs in constant memory (tracemalloc), and a
  bounded run of a huge stream stays small.
"""
from __future__ import annotations

import os
import random
import signal
import threading
import tracemalloc

import pytest

from tests.conftest import S
from wdcore import ops as wd_ops

ARM, ZERO = 0x443, 0x0F  # IB700 start port; timeout index 15 = 0 s: expires in its access
ZERO_ARM = wd_ops.encode([("outb", ARM, ZERO)])


def drive(m, data):
    """Run ``data`` unbounded; the Machine's visible outcome."""
    r = m.run(data)
    return r, m.snapshot(), list(m.events)


def test_max_ops_stops_before_the_next_op_and_the_rest_resumes(make_machine):
    ops = [("outb", ARM, 0x0C), ("clock_step", 3 * S), ("inb", 0xCFC), ("outb", ARM, 0x0E),
           ("clock_step",), ("readl", 0), ("clock_step", 2 * S), ("inw", 0x441)]
    data = wd_ops.encode(ops)
    ref = make_machine()
    whole, ref_snap, ref_events = drive(ref, data)

    m = make_machine()
    first = m.run(data, max_ops=4)
    assert first.stopped == "max_ops" and first.ops_executed == 4
    assert first.bytes_consumed == len(wd_ops.encode(ops[:4]))
    just4 = make_machine()
    just4.run(ops[:4])
    assert m.snapshot() == just4.snapshot() and m.events == just4.events
    rest = m.run(data[first.bytes_consumed:])
    assert rest.stopped == "end" and rest.bytes_consumed == len(data) - first.bytes_consumed
    assert first.ops_executed + rest.ops_executed == whole.ops_executed == len(ops)
    assert first.reads + rest.reads == whole.reads
    assert first.events + rest.events == whole.events
    assert m.snapshot() == ref_snap and m.events == ref_events


def test_max_ops_zero_runs_nothing(make_machine):
    m = make_machine()
    before = m.snapshot()
    r = m.run(ZERO_ARM * 3, max_ops=0)
    assert (r.ops_executed, r.bytes_consumed, r.stopped, r.events) == (0, 0, "max_ops", [])
    assert m.snapshot() == before


@pytest.mark.parametrize("action, per_op", [("none", 1), ("reset", 2)])
def test_max_events_stops_after_the_op_that_reached_it(make_machine, action, per_op):
    # each zero-length arm is one expiry: WATCHDOG, and RESET at the op's end for "reset"
    m = make_machine(action=action)
    r = m.run(ZERO_ARM * 100, max_events=3)
    ops_needed = -(-3 // per_op)  # the first op whose end brings the count to >= 3
    assert r.stopped == "max_events"
    assert r.ops_executed == ops_needed and r.bytes_consumed == ops_needed * len(ZERO_ARM)
    assert len(r.events) == ops_needed * per_op and len(r.events) - per_op < 3
    assert [e["event"] for e in r.events[:per_op]] == ["WATCHDOG", "RESET"][:per_op]


def test_the_stop_reasons_end_and_finished(make_machine):
    m = make_machine()
    partial = ZERO_ARM + wd_ops.encode([("clock_step", 5)])[:3]  # a step cut short
    r = m.run(partial)
    assert (r.stopped, r.ops_executed, r.bytes_consumed) == ("end", 1, len(ZERO_ARM))
    off = make_machine(action="poweroff")
    r = off.run(ZERO_ARM * 5)
    assert (r.stopped, r.ops_executed, r.bytes_consumed) == ("finished", 1, len(ZERO_ARM))
    assert off.status == "poweroff"
    assert off.run(ZERO_ARM).stopped == "finished"


@pytest.mark.parametrize("seed", range(6))
def test_any_split_of_a_random_stream_resumes_exactly(make_machine, seed):
    rng = random.Random(seed)
    data = bytes(rng.randrange(256) for _ in range(rng.randrange(50, 400)))
    ref = make_machine(action=rng.choice(["reset", "none", "pause", "inject-nmi"]))
    action = ref.action
    whole, ref_snap, ref_events = drive(ref, data)
    m = make_machine(action=action)
    reads, events, ops, pos = [], [], 0, 0
    while True:
        r = m.run(data[pos:], max_ops=rng.randrange(0, 6), max_events=rng.randrange(0, 4))
        reads += r.reads
        events += r.events
        ops += r.ops_executed
        pos += r.bytes_consumed
        if r.stopped in ("end", "finished"):
            break
    assert (ops, reads, events) == (whole.ops_executed, whole.reads, whole.events)
    assert m.snapshot() == ref_snap and m.events == ref_events


@pytest.mark.parametrize("kw, exc, message", [
    ({"max_ops": -1}, ValueError, "max_ops must be >= 0 or None, not -1"),
    ({"max_events": -5}, ValueError, "max_events must be >= 0 or None, not -5"),
    ({"max_ops": "3"}, TypeError, "max_ops must be an int, not str"),
    ({"max_events": 1.5}, TypeError, "max_events must be an int, not float")])
def test_bad_bounds_are_refused_and_change_nothing(make_machine, kw, exc, message):
    m = make_machine()
    before = m.snapshot()
    with pytest.raises(exc, match=f"^{message}$"):
        m.run(ZERO_ARM, **kw)
    assert m.snapshot() == before and m.events == []


class Boom(Exception):
    pass


def test_an_exception_that_ends_a_run_carries_its_result(make_machine):
    # the on_event failure is held to the end of the op (issue 10 item 2): the op, its
    # reset and the RESET event happened, and the run stops there
    data = wd_ops.encode([("clock_step", S), ("outb", ARM, ZERO), ("inb", 0x441), ("clock_step", S)])
    m = make_machine()

    def fail_on_reset(event):
        if event["event"] == "RESET":
            raise Boom
    m.on_event = fail_on_reset
    with pytest.raises(Boom) as info:
        m.run(data)
    r = info.value.run_result
    assert (r.ops_executed, r.stopped, r.bytes_consumed) == (2, "error", 5 + 4)
    assert [e["event"] for e in r.events] == ["WATCHDOG", "RESET"]
    m.on_event = None
    rest = m.run(data[r.bytes_consumed:])
    ref = make_machine()
    whole = ref.run(data)
    assert r.reads + rest.reads == whole.reads and r.events + rest.events == whole.events
    assert m.snapshot() == ref.snapshot()


def test_ctrl_c_in_a_callback_during_a_run_keeps_the_reset(make_machine):
    m = make_machine()

    def interrupt(_event):
        raise KeyboardInterrupt
    m.ib700.on_expire = interrupt
    with pytest.raises(KeyboardInterrupt) as info:
        m.run(ZERO_ARM * 3)
    r = info.value.run_result
    assert (r.ops_executed, r.bytes_consumed, r.stopped) == (1, len(ZERO_ARM), "error")
    assert [e["event"] for e in m.events] == ["WATCHDOG", "RESET"]
    assert m.next_deadline is None  # the reset happened: the IB700 is stopped


def _interrupt_when_running(m, main_ident):
    """From another thread: once the run has started (time moved), SIGINT the process."""
    def watch():
        while m.now == 0:
            pass
        os.kill(os.getpid(), signal.SIGINT)
    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals reach the main thread only")
def test_ctrl_c_stops_a_run_between_two_ops_with_the_machine_consistent(make_machine, impl):
    # a stream far longer than the time the signal takes: 1 ns steps with an IB700 ping
    # every 4 ops (compiled: 20 M ops; the twin's run is ~100x slower)
    unit = wd_ops.encode([("clock_step", 1)] * 3 + [("outb", ARM, 0x0E)])
    data = unit * (5_000_000 if impl == "compiled" else 100_000)
    m = make_machine()
    watcher = _interrupt_when_running(m, threading.get_ident())
    with pytest.raises(KeyboardInterrupt) as info:
        m.run(data)
    watcher.join()
    r = info.value.run_result
    assert r.stopped == "error" and 0 < r.bytes_consumed < len(data)
    # consistent: exactly the state of a Machine that ran only the consumed bytes
    ref = make_machine()
    assert ref.run(data[:r.bytes_consumed]).ops_executed == r.ops_executed
    assert m.snapshot() == ref.snapshot() and m.events == ref.events
    # and it goes on: the rest of the stream, once
    rest = m.run(data[r.bytes_consumed:])
    assert rest.stopped == "end" and r.ops_executed + rest.ops_executed == len(data) // len(unit) * 4
    assert m.now == len(data) // len(unit) * 3


def _ib700_expiring_stream(n_arms):
    return ZERO_ARM * n_arms + wd_ops.encode([("clock_step", S)])


def test_restore_run_clear_events_loop_runs_in_constant_memory(make_machine):
    # issue 10 item 6: each run makes 5 expiries (WATCHDOG events, and each device's own
    # WatchdogEvent); clear_events empties the Machine's log and its devices' logs
    m = make_machine(action="none")
    snap = m.snapshot()
    data = _ib700_expiring_stream(5)

    def loop(n):
        for _ in range(n):
            m.restore(snap)
            m.run(data)
            m.clear_events()

    loop(50)  # warm up caches and free lists
    tracemalloc.start()
    try:
        loop(200)
        start, _ = tracemalloc.get_traced_memory()
        loop(2000)
        end, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # 2000 runs x 5 kept WatchdogEvents would be ~1 MB; allow noise, not growth
    assert end - start < 32 * 1024, f"grew by {end - start} bytes over 2000 runs"
    assert m.events == [] and m.ib700.events == []


def test_a_bounded_run_of_a_huge_stream_stays_small(make_machine, impl):
    # the 4 MB stream of zero-length timeouts (2 M expiries unbounded)
    data = ZERO_ARM * (4_000_000 // len(ZERO_ARM))
    if impl == "python":
        data = data[:400_000]
    m = make_machine(action="none")
    tracemalloc.start()
    try:
        r = m.run(data, max_events=1000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert r.stopped == "max_events" and len(r.events) == 1000
    assert r.bytes_consumed == 1000 * len(ZERO_ARM)
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes"


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(),
                    reason="signals reach the main thread only")
@pytest.mark.parametrize("how", ["advance", "run"])
def test_a_real_sigint_landing_in_a_callback_keeps_the_reset(make_machine, how):
    # issue 10 item 7: the signal arrives while on_expire runs (it waits for it there);
    # the KeyboardInterrupt is the callback's exception: held, the expiry's reset
    # happens at the end of the operation, then it propagates
    m = make_machine()
    inside = threading.Event()

    def on_expire(_event):
        inside.set()
        while True:  # the KeyboardInterrupt lands in this loop
            pass
    m.ib700.on_expire = on_expire
    m.io_write(ARM, 1, 0x0E)  # 2 s
    watcher = threading.Thread(target=lambda: (inside.wait(), os.kill(os.getpid(), signal.SIGINT)),
                               daemon=True)
    watcher.start()
    with pytest.raises(KeyboardInterrupt):
        if how == "advance":
            m.advance(3 * S)
        else:
            m.run(wd_ops.encode([("clock_step", 3 * S), ("clock_step", S)]))
    watcher.join()
    assert [e["event"] for e in m.events] == ["WATCHDOG", "RESET"]
    assert m.events[1]["time_ns"] == 3 * S and m.now == 3 * S
    assert m.next_deadline is None  # the reset stopped the IB700
