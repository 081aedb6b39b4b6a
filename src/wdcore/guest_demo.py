"""``python -m wdcore demo --guest``: the watchdogs driven by real x86 instructions on a
unicorn CPU (wdcore.adapters.unicorn, the ``unicorn`` extra), with the timeline counted
in guest instructions.  The guests are wdcore.guests' programs."""
from __future__ import annotations

import sys
from typing import Optional, TextIO

import wdcore
from wdcore import guests

NS_PER_INSN = 1000   # a 1 MHz guest: the IB700's 4 s are 4 M instructions


def guest_demo(implementation: Optional[str] = None, out: Optional[TextIO] = None) -> int:
    """Run the IB700 guest, then the i6300ESB guest twice (the second boot finds the
    boot status); print each stop with its instruction count.  0 when every expiry
    landed on the instruction its timeout implies."""
    try:
        import unicorn
        from unicorn import x86_const as X86
        from unicorn.unicorn import Uc

        from wdcore.adapters.unicorn import attach
    except ImportError:
        print("the guest demo needs unicorn: pip install 'wdcore[unicorn]'", file=sys.stderr)
        return 2
    stream = out or sys.stdout

    def say(m: wdcore.Machine, what: str) -> None:
        print(f"{m.now / 1e9:12.6f} s  {what}", file=stream)

    def cpu(code: bytes) -> "Uc":
        uc = Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_32)
        uc.mem_map(guests.CODE, 0x1000)
        uc.mem_map(guests.DATA, 0x1000)
        uc.mem_write(guests.CODE, code)
        return uc

    def machine() -> wdcore.Machine:
        m = wdcore.Machine(action="reset", implementation=implementation)
        m.on_event = lambda e: print(f"{e['time_ns'] / 1e9:12.6f} s  event  {e['event']} "
                                     f"{e['data']}", file=stream)
        return m

    ok = True
    print(f"wdcore {wdcore.__version__}: x86 guests on unicorn, {NS_PER_INSN} ns an instruction",
          file=stream)
    m = machine()
    uc = cpu(guests.IB700_CODE)
    bus = attach(uc, m, NS_PER_INSN)
    print("-- IB700 guest: arm 2 s, three pings, disarm, re-arm 4 s, then a quiet loop", file=stream)
    reason = bus.run(guests.CODE)
    expected = -(-(guests.IB700_REARM * NS_PER_INSN + 4_000_000_000) // NS_PER_INSN)
    say(m, f"run -> {reason} after instruction {bus.insns} (expected {expected})")
    ok &= reason == "reset" and bus.insns == expected

    m = machine()
    uc = cpu(guests.ESB_CODE)
    bus = attach(uc, m, NS_PER_INSN)
    print("-- i6300ESB guest: PCI scan, BAR0, probe, preloads, enable, four pings, quiet", file=stream)
    reason = bus.run(guests.CODE)
    status = int.from_bytes(uc.mem_read(guests.DATA, 2), "little")
    say(m, f"run -> {reason} after instruction {bus.insns}; first boot's status {status:#06x}")
    ok &= reason == "reset" and status == 0
    uc.reg_write(X86.UC_X86_REG_ESI, 0)
    reason = bus.run(guests.CODE, max_insns=200)
    status = int.from_bytes(uc.mem_read(guests.DATA, 2), "little")
    say(m, f"second boot: run -> {reason}; boot status {status:#06x} (CARDRESET: the last boot "
           f"was a watchdog reset)")
    ok &= status == 0x1200
    print(f"done: {'every expiry on its instruction' if ok else 'UNEXPECTED'}", file=stream)
    return 0 if ok else 1
