"""wdcore: register-level emulation of PC hardware watchdogs, bit-exact with QEMU.

Devices: :class:`IB700` and :class:`I6300ESB`; the :class:`Machine` puts them on a PC
bus with QEMU's action semantics.  The compiled core is used when present;
``HAS_EXTENSIONS`` says so, and :func:`implementation` gives either implementation's
classes (``implementation("python")`` is the plain-Python twin).
"""
from wdcore._select import HAS_EXTENSIONS, Implementation, implementation
from wdcore.actions import RunState, WatchdogAction, WatchdogEvent
from wdcore.machine import Machine, MachineEvent, RunResult
from wdcore.protocol import Watchdog

__version__ = "0.1.0"

IB700 = implementation().IB700
I6300ESB = implementation().I6300ESB

__all__ = ["HAS_EXTENSIONS", "I6300ESB", "IB700", "Implementation", "Machine", "MachineEvent",
           "RunResult", "RunState", "Watchdog", "WatchdogAction", "WatchdogEvent", "__version__",
           "implementation"]
