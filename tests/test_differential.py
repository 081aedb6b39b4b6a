"""Differential state machines: the compiled core against the Python twin.

Hypothesis drives both implementations with the same random accesses, clock steps,
action changes, resets and snapshot round trips, and compares after every step every
read value, every event, ``now``, ``next_deadline``, the run status and the snapshot
bytes (which hold the whole state).  CI runs at least 200 examples of each.
"""
from __future__ import annotations

import os

import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from wdcore import _select
from wdcore.actions import WatchdogAction

if not _select.HAS_EXTENSIONS:
    if os.environ.get("WDCORE_REQUIRE_EXTENSIONS", "") not in ("", "0"):
        raise ImportError("compiled core required for the differential tests")
    pytest.skip("compiled core not built: nothing to compare", allow_module_level=True)

from wdcore import Machine  # noqa: E402

COMPILED = _select.implementation("compiled")["ib700"].IB700
TWIN = _select.implementation("python")["ib700"].IB700

IN_CI = os.environ.get("CI", "") not in ("", "0", "false")
SETTINGS = settings(max_examples=300 if IN_CI else 100, stateful_step_count=40, deadline=None)

S = 1_000_000_000
# ports near and inside the IB700 block, the PCI config ports, and anything else
PORTS = st.one_of(st.sampled_from([0x43F, 0x440, 0x441, 0x442, 0x443, 0x444, 0x445,
                                   0xCF8, 0xCF9, 0xCFA, 0xCFB, 0xCFC, 0xCFE, 0xCFF]),
                  st.integers(0, 0xFFFF))
SIZES = st.sampled_from([1, 2, 4])
ACTIONS = st.sampled_from(list(WatchdogAction))
# start-write values, biased to short timeouts (0xF: fires at the write) so that
# sequences expire often; the high nibble is noise the device must ignore
INDEXES = st.one_of(st.integers(0x0B, 0x0F), st.integers(0, 0xFF))


def access_value(data_size):
    return st.integers(0, (1 << (8 * data_size)) - 1)


@st.composite
def write_args(draw):
    size = draw(SIZES)
    # bias towards start writes with small-table indexes so that expiries happen
    value = draw(st.one_of(access_value(size), st.integers(0x0A, 0x0F)))
    return draw(PORTS), size, value


def step_strategy(pair):
    """Clock steps that straddle the next deadline: one ns before, at, after, or random."""
    a = pair[0]
    deadline = a.next_deadline
    choices = [st.integers(0, 40 * S), st.just(0), st.just(1)]
    if deadline is not None and deadline >= a.now:
        d = deadline - a.now
        choices += [st.just(d), st.just(max(d - 1, 0)), st.just(d + 1)]
    return st.one_of(*choices)


class IB700Pair(RuleBasedStateMachine):
    """One compiled IB700 and one twin, fed identically."""

    @initialize(action=ACTIONS)
    def setup(self, action):
        self.fired = ([], [])
        self.devs = (COMPILED(action=action, on_expire=self.fired[0].append),
                     TWIN(action=action, on_expire=self.fired[1].append))

    @rule(args=write_args())
    def io_write(self, args):
        for d in self.devs:
            d.io_write(*args)

    @rule(index=INDEXES, port=st.sampled_from([0x443, 0x444]))
    def start(self, index, port):
        for d in self.devs:
            d.io_write(port, 1, index)

    @rule(port=PORTS, size=SIZES)
    def io_read(self, port, size):
        a, b = (d.io_read(port, size) for d in self.devs)
        assert a == b

    @rule(data=st.data())
    def advance(self, data):
        delta = data.draw(step_strategy(self.devs))
        a, b = (d.advance(delta) for d in self.devs)
        assert a == b

    @precondition(lambda self: self.devs[0].next_deadline is not None)
    @rule()
    def advance_to_deadline(self):
        t = self.devs[0].next_deadline
        a, b = (d.advance_to(t) for d in self.devs)
        assert a == b == 1

    @rule(action=ACTIONS)
    def set_action(self, action):
        for d in self.devs:
            d.action = action

    @rule()
    def reset(self):
        for d in self.devs:
            d.reset()

    @rule(cross=st.booleans())
    def snapshot_restore(self, cross):
        snaps = [d.snapshot() for d in self.devs]
        if cross:
            snaps.reverse()  # each restores the other implementation's snapshot
        for d, s in zip(self.devs, snaps):
            d.restore(s)

    @invariant()
    def agree(self):
        a, b = self.devs
        assert a.now == b.now
        assert a.next_deadline == b.next_deadline
        assert a.events == b.events
        assert self.fired[0] == self.fired[1] == a.events
        assert a.action is b.action
        assert a.snapshot() == b.snapshot()
        event(f"device expiries so far: {min(len(a.events), 3)}{'+' if len(a.events) >= 3 else ''}")


class MachinePair(RuleBasedStateMachine):
    """Two Machines, one per implementation, with random ops and run-state changes."""

    @initialize(action=ACTIONS, reboot=st.sampled_from(["reset", "shutdown"]))
    def setup(self, action, reboot):
        self.ms = tuple(Machine(action=action, reboot_action=reboot, implementation=impl)
                        for impl in ("compiled", "python"))
        self.seen = ([], [])
        for m, seen in zip(self.ms, self.seen):
            m.on_event = seen.append

    @property
    def devs(self):
        return self.ms

    @rule(args=write_args())
    def io_write(self, args):
        for m in self.ms:
            m.io_write(*args)

    @rule(index=INDEXES, port=st.sampled_from([0x443, 0x444]))
    def start(self, index, port):
        for m in self.ms:
            m.io_write(port, 1, index)

    @rule(port=PORTS, size=SIZES)
    def io_read(self, port, size):
        a, b = (m.io_read(port, size) for m in self.ms)
        assert a == b

    @rule(addr=st.integers(0, 2**64 - 4), size=SIZES, value=st.integers(0, 0xFF))
    def mem(self, addr, size, value):
        for m in self.ms:
            m.mem_write(addr, size, value)
        assert self.ms[0].mem_read(addr, size) == self.ms[1].mem_read(addr, size)

    @rule(data=st.data())
    def advance(self, data):
        delta = data.draw(step_strategy([m.ib700 for m in self.ms]))
        a, b = (m.advance(delta) for m in self.ms)
        assert a == b

    @precondition(lambda self: self.ms[0].next_deadline is not None)
    @rule()
    def advance_to_deadline(self):
        t = self.ms[0].next_deadline
        a, b = (m.advance_to(t) for m in self.ms)
        assert a == b

    @rule(action=ACTIONS)
    def set_action(self, action):
        for m in self.ms:
            m.action = action

    @rule(op=st.sampled_from(["pause", "resume", "system_reset"]))
    def run_state(self, op):
        for m in self.ms:
            getattr(m, op)()

    @rule(cross=st.booleans())
    def snapshot_restore(self, cross):
        snaps = [m.snapshot() for m in self.ms]
        if cross:
            snaps.reverse()
        for m, s in zip(self.ms, snaps):
            m.restore(s)

    @invariant()
    def agree(self):
        a, b = self.ms
        assert a.now == b.now
        assert a.status == b.status
        assert a.next_deadline == b.next_deadline
        assert a.events == b.events == self.seen[0] == self.seen[1]
        assert a.ib700.events == b.ib700.events
        assert a.snapshot() == b.snapshot()
        if a.next_deadline is not None:
            assert a.next_deadline >= a.now
        event(f"machine status {a.status}")
        event(f"machine WATCHDOG events so far: {min(len(a.ib700.events), 3)}")


TestIB700Differential = IB700Pair.TestCase
TestIB700Differential.settings = SETTINGS
TestMachineDifferential = MachinePair.TestCase
TestMachineDifferential.settings = SETTINGS
