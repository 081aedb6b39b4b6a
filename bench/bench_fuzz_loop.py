"""What fuzzers run (issue 11): per input, restore a fixed snapshot and run the input
as an op stream.  Targets, ratios of medians in one run: the loop costs at most 2x
running the same inputs alone; at least 500 000 inputs/s for 64-byte inputs on the
compiled core.  And the batch path against its floor: ``Machine.run`` per op at most
3x a compiled pass that only decodes the same stream (bench/callfloor.pyx), on a
driver-like stream and on random bytes."""
from __future__ import annotations

import random

import pytest

from bench.bench_run import REPEAT, STREAM, machine
from bench.conftest import call_floor, require_compiled
from wdcore import Machine, ops

N_INPUTS = 200


def _inputs(size: int) -> list[bytes]:
    rng = random.Random(size)
    return [bytes(rng.randrange(256) for _ in range(size)) for _ in range(N_INPUTS)]


def _fuzz_machine(impl: str) -> Machine:
    m = Machine(implementation=impl)  # both devices, action reset: what fuzz/fuzz_ops.py builds
    m.io_write(0x443, 1, 0x0E)
    return m


@pytest.mark.parametrize("size", [64, 512])
@pytest.mark.parametrize("kind", ["loop", "run", "loop_twin"])
def bench_fuzz_loop(benchmark, kind, size):
    benchmark.group = f"fuzz loop: restore + run, {size}-byte inputs x{N_INPUTS}"
    benchmark.extra_info["calls_per_round"] = N_INPUTS
    inputs = _inputs(size)
    if kind != "loop_twin":
        require_compiled()
    m = _fuzz_machine("python" if kind == "loop_twin" else "compiled")
    snap = m.snapshot()
    restore, run = m.restore, m.run

    def loop():
        for data in inputs:
            restore(snap)
            run(data)

    def run_each(machines):  # each input on its own Machine, restored from snap untimed
        for each, data in zip(machines, inputs):
            each.run(data)

    def fresh_machines():
        machines = [_fuzz_machine("compiled") for _ in inputs]
        for each in machines:
            each.restore(snap)
        return (machines,), {}

    if kind == "loop":
        benchmark.extra_info["target"] = {"over": "run", "max": 2.0}
        if size == 64:
            benchmark.extra_info["rate_target"] = {"min": 500_000, "unit": "inputs/s"}
    if kind == "run":  # the same inputs from the same state, without the restore
        benchmark.pedantic(run_each, setup=fresh_machines, rounds=100, iterations=1)
    else:
        benchmark(loop)
    m.restore(snap)
    assert m.snapshot() == snap  # the loop's premise: every input starts from the snapshot


@pytest.mark.parametrize("stream", ["driver", "random"])
@pytest.mark.parametrize("kind", ["run", "decode"])
def bench_run_over_decode_floor(benchmark, kind, stream):
    require_compiled()
    data = (ops.encode(STREAM * REPEAT) if stream == "driver"
            else bytes(random.Random(3).randrange(256) for _ in range(16_000)))
    n_ops = len(ops.decode(data))
    benchmark.group = f"batch path: run vs decode-only floor, {stream} stream ({n_ops} ops)"
    benchmark.extra_info["calls_per_round"] = n_ops
    if kind == "decode":
        call_floor()  # builds bench/callfloor.pyx (pyximport) and imports it
        from bench.callfloor import decode_only
        result = benchmark(decode_only, data)
        assert result == (n_ops, len(ops.encode(ops.decode(data))))
        return
    benchmark.extra_info["target"] = {"over": "decode", "max": 3.0}
    m = machine("compiled") if stream == "driver" else _fuzz_machine("compiled")
    snap = m.snapshot()

    def run_from_snapshot():
        m.restore(snap)
        return m.run(data)
    result = benchmark(run_from_snapshot)
    assert result.ops_executed == n_ops or result.stopped == "finished"
