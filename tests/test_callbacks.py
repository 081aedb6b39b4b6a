"""Issue 10, items 2-4 and the Ctrl-C-in-a-callback half of 7: a host callback that fails
never loses state.  The expiry's effects (requests, poweroff, NMI, the next stage's arm,
the end-of-operation processing) are exactly those of a callback that returned; then the
first exception propagates from the host call.  A callback that is neither None nor
callable is refused when set.  Both implementations."""
from __future__ import annotations

import pytest

from tests.conftest import S
from wdcore import _select


class Boom(Exception):
    pass


def boom(*_args):
    raise Boom("the host's callback failed")


def arm_ib700_zero(m):
    m.io_write(0x443, 1, 0x0F)   # index 15: 0 s, the expiry fires in this access


@pytest.mark.parametrize("action, status, tail", [
    ("reset", "running", ["RESET"]),
    ("poweroff", "poweroff", []),
    ("pause", "watchdog", ["STOP"]),
    ("inject-nmi", "running", ["NMI"]),
    ("shutdown", "running", ["POWERDOWN"]),
])
@pytest.mark.parametrize("which", ["on_event", "on_expire"])
def test_a_raising_callback_keeps_the_expirys_effect(make_machine, action, status, tail, which):
    m = make_machine(action=action)
    if which == "on_event":
        m.on_event = boom
    else:
        m.ib700.on_expire = boom
    with pytest.raises(Boom):
        arm_ib700_zero(m)
    assert m.status == status
    assert [e["event"] for e in m.events] == ["WATCHDOG"] + tail
    # nothing is left pending for the next, unrelated call
    m.on_event = None
    m.ib700.on_expire = None
    before = list(m.events)
    m.io_read(0x80, 1)
    assert m.events == before and m.status == status


def test_a_raising_on_expire_during_advance_finishes_the_advance(make_machine):
    m = make_machine(action="none")
    m.ib700.on_expire = boom
    m.io_write(0x443, 1, 0x0E)                 # 2 s
    with pytest.raises(Boom):
        m.advance(5 * S)
    assert m.now == 5 * S                      # the advance completed before it raised
    assert [e["event"] for e in m.events] == ["WATCHDOG"]
    assert m.ib700.events[0].time_ns == 2 * S


def test_the_snapshot_after_a_failed_callback_holds_the_reset(make_machine):
    m = make_machine(action="reset")
    m.on_event = boom
    m.io_write(0x443, 1, 0x0E)
    with pytest.raises(Boom):
        m.advance(3 * S)
    snap = m.snapshot()
    m.on_event = None
    clean = make_machine(action="reset")
    clean.io_write(0x443, 1, 0x0E)
    clean.advance(3 * S)
    assert snap == clean.snapshot()            # the reset was processed, not left pending


def bus_config_write(m, offset, size, value, slot=2):
    """A configuration write through the Machine's bus (mechanism #1): a Machine's own
    devices refuse direct calls (issue 10 item 11)."""
    m.io_write(0xCF8, 4, 0x8000_0000 | (slot << 11) | (offset & 0xFC))
    m.io_write(0xCFC + (offset & 3), size, value)


def enabled_esb_with_stage1_interrupt(make_machine):
    m = make_machine(devices=("i6300esb",), stage1_interrupt=True)
    bus_config_write(m, 0x60, 2, 0x0000)       # INT_TYPE 0: the stage-1 interrupt
    bus_config_write(m, 0x68, 1, 0x02)         # enable: stage 1 starts
    return m, m.i6300esb


def test_on_irq_raising_at_the_stage1_end_still_arms_stage2(impl):
    esb = _select.implementation(impl).I6300ESB(stage1_interrupt=True)
    esb.config_write(0x60, 2, 0x0000)
    esb.config_write(0x68, 1, 0x02)
    stage1 = esb.remaining_ns
    esb.on_irq = boom
    with pytest.raises(Boom):
        esb.advance(stage1)
    assert esb.irq_level is True and esb.stage == 2
    assert esb.remaining_ns == stage1          # stage 2 runs, same preload: not dead
    esb.on_irq = None
    esb.advance(stage1)                        # and its end is the expiry
    assert len(esb.events) == 1


def test_on_irq_raising_in_a_machine_still_arms_stage2(make_machine):
    m, esb = enabled_esb_with_stage1_interrupt(make_machine)
    stage1 = esb.remaining_ns
    esb.on_irq = boom
    with pytest.raises(Boom):
        m.advance(stage1)
    assert esb.stage == 2 and esb.remaining_ns == stage1
    esb.on_irq = None
    m.advance(stage1)
    assert [e["event"] for e in m.events] == ["WATCHDOG", "RESET"]


def test_ctrl_c_in_a_callback_does_not_lose_the_reset(make_machine):
    m = make_machine(action="reset")

    def interrupt(_event):
        raise KeyboardInterrupt
    m.ib700.on_expire = interrupt
    with pytest.raises(KeyboardInterrupt):
        arm_ib700_zero(m)
    assert [e["event"] for e in m.events] == ["WATCHDOG", "RESET"]


def test_only_the_first_failure_propagates_and_none_is_left_behind(make_machine):
    m = make_machine(action="reset")
    m.on_event = boom                          # fails for WATCHDOG and again for RESET
    with pytest.raises(Boom):
        arm_ib700_zero(m)
    m.on_event = None
    m.io_read(0x80, 1)                         # the second failure was not kept for later


@pytest.mark.parametrize("name", ["on_event", "on_expire", "on_irq"])
def test_a_callback_that_is_not_callable_is_refused_when_set(make_machine, name):
    m = make_machine()
    target = {"on_event": m, "on_expire": m.ib700, "on_irq": m.i6300esb}[name]
    keep = lambda *_: None  # noqa: E731
    setattr(target, name, keep)
    with pytest.raises(TypeError, match=name):
        setattr(target, name, 42)
    assert getattr(target, name) is keep      # unchanged
    setattr(target, name, None)
    assert getattr(target, name) is None


def test_a_device_constructed_with_a_non_callable_on_expire_is_refused(impl):
    with pytest.raises(TypeError, match="on_expire"):
        _select.implementation(impl).IB700(on_expire="print")
