"""The fuzz loop's reset (issue 11): restore and snapshot in the compiled core, against
what they replace.  Targets (ratios of medians, one run): ``Machine.restore`` and
``Machine.snapshot`` at most 3x ``Machine.system_reset``; a device's ``restore`` at
most 3x building a new device of its kind.  The ratios print with their targets at the
end of ``./run bench`` (bench/conftest.py)."""
from __future__ import annotations

import pytest

from bench.conftest import make_batch, require_compiled

TARGET = 3.0


def _machine(core):
    from wdcore import Machine
    m = Machine(implementation=core.name)
    m.io_write(0x443, 1, 0x0D)
    m.advance(1_000_000_000)
    return m


@pytest.mark.parametrize("kind", ["restore", "snapshot", "system_reset"])
def bench_machine_reset_paths(benchmark, kind):
    core = require_compiled()
    benchmark.group = "machine: restore and snapshot vs system_reset"
    m = _machine(core)
    snap = m.snapshot()
    if kind == "restore":
        benchmark.extra_info["target"] = {"over": "system_reset", "max": TARGET}
        benchmark(make_batch(nargs=1), m.restore, snap)
        assert m.snapshot() == snap
    elif kind == "snapshot":
        benchmark.extra_info["target"] = {"over": "system_reset", "max": TARGET}
        benchmark(make_batch(nargs=0), m.snapshot)
        assert m.snapshot() == snap
    else:
        benchmark(make_batch(nargs=0), m.system_reset)
        assert [e["event"] for e in m.events][-1] == "RESET"


def _armed(cls, kind):
    dev = cls()
    if kind == "ib700":
        dev.io_write(0x443, 1, 0x0E)
    else:
        dev.config_write(0x68, 1, 0x02)
    return dev


@pytest.mark.parametrize("device", ["ib700", "i6300esb"])
@pytest.mark.parametrize("kind", ["restore", "new"])
def bench_device_restore(benchmark, device, kind):
    core = require_compiled()
    cls = core.IB700 if device == "ib700" else core.I6300ESB
    benchmark.group = f"{device}: restore vs a new device"
    dev = _armed(cls, device)
    snap = dev.snapshot()
    if kind == "restore":
        benchmark.extra_info["target"] = {"over": "new", "max": TARGET}
        other = cls()
        benchmark(make_batch(nargs=1), other.restore, snap)
        assert other.snapshot() == snap
    else:
        benchmark(make_batch(nargs=0), cls)
        fresh = cls()  # what the loop builds is a device the snapshot restores into
        fresh.restore(snap)
        assert fresh.snapshot() == snap
