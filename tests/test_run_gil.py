"""Machine.run on the compiled core releases the GIL for its loop (issue: "the GIL
released for the loop"), and takes it back for callbacks, which still run in order at
their virtual times."""
from __future__ import annotations

import threading

import pytest

from wdcore import Machine, _select, ops

pytestmark = pytest.mark.skipif(not _select.HAS_EXTENSIONS, reason="compiled core not built")


def test_other_threads_run_while_run_loops():
    m = Machine(implementation="compiled")
    # a long stream with no expiry: pings and reads only
    data = ops.encode([("outb", 0x443, 0x0E), ("inl", 0xCFC), ("clock_step", 10)] * 400_000)
    ticks = []
    started, stop = threading.Event(), threading.Event()

    def spin():
        started.set()
        while not stop.is_set():
            ticks.append(None)

    t = threading.Thread(target=spin)
    t.start()
    started.wait()
    before = len(ticks)
    result = m.run(data)
    during = len(ticks) - before
    stop.set()
    t.join()
    assert result.ops_executed == 1_200_000
    # with the GIL held for the whole run the other thread could not tick at all (a
    # C call does not yield it); released, it ticks throughout
    assert during > 0


def test_callbacks_fire_in_order_at_their_times_inside_a_run():
    seen = []
    m = Machine(action="none", implementation="compiled")
    m.on_event = lambda e: seen.append(("event", e["event"], e["time_ns"], m.now))
    m.ib700.on_expire = lambda ev: seen.append(("ib700", ev.time_ns, m.now))
    S = 1_000_000_000
    result = m.run(ops.encode([("outb", 0x443, 0x0E), ("clock_step", 5 * S),
                               ("outb", 0x443, 0x0F), ("outb", 0x443, 0x0D), ("clock_step", 5 * S)]))
    assert result.ops_executed == 5
    # device callback, then the WATCHDOG entry, each while now == the expiry time
    assert seen == [("ib700", 2 * S, 2 * S), ("event", "WATCHDOG", 2 * S, 2 * S),
                    ("ib700", 5 * S, 5 * S), ("event", "WATCHDOG", 5 * S, 5 * S),
                    ("ib700", 9 * S, 9 * S), ("event", "WATCHDOG", 9 * S, 9 * S)]
    assert [e["time_ns"] for e in result.events] == [2 * S, 5 * S, 9 * S]


def test_an_exception_from_a_callback_stops_the_run_and_propagates():
    m = Machine(action="none", implementation="compiled")

    def boom(event):
        raise RuntimeError("host callback failed")

    m.on_event = boom
    with pytest.raises(RuntimeError, match="host callback failed"):
        m.run(ops.encode([("outb", 0x443, 0x0F), ("outb", 0x443, 0x0E)]))
    # the expiry was logged before the callback ran; the second op never ran
    assert [e["event"] for e in m.events] == ["WATCHDOG"]
    assert m.next_deadline is None
