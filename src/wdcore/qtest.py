"""QEMU's qtest text protocol: parse scripts into ops, and format replies.

One command per line, exactly qtest's syntax (``outb 0x443 0xe``, ``readl 0xe000000c``,
``clock_step 2000000000``, bare ``clock_step``, ``clock_set N``).  Numbers are read as
QEMU reads them (C's ``strtoul`` with base 0: ``0x`` hex, leading ``0`` octal, else
decimal); a value wider than its access is truncated to it, as QEMU does.  Blank lines
and ``#`` comments are skipped (a convenience of scripts; QEMU has no comments).
Anything else — an unknown command, a missing or extra argument, a port above 0xffff
(QEMU aborts on it), a negative or unparsable number — is a ``ValueError`` naming the
line.

``replay(text, ...)`` runs a script on a Machine and prints what QEMU's qtest server
would; it is what ``python -m wdcore replay`` runs.
"""
from __future__ import annotations

import json
import os
import sys
from typing import Optional, TextIO, Union

from wdcore.ops import ADDR_END, TIME_MAX_NS, WIDTH, Op

__all__ = ["parse", "parse_line", "reply", "replay"]

_ACCESS = {f"{kind}{w}" for kind in ("out", "in", "write", "read") for w in "bwl"}


def _number(word: str) -> int:
    """C strtoul base 0, non-negative only."""
    w = word.lower()
    if w.startswith("0x"):
        digits, base = w[2:], 16
    elif len(w) > 1 and w.startswith("0"):
        digits, base = w[1:], 8
    else:
        digits, base = w, 10
    if not digits or not all(c in "0123456789abcdef"[:base] for c in digits):
        raise ValueError(f"not a number: {word!r}")
    return int(digits, base)


def parse_line(line: str) -> Optional[Op]:
    """The op of one script line, or None for a blank or comment line."""
    words = line.split("#", 1)[0].split()
    if not words:
        return None
    name, args = words[0], words[1:]
    if name == "clock_step":
        if not args:
            return ("clock_step",)
        if len(args) != 1:
            raise ValueError("clock_step takes at most one argument")
        return ("clock_step", _time(args[0]))
    if name == "clock_set":
        if len(args) != 1:
            raise ValueError("clock_set takes one argument")
        return ("clock_set", _time(args[0]))
    if name not in _ACCESS:
        raise ValueError(f"unknown command {name!r}")
    size = WIDTH[name[-1]]
    writes = name.startswith(("out", "write"))
    if len(args) != (2 if writes else 1):
        raise ValueError(f"{name} takes {'an address and a value' if writes else 'an address'}")
    addr = _number(args[0])
    if name.startswith(("out", "in")):
        if addr > 0xFFFF:
            raise ValueError(f"port {args[0]} is above 0xffff")
    elif addr > ADDR_END - size:
        raise ValueError(f"address {args[0]} + {size} runs past 2**64")
    if writes:
        value = _number(args[1])
        if value >> 64:
            raise ValueError(f"value {args[1]} does not fit in 64 bits")
        return (name, addr, value & ((1 << (8 * size)) - 1))
    return (name, addr)


def _time(word: str) -> int:
    t = _number(word)
    if t > TIME_MAX_NS:
        raise ValueError(f"time {word} is beyond 2**63-1 ns")
    return t


def parse(text: str) -> list[Op]:
    """Every op of a qtest script; ``ValueError`` naming the first bad line."""
    ops = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            op = parse_line(line)
        except ValueError as exc:
            raise ValueError(f"line {number}: {exc}: {line.strip()!r}") from None
        if op is not None:
            ops.append(op)
    return ops


def reply(op: Op, read_value: int | None, now: int) -> str:
    """The line QEMU's qtest server answers ``op`` with."""
    name = op[0]
    if name.startswith("in"):
        return f"OK 0x{read_value:04x}"
    if name.startswith("read"):
        return f"OK 0x{read_value:016x}"
    if name.startswith("clock"):
        return f"OK {now}"
    return "OK"


def replay(text: str, *, out: Optional[TextIO] = None,
           events_out: Union[TextIO, str, os.PathLike[str], None] = None,
           err: Optional[TextIO] = None, source: str = "-",
           action: str = "reset", esb_slot: int = 2, profile: str = "qemu",
           reboot_action: str = "reset", implementation: str | None = None) -> int:
    """Run the qtest script ``text`` on a fresh Machine; returns the exit status.

    On ``out`` (default stdout) one reply line per command, exactly as QEMU's qtest
    server prints them (``reply``); the Machine's events as JSON lines on ``events_out``
    (a file object, or a path to create; default: ``err``).  A command after the
    Machine shut down or powered off is not run (QEMU would have exited), and a clock
    command during which it powered off gets no reply (QEMU exits inside it).  A bad
    line, or an ``events_out`` path that cannot be written, is reported on ``err``
    (default stderr) as ``wdcore replay: ...`` with status 2; ``source`` names the
    script in that message.  The keyword arguments after ``source`` are the Machine's
    (``reboot_action="shutdown"`` is QEMU's ``-no-reboot``).
    """
    from wdcore import Machine

    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    try:
        ops = parse(text)
    except ValueError as exc:
        print(f"wdcore replay: {source}: {exc}", file=err)
        return 2
    close = None
    if events_out is None:
        events_out = err
    elif isinstance(events_out, (str, os.PathLike)):
        try:
            events_out = close = open(events_out, "w", encoding="utf-8")
        except OSError as exc:  # open raised: events_out is still the path (mypy cannot see it)
            print(f"wdcore replay: cannot write {os.fspath(events_out)}: {exc.strerror}", file=err)  # type: ignore[arg-type]
            return 2
    try:
        m = Machine(action=action, esb_slot=esb_slot, profile=profile,
                    reboot_action=reboot_action, implementation=implementation)
        m.on_event = lambda e: print(json.dumps(e), file=events_out, flush=True)
        for op in ops:
            if m.status in ("shutdown", "poweroff"):
                break  # QEMU would have exited
            result = m.run([op])
            value = result.reads[0] if result.reads else None
            if m.status == "poweroff" and op[0].startswith("clock"):
                break  # QEMU exits inside the command: no reply
            print(reply(op, value, m.now), file=out, flush=True)
    finally:
        if close is not None:
            close.close()
    return 0
