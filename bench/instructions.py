#!/usr/bin/env python3
"""Instructions per call of wdcore's hot methods, counted by valgrind's callgrind: a
figure that, unlike wall-clock time, does not move with the machine's load, so two
builds (two venvs) can be compared exactly.

    python3 bench/instructions.py [-k TEXT] [VENV_PYTHON ...]   (default: this interpreter;
                                                                -k: only the calls naming TEXT)

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
    "Machine.system_reset": ("m.system_reset", ()),
    "Machine.snapshot": ("m.snapshot", ()),
    "Machine.restore": ("m.restore", ("SNAP",)),
    "IB700.restore": ("d.restore", ("DSNAP",)),
    "I6300ESB.restore": ("e.restore", ("ESNAP",)),
    "wdcore.IB700() (new)": ("wdcore.IB700", ()),
    "wdcore.I6300ESB() (new)": ("wdcore.I6300ESB", ()),
    "fuzz input: restore + run 64 B": ("fuzz_one", ("INPUT",)),
    "Machine.run, per op of 1400": ("m.run", ("STREAM",)),
    "Machine.run, per op, random": ("rm.run", ("RANDOM",)),
}
#: calls that execute a stream: (repetitions, ops per call) instead of (N, 1)
PER_OP = {"Machine.run, per op of 1400": (20, 1400), "Machine.run, per op, random": (20, None)}
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
SNAP = m.snapshot(); d.io_write(0x443, 1, 0x0E); DSNAP = d.snapshot()
e.config_write(0x68, 1, 0x02); ESNAP = e.snapshot()
import random
rng = random.Random(64)
RANDOM = bytes(rng.randrange(256) for _ in range(16000))
INPUT = bytes(rng.randrange(256) for _ in range(64))
fm = wdcore.Machine(); fm.io_write(0x443, 1, 0x0E); FSNAP = fm.snapshot()
def fuzz_one(data):
    fm.restore(FSNAP)
    fm.run(data)
rm = wdcore.Machine()
f = {fn}
args = {args}
for _ in range({n}):
    f(*args)
"""


def instructions(python: str, fn: str, args: tuple, n: int) -> int:
    text = repr(args)
    for name in ("STREAM", "SNAP", "DSNAP", "ESNAP", "RANDOM", "INPUT"):
        text = text.replace(f"'{name}'", name)
    code = PROGRAM.format(fn=fn, args=text, n=n)
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
                          python, "-c", code], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONHASHSEED="0"), check=True).stderr
    return int(re.search(r"Collected : (\d+)", out).group(1))


def main() -> None:
    args = sys.argv[1:]
    only = ""
    if args[:1] == ["-k"]:
        only, args = args[1], args[2:]
    pythons = args or [sys.executable]
    for i, p in enumerate(pythons, 1):
        print(f"[{i}] {p}")
    print("instructions per call (per op for runs)".ljust(40) + "".join(f"[{i}]".rjust(12) for i in range(1, len(pythons) + 1)))
    for name, (fn, args) in CALLS.items():
        if only not in name:
            continue
        n, per = PER_OP.get(name, (N, 1))
        if per is None:  # ops in the random stream, as the measured interpreter decodes them
            per = int(subprocess.run(
                [pythons[0], "-c", "import random; from wdcore import ops; rng = random.Random(64); "
                 "print(len(ops.decode(bytes(rng.randrange(256) for _ in range(16000)))))"],
                capture_output=True, text=True, check=True).stdout)
        row = [(instructions(p, fn, args, n) - instructions(p, fn, args, 0)) / n / per for p in pythons]
        print(name.ljust(40) + "".join(f"{x:12.0f}" for x in row))


if __name__ == "__main__":
    main()
