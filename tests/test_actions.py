"""The action layer's names and records (API.md, SPEC.md §4.1)."""
from __future__ import annotations

import dataclasses

import pytest

from wdcore import WatchdogAction, WatchdogEvent
from wdcore.actions import Request, coerce_action, effect_of

# QEMU's WatchdogAction enum (qapi/run-state.json), in its order, with wire names
QEMU_NAMES = ["reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi"]


def test_members_are_qemus_names_in_qemus_order():
    assert [a.value for a in WatchdogAction] == QEMU_NAMES
    assert WatchdogAction("inject-nmi") is WatchdogAction.INJECT_NMI
    assert WatchdogAction.RESET == "reset" and str(WatchdogAction.PAUSE) == "pause"


def test_event_is_an_immutable_record():
    ev = WatchdogEvent(5, "ib700", WatchdogAction.NONE)
    assert (ev.time_ns, ev.device, ev.action) == (5, "ib700", WatchdogAction.NONE)
    with pytest.raises((AttributeError, dataclasses.FrozenInstanceError)):
        ev.time_ns = 6  # type: ignore[misc]
    assert ev == WatchdogEvent(5, "ib700", WatchdogAction.NONE)
    assert hash(ev) == hash(WatchdogEvent(5, "ib700", WatchdogAction.NONE))


@pytest.mark.parametrize("bad, exc", [("bogus", ValueError), (3, TypeError), (None, TypeError)])
def test_coerce_rejects_non_actions(bad, exc):
    with pytest.raises(exc, match="action"):
        coerce_action(bad)


# SPEC.md §4.2: the effect of each action, in one table
@pytest.mark.parametrize("action, nmi, req, power_off", [
    ("reset", None, Request.RESET, False),
    ("shutdown", None, Request.POWERDOWN, False),
    ("poweroff", None, Request(0), True),
    ("pause", None, Request.STOP, False),
    ("debug", None, Request(0), False),
    ("none", None, Request(0), False),
    ("inject-nmi", "NMI", Request(0), False),
])
def test_effect_table(action, nmi, req, power_off):
    eff = effect_of(WatchdogAction(action))
    assert (eff.immediate_event, eff.request, eff.power_off) == (nmi, req, power_off)
