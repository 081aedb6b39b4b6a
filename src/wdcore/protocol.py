"""The device contract as a type: what every wdcore watchdog offers a host.

Both implementations' ``IB700`` and ``I6300ESB`` satisfy :class:`Watchdog` (checked by
tests/test_structure.py); host code that drives "any watchdog" can be typed against it.
Times are virtual nanoseconds (``int``).
"""
from __future__ import annotations

from typing import Callable, List, Optional, Protocol, runtime_checkable

from wdcore.actions import WatchdogAction, WatchdogEvent

__all__ = ["Watchdog"]


@runtime_checkable
class Watchdog(Protocol):
    """The shared device surface (API.md "Devices")."""

    on_expire: Optional[Callable[[WatchdogEvent], object]]  #: called at each expiry

    @property
    def now(self) -> int:
        """Current virtual time, ns."""

    @property
    def next_deadline(self) -> Optional[int]:
        """Absolute time of the next timer event in ns, or None when idle or when it lies
        past the end of virtual time (2**63-1 ns), where it is never reached."""

    def advance(self, delta_ns: int) -> int:
        """Move time forward by ``delta_ns`` ns; returns the expiries handled."""

    def advance_to(self, t_ns: int) -> int:
        """Move time to ``t_ns`` ns (>= now); returns the expiries handled."""

    @property
    def action(self) -> WatchdogAction:
        """The action carried by expiry events (settable)."""

    @property
    def events(self) -> List[WatchdogEvent]:
        """The expiries so far."""

    def clear_events(self) -> None: ...

    def reset(self) -> None:
        """The device's power-on/system reset."""

    def snapshot(self) -> bytes:
        """The whole state as versioned bytes (docs/snapshot.md)."""

    def restore(self, data: bytes) -> None:
        """Take back a snapshot; ``ValueError`` and no change for bad data."""
