"""Writes the seed corpus (fuzz/corpus/ops, fuzz/corpus/restore): the client scenarios
of SPEC.md §6 as op streams, QEMU's wdt_ib700 qtest sequence for every action, some
generated conformance sequences, and valid snapshots.  Run from the repository root:
``python -m fuzz.make_corpus``.  Deterministic: rerunning rewrites the same files."""
from __future__ import annotations

from pathlib import Path

from fuzz.harness import ACTIONS
from wdcore import I6300ESB, IB700, Machine, ops

HERE = Path(__file__).resolve().parent
S = 1_000_000_000
BAR = 0xE0000000
SLOT = 2  # config byte bits 6:5 = 0


class Guest:
    def __init__(self) -> None:
        self.ops: list[tuple] = []

    def cfg(self, offset, size, value=None):
        self.ops.append(("outl", 0xCF8, 0x80000000 | (SLOT << 11) | (offset & 0xFC)))
        w = "bwl"[size >> 1]
        port = 0xCFC + (offset & 3)
        self.ops.append((f"in{w}", port) if value is None else (f"out{w}", port, value))

    def mw(self, offset, size, value):
        self.ops.append((f"write{'bwl'[size >> 1]}", BAR + offset, value))

    def mr(self, offset, size):
        self.ops.append((f"read{'bwl'[size >> 1]}", BAR + offset))

    def unlock(self, size=2):
        self.mw(0x0C, size, 0x80)
        self.mw(0x0C, size, 0x86)

    def ping(self, size=2):
        self.unlock(size)
        self.mw(0x0C, 2, 0x0100)

    def bring_up(self):
        for dev in range(SLOT + 1):
            self.ops.append(("outl", 0xCF8, 0x80000000 | (dev << 11)))
            self.ops.append(("inl", 0xCFC))
        self.cfg(0x10, 4, 0xFFFFFFFF)
        self.cfg(0x10, 4)
        self.cfg(0x10, 4, BAR)
        self.cfg(0x04, 2, 0x0002)

    def preloads(self, p1, p2, size=2):
        for reg, p in ((0x00, p1), (0x04, p2)):
            self.unlock(size)
            self.mw(reg, 4, p)


def linux_mainline(heartbeat=30, nowayout=False, silence=True):
    g = Guest()
    g.bring_up()
    g.cfg(0x60, 2, 0x0003)
    g.cfg(0x68, 1)
    g.cfg(0x68, 1, 0)
    g.unlock()
    g.mr(0x0C, 2)
    g.unlock()
    g.mw(0x0C, 2, 0x0300)
    g.preloads(heartbeat << 9, heartbeat << 9)
    g.ping()
    g.ping()
    g.cfg(0x68, 1, 0x03 if nowayout else 0x02)
    for _ in range(3):
        g.ops.append(("clock_step", heartbeat * S // 2))
        g.ping()
    if silence:
        g.ops += [("clock_step",), ("clock_step",), ("clock_step",)]
    else:
        g.ping()
        g.cfg(0x68, 1, 0)
        g.cfg(0x68, 1)
    return g.ops


def linux_legacy():
    g = Guest()
    g.bring_up()
    g.cfg(0x60, 2, 0x0003)
    g.unlock(1)
    g.mr(0x0C, 2)
    g.unlock(1)
    g.mw(0x0C, 2, 0x1100)
    g.preloads(30 << 9, 30 << 9, size=1)
    g.ping(1)
    g.cfg(0x68, 1, 0)
    g.cfg(0x68, 1)
    g.cfg(0x64, 4)
    return g.ops


def freebsd(n=30):
    g = Guest()
    g.bring_up()
    g.cfg(0x60, 2, 0x0003)
    g.cfg(0x68, 1)
    g.cfg(0x68, 1, 0)
    g.unlock()
    g.mw(0x0C, 2, 0x0300)
    g.ping()
    g.preloads(1 << (n - 20), 1 << (n - 20))
    g.ping()
    g.cfg(0x68, 1, 0x02)
    g.cfg(0x68, 1)
    g.ops += [("clock_step",), ("clock_step",)]
    g.cfg(0x68, 1, 0x01)
    return g.ops


def free_running():
    g = Guest()
    g.bring_up()
    g.cfg(0x60, 2, 0x0024)  # reboot disabled, 1 MHz
    g.preloads(1, 1)
    g.cfg(0x68, 1, 0x06)
    g.ops += [("clock_step", 10**9), ("clock_step",), ("clock_step",)]
    return g.ops


def stage1_interrupt():
    g = Guest()
    g.bring_up()
    g.cfg(0x60, 2, 0x0004)
    g.preloads(1, 5)
    g.cfg(0x68, 1, 0x02)
    g.ops += [("clock_step",)]
    g.mr(0x08, 4)
    g.mw(0x08, 1, 1)
    g.mr(0x08, 4)
    return g.ops


def wdt_ib700_qtest():
    return [("clock_step", 40 * S), ("outb", 0x443, 0x0E), ("clock_step", S),
            ("outb", 0x443, 0x0E), ("clock_step", S), ("outb", 0x441, 1),
            ("clock_step", 3 * S), ("outb", 0x443, 0x0D), ("clock_step", 3 * S),
            ("clock_step", 2 * S)]


def ib700wdt(timeout):
    index = 15 - (timeout + 1) // 2
    return [("outb", 0x443, 0), ("clock_step", 10 * S), ("outb", 0x443, index),
            ("clock_step", 5 * S), ("outb", 0x443, index), ("clock_step",), ("outb", 0x441, 0)]


def ops_corpus() -> dict[str, bytes]:
    corpus = {}
    for i, action in enumerate(ACTIONS):
        corpus[f"wdt_ib700_qtest_{action}"] = bytes([i]) + ops.encode(wdt_ib700_qtest())
        corpus[f"wdt_ib700_qtest_{action}_noreboot"] = bytes([i | 0x08]) + ops.encode(wdt_ib700_qtest())
    corpus["linux_mainline_expire"] = b"\x00" + ops.encode(linux_mainline(heartbeat=1))
    corpus["linux_mainline_nowayout_stop"] = b"\x05" + ops.encode(linux_mainline(nowayout=True, silence=False))
    corpus["linux_legacy"] = b"\x00" + ops.encode(linux_legacy())
    corpus["freebsd_n30"] = b"\x04" + ops.encode(freebsd(30))
    corpus["free_running"] = b"\x05" + ops.encode(free_running())
    corpus["stage1_interrupt"] = bytes([0x80 | 5]) + ops.encode(stage1_interrupt())
    for t in (0, 5, 30):
        corpus[f"ib700wdt_{t}s"] = b"\x00" + ops.encode(ib700wdt(t))
    try:  # generated conformance sequences, when the tests are importable
        from tests.conformance.generate import generate
        for seed in range(1, 9):
            config, seq = generate(seed)
            seq = [op for op in seq if op[0] != "qmp"]
            head = ACTIONS.index(config.action) | (0x08 if config.no_reboot else 0) | 0x10
            corpus[f"conformance_seed_{seed}"] = bytes([head]) + ops.encode(seq)
    except ImportError:
        pass
    return corpus


def restore_corpus() -> dict[str, bytes]:
    ib = IB700()
    ib.io_write(0x443, 1, 0x0E)
    esb = I6300ESB(stage1_interrupt=True)
    esb.config_write(0x68, 1, 0x02)
    m = Machine()
    m.run(b"\x00" + ops.encode(linux_mainline(heartbeat=1))[1:])
    return {"ib700": b"\x00" + ib.snapshot(), "i6300esb": b"\x01" + esb.snapshot(),
            "machine": b"\x02" + m.snapshot(),
            "ib700_payload": b"\x80" + ib.snapshot()[11:-4],
            "i6300esb_payload": b"\x81" + esb.snapshot()[11:-4],
            "machine_payload": b"\x82" + m.snapshot()[11:-4]}


def main() -> None:
    for name, corpus in (("ops", ops_corpus()), ("restore", restore_corpus())):
        d = HERE / "corpus" / name
        d.mkdir(parents=True, exist_ok=True)
        for stem, data in corpus.items():
            (d / stem).write_bytes(data)
        print(f"{d}: {len(corpus)} inputs")


if __name__ == "__main__":
    main()
