"""Machine.run (the compiled op-stream loop, GIL released) against the same ops made
as per-access Machine calls from Python, on the compiled core and on the Python twin.

The stream is a driver's working set: an IB700 ping, the i6300ESB unlock + reload
through its BAR, a register read, a configuration read, a short clock step.
"""
from __future__ import annotations

import pytest

from bench.conftest import call_floor, require_compiled
from wdcore import Machine, ops

BAR = 0xE0000000
STREAM = [("outb", 0x443, 0x0E), ("writew", BAR + 0x0C, 0x80), ("writew", BAR + 0x0C, 0x86),
          ("writew", BAR + 0x0C, 0x100), ("readw", BAR + 0x0C), ("inb", 0xCFC),
          ("clock_step", 1000)]
REPEAT = 200  # the stream repeated: ops per timed call = len(STREAM) * REPEAT


def machine(impl: str) -> Machine:
    m = Machine(action="none", implementation=impl)
    for port, size, value in ((0xCF8, 4, 0x80001010), (0xCFC, 4, BAR), (0xCF8, 4, 0x80001004),
                              (0xCFC, 2, 0x0002), (0xCF8, 4, 0x80001068), (0xCFC, 1, 0x02)):
        m.io_write(port, size, value)
    return m


def per_access_batch(m):
    """The stream as unrolled per-access calls (no loop overhead inside a repeat)."""
    iw, ir, mw, mr, adv = m.io_write, m.io_read, m.mem_write, m.mem_read, m.advance
    c = BAR + 0x0C

    def batch():
        for _ in range(REPEAT):
            iw(0x443, 1, 0x0E)
            mw(c, 2, 0x80)
            mw(c, 2, 0x86)
            mw(c, 2, 0x100)
            mr(c, 2)
            ir(0xCFC, 1)
            adv(1000)
    return batch


@pytest.mark.parametrize("kind", ["run", "compiled", "python", "floor"])
def bench_machine_ops(benchmark, kind):
    """floor: the same calls to empty compiled methods, what any per-access API costs."""
    benchmark.group = f"machine ops: run vs per-access x{len(STREAM) * REPEAT}"
    benchmark.extra_info["calls_per_round"] = len(STREAM) * REPEAT
    if kind in ("run", "compiled", "floor"):
        require_compiled()
    if kind == "floor":
        benchmark(per_access_batch(call_floor()))
        return
    m = machine("python" if kind == "python" else "compiled")
    if kind == "run":
        data = ops.encode(STREAM * REPEAT)
        result = benchmark(m.run, data)
        assert result.ops_executed == len(STREAM) * REPEAT
        # the reload register, then the WDT Lock register (selected last): enabled
        assert result.reads[:2] == [0, 0x02] and result.events == []
    else:
        benchmark(per_access_batch(m))
    assert m.status == "running" and m.i6300esb.stage == 1  # pinged all along
