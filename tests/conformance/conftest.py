"""Conformance tests need a QEMU with the qtest accelerator.

The ``qemu`` fixture sets it up once (tools/setup-qemu-qtest.sh, cached in
$WDCORE_QEMU_DIR or ~/.cache/wdcore/qemu-qtest).  Where that is impossible (no root
for apt-get, no Debian archive) the tests skip with the reason — except in CI
(``CI`` set), where a missing QEMU fails them: CI must prove conformance.
"""
from __future__ import annotations

import os

import pytest

from tests.conformance.qemu import QemuUnavailable, ensure_qemu

IN_CI = os.environ.get("CI", "") not in ("", "0", "false")


@pytest.fixture(scope="session")
def qemu():
    try:
        return ensure_qemu()
    except QemuUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI needs QEMU for the conformance tests: {exc}")
        pytest.skip(f"QEMU with qtest is not available here: {exc}")


@pytest.fixture(params=["compiled", "python"])
def impl(request):
    if request.param == "compiled":
        from wdcore import _select
        if not _select.HAS_EXTENSIONS:
            if os.environ.get("WDCORE_REQUIRE_EXTENSIONS", "") not in ("", "0"):
                pytest.fail("compiled core required but missing")
            pytest.skip("compiled core not built")
    return request.param
