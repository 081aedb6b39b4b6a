#!/usr/bin/env python3
"""Instructions per call of wdcore's hot methods, counted by valgrind's callgrind: a
figure that, unlike wall-clock time, does not move with the machine's load, so two
builds (two venvs) can be compared exactly.

    python3 tools/instructions_per_call.py VENV_PYTHON [VENV_PYTHON ...]

For each call it runs the interpreter under callgrind twice, with 0 and with N calls
(PYTHONHASHSEED=0, so both runs are the same program), and prints the difference / N.
The loop's own cost (about 1 000 instructions) is in every figure alike.
"""
import os
import re
import subprocess
import sys

N = 20000
CALLS = {
    "IB700.io_write ping": ("d.io_write", (0x443, 1, 0x0E)),
    "IB700.io_write stop": ("d.io_write", (0x441, 1, 0)),
    "IB700.advance": ("d.advance", (1,)),
    "I6300ESB.advance": ("e.advance", (1,)),
    "I6300ESB.mmio_write": ("e.mmio_write", (0xC, 2, 0x80)),
    "I6300ESB.config_write 0x60": ("e.config_write", (0x60, 2, 3)),
    "I6300ESB.config_write 0x68": ("e.config_write", (0x68, 1, 2)),
    "Machine.io_write": ("m.io_write", (0x443, 1, 0x0E)),
    "Machine.mem_write": ("m.mem_write", (0xE000000C, 2, 0x80)),
    "Machine.advance": ("m.advance", (1000,)),
    "Machine.run, per op of 1400": ("m.run", ("STREAM",)),
}
PROGRAM = """
import sys, wdcore
from wdcore import ops
d = wdcore.IB700(); e = wdcore.I6300ESB(); m = wdcore.Machine(action="none")
for port, size, value in ((0xCF8, 4, 0x80001010), (0xCFC, 4, 0xE0000000), (0xCF8, 4, 0x80001004),
                          (0xCFC, 2, 0x0002), (0xCF8, 4, 0x80001068), (0xCFC, 1, 0x02)):
    m.io_write(port, size, value)
B = 0xE0000000
STREAM = ops.encode([("outb", 0x443, 0x0E), ("writew", B + 0x0C, 0x80), ("writew", B + 0x0C, 0x86),
                     ("writew", B + 0x0C, 0x100), ("readw", B + 0x0C), ("inb", 0xCFC),
                     ("clock_step", 1000)] * 200)
f = {fn}
args = {args}
for _ in range({n}):
    f(*args)
"""


def instructions(python: str, fn: str, args: tuple, n: int) -> int:
    code = PROGRAM.format(fn=fn, args=repr(args).replace("'STREAM'", "STREAM"), n=n)
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          python, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONHASHSEED="0"), check=True).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def main() -> None:
    pythons = sys.argv[1:] or [sys.executable]
    print("call".ljust(30) + "".join(p.split("/")[-4][:14].rjust(16) for p in pythons))
    for name, (fn, args) in CALLS.items():
        n = 20 if fn == "m.run" else N
        per = 1400 if fn == "m.run" else 1
        row = [(instructions(p, fn, args, n) - instructions(p, fn, args, 0)) / n / per for p in pythons]
        print(name.ljust(30) + "".join(f"{x:16.0f}" for x in row))


if __name__ == "__main__":
    main()
