"""A long differential campaign against QEMU: ``./run conformance --seed S --count N``.

Runs N generated sequences from seed S (each on QEMU once, then compared against both
wdcore implementations), in parallel, and prints every divergence with a shrunk
reproducer in qtest syntax, then a summary.  Exit status 1 if anything diverged.
"""
from __future__ import annotations

import argparse
import collections
import multiprocessing
import os
import sys
import time


def _one(args):
    seed, min_ops, impls = args
    from tests.conformance.generate import generate
    from tests.conformance.runner import compare, reproducer, run_qemu, run_wdcore, shrink

    config, ops = generate(seed, min_ops)
    try:
        qemu_result = run_qemu(config, ops)
    except (TimeoutError, OSError, RuntimeError) as exc:  # QEMU hung or died: report the seed
        return collections.Counter(sequences=1, harness_errors=1), (
            f"seed {seed}: QEMU failed: {type(exc).__name__}: {exc}\n{reproducer(config, ops)}\n")
    steps, _, ambiguous = run_wdcore(config, ops, impls[0])
    stats = collections.Counter(sequences=1, ops=len(ops), ambiguous_throttle=int(ambiguous))
    stats["watchdog_steps"] = sum(1 for s in steps if s.watchdogs)
    stats[f"final_{steps[-1].status if steps else 'none'}"] += 1
    for impl in impls:
        mismatch = compare(config, ops, impl, qemu_result=qemu_result)
        if mismatch is not None:
            small = shrink(config, ops, impl)
            return stats, (f"seed {seed} [{impl}]: {mismatch}\n"
                           f"{reproducer(config, small)}\n")
    return stats, None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--count", type=int, default=20000)
    parser.add_argument("--min-ops", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--python-only", action="store_true", help="compare the twin only")
    args = parser.parse_args(argv)

    from tests.conformance.qemu import ensure_qemu
    ensure_qemu()
    from wdcore import _select
    impls = ("python",) if args.python_only or not _select.HAS_EXTENSIONS else ("compiled", "python")

    started = time.monotonic()
    total = collections.Counter()
    failures = []
    work = [(s, args.min_ops, impls) for s in range(args.seed, args.seed + args.count)]
    with multiprocessing.Pool(args.jobs) as pool:
        for i, (stats, failure) in enumerate(pool.imap_unordered(_one, work, chunksize=8), 1):
            total.update(stats)
            if failure:
                failures.append(failure)
                print(failure, flush=True)
            if i % 1000 == 0 or i == len(work):
                print(f"[{time.monotonic() - started:7.1f} s] {i}/{len(work)} sequences, "
                      f"{len(failures)} divergent", flush=True)
    print(f"seed {args.seed}, count {args.count}, implementations {', '.join(impls)}: "
          f"{total['ops']} ops, {total['watchdog_steps']} ops with a WATCHDOG, "
          f"{total['ambiguous_throttle']} sequences with a throttle tie (WATCHDOG not compared), "
          f"{total['harness_errors']} QEMU failures, "
          f"final states { {k[6:]: v for k, v in sorted(total.items()) if k.startswith('final_')} }; "
          f"{len(failures)} divergent; {time.monotonic() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
