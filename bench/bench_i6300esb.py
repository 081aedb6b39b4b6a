"""i6300ESB hot paths: configuration write, the unlock+ping sequence, and advancing
across stage boundaries — compiled core vs Python twin vs empty compiled methods with
the same signatures (the floor of a Python-to-C call)."""
from __future__ import annotations

import pytest

from bench.conftest import BATCH, call_floor, make_batch, require_compiled
from wdcore import _select

KINDS = ["compiled", "python", "floor"]


def _device(kind: str):
    if kind == "floor":
        return call_floor(), None
    if kind == "compiled":
        require_compiled()
    dev = _select.implementation(kind).I6300ESB()
    return dev, dev


CONFIG_WRITES = {"wdt_config": (0x60, 2, 0x0003), "raw_dword": (0x40, 4, 0x12345678),
                 "lock_running": (0x68, 1, 0x02)}


@pytest.mark.parametrize("which", sorted(CONFIG_WRITES))
@pytest.mark.parametrize("kind", KINDS)
def bench_esb_config_write(benchmark, kind, which):
    benchmark.group = f"i6300esb.config_write[{which}] x{BATCH}"
    target, dev = _device(kind)
    if dev is not None:
        dev.config_write(0x68, 1, 0x02)  # running: a lock write of 0x02 is then 1 -> 1
    benchmark(make_batch(), target.config_write, *CONFIG_WRITES[which])
    if dev is not None:
        assert dev.next_deadline is not None and dev.stage == 1
        if which == "raw_dword":
            assert dev.config_read(0x40, 4) == 0x12345678
        if which == "wdt_config":
            assert dev.config_read(0x60, 2) == 0x0003


def _ping_batch(n: int):
    """n unlock+ping sequences (three 16-bit MMIO writes each), unrolled."""
    src = "def batch(w):\n" + "    w(12, 2, 0x80)\n    w(12, 2, 0x86)\n    w(12, 2, 0x100)\n" * n
    ns: dict = {}
    exec(src, ns)  # noqa: S102 - constant text
    return ns["batch"]


@pytest.mark.parametrize("kind", KINDS)
def bench_esb_unlock_ping(benchmark, kind):
    benchmark.group = f"i6300esb.unlock+ping (3 mmio_write) x{BATCH // 3}"
    benchmark.extra_info["calls_per_round"] = 3 * (BATCH // 3)
    target, dev = _device(kind)
    if dev is not None:
        dev.config_write(0x68, 1, 0x02)
    benchmark(_ping_batch(BATCH // 3), target.mmio_write)
    if dev is not None:  # the pings restarted stage 1 each time
        assert dev.stage == 1 and dev.remaining_ns == ((0xFFFFF << 15) * 30)


STAGE_NS = (1 << 5) * 30  # preload 1 at 1 MHz: one stage is 960 ns


@pytest.mark.parametrize("kind", KINDS)
def bench_esb_advance_across_stages(benchmark, kind):
    """Each advance crosses one stage boundary of a free-running watchdog."""
    benchmark.group = f"i6300esb.advance[one stage end each] x{BATCH}"
    target, dev = _device(kind)
    if dev is not None:
        dev.config_write(0x60, 2, 0x24)  # reboot disabled, 1 MHz
        for reg in (0x00, 0x04):
            dev.mmio_write(0x0C, 2, 0x80)
            dev.mmio_write(0x0C, 2, 0x86)
            dev.mmio_write(reg, 4, 1)
        dev.config_write(0x68, 1, 0x06)  # enable, free-running
    benchmark(make_batch(nargs=1), target.advance, STAGE_NS)
    if dev is not None:
        assert dev.events == [] and dev.remaining_ns == STAGE_NS
        assert dev.now % STAGE_NS == 0
