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

COMPILED = _select.implementation("compiled").IB700
TWIN = _select.implementation("python").IB700
ESB_COMPILED = _select.implementation("compiled").I6300ESB
ESB_TWIN = _select.implementation("python").I6300ESB

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


# --- i6300ESB -------------------------------------------------------------------------

BAR = 0xE0000000
# config writes: the special registers with interesting values, and raw accesses
CFG_WRITES = st.one_of(
    st.tuples(st.just(0x60), st.just(2), st.sampled_from([0, 0x04, 0x20, 0x24, 0x03, 0x11, 0xFFFF])
              | st.integers(0, 0xFFFF)),
    st.tuples(st.just(0x68), st.just(1), st.sampled_from([0, 1, 2, 3, 4, 6, 7]) | st.integers(0, 0xFF)),
    st.tuples(st.integers(0, 0xFF), SIZES, st.integers(0, 0xFFFFFFFF)).map(
        lambda t: (t[0], t[1], t[2] & ((1 << (8 * t[1])) - 1))),
)
# preloads: small, so that stages end within the steps; sometimes 0 or huge
PRELOADS = st.one_of(st.integers(0, 40), st.sampled_from([0, 1, 0x200, 0xFFFFF]),
                     st.integers(0, 0xFFFFFFFF))
MMIO_OFFSET_SIZE = st.sampled_from([(o, n) for n in (1, 2, 4) for o in range(0, 17 - n)])


@st.composite
def mmio_write_args(draw):
    """Mostly the driver's vocabulary (unlock bytes/words/dwords, preload, reload,
    GINTSR clear), sometimes any in-range access."""
    kind = draw(st.sampled_from(["unlock1", "unlock2", "preload", "reload", "gintsr", "any"]))
    if kind in ("unlock1", "unlock2"):
        size = draw(SIZES)
        return 0x0C, size, 0x80 if kind == "unlock1" else 0x86
    if kind == "preload":
        return draw(st.sampled_from([0, 4])), 4, draw(PRELOADS)
    if kind == "reload":
        return 0x0C, 2, draw(st.sampled_from([0x100, 0x200, 0x1000, 0x300, 0x1100, 0]))
    if kind == "gintsr":
        return 0x08, draw(SIZES), 1
    off, size = draw(MMIO_OFFSET_SIZE)
    return off, size, draw(access_value(size))


def esb_step_strategy(dev):
    choices = [st.integers(0, 3 * S), st.just(0), st.just(1), st.integers(0, 10**6)]
    deadline = dev.next_deadline
    if deadline is not None and deadline >= dev.now:
        d = deadline - dev.now
        choices += [st.just(d), st.just(max(d - 1, 0)), st.just(d + 1), st.integers(d, 50 * d + 1)]
    return st.one_of(*choices)


class ESBPair(RuleBasedStateMachine):
    """One compiled i6300ESB and one twin, fed identically."""

    @initialize(action=ACTIONS, profile=st.sampled_from(["qemu", "qemu-7.2"]), s1i=st.booleans())
    def setup(self, action, profile, s1i):
        self.fired = ([], [])
        self.irqs = ([], [])
        self.devs = tuple(cls(action=action, profile=profile, stage1_interrupt=s1i,
                              on_expire=fired.append)
                          for cls, fired in zip((ESB_COMPILED, ESB_TWIN), self.fired))
        for d, irqs in zip(self.devs, self.irqs):
            d.on_irq = irqs.append

    @rule(args=CFG_WRITES)
    def config_write(self, args):
        for d in self.devs:
            d.config_write(*args)

    @rule(offset=st.integers(0, 0xFF), size=SIZES)
    def config_read(self, offset, size):
        a, b = (d.config_read(offset, size) for d in self.devs)
        assert a == b

    @rule(args=mmio_write_args())
    def mmio_write(self, args):
        for d in self.devs:
            d.mmio_write(*args)

    @rule(args=MMIO_OFFSET_SIZE)
    def mmio_read(self, args):
        a, b = (d.mmio_read(*args) for d in self.devs)
        assert a == b

    @rule(p1=PRELOADS, p2=PRELOADS, one_mhz=st.booleans(), lock=st.sampled_from([2, 3, 6, 7]),
          reboot_disabled=st.booleans())
    def program(self, p1, p2, one_mhz, lock, reboot_disabled):
        """The whole driver sequence, so that sequences often run and expire."""
        for d in self.devs:
            d.config_write(0x60, 2, (0x04 if one_mhz else 0) | (0x20 if reboot_disabled else 0))
            for reg, value in ((0x00, p1), (0x04, p2)):
                d.mmio_write(0x0C, 2, 0x80)
                d.mmio_write(0x0C, 2, 0x86)
                d.mmio_write(reg, 4, value)
            d.config_write(0x68, 1, lock)

    @rule(data=st.data())
    def advance(self, data):
        delta = data.draw(esb_step_strategy(self.devs[0]))
        a, b = (d.advance(delta) for d in self.devs)
        assert a == b

    @precondition(lambda self: self.devs[0].next_deadline is not None)
    @rule()
    def advance_to_deadline(self):
        t = self.devs[0].next_deadline
        a, b = (d.advance_to(t) for d in self.devs)
        assert a == b

    @rule(delta=st.integers(0, 2500 * S))
    def advance_far(self, delta):
        """Past both stages of any preload: expiries, free-running cycles skipped."""
        a, b = (d.advance(delta) for d in self.devs)
        assert a == b

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
            snaps.reverse()
        for d, snap in zip(self.devs, snaps):
            d.restore(snap)

    @invariant()
    def agree(self):
        a, b = self.devs
        assert a.now == b.now
        assert a.next_deadline == b.next_deadline
        assert a.remaining_ns == b.remaining_ns
        assert a.stage == b.stage
        assert a.irq_level == b.irq_level
        assert a.events == b.events == self.fired[0] == self.fired[1]
        assert self.irqs[0] == self.irqs[1]
        assert a.snapshot() == b.snapshot()
        if a.next_deadline is not None:
            assert a.next_deadline >= a.now or a.remaining_ns == 0
        event(f"esb expiries so far: {min(len(a.events), 2)}")
        event(f"esb stage {a.stage}, {'counting' if a.next_deadline is not None else 'idle'}")


class PCIMachinePair(RuleBasedStateMachine):
    """Two Machines with both devices, the i6300ESB reached only through the PCI
    configuration ports and its BAR0 window, as a guest does."""

    @initialize(action=ACTIONS, reboot=st.sampled_from(["reset", "shutdown"]),
                profile=st.sampled_from(["qemu", "qemu-7.2"]), slot=st.sampled_from([2, 3, 31]),
                start=st.one_of(st.none(), st.tuples(PRELOADS, PRELOADS)))
    def setup(self, action, reboot, profile, slot, start):
        self.slot = slot
        self.ms = tuple(Machine(action=action, reboot_action=reboot, profile=profile,
                                esb_slot=slot, implementation=impl)
                        for impl in ("compiled", "python"))
        self.seen = ([], [])
        for m, seen in zip(self.ms, self.seen):
            m.on_event = seen.append
        if start is not None:  # half the runs begin with a driver that has started it
            self.program(start[0], start[1], 2, False)

    def _cfg_write(self, offset, size, value):
        for m in self.ms:
            m.io_write(0xCF8, 4, 0x80000000 | (self.slot << 11) | (offset & 0xFC))
            m.io_write(0xCFC + (offset & 3), size, value)

    @rule(map_bar=st.booleans(), memory_on=st.booleans())
    def bring_up(self, map_bar, memory_on):
        if map_bar:
            self._cfg_write(0x10, 4, BAR)
        self._cfg_write(0x04, 2, 0x0002 if memory_on else 0)

    @rule(args=CFG_WRITES)
    def config_write(self, args):
        offset, size, value = args
        if (offset & 3) + size > 4:  # keep inside one dword, as a driver does
            size = 1
            value &= 0xFF
        self._cfg_write(offset, size, value)

    @rule(address=st.integers(0, 0xFFFFFFFF) | st.just(0x80000000 | (2 << 11) | 0x68),
          port=st.integers(0xCF8, 0xCFF), size=SIZES)
    def raw_config_ports(self, address, port, size):
        for m in self.ms:
            m.io_write(0xCF8, 4, address)
        a, b = (m.io_read(port, size) for m in self.ms)
        assert a == b

    @rule(args=write_args())
    def io_write(self, args):
        for m in self.ms:
            m.io_write(*args)

    @rule(index=INDEXES)
    def ib700_start(self, index):
        for m in self.ms:
            m.io_write(0x443, 1, index)

    @rule(args=mmio_write_args(), shift=st.sampled_from([0, 0, 0, -2, 14, 0x100]))
    def mem_write(self, args, shift):
        offset, size, value = args
        for m in self.ms:
            m.mem_write(BAR + offset + shift, size, value)

    @rule(args=MMIO_OFFSET_SIZE, shift=st.sampled_from([0, -2, 14]))
    def mem_read(self, args, shift):
        offset, size = args
        a, b = (m.mem_read(BAR + offset + shift, size) for m in self.ms)
        assert a == b

    @rule(p1=PRELOADS, p2=PRELOADS, lock=st.sampled_from([2, 3, 6]), reboot_disabled=st.booleans())
    def program(self, p1, p2, lock, reboot_disabled):
        self._cfg_write(0x10, 4, BAR)
        self._cfg_write(0x04, 2, 0x0002)
        self._cfg_write(0x60, 2, 0x04 | (0x20 if reboot_disabled else 0))
        for reg, value in ((0x00, p1), (0x04, p2)):
            for m in self.ms:
                m.mem_write(BAR + 0x0C, 2, 0x80)
                m.mem_write(BAR + 0x0C, 2, 0x86)
                m.mem_write(BAR + reg, 4, value)
        self._cfg_write(0x68, 1, lock)

    @rule(data=st.data())
    def advance(self, data):
        esb = self.ms[0].i6300esb
        delta = data.draw(st.one_of(esb_step_strategy(esb), step_strategy([self.ms[0].ib700])))
        a, b = (m.advance(delta) for m in self.ms)
        assert a == b

    @precondition(lambda self: self.ms[0].next_deadline is not None)
    @rule()
    def advance_to_deadline(self):
        t = self.ms[0].next_deadline
        a, b = (m.advance_to(t) for m in self.ms)
        assert a == b

    @rule(delta=st.integers(S, 5 * S))
    def advance_far(self, delta):
        """Past both stages of any 1 MHz preload."""
        a, b = (m.advance(delta) for m in self.ms)
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
        for m, snap in zip(self.ms, snaps):
            m.restore(snap)

    @invariant()
    def agree(self):
        a, b = self.ms
        assert a.now == b.now
        assert a.status == b.status
        assert a.next_deadline == b.next_deadline
        assert a.events == b.events == self.seen[0] == self.seen[1]
        assert a.i6300esb.events == b.i6300esb.events
        assert a.snapshot() == b.snapshot()
        if a.next_deadline is not None:
            assert a.next_deadline >= a.now
        event(f"machine status {a.status}")
        event(f"i6300esb WATCHDOGs so far: {min(len(a.i6300esb.events), 2)}")


TestESBDifferential = ESBPair.TestCase
TestESBDifferential.settings = SETTINGS
TestPCIMachineDifferential = PCIMachinePair.TestCase
TestPCIMachineDifferential.settings = SETTINGS
TestIB700Differential = IB700Pair.TestCase
TestIB700Differential.settings = SETTINGS
TestMachineDifferential = MachinePair.TestCase
TestMachineDifferential.settings = SETTINGS
