"""Issue 10, items 5 and 11: re-entrant calls from callbacks never corrupt a Machine.

The contract (commit 19d83ab; _core_py.CALLS): from a callback (a device's on_expire,
the Machine's on_event, the i6300ESB's on_irq) on the thread inside a public call,

- guest accesses (io_write, io_read, mem_write, mem_read; a standalone device's
  io_write/config_write/mmio_write), clear_events and setting the action *nest*: they
  work, with their documented effect, and join the operation in progress at the
  callback's now -- requests they raise (or find pending) act at that operation's end,
  and exceptions of callbacks they trigger propagate at that end;
- advance, advance_to, pause, resume, system_reset, reset, run, snapshot and restore are
  refused: RuntimeError "<cls>.<call> called from a callback while <cls>.<outer> is in
  progress"; held like every callback exception, it propagates from the outer call after
  the operation completed, unless the callback catches it;
- either way the Machine stays consistent: time never goes backwards, the outer
  RunResult.events are exactly the run's own events, the snapshot round-trips and equals
  that of a reference Machine.

A Machine's own devices refuse their acting calls always ("belongs to a Machine"), and
their reads, snapshots and callbacks keep working.  Everything runs on both
implementations (the ``make_machine`` / ``impl`` fixtures).

The scenario of the matrix: a Machine with both devices, stage-1 interrupt on, action
"shutdown" (a POWERDOWN request that leaves every timer running, so the request stays
pending to the end of the operation).  The IB700 expires at 2 s, so a POWERDOWN is
pending from then on; the i6300ESB's stage 1 ends at E1 (on_irq), its stage 2 at E2 (its
on_expire, the second WATCHDOG for on_event).  The outer call covers all of it: one
advance to END, or a run whose third op steps to END.  A nested access must not end the
operation (the POWERDOWN is logged once, at END).
"""
from __future__ import annotations

import re

import pytest

from tests.conftest import S
from wdcore import WatchdogAction, _select, ops
from wdcore.regs import (REG_GINTSR, REG_PRELOAD1, REG_PRELOAD2, REG_RELOAD, RELOAD_PING,
                         UNLOCK1, UNLOCK2, WDT_ENABLE, WDT_REBOOT_DISABLE)

STAGE = 1_030_791_168_000        # one i6300ESB stage at the power-on preload (0xFFFFF, 1 kHz)
E1, E2 = STAGE, 2 * STAGE        # stage-1 end (on_irq), stage-2 end (the expiry)
END = 2100 * S                   # the end of the outer operation
IB700_T = 2 * S                  # the IB700's expiry (index 0x0E)
SLOT = 2
CONFIG_ADDRESS = 0x8000_0000 | (SLOT << 11) | 0x68  # what the setup leaves in 0xCF8
BAR = 0xFEBF_0000                # where the setup places BAR0
NEW_PRELOAD1 = 0x100             # written by the nested mem_write ...
NEW_STAGE1 = NEW_PRELOAD1 * (STAGE // 0xFFFFF)  # ... a 251.66 ms stage 1
RUN_OPS = [("clock_step", S), ("inl", 0xCF8), ("clock_step", END - S), ("inl", 0xCF8)]
RUN_DATA = ops.encode(RUN_OPS)
THIRD_OP_END = len(ops.encode(RUN_OPS[:3]))  # where a run stopped by the callback's error ends

TRIGGERS = ["on_expire", "on_event", "on_irq"]
T_CB = {"on_expire": E2, "on_event": E2, "on_irq": E1}
DRIVERS = ["advance", "run"]


def ev(name, t, data=None):
    return {"event": name, "data": {} if data is None else data, "time_ns": t}


def bus_config_write(m, offset, size, value):
    """A configuration write through the Machine's bus (mechanism #1)."""
    m.io_write(0xCF8, 4, 0x8000_0000 | (SLOT << 11) | (offset & 0xFC))
    m.io_write(0xCFC + (offset & 3), size, value)


def build(make_machine, action="shutdown"):
    """The matrix's Machine, set up at time 0: BAR0 at BAR with memory decoding, INT_TYPE 0,
    the i6300ESB enabled (stage 1 runs), the IB700 armed for 2 s."""
    m = make_machine(stage1_interrupt=True, action=action)
    bus_config_write(m, 0x10, 4, BAR)
    bus_config_write(m, 0x04, 2, 0x0002)          # command: memory space decoding
    bus_config_write(m, 0x60, 2, 0x0000)          # INT_TYPE 0: the stage-1 interrupt
    bus_config_write(m, 0x68, 1, WDT_ENABLE)      # enable: stage 1 starts
    m.io_write(0x443, 1, 0x0E)                    # IB700: 2 s
    assert m.i6300esb.remaining_ns == STAGE and m.ib700.next_deadline == IB700_T
    assert m.events == [] and m.io_read(0xCF8, 4) == CONFIG_ADDRESS
    return m


def install(m, trigger, body):
    """Call ``body()`` once, from the first qualifying call of ``trigger``: the i6300ESB's
    on_expire (E2), the Machine's on_event for the second WATCHDOG (E2), or the i6300ESB's
    on_irq rising (E1).  Returns what the callback saw (``now`` and device times)."""
    seen = {"calls": 0, "now": None}

    def once():
        if seen["calls"]:
            return
        seen["calls"] += 1
        seen["now"] = m.now
        body()

    if trigger == "on_expire":
        def on_expire(event):
            assert event.time_ns == m.now
            once()
        m.i6300esb.on_expire = on_expire
    elif trigger == "on_event":
        watchdogs = []

        def on_event(entry):
            if entry["event"] == "WATCHDOG":
                watchdogs.append(entry)
                if len(watchdogs) == 2:
                    once()
        m.on_event = on_event
    else:
        def on_irq(level):
            if level:
                once()
        m.i6300esb.on_irq = on_irq
    return seen


def drive(m, driver):
    """The outer call: one advance to END, or a run whose third op steps to END."""
    if driver == "advance":
        return m.advance(END)
    return m.run(RUN_DATA)


def merged_powerdown(events):
    """A reference stepped at the callback's time logs a POWERDOWN at each of its
    operations' ends; in one operation the requests merge into one POWERDOWN at its end."""
    rest = [e for e in events if e["event"] != "POWERDOWN"]
    return rest + [ev("POWERDOWN", END)] if len(rest) != len(events) else rest


def esb_view(esb):
    """What a host sees of an i6300ESB's counter, for readable comparisons."""
    return {"stage": esb.stage, "next_deadline": esb.next_deadline, "irq_level": esb.irq_level}


def assert_consistent(m, make_machine):
    """Time is monotonic in the log, the guard is free and the snapshot round-trips."""
    times = [e["time_ns"] for e in m.events]
    assert times == sorted(times) and all(t <= m.now for t in times)
    snap = m.snapshot()
    other = make_machine(stage1_interrupt=True)
    other.restore(snap)
    assert other.snapshot() == snap
    m.restore(snap)                               # the guard was left: restore works again
    assert m.snapshot() == snap


def assert_run_result(result, events, *, complete=True):
    assert result.events == events
    if complete:
        assert result.ops_executed == 4 and result.reads == [CONFIG_ADDRESS] * 2
        assert result.bytes_consumed == len(RUN_DATA) and result.stopped == "end"
    else:  # ended by the callback's exception, after the op during which it was raised
        assert result.ops_executed == 3 and result.reads == [CONFIG_ADDRESS]
        assert result.bytes_consumed == THIRD_OP_END and result.stopped == "error"


# =============================================================================================
# Machine calls that nest: they work, with their effect, inside the operation in progress
# =============================================================================================

def unlock_and(m, addr, size, value):
    m.mem_write(BAR + REG_RELOAD, 1, UNLOCK1)
    m.mem_write(BAR + REG_RELOAD, 1, UNLOCK2)
    m.mem_write(addr, size, value)


def do_io_write(m):
    m.io_write(0x443, 1, 0x0E)                    # re-arm the IB700: 2 s from now


def do_io_read(m):
    return m.io_read(0xCF8, 4)


def do_mem_write(m):
    unlock_and(m, BAR + REG_PRELOAD1, 4, NEW_PRELOAD1)  # a new Preload Value 1
    unlock_and(m, BAR + REG_RELOAD, 2, RELOAD_PING)     # reload: stage 1 restarts


def do_mem_read(m):
    return m.mem_read(BAR + REG_GINTSR, 1)        # the stage-1 interrupt status


def do_clear_events(m):
    m.clear_events()


def do_action(m):
    m.action = "debug"


NESTING = {"io_write": do_io_write, "io_read": do_io_read, "mem_write": do_mem_write,
           "mem_read": do_mem_read, "clear_events": do_clear_events, "action": do_action}


def stepped_reference(make_machine, t_cb, call):
    """The reference: the same Machine advanced to the callback's time, the same call
    made there at top level, then advanced to END; returns (ref, what the call returned)."""
    ref = build(make_machine)
    ref.advance_to(t_cb)
    value = call(ref)
    ref.advance_to(END)
    return ref, value


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("call", list(NESTING))
def test_a_nesting_machine_call_from_a_callback_works(make_machine, call, trigger, driver):
    m = build(make_machine)
    t_cb = T_CB[trigger]
    inside = {}

    def body():
        inside["before"] = (list(m.events), list(m.ib700.events), list(m.i6300esb.events))
        inside["esb_before"] = m.i6300esb.snapshot()
        inside["value"] = NESTING[call](m)
        # the nested call joined the operation: the pending POWERDOWN is not processed yet
        inside["events"] = list(m.events)
        inside["now"] = m.now
        inside["ib700_deadline"] = m.ib700.next_deadline
        inside["esb"] = (m.i6300esb.snapshot(), m.i6300esb.stage, m.i6300esb.next_deadline)
        inside["action"] = (m.action, m.ib700.action, m.i6300esb.action)
        inside["logs"] = (list(m.ib700.events), list(m.i6300esb.events))

    seen = install(m, trigger, body)
    result = drive(m, driver)
    # (clear_events: the reference keeps its log, and the Machine's is compared with its tail)
    ref_call = (lambda _: None) if call == "clear_events" else NESTING[call]
    ref, ref_value = stepped_reference(make_machine, t_cb, ref_call)
    expected = merged_powerdown(ref.events)

    assert seen["calls"] == 1 and seen["now"] == t_cb and inside["now"] == t_cb
    assert "POWERDOWN" not in [e["event"] for e in inside["events"]]
    assert m.now == END
    # the documented effect of each call
    if call == "io_write":
        assert inside["ib700_deadline"] == t_cb + 2 * S                # re-armed
        assert [e.time_ns for e in m.ib700.events] == [IB700_T, t_cb + 2 * S]
    elif call == "io_read":
        assert inside["value"] == CONFIG_ADDRESS == ref_value
    elif call == "mem_write":
        assert inside["esb"][0] != inside["esb_before"]                # the preload changed
        if trigger == "on_irq":  # enabled: the reload restarted stage 1 with the new preload
            assert inside["esb"][1:] == (1, t_cb + NEW_STAGE1)
            assert [e.time_ns for e in m.i6300esb.events] == [t_cb + NEW_STAGE1 + STAGE]
    elif call == "mem_read":
        assert inside["value"] == ref_value == (1 if trigger == "on_irq" else 0)
    elif call == "clear_events":
        assert inside["events"] == [] and inside["logs"] == ([], [])   # every log drained
    elif call == "action":
        assert inside["action"] == (WatchdogAction.DEBUG,) * 3
        later = [e["data"]["action"] for e in m.events
                 if e["event"] == "WATCHDOG" and e["time_ns"] > t_cb]
        assert all(a == "debug" for a in later)

    # the Machine equals the reference that made the same call at top level
    assert esb_view(m.i6300esb) == esb_view(ref.i6300esb)
    assert m.ib700.next_deadline == ref.ib700.next_deadline
    if call == "clear_events":
        n_log, n_ib, n_esb = (len(x) for x in inside["before"])
        assert m.events == expected[n_log:]
        assert m.ib700.events == ref.ib700.events[n_ib:]
        assert m.i6300esb.events == ref.i6300esb.events[n_esb:]
    else:
        assert m.events == expected
        assert m.ib700.events == ref.ib700.events and m.i6300esb.events == ref.i6300esb.events
    assert m.snapshot() == ref.snapshot()
    assert m.events[-1] == ev("POWERDOWN", END)   # the pending request, once, at the end
    if driver == "run":
        assert result.events == expected         # all of the run's events, cleared or not
    assert_consistent(m, make_machine)
    if call == "action":                          # a later expiry carries the new action
        m.io_write(0x443, 1, 0x0F)
        assert m.events[-1] == ev("WATCHDOG", END, {"action": "debug"})
    if driver == "run":
        assert_run_result(result, expected)


# =============================================================================================
# Machine calls that do not nest: RuntimeError naming both calls, nothing changed
# =============================================================================================

REFUSED = {
    "advance": lambda m, snap0: m.advance(S),
    "advance_to": lambda m, snap0: m.advance_to(m.now + S),
    "pause": lambda m, snap0: m.pause(),
    "resume": lambda m, snap0: m.resume(),
    "system_reset": lambda m, snap0: m.system_reset(),
    "run": lambda m, snap0: m.run(ops.encode([("clock_step", S), ("outb", 0x443, 0x0F)])),
    "snapshot": lambda m, snap0: m.snapshot(),
    "restore": lambda m, snap0: m.restore(snap0),
}


def refused_message(cls, call, outer):
    return f"{cls}.{call} called from a callback while {cls}.{outer} is in progress"


def attempt(call, caught, errors):
    """A callback body making a refused ``call``: records its RuntimeError's message (or
    None when it was not refused) in ``errors``; re-raises it unless ``caught``."""
    def body():
        try:
            call()
        except RuntimeError as exc:
            errors.append(str(exc))
            if not caught:
                raise
        else:
            errors.append(None)
    return body


@pytest.mark.parametrize("caught", [True, False], ids=["caught", "uncaught"])
@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("trigger", TRIGGERS)
@pytest.mark.parametrize("call", list(REFUSED))
def test_a_machine_call_that_does_not_nest_is_refused(make_machine, call, trigger, driver, caught):
    snap0 = make_machine(stage1_interrupt=True, action="shutdown").snapshot()  # time 0, idle
    m = build(make_machine)
    errors = []
    body = attempt(lambda: REFUSED[call](m, snap0), caught, errors)
    seen = install(m, trigger, body)
    message = refused_message("Machine", call, "run" if driver == "run" else "advance")
    if caught:
        result = drive(m, driver)
    else:
        with pytest.raises(RuntimeError, match=re.escape(message)) as info:
            drive(m, driver)
        result = getattr(info.value, "run_result", None)

    assert seen["calls"] == 1 and seen["now"] == T_CB[trigger]
    assert len(errors) == 1 and errors[0] is not None and errors[0].startswith(message)
    # the reference: the same Machine driven the same way, without the nested call
    ref = build(make_machine)
    if driver == "advance":
        ref.advance(END)
    else:
        ref_result = ref.run(RUN_DATA if caught else RUN_DATA[:THIRD_OP_END])
        assert_run_result(result, ref_result.events, complete=caught)
        assert result.events == m.events       # the run's own events, and all of them
    assert m.now == END                         # the outer operation completed, time forward
    assert m.snapshot() == ref.snapshot()
    assert m.events == ref.events
    assert m.ib700.events == ref.ib700.events and m.i6300esb.events == ref.i6300esb.events
    assert m.events[-1] == ev("POWERDOWN", END)
    assert_consistent(m, make_machine)


# =============================================================================================
# Joining the operation: requests at its end, once; callback exceptions at its end
# =============================================================================================

def build_for(make_machine, trigger, action):
    """For the next tests: the IB700's own on_expire at 2 s is the on_expire trigger."""
    m = build(make_machine, action=action)
    return m, (IB700_T if trigger in ("on_expire", "on_event") else E1)


def install_first(m, trigger, body):
    """``body()`` once: the IB700's on_expire, on_event for the first WATCHDOG (both at
    2 s), or on_irq rising (E1)."""
    seen = {"calls": 0}

    def once(*_):
        if not seen["calls"]:
            seen["calls"] += 1
            body()

    if trigger == "on_expire":
        m.ib700.on_expire = once
    elif trigger == "on_event":
        m.on_event = lambda e: once() if e["event"] == "WATCHDOG" else None
    else:
        m.i6300esb.on_irq = lambda level: once() if level else None
    return seen


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_a_reset_requested_by_an_expiry_a_nested_access_causes_happens_once_at_the_end(
        make_machine, trigger, driver):
    m, t_cb = build_for(make_machine, trigger, "reset")
    inside = {}

    def body():
        m.io_write(0x443, 1, 0x0F)               # a zero-length timeout: expires in the access
        inside["status"], inside["events"] = m.status, list(m.events)
        inside["esb_deadline"] = m.i6300esb.next_deadline

    seen = install_first(m, trigger, body)
    result = drive(m, driver)
    assert seen["calls"] == 1
    # the nested expiry happened at the callback's now; the reset was not done there
    assert inside["status"] == "running" and "RESET" not in [e["event"] for e in inside["events"]]
    if trigger != "on_irq":                      # not reset there: still counting stage 1
        assert inside["esb_deadline"] == E1
    guest = {"guest": True, "reason": "guest-reset"}
    wd = [ev("WATCHDOG", t, {"action": "reset"}) for t in sorted([IB700_T, t_cb, E2])]
    # the i6300ESB kept counting to its expiry at E2: the reset came once, at the end
    assert m.events == wd + [ev("RESET", END, guest)]
    assert [e.time_ns for e in m.ib700.events] == sorted([IB700_T, t_cb])
    assert [e.time_ns for e in m.i6300esb.events] == [E2]
    assert m.now == END and m.status == "running" and m.next_deadline is None
    if driver == "run":
        assert_run_result(result, m.events)
    assert_consistent(m, make_machine)


class Boom(Exception):
    pass


@pytest.mark.parametrize("driver", DRIVERS)
@pytest.mark.parametrize("trigger", TRIGGERS)
def test_an_exception_from_a_callback_a_nested_access_triggers_propagates_at_the_outer_end(
        make_machine, trigger, driver):
    m, t_cb = build_for(make_machine, trigger, "none")
    state = {"nested": False, "returned": False}

    def body():
        state["nested"] = True
        m.io_write(0x443, 1, 0x0F)               # its expiry's callback raises Boom
        state["nested"] = False
        state["returned"] = True                 # ... which did not come out of the access
        state["now"] = m.now

    seen = install_first(m, trigger, body)
    # the failing callback: the IB700's on_expire (itself the trigger, or beside it)
    trigger_cb = m.ib700.on_expire

    def on_expire(event):
        if state["nested"]:
            raise Boom("a callback of the nested access failed")
        if trigger_cb is not None:
            trigger_cb(event)
    m.ib700.on_expire = on_expire

    with pytest.raises(Boom) as info:
        drive(m, driver)
    assert seen["calls"] == 1 and state["returned"] and state["now"] == t_cb
    # the outer operation completed before it propagated
    wd = [ev("WATCHDOG", t, {"action": "none"}) for t in sorted([IB700_T, t_cb, E2])]
    assert m.events == wd
    assert m.now == END
    if driver == "run":
        assert_run_result(info.value.run_result, wd, complete=False)
    m.io_read(0x80, 1)                           # nothing left pending for the next call
    assert m.events == wd
    assert_consistent(m, make_machine)


# =============================================================================================
# Standalone devices: their acting calls from their own callbacks during advance
# =============================================================================================

def ib700_setup(IB700cls):
    dev = IB700cls(action="none")
    dev.io_write(0x443, 1, 0x0E)
    return dev


def esb_setup(ESBcls):
    dev = ESBcls(stage1_interrupt=True, action="none")
    dev.config_write(0x60, 2, 0x0000)
    dev.config_write(0x68, 1, WDT_ENABLE)
    assert dev.remaining_ns == STAGE
    return dev


def esb_mmio_unlock_and(dev, offset, size, value):
    dev.mmio_write(REG_RELOAD, 1, UNLOCK1)
    dev.mmio_write(REG_RELOAD, 1, UNLOCK2)
    dev.mmio_write(offset, size, value)


# (device, callback) -> the callback's time, the advance's end
DEVICE_CASES = {
    ("ib700", "on_expire"): (IB700_T, 5 * S),
    ("i6300esb", "on_expire"): (E2, END),
    ("i6300esb", "on_irq"): (E1, END),
}

DEVICE_NESTING = {
    ("ib700", "io_write"): lambda d: d.io_write(0x443, 1, 0x0E),          # re-arm, 2 s
    ("ib700", "action"): lambda d: setattr(d, "action", "debug"),
    ("i6300esb", "config_write"): lambda d: d.config_write(0x60, 2, WDT_REBOOT_DISABLE),
    ("i6300esb", "mmio_write"): lambda d: (esb_mmio_unlock_and(d, REG_PRELOAD1, 4, NEW_PRELOAD1),
                                           esb_mmio_unlock_and(d, REG_RELOAD, 2, RELOAD_PING)),
    ("i6300esb", "action"): lambda d: setattr(d, "action", "debug"),
}

DEVICE_REFUSED = {
    "advance": lambda d, snap0: d.advance(S),
    "advance_to": lambda d, snap0: d.advance_to(d.now + S),
    "reset": lambda d, snap0: d.reset(),
    "restore": lambda d, snap0: d.restore(snap0),
}


def device_cls(impl, kind):
    imp = _select.implementation(impl)
    return imp.IB700 if kind == "ib700" else imp.I6300ESB


def device_setup(impl, kind):
    cls = device_cls(impl, kind)
    return ib700_setup(cls) if kind == "ib700" else esb_setup(cls)


def install_device(dev, callback, body):
    seen = {"calls": 0, "now": None}

    def once(*args):
        if callback == "on_irq" and not args[0]:
            return
        if not seen["calls"]:
            seen["calls"] += 1
            seen["now"] = dev.now
            body()

    setattr(dev, callback, once)
    return seen


def device_nesting_cases():
    for (kind, callback) in DEVICE_CASES:
        for (k, call) in DEVICE_NESTING:
            if k == kind:
                yield pytest.param(kind, callback, call, id=f"{kind}-{callback}-{call}")


@pytest.mark.parametrize("kind, callback, call", list(device_nesting_cases()))
def test_a_standalone_devices_access_from_its_own_callback_nests(impl, kind, callback, call):
    t_cb, end = DEVICE_CASES[(kind, callback)]
    dev = device_setup(impl, kind)
    inside = {}

    def body():
        before = dev.snapshot()
        DEVICE_NESTING[(kind, call)](dev)
        inside["changed"] = dev.snapshot() != before
        inside["deadline"], inside["action"] = dev.next_deadline, dev.action
        inside["now"] = dev.now

    seen = install_device(dev, callback, body)
    n = dev.advance(end - dev.now)
    # the reference: advanced to the callback's time, the same call, then to the end
    ref = device_setup(impl, kind)
    ref.advance_to(t_cb)
    DEVICE_NESTING[(kind, call)](ref)
    ref.advance_to(end)
    assert seen["calls"] == 1 and seen["now"] == inside["now"] == t_cb
    assert inside["changed"] or call == "action"
    if call == "io_write":
        assert inside["deadline"] == t_cb + 2 * S and n == 2
        assert [e.time_ns for e in dev.events] == [IB700_T, t_cb + 2 * S]
    elif call == "config_write":
        assert dev.config_read(0x60, 2) == WDT_REBOOT_DISABLE
    elif call == "mmio_write" and callback == "on_irq":
        # the reload restarted stage 1 with the new preload, then stage 2 follows
        assert inside["deadline"] == t_cb + NEW_STAGE1
        assert [e.time_ns for e in dev.events] == [t_cb + NEW_STAGE1 + STAGE]
    elif call == "action":
        assert inside["action"] == WatchdogAction.DEBUG == dev.action
    assert dev.now == end
    if kind == "i6300esb":
        assert esb_view(dev) == esb_view(ref)
    assert dev.events == ref.events
    assert dev.snapshot() == ref.snapshot()
    if call == "action":                        # a later expiry carries the new action
        for d in (dev, ref):
            if kind == "ib700":
                d.io_write(0x443, 1, 0x0F)
            else:
                d.config_write(0x60, 2, 0x0000)
                d.config_write(0x68, 1, WDT_ENABLE)
                d.advance(2 * STAGE)
        assert dev.events[-1].action == WatchdogAction.DEBUG
        assert dev.events == ref.events and dev.snapshot() == ref.snapshot()


def device_refused_cases():
    for (kind, callback) in DEVICE_CASES:
        for call in DEVICE_REFUSED:
            yield pytest.param(kind, callback, call, id=f"{kind}-{callback}-{call}")


@pytest.mark.parametrize("caught", [True, False], ids=["caught", "uncaught"])
@pytest.mark.parametrize("kind, callback, call", list(device_refused_cases()))
def test_a_standalone_devices_acting_call_from_its_own_callback_is_refused(impl, kind, callback,
                                                                           call, caught):
    t_cb, end = DEVICE_CASES[(kind, callback)]
    snap0 = device_cls(impl, kind)().snapshot()
    dev = device_setup(impl, kind)
    errors = []
    body = attempt(lambda: DEVICE_REFUSED[call](dev, snap0), caught, errors)
    seen = install_device(dev, callback, body)
    cls = "IB700" if kind == "ib700" else "I6300ESB"
    message = refused_message(cls, call, "advance")
    if caught:
        dev.advance(end)
    else:
        with pytest.raises(RuntimeError, match=re.escape(message)):
            dev.advance(end)
    ref = device_setup(impl, kind)
    ref.advance(end)
    assert seen["calls"] == 1 and seen["now"] == t_cb
    assert len(errors) == 1 and errors[0] is not None and errors[0].startswith(message)
    assert dev.now == end                       # the advance completed, time forward
    assert dev.snapshot() == ref.snapshot()
    assert dev.events == ref.events
    dev.advance(1)                              # the guard was left
    assert dev.now == end + 1


@pytest.mark.parametrize("where", ["standalone", "machine"])
def test_a_preload_2_write_from_on_irq_leaves_the_stage_2_in_progress_alone(make_machine, impl,
                                                                            where):
    """Preload Value 2 is loaded when stage 2 starts: written from on_irq at the stage-1
    end (after stage 2 started), it is for the next stage 2, exactly as written by the
    host right after that end -- not the length of the stage 2 in progress."""
    def setup():
        if where == "standalone":
            dev = esb_setup(_select.implementation(impl).I6300ESB)
            return dev, dev, (lambda: esb_mmio_unlock_and(dev, REG_PRELOAD2, 4, 0x10))
        m = build(make_machine, action="none")
        return m, m.i6300esb, (lambda: unlock_and(m, BAR + REG_PRELOAD2, 4, 0x10))

    host, esb, write = setup()
    esb.on_irq = lambda level: write() if level else None
    host.advance(E1)
    ref_host, ref_esb, ref_write = setup()
    ref_host.advance(E1)
    ref_write()
    assert ref_esb.stage == 2 and ref_esb.remaining_ns == STAGE
    assert (esb.stage, esb.remaining_ns) == (ref_esb.stage, ref_esb.remaining_ns)
    assert host.snapshot() == ref_host.snapshot()


@pytest.mark.parametrize("kind", ["ib700", "i6300esb"])
def test_a_standalone_devices_nested_access_holds_its_callbacks_exception_to_the_outer_end(
        impl, kind):
    """The IB700's zero-length re-arm from on_expire expires inside the access, whose
    on_expire fails; the i6300ESB's GINTSR clear from on_irq lowers the line, whose on_irq
    fails.  The access returns; the advance completes, then raises."""
    dev = device_setup(impl, kind)
    state = {"calls": 0, "nested": False, "returned": False}

    def callback(arg):
        if state["nested"]:
            raise Boom("a callback of the nested access failed")
        if state["calls"] or (kind == "i6300esb" and not arg):
            return
        state["calls"] += 1
        state["nested"] = True
        if kind == "ib700":
            dev.io_write(0x443, 1, 0x0F)
        else:
            dev.mmio_write(REG_GINTSR, 1, 0x01)   # write 1 to clear: on_irq(False)
        state["nested"] = False
        state["returned"], state["now"] = True, dev.now

    setattr(dev, "on_expire" if kind == "ib700" else "on_irq", callback)
    end = 5 * S if kind == "ib700" else END
    with pytest.raises(Boom):
        dev.advance(end)
    assert state["returned"] and state["now"] == (IB700_T if kind == "ib700" else E1)
    assert dev.now == end                       # the advance completed before it raised
    if kind == "ib700":
        assert [e.time_ns for e in dev.events] == [IB700_T, IB700_T]
    else:
        assert dev.irq_level is False and [e.time_ns for e in dev.events] == [E2]
    dev.advance(1)                              # nothing left held for the next call
    assert dev.now == end + 1


# =============================================================================================
# A Machine's own devices refuse their acting calls (item 11); reads keep working
# =============================================================================================

OWN_REFUSED = {
    ("ib700", "io_write"): lambda d: d.io_write(0x443, 1, 0x0F),
    ("ib700", "advance"): lambda d: d.advance(S),
    ("ib700", "advance_to"): lambda d: d.advance_to(d.now + S),
    ("ib700", "reset"): lambda d: d.reset(),
    ("ib700", "restore"): lambda d: d.restore(d.snapshot()),
    ("ib700", "action"): lambda d: setattr(d, "action", "pause"),
    ("i6300esb", "config_write"): lambda d: d.config_write(0x68, 1, 0),
    ("i6300esb", "mmio_write"): lambda d: d.mmio_write(REG_RELOAD, 1, UNLOCK1),
    ("i6300esb", "advance"): lambda d: d.advance(S),
    ("i6300esb", "advance_to"): lambda d: d.advance_to(d.now + S),
    ("i6300esb", "reset"): lambda d: d.reset(),
    ("i6300esb", "restore"): lambda d: d.restore(d.snapshot()),
    ("i6300esb", "action"): lambda d: setattr(d, "action", "pause"),
}


def assert_own_devices_readable(m, make_machine, impl):
    """Reads, snapshots and callbacks of a Machine's own devices work."""
    assert m.ib700.io_read(0x443, 1) == 0xFF and m.ib700.io_read(0x441, 2) == 0xFFFF
    assert m.i6300esb.config_read(0x00, 4) == 0x25AB_8086
    assert m.i6300esb.config_read(0x68, 1) == WDT_ENABLE
    assert m.i6300esb.mmio_read(REG_GINTSR, 1) == 0
    imp = _select.implementation(impl)
    alone = imp.IB700()
    alone.restore(m.ib700.snapshot())
    assert alone.next_deadline == m.ib700.next_deadline and alone.now == m.now
    esb = imp.I6300ESB(stage1_interrupt=True)
    esb.restore(m.i6300esb.snapshot())
    assert esb.next_deadline == m.i6300esb.next_deadline
    seen = []
    m.ib700.on_expire = seen.append             # settable; called by the Machine's expiry
    m.io_write(0x443, 1, 0x0F)
    assert [e.time_ns for e in seen] == [m.now]
    m.ib700.on_expire = None


@pytest.mark.parametrize("where", ["direct", "from_on_expire"])
@pytest.mark.parametrize("kind, call", list(OWN_REFUSED), ids=[f"{k}-{c}" for k, c in OWN_REFUSED])
def test_a_machines_own_device_refuses_its_acting_calls(make_machine, impl, kind, call, where):
    m = build(make_machine, action="none")
    m.advance(S)
    dev = getattr(m, kind)
    cls = "IB700" if kind == "ib700" else "I6300ESB"
    message = f"{cls}.{call}: this device belongs to a Machine"
    before, events, dev_before = m.snapshot(), list(m.events), dev.snapshot()
    if where == "direct":
        with pytest.raises(RuntimeError, match=re.escape(message)):
            OWN_REFUSED[(kind, call)](dev)
        assert m.snapshot() == before and m.events == events and dev.snapshot() == dev_before
        assert dev.action == WatchdogAction.NONE
    else:
        errors = []

        def on_expire(_event):
            try:
                OWN_REFUSED[(kind, call)](dev)
            except RuntimeError as exc:
                errors.append(str(exc))
            else:
                errors.append(None)
        m.ib700.on_expire = on_expire
        m.advance(2 * S)                         # the IB700 expires at 2 s
        ref = build(make_machine, action="none")
        ref.advance(3 * S)
        assert len(errors) == 1 and errors[0] is not None and errors[0].startswith(message)
        assert m.snapshot() == ref.snapshot() and m.events == ref.events
        m.ib700.on_expire = None
    assert m.action == WatchdogAction.NONE
    assert_own_devices_readable(m, make_machine, impl)
    assert_consistent(m, make_machine)
