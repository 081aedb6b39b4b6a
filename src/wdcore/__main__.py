"""Command line: ``python -m wdcore demo`` and ``python -m wdcore replay FILE|-``.

Argument parsing and dispatch only: the demo is :func:`wdcore.demo.demo`, replay is
:func:`wdcore.qtest.replay`."""
from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from wdcore.actions import WatchdogAction


def replay(args: argparse.Namespace) -> int:
    """``replay FILE|-``: read the script, hand it to :func:`wdcore.qtest.replay`."""
    from wdcore import qtest

    try:
        if args.file == "-":
            text = sys.stdin.read()
        else:
            with open(args.file, encoding="utf-8") as fh:
                text = fh.read()
    except OSError as exc:
        print(f"wdcore replay: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    return qtest.replay(text, source=args.file, events_out=args.events, action=args.action,
                        esb_slot=args.esb_slot, profile=args.profile,
                        reboot_action="shutdown" if args.no_reboot else "reset",
                        implementation=args.implementation)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wdcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="Linux-style driver sessions, with their timeline")
    p_demo.add_argument("--action", default="reset", choices=[a.value for a in WatchdogAction])
    p_demo.add_argument("--implementation", choices=["compiled", "python"], default=None)
    p_demo.add_argument("--guest", action="store_true",
                        help="x86 guests on a unicorn CPU (needs the unicorn extra)")
    p_replay = sub.add_parser("replay", help="run a qtest script, print QEMU's replies")
    p_replay.add_argument("file", help="the script, or - for standard input")
    p_replay.add_argument("--events", metavar="FILE", help="write events here, not to stderr")
    p_replay.add_argument("--action", default="reset", choices=[a.value for a in WatchdogAction])
    p_replay.add_argument("--no-reboot", action="store_true", help="QEMU's -no-reboot")
    p_replay.add_argument("--profile", default="qemu", choices=["qemu", "qemu-7.2"])
    p_replay.add_argument("--esb-slot", type=int, default=2, choices=range(32), metavar="0..31")
    p_replay.add_argument("--implementation", choices=["compiled", "python"], default=None)
    args = parser.parse_args(argv)
    if args.command == "demo":
        if args.guest:
            from wdcore.guest_demo import guest_demo

            return guest_demo(args.implementation)
        from wdcore.demo import demo

        return demo(args.action, args.implementation)
    if args.command == "replay":
        return replay(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
