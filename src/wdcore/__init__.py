"""wdcore: register-level emulation of PC hardware watchdogs, bit-exact with QEMU.

Devices: :class:`IB700` and :class:`I6300ESB`; the :class:`Machine` puts them on a PC
bus with QEMU's action semantics.  The compiled core is used when present; ``HAS_EXTENSIONS`` says so.
"""
from wdcore._select import HAS_EXTENSIONS, implementation as _implementation
from wdcore.actions import WatchdogAction, WatchdogEvent

__version__ = "0.1.0"

IB700 = _implementation()["ib700"].IB700
I6300ESB = _implementation()["i6300esb"].I6300ESB

from wdcore.machine import Machine, RunResult  # noqa: E402  (needs the device classes above)

__all__ = ["HAS_EXTENSIONS", "I6300ESB", "IB700", "Machine", "RunResult", "WatchdogAction", "WatchdogEvent", "__version__"]
