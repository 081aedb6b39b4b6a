"""The main job: ``python -m wdcore demo`` shows the expiry at the right virtual time."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

S = 1_000_000_000


def ib700_timeout_s(t: int) -> int:
    # SPEC.md §6.4: Linux writes 15 - (t+1)/2 to 0x443; §2.2: index i lasts 30 - 2i s
    return 30 - 2 * (15 - (t + 1) // 2)


@pytest.mark.parametrize("impl", ["compiled", "python"])
@pytest.mark.parametrize("action, follow_up", [("reset", "RESET"), ("pause", "STOP")])
def test_demo_prints_the_expiry_at_the_right_time(impl, action, follow_up):
    if impl == "compiled":
        from wdcore import _select
        if not _select.HAS_EXTENSIONS:
            pytest.skip("compiled core not built")
    r = subprocess.run([sys.executable, "-m", "wdcore", "demo", "--action", action,
                        "--implementation", impl], capture_output=True, text=True,
                       timeout=60, env=dict(os.environ))
    assert r.returncode == 0, r.stdout + r.stderr
    lines = r.stdout.splitlines()
    # the demo's last ping is at 45 s after SETTIMEOUT(10): expiry at 45 s + 10 s
    expiry = 45 * S + ib700_timeout_s(10) * S
    stamp = f"{expiry // S:>4}.{expiry % S:09d} s"
    watchdog = [l for l in lines if "event  WATCHDOG" in l]
    assert len(watchdog) == 1 and watchdog[0].startswith(stamp), lines
    assert f"'action': '{action}'" in watchdog[0]
    assert any(l.startswith(stamp) and f"event  {follow_up}" in l for l in lines), lines
    assert f"({impl} core)" in lines[0]
