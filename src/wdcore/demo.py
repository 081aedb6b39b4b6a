"""``python -m wdcore demo``: a Machine driven the way Linux's watchdog drivers drive it,
with the timeline printed.  The accesses come from :mod:`wdcore.clients`; this module
only chooses when they happen and says what they mean."""
from __future__ import annotations

import sys
from typing import Optional, TextIO

import wdcore
from wdcore.clients import ESB_ID, firmware, linux_i6300esb, linux_ib700wdt
from wdcore.ops import Op

__all__ = ["demo"]

S = 1_000_000_000
BAR0_BASE = 0xFEBF0000  # where a PC firmware might place the i6300ESB's registers
HEARTBEAT_S = 10


def _fmt_t(t_ns: int) -> str:
    return f"{t_ns // S:>4}.{t_ns % S:09d} s"


class _Guest:
    """The guest side of the demo: runs op lists on the Machine, prints a timeline."""

    def __init__(self, m: wdcore.Machine, out: TextIO) -> None:
        self.m, self.out = m, out

    def say(self, what: str) -> None:
        print(f"{_fmt_t(self.m.now)}  guest  {what}", file=self.out)

    def at(self, t_ns: int) -> None:
        self.m.advance_to(t_ns)

    def do(self, ops: list[Op]) -> list[int]:
        """Run ``ops``; the values they read."""
        return self.m.run(ops).reads


def _esb_probe(g: _Guest) -> int:
    """Firmware bring-up and the driver's probe (SPEC.md §6, §6.1 step 1); the slot."""
    slot = next(d for d in range(32) if g.do(firmware.read_id(d)) == [ESB_ID])
    sizing = g.do(firmware.size_bar0(slot))[0]
    g.do(firmware.assign_bar0(slot, BAR0_BASE))
    g.say(f"PCI scan: 8086:25ab at 00:{slot:02x}.0, BAR0 {firmware.bar_size(sizing)} bytes "
          f"-> {BAR0_BASE:#x}")
    _, boot = g.do(linux_i6300esb.probe(slot, BAR0_BASE, HEARTBEAT_S))
    status = ("CARDRESET (the last boot was a watchdog reset)" if linux_i6300esb.cardreset(boot)
              else "normal")
    g.say(f"i6300esb probe: boot status {status}; reload register reads {boot:#06x}")
    return slot


def demo(action: str = "reset", implementation: str | None = None,
         out: Optional[TextIO] = None) -> int:
    """Drive a Machine the way Linux's watchdog drivers do and print the timeline to
    ``out`` (default stdout); 0 when every expiry came at its expected virtual time."""
    out = out or sys.stdout
    m = wdcore.Machine(action=action, implementation=implementation)
    m.on_event = lambda e: print(f"{_fmt_t(e['time_ns'])}  event  {e['event']:<9} {e['data']}", file=out)
    g = _Guest(m, out)
    ok = True

    def run_until_quiet() -> None:
        """Advance in steps bounded by next_deadline, so follow-ups land at the expiry,
        printing the i6300ESB's silent stage-1 end on the way."""
        while m.status == "running" and m.next_deadline is not None:
            # the demo's Machine has both devices: esb is never None (the ignores below)
            esb = m.i6300esb
            before = (esb.stage, esb.next_deadline)  # type: ignore[union-attr]
            m.advance_to(m.next_deadline)
            if before[0] == 1 and before[1] == m.now and esb.stage == 2:  # type: ignore[union-attr]
                print(f"{_fmt_t(m.now)}  device i6300esb stage 1 ended (no event; QEMU raises "
                      f"no interrupt): stage 2 runs for {esb.remaining_ns} ns", file=out)  # type: ignore[union-attr]

    print(f"wdcore {wdcore.__version__} ({m.implementation} core), action {action}", file=out)
    print("-- IB700, driven like Linux's ib700wdt", file=out)
    for t, what, timeout in ((0, "open /dev/watchdog: default 30 s", 30),
                             (10, "ping (write to /dev/watchdog)", 30),
                             (20, "ping", 30),
                             (35, "WDIOC_SETTIMEOUT 10 -> 10 s", 10),
                             (40, "ping", 10), (45, "ping", 10)):
        g.at(t * S)
        g.say(f"outb 0x443 <- {linux_ib700wdt.index(timeout):#04x}  {what}")
        g.do(linux_ib700wdt.ping(timeout))
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
        print(f"-- i6300ESB, driven like Linux's mainline i6300esb (heartbeat {HEARTBEAT_S} s)",
              file=out)
        g.at(60 * S)
        slot = _esb_probe(g)
        g.do(linux_i6300esb.set_timeout(BAR0_BASE, HEARTBEAT_S))
        g.say(f"WDIOC_SETTIMEOUT {HEARTBEAT_S}: both preloads "
              f"{linux_i6300esb.preload(HEARTBEAT_S):#x}, reload")
        g.do(linux_i6300esb.start(slot, BAR0_BASE))
        g.say("open /dev/watchdog: reload, WDT Lock <- 0x02 (enable)")
        started = m.now
        for t in (65, 70, 75, 80):
            g.at(t * S)
            g.do(linux_i6300esb.ping(BAR0_BASE))
            g.say("ping: unlock 0x80 0x86, reload 0x0100")
        last_ping = m.now
        g.say("... silence: the guest hangs")
        stage_ns = (linux_i6300esb.preload(HEARTBEAT_S) << 15) * 30  # SPEC.md §3.6
        run_until_quiet()
        esb_fired = [e for e in m.events if e["event"] == "WATCHDOG"][1:]
        ok &= started == 60 * S and len(esb_fired) == 1
        ok &= esb_fired[0]["time_ns"] == last_ping + 2 * stage_ns if esb_fired else False
        if m.status == "running" and action == "reset":
            g.at(m.now + S)
            _esb_probe(g)
    print(f"{_fmt_t(m.now)}  done   status {m.status}; "
          f"{'every expiry at its expected virtual time' if ok else 'UNEXPECTED TIMING'}", file=out)
    return 0 if ok else 1
