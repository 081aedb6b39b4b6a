"""Which implementation runs: the compiled core or the Python twin.

``WDCORE_NO_EXTENSIONS=1`` selects the twin.  ``WDCORE_REQUIRE_EXTENSIONS=1`` turns a
missing or broken compiled core into an ImportError instead of a silent fallback.
"""
from __future__ import annotations

import importlib
import os
from types import ModuleType

#: every compiled module, with its twin (tests/test_packaging.py checks this table)
COMPILED_MODULES = {
    "wdcore._core": None,
    "wdcore._ib700": "wdcore._ib700_py",
    "wdcore._i6300esb": "wdcore._i6300esb_py",
    "wdcore._machine": "wdcore._machine_py",
}


def _flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


NO_EXTENSIONS = _flag("WDCORE_NO_EXTENSIONS")
REQUIRE_EXTENSIONS = _flag("WDCORE_REQUIRE_EXTENSIONS")

if NO_EXTENSIONS and REQUIRE_EXTENSIONS:
    raise ImportError("WDCORE_NO_EXTENSIONS and WDCORE_REQUIRE_EXTENSIONS are both set")


def _import_compiled() -> dict[str, ModuleType]:
    return {name: importlib.import_module(name) for name in COMPILED_MODULES}


def _load_compiled() -> dict[str, ModuleType] | None:
    try:
        return _import_compiled()
    except ImportError as exc:
        if REQUIRE_EXTENSIONS:
            raise ImportError(
                "WDCORE_REQUIRE_EXTENSIONS=1 but the compiled core is not available "
                f"({exc}); reinstall with a C compiler and Cython") from exc
        return None


COMPILED = None if NO_EXTENSIONS else _load_compiled()
HAS_EXTENSIONS = COMPILED is not None


def implementation(name: str | None = None) -> dict:
    """Device modules by kind for ``name`` = "compiled", "python" or None (the default)."""
    if name is None or name == "auto":
        name = "compiled" if HAS_EXTENSIONS else "python"
    if name == "compiled":
        mods = COMPILED if COMPILED is not None else _load_compiled_or_fail()
        return {"name": "compiled", "ib700": mods["wdcore._ib700"],
                "i6300esb": mods["wdcore._i6300esb"], "ArmCounter": mods["wdcore._core"].ArmCounter,
                "machine": mods["wdcore._machine"]}
    if name == "python":
        twin = importlib.import_module("wdcore._ib700_py")
        return {"name": "python", "ib700": twin,
                "i6300esb": importlib.import_module("wdcore._i6300esb_py"),
                "ArmCounter": twin.ArmCounter,
                "machine": importlib.import_module("wdcore._machine_py")}
    if not isinstance(name, str):
        raise TypeError(f"implementation must be a str or None, not {type(name).__name__}")
    raise ValueError(f"implementation must be 'auto', 'compiled' or 'python', not {name!r}")


def _load_compiled_or_fail() -> dict[str, ModuleType]:
    try:
        return _import_compiled()
    except ImportError as exc:
        raise ValueError(f"implementation 'compiled' is not available here ({exc})") from exc
