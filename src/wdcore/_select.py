"""Which implementation runs: the compiled core or the Python twin.

``WDCORE_NO_EXTENSIONS=1`` selects the twin.  ``WDCORE_REQUIRE_EXTENSIONS=1`` turns a
missing or broken compiled core into an ImportError instead of a silent fallback.
:func:`implementation` gives either one's classes as an :class:`Implementation`.
"""
from __future__ import annotations

import functools
import importlib
import os
from dataclasses import dataclass
from typing import Any

#: every compiled module, with its twin (tests/test_packaging.py checks this table
#: against setup.py)
COMPILED_MODULES = {
    "wdcore._core": "wdcore._core_py",
    "wdcore._ib700": "wdcore._ib700_py",
    "wdcore._i6300esb": "wdcore._i6300esb_py",
    "wdcore._machine": "wdcore._machine_py",
}


@dataclass(frozen=True)
class Implementation:
    """The classes of one implementation of the core."""

    name: str              #: "compiled" or "python"
    IB700: type
    I6300ESB: type
    ArmCounter: type
    MachineCore: type      #: what wdcore.Machine derives from on this implementation

    def device(self, kind: object) -> type[Any]:
        """The device class whose ``KIND`` is ``kind`` ("ib700", "i6300esb"): what an
        unpickled device is built as."""
        for cls in (self.IB700, self.I6300ESB):
            if getattr(cls, "KIND") == kind:
                return cls
        raise ValueError(f"no device kind {kind!r} in implementation {self.name!r}")


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


NO_EXTENSIONS = _flag("WDCORE_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("WDCORE_REQUIRE_EXTENSIONS")

if NO_EXTENSIONS and REQUIRE_EXTENSIONS:
    raise ImportError("WDCORE_NO_EXTENSIONS and WDCORE_REQUIRE_EXTENSIONS are both set")


def _build(name: str, modules: list[str]) -> Implementation:
    core, ib700, esb, machine = (importlib.import_module(m) for m in modules)
    return Implementation(name, ib700.IB700, esb.I6300ESB, core.ArmCounter, machine.MachineCore)


def _load_compiled() -> Implementation | None:
    try:
        return _build("compiled", list(COMPILED_MODULES))
    except ImportError as exc:
        if REQUIRE_EXTENSIONS:
            raise ImportError(
                "WDCORE_REQUIRE_EXTENSIONS=1 but the compiled core is not available "
                f"({exc}); reinstall with a C compiler and Cython") from exc
        return None


COMPILED = None if NO_EXTENSIONS else _load_compiled()
HAS_EXTENSIONS = COMPILED is not None


@functools.lru_cache(maxsize=None)
def _python() -> Implementation:
    """The twin, imported only when asked for: a compiled run never loads it."""
    return _build("python", list(COMPILED_MODULES.values()))


def implementation(name: str | None = None) -> Implementation:
    """The classes of implementation ``name``: "compiled", "python", or None/"auto" for
    the one in use (the compiled core when present)."""
    if name is None or name == "auto":
        return COMPILED if COMPILED is not None else _python()
    if name == "python":
        return _python()
    if name == "compiled":
        if COMPILED is not None:
            return COMPILED
        try:
            return _build("compiled", list(COMPILED_MODULES))
        except ImportError as exc:
            raise ValueError(f"implementation 'compiled' is not available here ({exc})") from exc
    if not isinstance(name, str):
        raise TypeError(f"implementation must be a str or None, not {type(name).__name__}")
    raise ValueError(f"implementation must be 'auto', 'compiled' or 'python', not {name!r}")
