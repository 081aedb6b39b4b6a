"""IB700 ``io_write`` per call: compiled core vs Python twin vs an empty compiled
method with the same signature (the floor of a Python-to-C call)."""
from __future__ import annotations

import pytest

from bench.conftest import BATCH, call_floor, make_batch, require_compiled
from wdcore import _select

# (port, size, value): the hot ping a driver sends, and the stop write
ACCESSES = {"ping": (0x443, 1, 0x0E), "stop": (0x441, 1, 0x00)}


def _target(kind: str):
    if kind == "floor":
        return call_floor().io_write, None
    if kind == "compiled":
        require_compiled()
    dev = _select.implementation(kind).IB700()
    return dev.io_write, dev


@pytest.mark.parametrize("access", sorted(ACCESSES))
@pytest.mark.parametrize("kind", ["compiled", "python", "floor"])
def bench_ib700_io_write(benchmark, kind, access):
    benchmark.group = f"ib700.io_write[{access}] x{BATCH}"
    fn, dev = _target(kind)
    batch = make_batch()
    port, size, value = ACCESSES[access]
    benchmark(batch, fn, port, size, value)
    if dev is not None:  # correctness outside the timed call
        if access == "ping":
            assert dev.next_deadline == dev.now + 2_000_000_000
        else:
            assert dev.next_deadline is None


# Deadlines, never ticks: a step of one hour costs what a step of one ns costs.
STEPS = {"1ns": 1, "1h": 3600 * 1_000_000_000}


@pytest.mark.parametrize("step", sorted(STEPS))
@pytest.mark.parametrize("kind", ["compiled", "python", "floor"])
def bench_ib700_advance(benchmark, kind, step):
    benchmark.group = f"ib700.advance[{step}] x{BATCH}"
    if kind == "floor":
        fn, dev = call_floor().advance, None
    else:
        if kind == "compiled":
            require_compiled()
        dev = _select.implementation(kind).IB700()
        fn = dev.advance
    batch = make_batch(nargs=1)
    # the rounds must not run out of virtual time: 2**63 ns is 292 years, so an
    # hour-step batch of 100 leaves room for ~25 000 rounds; start near zero
    benchmark.pedantic(batch, args=(fn, STEPS[step]), rounds=2000 if step == "1h" else 20000,
                       warmup_rounds=10)
    if dev is not None:
        assert dev.events == [] and dev.next_deadline is None
        assert dev.now % STEPS[step] == 0 and dev.now > 0
