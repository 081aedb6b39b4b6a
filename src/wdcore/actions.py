"""The action layer: what a watchdog expiry does.

Devices never know the policy.  A device only records a :class:`WatchdogEvent`
carrying the :class:`WatchdogAction` configured at the moment of expiry; the Machine
core turns that expiry into its effect in one place (``c_deliver`` in ``_machine.pyx``
and its twin), reading the one table :data:`EFFECTS`, after QEMU's
``hw/watchdog/watchdog.c`` and the main loop's request handling (SPEC.md §4).
"""
from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["WatchdogAction", "WatchdogEvent", "Request", "Effect", "EFFECTS", "effect_of", "coerce_action", "RunState",
           "RUN_STATES"]


class WatchdogAction(str, enum.Enum):
    """QEMU's ``WatchdogAction`` enum, in QEMU's order, with its wire names."""

    RESET = "reset"
    SHUTDOWN = "shutdown"
    POWEROFF = "poweroff"
    PAUSE = "pause"
    DEBUG = "debug"
    NONE = "none"
    INJECT_NMI = "inject-nmi"

    def __str__(self) -> str:  # "reset", not "WatchdogAction.RESET"
        return self.value


class RunState(str, enum.Enum):
    """QEMU's run-state names as a Machine reports them (``Machine.status``); a member
    equals its plain string.  "poweroff" is wdcore's: QEMU has exited by then (it has no
    such state), and "prelaunch" is used as QEMU does after a reset while stopped.  The
    position of a member is its code in snapshots and inside the Machine cores (README:
    "QEMU's vocabulary, and what wdcore adds to it")."""

    RUNNING = "running"
    WATCHDOG = "watchdog"    # paused by a watchdog expiry with action pause
    PAUSED = "paused"        # QMP stop
    PRELAUNCH = "prelaunch"  # a reset while stopped: not running until resumed
    SHUTDOWN = "shutdown"    # finished (-no-reboot reset)
    POWEROFF = "poweroff"    # finished: wdcore's name for "QEMU has exited"

    def __str__(self) -> str:
        return self.value


RUN_STATES: tuple[RunState, ...] = tuple(RunState)

#: the data of QEMU's RESET and SHUTDOWN events, by who asked
GUEST_RESET = {"guest": True, "reason": "guest-reset"}
HOST_RESET = {"guest": False, "reason": "host-qmp-system-reset"}


#: The members in QEMU's enum order; a member's position is its code in snapshots
#: and inside the compiled core.
ACTIONS: tuple[WatchdogAction, ...] = tuple(WatchdogAction)
ACTION_CODE: dict[WatchdogAction, int] = {a: i for i, a in enumerate(ACTIONS)}


class WatchdogEvent(NamedTuple):
    """One expiry: when (virtual ns), which device, and the action in force."""

    time_ns: int
    device: str
    action: WatchdogAction


def coerce_action(action: object, name: str = "action") -> WatchdogAction:
    """Accept a member or its QEMU wire name; anything else is host misuse."""
    if isinstance(action, WatchdogAction):
        return action
    if isinstance(action, str):
        try:
            return WatchdogAction(action)
        except ValueError:
            names = ", ".join(a.value for a in ACTIONS)
            raise ValueError(f"{name} must be one of {names}; got {action!r}") from None
    raise TypeError(f"{name} must be a WatchdogAction or its name, not {type(action).__name__}")


class Request(enum.IntFlag):
    """QEMU's main-loop requests, handled at the end of the operation that raised them, in
    this order (SPEC.md §4.2).  The values are the bits the Machine cores keep pending."""

    SHUTDOWN = 1   # -no-reboot turns a reset request into this; the Machine is finished
    RESET = 2      # every device's system reset
    POWERDOWN = 4  # ACPI power button: a POWERDOWN event, the guest keeps running
    STOP = 8       # the run state becomes "watchdog"


class Effect(NamedTuple):
    """What the Machine does for an expiry (SPEC.md §4.2)."""

    immediate_event: str | None  # logged right after WATCHDOG, at the expiry ("NMI")
    request: Request             # main-loop requests raised (Request(0): none)
    power_off: bool              # QEMU exits inside the timer callback


#: The one table from an expiry's action to its effect, in ACTIONS order.  The compiled
#: Machine core copies it into C arrays at import (tests/test_structure.py compares them).
EFFECTS: tuple[Effect, ...] = tuple({
    WatchdogAction.RESET: Effect(None, Request.RESET, False),
    WatchdogAction.SHUTDOWN: Effect(None, Request.POWERDOWN, False),
    WatchdogAction.POWEROFF: Effect(None, Request(0), True),
    WatchdogAction.PAUSE: Effect(None, Request.STOP, False),
    WatchdogAction.DEBUG: Effect(None, Request(0), False),
    WatchdogAction.NONE: Effect(None, Request(0), False),
    WatchdogAction.INJECT_NMI: Effect("NMI", Request(0), False),  # NMI: a wdcore event, see docs
}[a] for a in ACTIONS)


def effect_of(action: WatchdogAction) -> Effect:
    """The effect of an expiry carrying ``action``."""
    return EFFECTS[ACTION_CODE[action]]
