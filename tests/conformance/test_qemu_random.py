"""Random op sequences on a real QEMU 7.2 and on wdcore (both implementations), compared
after every op (tests/conformance/runner.py).  A mismatch fails with a shrunk
reproducer in qtest syntax.

Count: ``WDCORE_CONFORMANCE_COUNT`` (default 300, each of at least 30 ops) from seed
``WDCORE_CONFORMANCE_SEED`` (default 1).  Long campaigns: ``./run conformance``.
"""
from __future__ import annotations

import os

import pytest

from tests.conformance.generate import generate
from tests.conformance.runner import compare, reproducer, run_qemu, shrink

COUNT = int(os.environ.get("WDCORE_CONFORMANCE_COUNT", "300"))
FIRST_SEED = int(os.environ.get("WDCORE_CONFORMANCE_SEED", "1"))
MIN_OPS = 30


@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + COUNT))
def test_random_sequence_matches_qemu(qemu, seed):
    config, ops = generate(seed, MIN_OPS)
    assert len(ops) >= MIN_OPS
    qemu_result = run_qemu(config, ops)
    for impl in ("compiled", "python"):
        from wdcore import _select
        if impl == "compiled" and not _select.HAS_EXTENSIONS:
            continue
        mismatch = compare(config, ops, impl, qemu_result=qemu_result)
        if mismatch is not None:
            small = shrink(config, ops, impl)
            pytest.fail(f"seed {seed}, {impl}: {mismatch}\nshrunk reproducer "
                        f"({len(small)} of {len(ops)} ops; {compare(config, small, impl)}):\n"
                        f"{reproducer(config, small)}")
