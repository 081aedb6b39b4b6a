"""Issue 11's table of fuzz-loop costs in wall-clock time on this machine (median of 5
of the best of 3; noisy, unlike bench/instructions.py's counts):

    VENV_PYTHON bench/reset_table.py

prints one ``call | value unit`` line per row for the interpreter's installed wdcore,
so two builds (two venvs) can be set side by side."""
import random
import statistics
import timeit

import wdcore
from wdcore import ops

S = 1_000_000_000
BAR = 0xE0000000


def median_time(fn, number: int) -> float:
    """Seconds per call of fn()."""
    return statistics.median(min(timeit.repeat(fn, number=number, repeat=3)) / number
                             for _ in range(5))


def main() -> None:
    m = wdcore.Machine()
    m.io_write(0x443, 1, 0x0E)
    m.advance(S)
    snap = m.snapshot()
    dev = wdcore.IB700()
    dev.io_write(0x443, 1, 0x0E)
    dev_snap = dev.snapshot()
    driver = wdcore.Machine(action="none")  # BAR0 placed and decoded, the watchdog enabled
    for port, size, value in ((0xCF8, 4, 0x80001010), (0xCFC, 4, BAR), (0xCF8, 4, 0x80001004),
                              (0xCFC, 2, 0x0002), (0xCF8, 4, 0x80001068), (0xCFC, 1, 0x02)):
        driver.io_write(port, size, value)
    driver_stream = ops.encode([("outb", 0x443, 0x0E), ("writew", BAR + 0x0C, 0x80),
                                ("writew", BAR + 0x0C, 0x86), ("writew", BAR + 0x0C, 0x100),
                                ("readw", BAR + 0x0C), ("inb", 0xCFC), ("clock_step", 1000)] * 200)
    rng = random.Random(64)
    random_stream = bytes(rng.randrange(256) for _ in range(16000))
    n_random = len(ops.decode(random_stream))
    fuzzed = wdcore.Machine()
    rows = [
        ("Machine.restore(snapshot)", median_time(lambda: m.restore(snap), 20000) * 1e6, "µs"),
        ("Machine.snapshot()", median_time(m.snapshot, 20000) * 1e6, "µs"),
        ("Machine() (a new one)", median_time(wdcore.Machine, 5000) * 1e6, "µs"),
        ("Machine.system_reset()", median_time(m.system_reset, 20000) * 1e6, "µs"),
        ("IB700.restore(snapshot)", median_time(lambda: dev.restore(dev_snap), 20000) * 1e6, "µs"),
        ("IB700.reset()", median_time(dev.reset, 50000) * 1e6, "µs"),
        ("Machine.run, driver-like stream",
         median_time(lambda: driver.run(driver_stream), 200) / 1400 * 1e9, "ns/op"),
        ("Machine.run, random bytes",
         median_time(lambda: fuzzed.run(random_stream), 200) / n_random * 1e9, "ns/op"),
    ]
    for name, value, unit in rows:
        print(f"{name} | {value:.3f} {unit}")


if __name__ == "__main__":
    main()
