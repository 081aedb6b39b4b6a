"""Writes the seed corpus (fuzz/corpus/ops, fuzz/corpus/restore): the client scenarios
of SPEC.md §6 as op streams, QEMU's wdt_ib700 qtest sequence for every action, some
generated conformance sequences, and valid snapshots.  Run from the repository root:
``python -m fuzz.make_corpus``.  Deterministic: rerunning rewrites the same files."""
from __future__ import annotations

from pathlib import Path

from fuzz.harness import ACTIONS
from wdcore import I6300ESB, IB700, Machine, clients, ops
from wdcore.clients import (clock_step, esb_preloads, firmware, mem_read, mem_write,
                            pci_config_read, pci_config_write)

HERE = Path(__file__).resolve().parent
S = 1_000_000_000
BAR = 0xE0000000
SLOT = 2  # config byte bits 6:5 = 0


def bring_up() -> list[tuple]:
    return firmware.bring_up(SLOT, BAR)


def linux_mainline(heartbeat=30, nowayout=False, silence=True):
    """SPEC.md §6.1: probe, open, three pings half a heartbeat apart, then silence or
    a stop."""
    drv = clients.linux_i6300esb
    seq = bring_up() + drv.probe(SLOT, BAR, heartbeat) + drv.start(SLOT, BAR, nowayout)
    for _ in range(3):
        seq += clock_step(heartbeat * S // 2) + drv.ping(BAR)
    if silence:
        seq += clock_step() * 3
    else:
        seq += drv.stop(SLOT, BAR)
    return seq


def linux_legacy():
    """SPEC.md §6.2, abbreviated as this seed has always been: the probe skips the
    lock-register read and clear, and the final stop its reload (set_timeout's reload
    comes just before it)."""
    drv = clients.linux_i6300esb_legacy
    return (bring_up() + pci_config_write(SLOT, 0x60, 2, drv.CONFIG)
            + drv.boot_status(BAR) + drv.clear_boot_status(BAR) + drv.set_timeout(BAR, 30)
            + pci_config_write(SLOT, 0x68, 1, 0) + pci_config_read(SLOT, 0x68, 1)
            + drv.getstatus(SLOT))


def freebsd(n=30):
    """SPEC.md §6.3: attach, event(n), let it expire, then the sysctl lock on the
    register the internal reset cleared."""
    drv = clients.freebsd_i6300esbwd
    return (bring_up() + drv.attach(SLOT, BAR) + drv.event(SLOT, BAR, n) + clock_step() * 2
            + drv.sysctl_lock(SLOT, 0x00))


def free_running():
    seq = bring_up() + pci_config_write(SLOT, 0x60, 2, 0x0024)  # reboot disabled, 1 MHz
    seq += esb_preloads(BAR, 1, 1) + pci_config_write(SLOT, 0x68, 1, 0x06)
    return seq + clock_step(10**9) + clock_step() * 2


def stage1_interrupt():
    seq = bring_up() + pci_config_write(SLOT, 0x60, 2, 0x0004)
    seq += esb_preloads(BAR, 1, 5) + pci_config_write(SLOT, 0x68, 1, 0x02) + clock_step()
    return seq + mem_read(BAR + 0x08, 4) + mem_write(BAR + 0x08, 1, 1) + mem_read(BAR + 0x08, 4)


def wdt_ib700_qtest():
    return clients.qemu_wdt_ib700_test.ops()


def ib700wdt(timeout):
    """SPEC.md §6.4: open (30 s), SETTIMEOUT(timeout), a ping, silence, close with 'V'."""
    drv = clients.linux_ib700wdt
    return (drv.start() + clock_step(10 * S) + drv.set_timeout(timeout) + clock_step(5 * S)
            + drv.ping(timeout) + clock_step() + drv.stop())


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
