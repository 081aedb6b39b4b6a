"""Every behavioural test runs against both implementations.

Fixtures:
- ``impl``: "compiled" or "python" (the compiled one skips only where the core was
  not built and WDCORE_REQUIRE_EXTENSIONS is unset; in CI it is set, so it fails).
- ``IB700``: the device class of that implementation.
- ``make_machine``: ``make_machine(**kw)`` builds a Machine on that implementation.

Tests marked ``slow`` (minutes each: tests/test_clusterfuzzlite.py) are skipped unless
``CI`` or ``WDCORE_SLOW`` is set; .ci/run sets CI, so CI runs them.
"""
from __future__ import annotations

import importlib
import os

import pytest

from wdcore import _select

IMPLS = ["compiled", "python"]


def _set(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0", "false")


def pytest_collection_modifyitems(config, items):
    if _set("CI") or _set("WDCORE_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow: set WDCORE_SLOW=1 (or CI) to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def _require_compiled() -> None:
    if not _select.HAS_EXTENSIONS:
        try:
            importlib.import_module("wdcore._ib700")
        except ImportError as exc:
            if os.environ.get("WDCORE_REQUIRE_EXTENSIONS", "") not in ("", "0"):
                pytest.fail(f"compiled core required but missing: {exc}")
            pytest.skip(f"compiled core not built: {exc}")


@pytest.fixture(params=IMPLS)
def impl(request) -> str:
    if request.param == "compiled":
        _require_compiled()
    return request.param


@pytest.fixture
def IB700(impl):
    return _select.implementation(impl).IB700


@pytest.fixture
def make_machine(impl):
    from wdcore import Machine

    def make(*args, **kw):
        kw.setdefault("implementation", impl)
        return Machine(*args, **kw)

    return make


S = 1_000_000_000  # one second in ns
