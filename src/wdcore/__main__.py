"""Command line: ``python -m wdcore demo``."""
from __future__ import annotations

import argparse
import sys

import wdcore
from wdcore.actions import WatchdogAction

S = 1_000_000_000


def _fmt_t(t_ns: int) -> str:
    return f"{t_ns // S:>4}.{t_ns % S:09d} s"


def _ib700_index(timeout_s: int) -> int:
    """The index Linux's current ib700wdt writes for a timeout (SPEC.md §6.4)."""
    return 15 - (timeout_s + 1) // 2


def demo(action: str = "reset", implementation: str | None = None, out=None) -> int:
    """Drive a Machine the way Linux's ib700wdt driver does, and print the timeline."""
    out = out or sys.stdout
    m = wdcore.Machine(action=action, implementation=implementation)
    m.on_event = lambda e: print(f"{_fmt_t(e['time_ns'])}  event  {e['event']:<9} {e['data']}", file=out)

    def guest(t_s: int, what: str, index: int) -> None:
        m.advance_to(t_s * S)
        print(f"{_fmt_t(m.now)}  guest  outb 0x443 <- {index:#04x}  {what}", file=out)
        m.io_write(0x443, 1, index)

    print(f"wdcore {wdcore.__version__} ({m.implementation} core): an IB700 driven like Linux's "
          f"ib700wdt, action {action}", file=out)
    guest(0, "open /dev/watchdog: default 30 s", _ib700_index(30))
    for t in (10, 20, 30):
        guest(t, "ping (write to /dev/watchdog)", _ib700_index(30))
    guest(35, "WDIOC_SETTIMEOUT 10 -> 10 s", _ib700_index(10))
    for t in (40, 45):
        guest(t, "ping", _ib700_index(10))
    print(f"{_fmt_t(m.now)}  guest  ... silence: the guest hangs", file=out)
    expected = m.next_deadline
    # advance in steps bounded by next_deadline, so the follow-up lands at the expiry
    while m.status == "running" and m.next_deadline is not None:
        m.advance_to(m.next_deadline)
    fired = [e for e in m.events if e["event"] == "WATCHDOG"]
    ok = len(fired) == 1 and fired[0]["time_ns"] == expected == 55 * S
    print(f"{_fmt_t(m.now)}  done   status {m.status}; expiry {'at' if ok else 'NOT at'} "
          f"45 s + 10 s = {_fmt_t(55 * S).strip()}", file=out)
    return 0 if ok else 1


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wdcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="a Linux-style driver session, with its timeline")
    p_demo.add_argument("--action", default="reset", choices=[a.value for a in WatchdogAction])
    p_demo.add_argument("--implementation", choices=["compiled", "python"], default=None)
    args = parser.parse_args(argv)
    if args.command == "demo":
        return demo(args.action, args.implementation)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
