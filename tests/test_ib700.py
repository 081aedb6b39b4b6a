"""IB700 device behaviour, alone (no Machine), on both implementations.

Every test takes the ``IB700`` fixture (tests/conftest.py), so it runs once on the
compiled core and once on the Python twin.  Expected values come from SPEC.md:
§1.4 (time), §2.1 (decode and widths), §2.2 (timeout table) and §2.3 (timer, reset,
snapshot); API.md gives the surface.  Each boundary is checked one ns before, exactly
at and one ns after, the way QEMU's qtest watchdog tests step the clock.

Sections:
1. construction
2. decode and widths (§2.1)
3. the timeout table (§2.2)
4. re-arm, stop, expiry (§2.3)
5. time: advance / advance_to (§1.4)
6. action, on_expire, event log
7. reset()
8. snapshot / restore, pickle, deepcopy
"""
from __future__ import annotations

import copy
import pickle
import struct

import pytest

from wdcore import WatchdogAction, WatchdogEvent, _select, _snapshot

from .conftest import S

TIME_MAX = (1 << 63) - 1

# Ports (SPEC §2.1): 0x441/0x442 disable, 0x443/0x444 arm.
STOP_PORTS = (0x441, 0x442)
ARM_PORTS = (0x443, 0x444)


def timeout_ns(index: int) -> int:
    """SPEC §2.2: "seconds = 30 − 2·index, timeout_ns = seconds × 1 000 000 000"."""
    return (30 - 2 * index) * S


def ev(t: int, action: WatchdogAction = WatchdogAction.RESET) -> WatchdogEvent:
    return WatchdogEvent(t, "ib700", action)


def fresh(IB700, t0: int = 5 * S + 123, **kw):
    """A device whose clock has been moved to ``t0`` (so that t0 != 0)."""
    dev = IB700(**kw)
    assert dev.advance_to(t0) == 0
    assert dev.now == t0
    return dev


def assert_fires_once_at(dev, deadline: int) -> None:
    """One ns before: nothing; exactly at: one event; one ns after: nothing more."""
    n = len(dev.events)
    assert dev.advance_to(deadline - 1) == 0
    assert len(dev.events) == n
    assert dev.next_deadline == deadline
    assert dev.advance_to(deadline) == 1
    assert len(dev.events) == n + 1
    assert dev.events[-1] == ev(deadline, dev.action)
    assert dev.advance_to(deadline + 1) == 0
    assert len(dev.events) == n + 1
    assert dev.next_deadline is None


# ---------------------------------------------------------------------------------
# 1. Construction
# ---------------------------------------------------------------------------------

def test_construction_is_disarmed_at_time_zero(IB700):
    """§2.3: "Construction and reset(): disarmed."  API.md: time starts at 0,
    action defaults to RESET."""
    dev = IB700()
    assert dev.now == 0
    assert dev.next_deadline is None
    assert dev.action is WatchdogAction.RESET
    assert dev.on_expire is None
    assert dev.events == []
    assert dev.advance(60 * S) == 0
    assert dev.events == []


def test_construction_keywords(IB700):
    seen = []
    dev = IB700(action="pause", on_expire=seen.append)
    assert dev.action is WatchdogAction.PAUSE
    dev.io_write(0x443, 1, 0x0F)
    assert seen == [ev(0, WatchdogAction.PAUSE)]


# ---------------------------------------------------------------------------------
# 2. Decode and widths (SPEC §2.1)
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("port", ARM_PORTS)
def test_byte_write_to_arm_port_arms(IB700, port):
    """§2.1: "0x443, 0x444 | arm: deadline = now + table[value & 0x0F]"."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(port, 1, 0x0E)
    assert dev.next_deadline == t0 + 2 * S
    assert_fires_once_at(dev, t0 + 2 * S)


@pytest.mark.parametrize("port", STOP_PORTS)
@pytest.mark.parametrize("value", [0x00, 0x0E, 0x0F, 0xFF])
def test_byte_write_to_stop_port_disarms(IB700, port, value):
    """§2.1: "0x441, 0x442 | disable: any value clears the deadline"."""
    dev = fresh(IB700)
    dev.io_write(0x443, 1, 0x0E)
    assert dev.next_deadline is not None
    dev.io_write(port, 1, value)
    assert dev.next_deadline is None
    assert dev.advance(60 * S) == 0
    assert dev.events == []


def test_word_0x443_low_byte_then_high_byte_high_wins(IB700):
    """§2.1: "word at 0x441/0x443: low byte to p, then high byte to p+1
    (`outw 0x443,0x0E00` arms index 0, then 0xE: 2 s wins)"."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 2, 0x0E00)
    assert dev.next_deadline == t0 + 2 * S
    assert_fires_once_at(dev, t0 + 2 * S)
    assert dev.advance_to(t0 + 30 * S + 1) == 0  # index 0's 30 s never fires
    assert len(dev.events) == 1


def test_word_0x443_zero_then_two_seconds_fires_only_at_two_seconds(IB700):
    """§1.4: "probe: `outw 0x443,0x0E0F` arms 0 s then 2 s and fires only at 2 s"."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 2, 0x0E0F)
    assert dev.events == []  # no event at the write
    assert dev.next_deadline == t0 + 2 * S
    assert_fires_once_at(dev, t0 + 2 * S)
    assert dev.events == [ev(t0 + 2 * S)]


def test_word_0x443_two_seconds_then_zero_fires_at_the_write(IB700):
    """§2.1 low byte (0x0E: 2 s) to 0x443, then high byte (0x0F: 0 s) to 0x444;
    §1.4: a zero timeout "fires at the end of that access ... at the same now"."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 2, 0x0F0E)
    assert dev.events == [ev(t0)]
    assert dev.now == t0
    assert dev.next_deadline is None


@pytest.mark.parametrize("value", [0x0000, 0x0E0E, 0xFFFF])
def test_word_0x441_disarms(IB700, value):
    """§2.1: word at 0x441: low byte to 0x441, high byte to 0x442 — both disable."""
    dev = fresh(IB700)
    dev.io_write(0x443, 1, 0x00)
    dev.io_write(0x441, 2, value)
    assert dev.next_deadline is None
    assert dev.advance(60 * S) == 0


def test_word_0x442_drops_high_byte(IB700):
    """§2.1: "word at 0x442/0x444: low byte only, high byte dropped".  Here the high
    byte (0x0E) would have armed 2 s had it reached 0x443."""
    dev = fresh(IB700)
    dev.io_write(0x443, 1, 0x00)
    dev.io_write(0x442, 2, 0x0E00)
    assert dev.next_deadline is None
    assert dev.advance(60 * S) == 0
    assert dev.events == []


def test_word_0x444_drops_high_byte_no_fire_at_write(IB700):
    """§2.1: word 0x444 value 0x0F0E delivers only 0x0E (2 s); the dropped 0x0F
    would have fired at the write."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x444, 2, 0x0F0E)
    assert dev.events == []
    assert dev.next_deadline == t0 + 2 * S
    assert_fires_once_at(dev, t0 + 2 * S)


def test_word_0x444_low_byte_zero_timeout_fires_at_write(IB700):
    """§2.1 low byte 0x0F of a word at 0x444 is delivered: 0 s, fires at the write."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x444, 2, 0x0E0F)
    assert dev.events == [ev(t0)]
    assert dev.next_deadline is None


@pytest.mark.parametrize("port", [0x441, 0x442, 0x443, 0x444])
@pytest.mark.parametrize("value", [0x00000000, 0x0F0F0F0F, 0x0E0E0E0E, 0xFFFFFFFF])
def test_dword_write_ignored_when_armed(IB700, port, value):
    """§2.1: "dword at 0x441–0x444: **ignored entirely**" — an armed deadline stays."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0C)  # 6 s
    dev.advance(S)
    before = dev.snapshot()
    dev.io_write(port, 4, value)
    assert dev.snapshot() == before
    assert dev.events == []
    assert dev.next_deadline == t0 + 6 * S
    assert_fires_once_at(dev, t0 + 6 * S)


@pytest.mark.parametrize("port", [0x441, 0x442, 0x443, 0x444])
@pytest.mark.parametrize("value", [0x00000000, 0x0F0F0F0F, 0x0E0E0E0E, 0xFFFFFFFF])
def test_dword_write_ignored_when_disarmed(IB700, port, value):
    """§2.1: dwords are ignored entirely — a disarmed device stays disarmed."""
    dev = fresh(IB700)
    before = dev.snapshot()
    dev.io_write(port, 4, value)
    assert dev.snapshot() == before
    assert dev.events == []
    assert dev.next_deadline is None
    assert dev.advance(60 * S) == 0


@pytest.mark.parametrize("port", [0, 0x440, 0x445, 0x446, 0x843, 0xFFFF])
@pytest.mark.parametrize("size,value", [(1, 0x0F), (1, 0x00), (2, 0x0F0F), (2, 0x0000),
                                        (4, 0x0F0F0F0F)])
def test_write_outside_block_does_nothing(IB700, port, size, value):
    """§2.1: "The device handles accesses starting at 0x441–0x444 and ignores others"."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    before = dev.snapshot()
    dev.io_write(port, size, value)
    assert dev.snapshot() == before
    assert dev.events == []
    assert dev.next_deadline == t0 + 2 * S


def test_word_at_0x440_does_not_reach_0x441(IB700):
    """§2.1: an access starting at 0x440 is not the device's, even though its high
    byte lies on 0x441 (§5.1 says a Machine never delivers it either)."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    dev.io_write(0x440, 2, 0x0000)  # high byte to 0x441 would disarm
    assert dev.next_deadline == t0 + 2 * S


@pytest.mark.parametrize("port", [0, 0x440, 0x441, 0x442, 0x443, 0x444, 0x445, 0xFFFF])
@pytest.mark.parametrize("size,ones", [(1, 0xFF), (2, 0xFFFF), (4, 0xFFFFFFFF)])
@pytest.mark.parametrize("armed", [False, True])
def test_reads_all_ones_without_side_effect(IB700, port, size, ones, armed):
    """§2.1: "reads, any width, any port: all-ones of the width; no side effect"."""
    dev = fresh(IB700)
    t0 = dev.now
    if armed:
        dev.io_write(0x443, 1, 0x0E)
    before = dev.snapshot()
    assert dev.io_read(port, size) == ones
    assert dev.io_read(port, size) == ones
    assert dev.snapshot() == before
    assert dev.events == []
    if armed:
        assert_fires_once_at(dev, t0 + 2 * S)
    else:
        assert dev.next_deadline is None


# ---------------------------------------------------------------------------------
# 3. The timeout table (SPEC §2.2)
# ---------------------------------------------------------------------------------

NONZERO_INDEXES = range(15)


@pytest.mark.parametrize("high", [0x00, 0x50, 0xF0], ids=lambda h: f"high{h:#04x}")
@pytest.mark.parametrize("index", NONZERO_INDEXES, ids=lambda i: f"idx{i:x}")
@pytest.mark.parametrize("port", ARM_PORTS, ids=hex)
def test_timeout_table(IB700, port, index, high):
    """§2.2: "seconds = 30 − 2·index ...; the high nibble is ignored".
    §2.3: "Expiry at t: clear the deadline, record WatchdogEvent(t, "ib700", action)
    ... No self re-arm."."""
    dev = fresh(IB700, t0=7 * S + 1)
    t0 = dev.now
    deadline = t0 + timeout_ns(index)
    assert dev.io_write(port, 1, high | index) is None
    assert dev.events == []
    assert dev.next_deadline == deadline
    # one ns before
    assert dev.advance_to(deadline - 1) == 0
    assert dev.events == []
    assert dev.next_deadline == deadline
    # exactly at
    assert dev.advance_to(deadline) == 1
    assert len(dev.events) == 1
    e = dev.events[0]
    assert e.time_ns == deadline
    assert e.device == "ib700"
    assert e.action is WatchdogAction.RESET
    assert dev.now == deadline
    # one ns after: still one event, disarmed
    assert dev.advance_to(deadline + 1) == 0
    assert len(dev.events) == 1
    assert dev.next_deadline is None
    # no self re-arm, even much later
    assert dev.advance(2 * timeout_ns(0)) == 0
    assert len(dev.events) == 1


def test_timeout_table_values(IB700):
    """§2.2 table row, spelled out (s = 30, 28, ..., 2, 0), against arming each index."""
    table_s = [30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0]
    for index, seconds in enumerate(table_s):
        dev = fresh(IB700)
        t0 = dev.now
        dev.io_write(0x443, 1, index)
        if seconds:
            assert dev.next_deadline == t0 + seconds * S, index
        else:
            assert dev.events == [ev(t0)], index


@pytest.mark.parametrize("value", [0x0F, 0x5F, 0xFF])
@pytest.mark.parametrize("port", ARM_PORTS, ids=hex)
def test_index_f_fires_during_the_write(IB700, port, value):
    """§2.3: "Index 0xF fires at the end of the write (§1.4)" — at the current now."""
    seen = []
    dev = fresh(IB700, t0=11 * S + 7)
    t0 = dev.now
    dev.on_expire = lambda e: seen.append((e, dev.now, dev.next_deadline))
    dev.io_write(port, 1, value)
    assert len(dev.events) == 1
    assert dev.events[0] == ev(t0)
    assert seen == [(ev(t0), t0, None)]
    assert dev.now == t0
    assert dev.next_deadline is None
    assert dev.advance(0) == 0
    assert dev.advance(60 * S) == 0
    assert len(dev.events) == 1


def test_index_f_at_time_zero(IB700):
    """§1.4: zero timeout fires "at the same now" — also when now is 0."""
    dev = IB700()
    dev.io_write(0x443, 1, 0x0F)
    assert dev.events == [ev(0)]


# ---------------------------------------------------------------------------------
# 4. Re-arm, stop, expiry (SPEC §2.3)
# ---------------------------------------------------------------------------------

def test_ping_replaces_deadline(IB700):
    """§2.3: "Arm always replaces the deadline (probe: a ping 1 s into 2 s fires 3 s
    after the first arm)"."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    dev.advance_to(t0 + S)
    dev.io_write(0x443, 1, 0x0E)
    assert dev.next_deadline == t0 + 3 * S
    # the first deadline, one ns before / at / after: nothing
    for t in (t0 + 2 * S - 1, t0 + 2 * S, t0 + 2 * S + 1):
        assert dev.advance_to(t) == 0
    assert dev.events == []
    assert_fires_once_at(dev, t0 + 3 * S)
    assert dev.events == [ev(t0 + 3 * S)]


def test_rearm_with_shorter_and_longer_timeouts(IB700):
    """§2.3: arm always replaces — a shorter one shortens, a longer one lengthens."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x00)          # 30 s
    dev.io_write(0x444, 1, 0x0D)          # 4 s replaces it
    assert dev.next_deadline == t0 + 4 * S
    dev.advance_to(t0 + 3 * S)
    dev.io_write(0x443, 1, 0x0A)          # 10 s from t0+3 s
    assert dev.next_deadline == t0 + 13 * S
    assert dev.advance_to(t0 + 4 * S) == 0
    assert_fires_once_at(dev, t0 + 13 * S)


@pytest.mark.parametrize("port", STOP_PORTS)
def test_stop_cancels(IB700, port):
    """§2.1: "disable: any value clears the deadline"."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    dev.advance_to(t0 + 2 * S - 1)
    dev.io_write(port, 1, 0)
    assert dev.next_deadline is None
    assert dev.advance_to(t0 + 2 * S) == 0
    assert dev.advance(60 * S) == 0
    assert dev.events == []


def test_stop_when_disarmed_is_harmless(IB700):
    dev = fresh(IB700)
    before = dev.snapshot()
    dev.io_write(0x441, 1, 0)
    assert dev.snapshot() == before
    assert dev.next_deadline is None


def test_arm_after_expiry_works_again(IB700):
    """§2.3: expiry clears the deadline, no self re-arm; a new arm starts afresh."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    assert_fires_once_at(dev, t0 + 2 * S)
    t1 = dev.now + 5 * S
    dev.advance_to(t1)
    dev.io_write(0x443, 1, 0x0D)
    assert_fires_once_at(dev, t1 + 4 * S)
    assert dev.events == [ev(t0 + 2 * S), ev(t1 + 4 * S)]


def test_arm_after_stop_works_again(IB700):
    dev = fresh(IB700)
    dev.io_write(0x443, 1, 0x0E)
    dev.io_write(0x441, 1, 0)
    dev.advance(10 * S)
    t1 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    assert_fires_once_at(dev, t1 + 2 * S)


def test_linux_driver_keepalive_never_fires(IB700):
    """§6.6 scenario 1-style: pinging more often than the timeout never fires."""
    dev = fresh(IB700)
    for _ in range(50):
        dev.io_write(0x443, 1, 0x0E)       # 2 s
        assert dev.advance(2 * S - 1) == 0
    assert dev.events == []


def test_qemu_qtest_sequence(IB700):
    """§6.7 steps 1-7 (device alone): the WATCHDOG comes at 49 s."""
    dev = IB700()
    assert dev.advance(40 * S) == 0
    dev.io_write(0x443, 1, 0x0E)           # deadline 42 s
    assert dev.advance(S) == 0
    dev.io_write(0x443, 1, 0x0E)           # 43 s
    assert dev.advance(S) == 0
    dev.io_write(0x441, 1, 1)
    assert dev.advance(3 * S) == 0
    assert dev.now == 45 * S
    dev.io_write(0x443, 1, 0x0D)           # 49 s
    assert dev.advance(3 * S) == 0
    assert dev.advance(2 * S) == 1
    assert dev.events == [ev(49 * S)]


# ---------------------------------------------------------------------------------
# 5. Time: advance / advance_to (SPEC §1.4)
# ---------------------------------------------------------------------------------

def test_advance_moves_now(IB700):
    """§1.4: "Integer virtual ns"; it only moves when the host says so."""
    dev = IB700()
    assert dev.advance(3) == 0
    assert dev.now == 3
    assert dev.advance_to(3 * S) == 0
    assert dev.now == 3 * S
    assert type(dev.now) is int


def test_advance_zero_and_advance_to_now(IB700):
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    assert dev.advance(0) == 0
    assert dev.now == t0
    assert dev.advance_to(t0) == 0
    assert dev.now == t0
    assert dev.next_deadline == t0 + 2 * S
    assert dev.events == []


def test_deadline_equal_to_target_fires_advance(IB700):
    """§1.4: "a deadline equal to T fires" — via advance(delta)."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    assert dev.advance(2 * S - 1) == 0
    assert dev.events == []
    assert dev.advance(1) == 1
    assert dev.events == [ev(t0 + 2 * S)]
    assert dev.advance(1) == 0


def test_advance_past_deadline_fires_at_deadline_then_sets_now(IB700):
    """§1.4: "handles every deadline ≤ T in order, now equal to each while it is
    handled, then sets now = T"."""
    dev = fresh(IB700)
    t0 = dev.now
    seen = []
    dev.on_expire = lambda e: seen.append(dev.now)
    dev.io_write(0x443, 1, 0x0E)
    assert dev.advance(17 * S + 3) == 1
    assert dev.events == [ev(t0 + 2 * S)]
    assert seen == [t0 + 2 * S]
    assert dev.now == t0 + 17 * S + 3


def test_several_expiries_in_one_advance_in_time_order(IB700):
    """§1.4: advance_to(T) handles every deadline ≤ T in order, `now` equal to each
    while it is handled; §2.3 clearing first "keeps a callback's re-arm"; advance
    returns the number of events produced."""
    dev = fresh(IB700)
    t0 = dev.now
    rearm = [0x0D, 0x0C, 0x0E]  # 4 s, 6 s, 2 s
    seen = []

    def on_expire(e):
        seen.append((e.time_ns, dev.now, dev.next_deadline))
        if rearm:
            dev.io_write(0x443, 1, rearm.pop(0))

    dev.on_expire = on_expire
    dev.io_write(0x443, 1, 0x0E)  # 2 s
    d1 = t0 + 2 * S
    d2 = d1 + 4 * S
    d3 = d2 + 6 * S
    d4 = d3 + 2 * S
    # the last deadline lands exactly on the target
    assert dev.advance_to(d4) == 4
    assert [e.time_ns for e in dev.events] == [d1, d2, d3, d4]
    assert seen == [(d1, d1, None), (d2, d2, None), (d3, d3, None), (d4, d4, None)]
    assert dev.now == d4
    assert dev.next_deadline is None
    assert dev.advance(60 * S) == 0


def test_several_expiries_boundary_one_ns_short(IB700):
    """As above, one ns short of the last deadline: it has not fired yet."""
    dev = fresh(IB700)
    t0 = dev.now
    rearm = [0x0E]
    dev.on_expire = lambda e: rearm and dev.io_write(0x443, 1, rearm.pop())
    dev.io_write(0x443, 1, 0x0E)
    assert dev.advance_to(t0 + 4 * S - 1) == 1
    assert dev.next_deadline == t0 + 4 * S
    assert dev.advance_to(t0 + 4 * S) == 1
    assert dev.advance_to(t0 + 4 * S + 1) == 0
    assert [e.time_ns for e in dev.events] == [t0 + 2 * S, t0 + 4 * S]


def test_advance_counts_zero_timeout_rearmed_by_callback(IB700):
    """§1.4: "advance returns the number of WatchdogEvents produced".  A callback
    that re-arms index 0xF makes a second expiry at the same now, inside advance."""
    dev = fresh(IB700)
    t0 = dev.now
    rearm = [0x0F]
    dev.on_expire = lambda e: rearm and dev.io_write(0x443, 1, rearm.pop())
    dev.io_write(0x443, 1, 0x0E)
    n = dev.advance(10 * S)
    assert dev.events == [ev(t0 + 2 * S), ev(t0 + 2 * S)]
    assert n == len(dev.events)


def test_overdue_deadline_fires_at_current_now(IB700):
    """§1.4: "An overdue deadline (< now; ... or restoring such a state) fires at the
    current now on the next advance, advance(0) included"."""
    now, deadline = 50 * S, 40 * S
    data = _snapshot.wrap(_snapshot.KIND_IB700,
                          struct.pack("<QBBQQQ", now, 0, 1, deadline, 0, 1))
    dev = IB700()
    dev.restore(data)
    assert dev.now == now
    assert dev.next_deadline == deadline
    assert dev.advance(0) == 1
    assert dev.events == [ev(now)]
    assert dev.next_deadline is None
    assert dev.now == now


def test_deadline_equal_to_now_after_restore_fires_on_advance_zero(IB700):
    """§1.4: "a deadline equal to T fires" — with T == now, advance(0)."""
    now = 50 * S
    data = _snapshot.wrap(_snapshot.KIND_IB700,
                          struct.pack("<QBBQQQ", now, 0, 1, now, 0, 1))
    dev = IB700()
    dev.restore(data)
    assert dev.advance_to(now) == 1
    assert dev.events == [ev(now)]


def test_time_max_reachable_and_deadline_beyond_never_fires(IB700):
    """§1.4: 0 ≤ t ≤ 2^63−1; §3.9: "one past 2^63−1 never fires"; docs/design.md, the end
    of time: such a deadline "stays in the state and in snapshots, but is never reached:
    `next_deadline` ... is None for it"."""
    dev = IB700()
    dev.advance_to(TIME_MAX - S)
    dev.io_write(0x443, 1, 0x0E)           # deadline = TIME_MAX + 1 s
    assert dev.next_deadline is None       # never reached
    payload = _snapshot.unwrap(dev.snapshot(), _snapshot.KIND_IB700)
    assert struct.unpack("<QBBQQQ", payload)[2:4] == (1, TIME_MAX + S)  # still armed, as set
    assert dev.advance_to(TIME_MAX) == 0
    assert dev.now == TIME_MAX
    assert dev.next_deadline is None
    assert dev.events == []


def test_zero_timeout_at_time_max(IB700):
    dev = IB700()
    dev.advance_to(TIME_MAX)
    dev.io_write(0x443, 1, 0x0F)
    assert dev.events == [ev(TIME_MAX)]


def test_deadline_exactly_at_time_max_fires(IB700):
    dev = IB700()
    dev.advance_to(TIME_MAX - 2 * S)
    dev.io_write(0x443, 1, 0x0E)
    assert dev.next_deadline == TIME_MAX
    assert dev.advance_to(TIME_MAX - 1) == 0
    assert dev.advance_to(TIME_MAX) == 1
    assert dev.events == [ev(TIME_MAX)]


# ---------------------------------------------------------------------------------
# 6. Action, on_expire, event log
# ---------------------------------------------------------------------------------

def test_on_expire_receives_the_event(IB700):
    """§2.3: "record WatchdogEvent(t, "ib700", action), call on_expire"."""
    seen = []
    dev = fresh(IB700, on_expire=seen.append)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    dev.advance(5 * S)
    assert len(seen) == 1
    assert isinstance(seen[0], WatchdogEvent)
    assert seen[0] == ev(t0 + 2 * S)
    assert dev.events == seen


def test_event_is_in_log_when_callback_runs(IB700):
    """§2.3 order: record the event, then call on_expire."""
    dev = fresh(IB700)
    logged = []
    dev.on_expire = lambda e: logged.append(list(dev.events))
    dev.io_write(0x443, 1, 0x0F)
    assert logged == [[ev(dev.now)]]


@pytest.mark.parametrize("action", list(WatchdogAction))
def test_action_by_member_and_by_wire_name(IB700, action):
    """API.md: action values are QEMU's wire names; WatchdogAction("inject-nmi") works."""
    dev = fresh(IB700)
    dev.action = action
    assert dev.action is action
    dev.action = WatchdogAction.RESET
    dev.action = action.value
    assert dev.action is action
    dev.io_write(0x443, 1, 0x0F)
    assert dev.events[-1].action is action


def test_inject_nmi_by_name_carried_by_later_events(IB700):
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    dev.action = "inject-nmi"
    assert dev.action is WatchdogAction.INJECT_NMI
    dev.advance(2 * S)
    assert dev.events == [ev(t0 + 2 * S, WatchdogAction.INJECT_NMI)]


def test_action_taken_at_expiry_time(IB700):
    """§2.3: the event carries the action in force at the expiry, not at the arm."""
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    dev.advance(S)
    dev.action = WatchdogAction.PAUSE
    dev.advance(S - 1)
    dev.action = "debug"
    dev.advance(1)
    assert dev.events == [ev(t0 + 2 * S, WatchdogAction.DEBUG)]
    dev.action = "none"
    dev.io_write(0x443, 1, 0x0F)
    assert dev.events[-1] == ev(t0 + 2 * S, WatchdogAction.NONE)


def test_on_expire_can_be_replaced_and_removed(IB700):
    a, b = [], []
    dev = fresh(IB700, on_expire=a.append)
    dev.io_write(0x443, 1, 0x0F)
    dev.on_expire = b.append
    dev.io_write(0x443, 1, 0x0F)
    dev.on_expire = None
    dev.io_write(0x443, 1, 0x0F)
    assert len(a) == 1 and len(b) == 1
    assert len(dev.events) == 3


def test_events_and_clear_events(IB700):
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0F)
    dev.io_write(0x443, 1, 0x0E)
    dev.advance(2 * S)
    assert dev.events == [ev(t0), ev(t0 + 2 * S)]
    assert all(isinstance(e, WatchdogEvent) for e in dev.events)
    dev.clear_events()
    assert dev.events == []
    dev.io_write(0x443, 1, 0x0F)
    assert dev.events == [ev(t0 + 2 * S)]


def test_clear_events_does_not_touch_timer(IB700):
    dev = fresh(IB700)
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    before = dev.snapshot()
    dev.clear_events()
    assert dev.snapshot() == before
    assert_fires_once_at(dev, t0 + 2 * S)


def test_event_is_immutable(IB700):
    """API.md: "WatchdogEvent  # immutable record"."""
    dev = fresh(IB700)
    dev.io_write(0x443, 1, 0x0F)
    e = dev.events[0]
    with pytest.raises(AttributeError):
        e.time_ns = 0  # type: ignore[misc]


# ---------------------------------------------------------------------------------
# 7. reset()
# ---------------------------------------------------------------------------------

def test_reset_disarms_keeps_now_and_action(IB700):
    """§2.3: "Construction and reset(): disarmed."  reset() does not move time."""
    dev = fresh(IB700, action="shutdown")
    t0 = dev.now
    dev.io_write(0x443, 1, 0x0E)
    dev.advance(S)
    dev.reset()
    assert dev.now == t0 + S
    assert dev.action is WatchdogAction.SHUTDOWN
    assert dev.next_deadline is None
    for t in (t0 + 2 * S - 1, t0 + 2 * S, t0 + 2 * S + 1):
        assert dev.advance_to(t) == 0
    assert dev.events == []


def test_reset_then_arm_works(IB700):
    dev = fresh(IB700)
    dev.io_write(0x443, 1, 0x0E)
    dev.reset()
    dev.reset()
    t1 = dev.now
    dev.io_write(0x443, 1, 0x0C)
    assert_fires_once_at(dev, t1 + 6 * S)


# ---------------------------------------------------------------------------------
# 8. Snapshot / restore, pickle, deepcopy (SPEC §2.3, API.md)
# ---------------------------------------------------------------------------------

def _history(dev):
    """A fixed history: an expiry, then a countdown in progress."""
    dev.advance(3 * S + 17)
    dev.action = "debug"
    dev.io_write(0x443, 1, 0x0E)
    dev.advance(2 * S)                        # fires at 5 s + 17
    dev.advance(S)
    dev.io_write(0x444, 2, 0x0A)              # 10 s from 6 s + 17
    dev.advance(4 * S)                        # mid-countdown at 10 s + 17


def _future(dev):
    out = []
    for step in (S, 5 * S - 1, 1, 1, 10 * S):  # 16 s + 17: before, at, after
        n = dev.advance(step)
        out.append((n, dev.now, dev.next_deadline))
    dev.io_write(0x443, 1, 0x0D)
    out.append((dev.advance(4 * S), dev.now, dev.next_deadline))
    return out, list(dev.events)


def test_snapshot_is_bytes_and_records_the_state(IB700):
    """§2.3: "Snapshot: magic, format version, kind, now, action, deadline (absolute
    or none) with its sequence number"."""
    dev = IB700()
    _history(dev)
    snap = dev.snapshot()
    assert isinstance(snap, bytes)
    payload = _snapshot.unwrap(snap, _snapshot.KIND_IB700)
    now, action, armed, deadline, seq, counter = struct.unpack("<QBBQQQ", payload)
    assert now == 10 * S + 17
    assert action == list(WatchdogAction).index(WatchdogAction.DEBUG)
    assert armed == 1
    assert deadline == 16 * S + 17
    assert seq < counter


def test_restore_into_fresh_device_gives_identical_future(IB700):
    """API.md: restore gives the "exact state incl. pending deadline"."""
    a = IB700()
    _history(a)
    snap = a.snapshot()
    b = IB700()
    b.restore(snap)
    assert b.snapshot() == snap
    assert b.now == a.now
    assert b.next_deadline == a.next_deadline == 16 * S + 17
    assert b.action is WatchdogAction.DEBUG
    a.clear_events()
    fa, fb = _future(a), _future(b)
    assert fa == fb
    assert fb[1][0] == ev(16 * S + 17, WatchdogAction.DEBUG)


def test_restore_replaces_a_different_state(IB700):
    a = IB700()
    _history(a)
    snap = a.snapshot()
    b = IB700(action="pause")
    b.advance(100 * S)
    b.io_write(0x443, 1, 0x00)
    b.restore(snap)
    assert b.snapshot() == snap
    assert b.now == 10 * S + 17
    assert b.action is WatchdogAction.DEBUG
    assert_fires_once_at(b, 16 * S + 17)


def test_restore_disarmed_state(IB700):
    a = fresh(IB700)
    snap = a.snapshot()
    b = IB700()
    b.advance(99 * S)
    b.io_write(0x443, 1, 0x0E)
    b.restore(snap)
    assert b.next_deadline is None
    assert b.now == a.now
    assert b.advance(60 * S) == 0


def test_restore_does_not_touch_events_or_callbacks(IB700):
    """§2.3: "Event logs and callbacks are not state: not in snapshots, untouched by
    restore"."""
    src = IB700()
    _history(src)
    snap = src.snapshot()
    seen = []
    dev = fresh(IB700, on_expire=seen.append)
    dev.io_write(0x443, 1, 0x0F)
    log = dev.events
    before = list(log)
    cb = dev.on_expire
    dev.restore(snap)
    assert dev.events is log
    assert dev.events == before
    assert dev.on_expire is cb
    dev.advance(6 * S)
    assert seen[-1] == ev(16 * S + 17, WatchdogAction.DEBUG)
    assert dev.events == before + [ev(16 * S + 17, WatchdogAction.DEBUG)]


def test_snapshot_does_not_include_events_or_callbacks(IB700):
    """§2.3: event logs and callbacks are not in snapshots."""
    a = fresh(IB700)
    b = fresh(IB700, on_expire=lambda e: None)
    b.io_write(0x443, 1, 0x0F)          # one event ...
    a.io_write(0x443, 1, 0x0F)          # ... on both
    b.io_write(0x443, 1, 0x0F)          # a second event on b only
    b.clear_events()
    a.io_write(0x443, 1, 0x0F)          # same arming count again
    assert a.snapshot() == b.snapshot()


def test_snapshot_is_stable(IB700):
    dev = IB700()
    _history(dev)
    assert dev.snapshot() == dev.snapshot()


def test_compiled_and_twin_snapshots_identical_and_interchangeable(IB700):
    """§3.10 / §2.3: "Both implementations MUST write byte-identical snapshots for
    identical states and accept each other's"."""
    try:
        Compiled = _select.implementation("compiled").IB700
    except (ImportError, ValueError) as exc:
        pytest.skip(f"compiled core unavailable: {exc}")
    Twin = _select.implementation("python").IB700
    assert IB700 in (Compiled, Twin)

    c, p = Compiled(), Twin()
    for dev in (c, p):
        _history(dev)
    assert c.snapshot() == p.snapshot()
    # disarmed states too
    c2, p2 = Compiled(), Twin()
    for dev in (c2, p2):
        _history(dev)
        dev.io_write(0x441, 1, 0)
    assert c2.snapshot() == p2.snapshot()

    # each restores the other's, and both then agree on the future
    c_from_p, p_from_c = Compiled(), Twin()
    c_from_p.restore(p.snapshot())
    p_from_c.restore(c.snapshot())
    assert c_from_p.snapshot() == p_from_c.snapshot() == c.snapshot()
    futures = [_future(d) for d in (c_from_p, p_from_c)]
    assert futures[0] == futures[1]
    assert c_from_p.snapshot() == p_from_c.snapshot()


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_pickle_and_deepcopy(IB700, how):
    """API.md: "copy.deepcopy(dev) and pickle round-trip work (callbacks are not
    pickled)"."""
    seen = []
    dev = IB700(on_expire=seen.append)
    _history(dev)
    if how == "pickle":
        clone = pickle.loads(pickle.dumps(dev))
    else:
        clone = copy.deepcopy(dev)
    # a pickle loads in the implementation selected where it is loaded (issue 10 item 10),
    # a deepcopy keeps the original's
    assert type(clone) is (_select.implementation().IB700 if how == "pickle" else type(dev))
    assert clone is not dev
    assert clone.snapshot() == dev.snapshot()
    assert clone.now == dev.now
    assert clone.next_deadline == dev.next_deadline
    assert clone.action is dev.action
    assert clone.on_expire is None            # callbacks are not carried over
    assert clone.events is not dev.events

    # independent: the clone's expiry does not reach the original, and vice versa
    n_events = len(dev.events)
    n_seen = len(seen)
    assert clone.advance(6 * S) == 1
    assert clone.events[-1] == ev(16 * S + 17, WatchdogAction.DEBUG)
    assert dev.now == 10 * S + 17
    assert dev.next_deadline == 16 * S + 17
    assert len(dev.events) == n_events
    assert len(seen) == n_seen
    dev.io_write(0x441, 1, 0)
    clone.io_write(0x443, 1, 0x0E)
    assert dev.next_deadline is None
    assert clone.next_deadline == clone.now + 2 * S


def test_pickle_of_disarmed_device(IB700):
    dev = fresh(IB700, action="poweroff")
    clone = pickle.loads(pickle.dumps(dev, protocol=pickle.HIGHEST_PROTOCOL))
    assert clone.snapshot() == dev.snapshot()
    assert clone.action is WatchdogAction.POWEROFF
    assert clone.next_deadline is None
