"""The main job: ``python -m wdcore demo`` shows each expiry at the right virtual time."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

S = 1_000_000_000


def ib700_timeout_s(t: int) -> int:
    # SPEC.md §6.4: Linux writes 15 - (t+1)/2 to 0x443; §2.2: index i lasts 30 - 2i s
    return 30 - 2 * (15 - (t + 1) // 2)


def esb_stage_ns(heartbeat_s: int) -> int:
    # SPEC.md §6.1: preload = t << 9; §3.6: one stage = (preload << 15) x 30 ns at 1 kHz
    return ((heartbeat_s << 9) << 15) * 30


def stamp(t_ns: int) -> str:
    return f"{t_ns // S:>4}.{t_ns % S:09d} s"


def run_demo(impl, action):
    if impl == "compiled":
        from wdcore import _select
        if not _select.HAS_EXTENSIONS:
            pytest.skip("compiled core not built")
    r = subprocess.run([sys.executable, "-m", "wdcore", "demo", "--action", action,
                        "--implementation", impl], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout.splitlines()


@pytest.mark.parametrize("impl", ["compiled", "python"])
@pytest.mark.parametrize("action, follow_up", [("reset", "RESET"), ("pause", "STOP"),
                                               ("none", None)])
def test_demo_prints_each_expiry_at_the_right_time(impl, action, follow_up):
    lines = run_demo(impl, action)
    assert f"({impl} core)" in lines[0]
    watchdog = [l for l in lines if "event  WATCHDOG" in l]
    # IB700: the last ping is at 45 s after SETTIMEOUT(10): expiry at 45 s + 10 s
    ib700_expiry = 45 * S + ib700_timeout_s(10) * S
    # i6300ESB: heartbeat 10 s, last ping at 80 s: two stages later
    esb_stage1_end = 80 * S + esb_stage_ns(10)
    esb_expiry = 80 * S + 2 * esb_stage_ns(10)
    assert [l[:len(stamp(0))] for l in watchdog] == [stamp(ib700_expiry), stamp(esb_expiry)], lines
    assert all(f"'action': '{action}'" in l for l in watchdog)
    assert any(l.startswith(stamp(esb_stage1_end)) and "stage 1 ended" in l for l in lines), lines
    for t in (ib700_expiry, esb_expiry):
        follow = [l for l in lines if l.startswith(stamp(t)) and "event" in l and "WATCHDOG" not in l]
        assert [f.split()[3] for f in follow] == ([follow_up] if follow_up else []), lines
    assert lines[-1].endswith("every expiry at its expected virtual time")


def test_demo_shows_the_boot_status_after_a_watchdog_reset():
    # SPEC.md §6.6 #6: after a reset by the i6300ESB, the probe reads 0x1200 -> CARDRESET
    lines = run_demo("python", "reset")
    probes = [l for l in lines if "boot status" in l]
    assert len(probes) == 2
    assert "boot status normal" in probes[0] and "0x0000" in probes[0]
    assert "CARDRESET" in probes[1] and "0x1200" in probes[1]
