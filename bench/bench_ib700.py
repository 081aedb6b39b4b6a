"""IB700 ``io_write`` per call: compiled core vs Python twin vs an empty compiled
method with the same signature (the floor of a Python-to-C call)."""
from __future__ import annotations

import pytest

from bench.conftest import BATCH, make_batch, require_compiled
from wdcore import _select

# (port, size, value): the hot ping a driver sends, and the stop write
ACCESSES = {"ping": (0x443, 1, 0x0E), "stop": (0x441, 1, 0x00)}


def _target(kind: str):
    if kind == "floor":
        return require_compiled()["ib700"].CallFloor().io_write, None
    if kind == "compiled":
        require_compiled()
    dev = _select.implementation(kind)["ib700"].IB700()
    return dev.io_write, dev


@pytest.mark.parametrize("access", sorted(ACCESSES))
@pytest.mark.parametrize("kind", ["compiled", "python", "floor"])
def bench_ib700_io_write(benchmark, kind, access):
    benchmark.group = f"ib700.io_write[{access}] x{BATCH}"
    benchmark.extra_info["calls_per_round"] = BATCH
    fn, dev = _target(kind)
    batch = make_batch()
    port, size, value = ACCESSES[access]
    benchmark(batch, fn, port, size, value)
    if dev is not None:  # correctness outside the timed call
        if access == "ping":
            assert dev.next_deadline == dev.now + 2_000_000_000
        else:
            assert dev.next_deadline is None
