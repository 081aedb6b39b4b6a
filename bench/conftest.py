"""Benchmarks: every group holds the compiled core, the Python twin and a floor.

Each timed call runs an unrolled batch of calls (``BATCH`` unless a benchmark records
``calls_per_round``), so pytest-benchmark's figures are per batch; the ratios printed at the end of the run compare groups measured in
the same run (medians, and minimums as the least noisy estimate).
Run timed:   ./run bench        Run once as tests:  pytest bench --benchmark-disable
"""
from __future__ import annotations

import json
import os

import pytest

from wdcore import _select

BATCH = 100


def make_batch(n: int = BATCH, nargs: int = 3):
    """A function calling ``f(a, b, c)`` (``nargs`` arguments) n times, unrolled."""
    args = ", ".join("abcdefgh"[:nargs])
    src = f"def batch(f, {args}):\n" + f"    f({args})\n" * n
    ns: dict = {}
    exec(src, ns)  # noqa: S102 - generated locally, constant text
    return ns["batch"]


def require_compiled():
    if not _select.HAS_EXTENSIONS:
        if os.environ.get("WDCORE_REQUIRE_EXTENSIONS", "") not in ("", "0"):
            pytest.fail("compiled core required but missing")
        pytest.skip("compiled core not built")
    return _select.implementation("compiled")


def call_floor():
    """A CallFloor (bench/callfloor.pyx), compiled on first use into build/bench."""
    require_compiled()
    import pyximport

    pyximport.install(build_dir=os.path.join(os.path.dirname(__file__), "..", "build", "bench"),
                      language_level=3, inplace=False)
    from bench.callfloor import CallFloor

    return CallFloor()


def _targets(session, groups) -> list[str]:
    """The ratios benchmarks declare a target for (extra_info["target"] = {"over": kind,
    "max": x}: this kind's median over that kind's, in the same group), met or not."""
    lines = []
    for bench in session.benchmarks:
        target = bench.extra_info.get("target")
        if target is None or bench.stats is None or not bench.stats.data:
            continue
        other = groups.get(bench.group, {}).get(target["over"])
        if other is None:
            continue
        ratio = bench.stats.median / other.median
        verdict = "met" if ratio <= target["max"] else "MISSED"
        lines.append(f"{bench.group}: {bench.params['kind']} / {target['over']} = {ratio:.2f}x "
                     f"(target <= {target['max']:g}x: {verdict})")
    for bench in session.benchmarks:
        rate = bench.extra_info.get("rate_target")
        if rate is None or bench.stats is None or not bench.stats.data:
            continue
        per_s = bench.extra_info.get("calls_per_round", BATCH) / bench.stats.median
        verdict = "met" if per_s >= rate["min"] else "MISSED"
        lines.append(f"{bench.group}: {bench.params['kind']} {per_s:,.0f} {rate['unit']} "
                     f"(target >= {rate['min']:,} {rate['unit']}: {verdict})")
    return lines


def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    if session is None or session.disabled or not session.benchmarks:
        return
    groups: dict[str, dict[str, object]] = {}
    calls: dict[str, int] = {}
    for bench in session.benchmarks:
        if bench.stats is None or not bench.stats.data:
            continue
        groups.setdefault(bench.group, {})[bench.params["kind"]] = bench.stats
        calls[bench.group] = bench.extra_info.get("calls_per_round", BATCH)
    lines, report = [], {}
    lines += _targets(session, groups)
    for group, by_impl in sorted(groups.items()):
        if {"run", "compiled", "python"} <= by_impl.keys():
            r, c, p = by_impl["run"], by_impl["compiled"], by_impl["python"]
            n = calls[group]
            row = {"run_ns_per_op": r.median / n * 1e9,
                   "compiled_per_access_ns_per_op": c.median / n * 1e9,
                   "python_per_access_ns_per_op": p.median / n * 1e9,
                   "compiled_per_access_over_run": c.median / r.median,
                   "python_per_access_over_run": p.median / r.median}
            if "floor" in by_impl:
                row["call_floor_ns_per_op"] = by_impl["floor"].median / n * 1e9
                row["call_floor_over_run"] = by_impl["floor"].median / r.median
            report[group] = row
            lines.append(
                f"{group}: run {row['run_ns_per_op']:.1f} ns/op, per-access compiled "
                f"{row['compiled_per_access_ns_per_op']:.1f}, per-access twin "
                f"{row['python_per_access_ns_per_op']:.1f} | run is "
                f"{row['compiled_per_access_over_run']:.1f}x faster than compiled per-access, "
                f"{row['python_per_access_over_run']:.0f}x faster than the twin's"
                + (f"; an empty compiled call costs {row['call_floor_ns_per_op']:.1f} ns/op "
                   f"({row['call_floor_over_run']:.1f}x run)" if "floor" in by_impl else ""))
            continue
        if {"adapter", "bare", "per_insn_hook"} <= by_impl.keys():
            n = calls[group]
            a, b, h = (n / by_impl[k].median / 1e6 for k in ("adapter", "bare", "per_insn_hook"))
            report[group] = {"adapter_minsn_per_s": a, "bare_minsn_per_s": b,
                             "per_insn_hook_minsn_per_s": h}
            lines.append(f"{group}: adapter (exact time) {a:.1f} M insn/s, bare unicorn {b:.1f} M, "
                         f"per-instruction Python hook {h:.2f} M | adapter/hook {a / h:.1f}x, "
                         f"bare/adapter {b / a:.1f}x")
            continue
        if {"adapter", "python_hook"} <= by_impl.keys():
            n = calls[group]
            a, p = (by_impl[k].median / n * 1e9 for k in ("adapter", "python_hook"))
            report[group] = {"adapter_ns": a, "python_hook_ns": p}
            lines.append(f"{group}: through the adapter into wdcore {a:.0f} ns/access, "
                         f"unicorn with a trivial Python hook {p:.0f} ns | {a / p:.1f}x")
            continue
        if not {"compiled", "python", "floor"} <= by_impl.keys():
            continue
        c, p, f = by_impl["compiled"], by_impl["python"], by_impl["floor"]
        n = calls[group]
        row = {
            "compiled_ns_per_call": c.median / n * 1e9,
            "python_ns_per_call": p.median / n * 1e9,
            "floor_ns_per_call": f.median / n * 1e9,
            "compiled_over_floor_median": c.median / f.median,
            "compiled_over_floor_min": c.min / f.min,
            "python_over_compiled_median": p.median / c.median,
            "python_over_compiled_min": p.min / c.min,
        }
        report[group] = row
        lines.append(
            f"{group}: compiled {row['compiled_ns_per_call']:.1f} ns/call, "
            f"twin {row['python_ns_per_call']:.1f}, floor {row['floor_ns_per_call']:.1f} | "
            f"compiled/floor {row['compiled_over_floor_median']:.2f}x (min {row['compiled_over_floor_min']:.2f}x), "
            f"twin/compiled {row['python_over_compiled_median']:.1f}x (min {row['python_over_compiled_min']:.1f}x)")
    if lines:
        terminalreporter.section("wdcore ratios (same run)")
        for line in lines:
            terminalreporter.write_line(line)
        out = os.environ.get("WDCORE_BENCH_REPORT")
        if out:
            with open(out, "w") as fh:
                json.dump(report, fh, indent=2)
