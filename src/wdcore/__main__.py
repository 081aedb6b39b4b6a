"""Command line: ``python -m wdcore demo``."""
from __future__ import annotations

import argparse
import sys

import wdcore
from wdcore.actions import WatchdogAction

S = 1_000_000_000
BAR0_BASE = 0xFEBF0000  # where a PC firmware might place the i6300ESB's registers


def _fmt_t(t_ns: int) -> str:
    return f"{t_ns // S:>4}.{t_ns % S:09d} s"


def _ib700_index(timeout_s: int) -> int:
    """The index Linux's current ib700wdt writes for a timeout (SPEC.md §6.4)."""
    return 15 - (timeout_s + 1) // 2


class _Guest:
    """The guest side of the demo: port and memory accesses, with a printed timeline."""

    def __init__(self, m: "wdcore.Machine", out) -> None:
        self.m, self.out = m, out

    def say(self, what: str) -> None:
        print(f"{_fmt_t(self.m.now)}  guest  {what}", file=self.out)

    def at(self, t_ns: int) -> None:
        self.m.advance_to(t_ns)

    # PCI configuration mechanism #1 (SPEC.md §5.2)
    def cfg_read(self, dev: int, offset: int, size: int) -> int:
        self.m.io_write(0xCF8, 4, 0x80000000 | (dev << 11) | (offset & 0xFC))
        return self.m.io_read(0xCFC + (offset & 3), size)

    def cfg_write(self, dev: int, offset: int, size: int, value: int) -> None:
        self.m.io_write(0xCF8, 4, 0x80000000 | (dev << 11) | (offset & 0xFC))
        self.m.io_write(0xCFC + (offset & 3), size, value)


class _LinuxI6300ESB:
    """What Linux's mainline i6300esb driver does (SPEC.md §6.1), on a guest."""

    def __init__(self, g: _Guest) -> None:
        self.g = g
        self.dev = None

    def unlock(self) -> None:
        self.g.m.mem_write(BAR0_BASE + 0x0C, 2, 0x80)
        self.g.m.mem_write(BAR0_BASE + 0x0C, 2, 0x86)

    def ping(self) -> None:
        self.unlock()
        self.g.m.mem_write(BAR0_BASE + 0x0C, 2, 0x0100)

    def probe(self) -> None:
        g = self.g
        self.dev = next(d for d in range(32) if g.cfg_read(d, 0, 4) == 0x25AB8086)
        g.cfg_write(self.dev, 0x10, 4, 0xFFFFFFFF)
        size = (~g.cfg_read(self.dev, 0x10, 4) & 0xFFFFFFFF) + 1
        g.cfg_write(self.dev, 0x10, 4, BAR0_BASE)
        g.cfg_write(self.dev, 0x04, 2, 0x0002)  # memory decoding on
        g.say(f"PCI scan: 8086:25ab at 00:{self.dev:02x}.0, BAR0 {size} bytes -> {BAR0_BASE:#x}")
        g.cfg_write(self.dev, 0x60, 2, 0x0003)
        self.unlock()
        boot = g.m.mem_read(BAR0_BASE + 0x0C, 2)
        status = "CARDRESET (the last boot was a watchdog reset)" if boot & 0x0200 else "normal"
        g.say(f"i6300esb probe: boot status {status}; reload register reads {boot:#06x}")
        self.unlock()
        g.m.mem_write(BAR0_BASE + 0x0C, 2, 0x0300)  # clear the flag

    def set_timeout(self, heartbeat_s: int) -> None:
        preload = heartbeat_s << 9
        for reg in (0x00, 0x04):
            self.unlock()
            self.g.m.mem_write(BAR0_BASE + reg, 4, preload)
        self.ping()
        self.g.say(f"WDIOC_SETTIMEOUT {heartbeat_s}: both preloads {preload:#x}, reload")

    def start(self) -> None:
        self.ping()
        self.g.cfg_write(self.dev, 0x68, 1, 0x02)
        self.g.say("open /dev/watchdog: reload, WDT Lock <- 0x02 (enable)")


def demo(action: str = "reset", implementation: str | None = None, out=None) -> int:
    """Drive a Machine the way Linux's watchdog drivers do, and print the timeline."""
    out = out or sys.stdout
    m = wdcore.Machine(action=action, implementation=implementation)
    m.on_event = lambda e: print(f"{_fmt_t(e['time_ns'])}  event  {e['event']:<9} {e['data']}", file=out)
    g = _Guest(m, out)
    ok = True

    def run_until_quiet() -> None:
        """Advance in steps bounded by next_deadline, so follow-ups land at the expiry,
        printing the i6300ESB's silent stage-1 end on the way."""
        while m.status == "running" and m.next_deadline is not None:
            esb = m.i6300esb
            before = (esb.stage, esb.next_deadline)
            m.advance_to(m.next_deadline)
            if before[0] == 1 and before[1] == m.now and esb.stage == 2:
                print(f"{_fmt_t(m.now)}  device i6300esb stage 1 ended (no event; QEMU raises "
                      f"no interrupt): stage 2 runs for {esb.remaining_ns} ns", file=out)

    print(f"wdcore {wdcore.__version__} ({m.implementation} core), action {action}", file=out)
    print("-- IB700, driven like Linux's ib700wdt", file=out)
    for t, what, timeout in ((0, "open /dev/watchdog: default 30 s", 30),
                             (10, "ping (write to /dev/watchdog)", 30),
                             (20, "ping", 30),
                             (35, "WDIOC_SETTIMEOUT 10 -> 10 s", 10),
                             (40, "ping", 10), (45, "ping", 10)):
        g.at(t * S)
        g.say(f"outb 0x443 <- {_ib700_index(timeout):#04x}  {what}")
        m.io_write(0x443, 1, _ib700_index(timeout))
    g.say("... silence: the guest hangs")
    expected = m.next_deadline  # 45 s + 10 s
    run_until_quiet()
    fired = [e for e in m.events if e["event"] == "WATCHDOG"]
    ok &= len(fired) == 1 and fired[0]["time_ns"] == expected == 55 * S

    if m.status == "watchdog":  # action pause: the host looks, then lets the guest go on
        g.at(58 * S)
        m.resume()
        print(f"{_fmt_t(m.now)}  host   resume (QMP cont)", file=out)
    if m.status == "running":
        print("-- i6300ESB, driven like Linux's mainline i6300esb (heartbeat 10 s)", file=out)
        drv = _LinuxI6300ESB(g)
        g.at(60 * S)
        drv.probe()
        drv.set_timeout(10)
        drv.start()
        started = m.now
        for t in (65, 70, 75, 80):
            g.at(t * S)
            drv.ping()
            g.say("ping: unlock 0x80 0x86, reload 0x0100")
        last_ping = m.now
        g.say("... silence: the guest hangs")
        stage_ns = ((10 << 9) << 15) * 30  # SPEC.md §3.6: (preload << 15) x 30 ns
        run_until_quiet()
        esb_fired = [e for e in m.events if e["event"] == "WATCHDOG"][1:]
        ok &= started == 60 * S and len(esb_fired) == 1
        ok &= esb_fired[0]["time_ns"] == last_ping + 2 * stage_ns if esb_fired else False
        if m.status == "running" and action == "reset":
            g.at(m.now + S)
            drv.probe()
    print(f"{_fmt_t(m.now)}  done   status {m.status}; "
          f"{'every expiry at its expected virtual time' if ok else 'UNEXPECTED TIMING'}", file=out)
    return 0 if ok else 1


def replay(args) -> int:
    """Run a qtest script on a Machine: QEMU's replies on stdout, events as JSON lines."""
    import json

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
    try:
        ops = qtest.parse(text)
    except ValueError as exc:
        print(f"wdcore replay: {args.file}: {exc}", file=sys.stderr)
        return 2
    events_out = sys.stderr
    if args.events:
        try:
            events_out = open(args.events, "w", encoding="utf-8")
        except OSError as exc:
            print(f"wdcore replay: cannot write {args.events}: {exc.strerror}", file=sys.stderr)
            return 2
    try:
        m = wdcore.Machine(action=args.action, esb_slot=args.esb_slot, profile=args.profile,
                           reboot_action="shutdown" if args.no_reboot else "reset",
                           implementation=args.implementation)
        m.on_event = lambda e: print(json.dumps(e), file=events_out, flush=True)
        for op in ops:
            if m.status in ("shutdown", "poweroff"):
                break  # QEMU would have exited
            result = m.run([op])
            value = result.reads[0] if result.reads else None
            if m.status == "poweroff" and op[0].startswith("clock"):
                break  # QEMU exits inside the command: no reply
            print(qtest.reply(op, value, m.now), flush=True)
    finally:
        if events_out is not sys.stderr:
            events_out.close()
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wdcore", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p_demo = sub.add_parser("demo", help="Linux-style driver sessions, with their timeline")
    p_demo.add_argument("--action", default="reset", choices=[a.value for a in WatchdogAction])
    p_demo.add_argument("--implementation", choices=["compiled", "python"], default=None)
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
        return demo(args.action, args.implementation)
    if args.command == "replay":
        return replay(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
