"""The action layer: what a watchdog expiry does.

Devices never know the policy.  A device only records a :class:`WatchdogEvent`
carrying the :class:`WatchdogAction` configured at the moment of expiry; the
:class:`~wdcore.machine.Machine` turns that event into its effect in one place,
:func:`effect_of`, following QEMU's ``hw/watchdog/watchdog.c`` and the main loop's
request handling (SPEC.md §4).
"""
from __future__ import annotations

import enum
from typing import NamedTuple

__all__ = ["WatchdogAction", "WatchdogEvent", "Effect", "effect_of", "coerce_action", "deliver"]


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


#: The members in QEMU's enum order; a member's position is its code in snapshots
#: and inside the compiled core.
ACTIONS: tuple[WatchdogAction, ...] = tuple(WatchdogAction)
ACTION_CODE: dict[WatchdogAction, int] = {a: i for i, a in enumerate(ACTIONS)}


class WatchdogEvent(NamedTuple):
    """One expiry: when (virtual ns), which device, and the action in force."""

    time_ns: int
    device: str
    action: WatchdogAction


def deliver(event: WatchdogEvent, events: list, on_expire, sink) -> None:
    """Report one expiry, in the order SPEC.md §4.5 fixes: the device's event log, its
    ``on_expire`` callback, then the owning Machine's hook (``sink``).  The hook runs
    even if the callback raises, so the Machine never misses an expiry; the exception
    then propagates to the host call that ran the timer."""
    events.append(event)
    try:
        if on_expire is not None:
            on_expire(event)
    finally:
        if sink is not None:
            sink(event)


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


class Effect(NamedTuple):
    """What the Machine does for an expiry (SPEC.md §4.2)."""

    immediate_event: str | None  # logged right after WATCHDOG, at the expiry ("NMI")
    request: str | None          # main-loop request handled at the end of the operation
    power_off: bool              # QEMU exits inside the timer callback


_EFFECTS: dict[WatchdogAction, Effect] = {
    WatchdogAction.RESET: Effect(None, "reset", False),
    WatchdogAction.SHUTDOWN: Effect(None, "powerdown", False),
    WatchdogAction.POWEROFF: Effect(None, None, True),
    WatchdogAction.PAUSE: Effect(None, "stop", False),
    WatchdogAction.DEBUG: Effect(None, None, False),
    WatchdogAction.NONE: Effect(None, None, False),
    WatchdogAction.INJECT_NMI: Effect("NMI", None, False),
}


def effect_of(action: WatchdogAction) -> Effect:
    """The single mapping from an expiry's action to its effect."""
    return _EFFECTS[action]
