"""Fixed scenarios on QEMU and on wdcore, compared op by op: QEMU's own wdt_ib700
qtest sequence for every action, and the real clients of SPEC.md §6 as the op lists
of wdcore.clients.  Each also checks the expiry it is about, so a
scenario that stopped exercising its point would fail rather than pass vacuously."""
from __future__ import annotations

import pytest

from tests.conformance.runner import Config, compare, reproducer, run_wdcore
from wdcore.clients import (clock_step, esb_unlock, firmware, freebsd_i6300esbwd,
                            linux_i6300esb, linux_i6300esb_legacy, linux_ib700wdt, mem_write,
                            pci_config_read, pci_config_write, qemu_wdt_ib700_test)

S = 1_000_000_000
BAR = 0xE0000000
ACTIONS = ["reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi"]


def check(config: Config, ops: list[tuple], impl: str):
    mismatch = compare(config, ops, impl)
    assert mismatch is None, f"{mismatch}\n{reproducer(config, ops)}"
    steps, _, _ = run_wdcore(config, ops, impl)
    return steps


# --- QEMU tests/qtest/wdt_ib700-test.c (SPEC.md §6.7) --------------------------------------

@pytest.mark.parametrize("no_reboot", [False, True])
@pytest.mark.parametrize("action", ACTIONS)
def test_wdt_ib700_qtest_sequence(qemu, impl, action, no_reboot):
    config = Config(action=action, no_reboot=no_reboot)
    steps = check(config, qemu_wdt_ib700_test.ops(), impl)
    # the expiry belongs to the last step, nothing before it
    assert all(not s.watchdogs and not s.events for s in steps[:-1])
    if action == "poweroff":
        assert steps[-1].status == "poweroff"
    else:
        assert steps[-1].watchdogs == [{"action": action}]


# --- helpers for the PCI clients ---------------------------------------------------------------

class Guest:
    """Collects the op lists of wdcore.clients, remembering where each read landed."""

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.ops: list[tuple] = []

    def add(self, ops: list[tuple]) -> int:
        """Append ``ops``; the index of the last one (to find its step in the results)."""
        self.ops += ops
        return len(self.ops) - 1

    def bring_up(self) -> None:
        # the scan starts at slot 3: slots 0-2 hold QEMU's own devices (SPEC.md §7.3 item 6)
        self.add(firmware.bring_up(self.slot, BAR, first=3))


def stage_ns(preload: int, one_mhz: bool = False) -> int:
    return (preload << (5 if one_mhz else 15)) * 30  # SPEC.md §3.6


@pytest.mark.parametrize("action", ["reset", "none", "pause"])
def test_linux_mainline_i6300esb(qemu, impl, action):
    """Probe, start with a 1 s heartbeat, ping twice, then silence until stage 2 ends;
    after the reset the probe reads the previous-reboot flag (SPEC.md §6.6 #5, #6)."""
    config = Config(action=action, esb_slot=5)
    g = Guest(config.esb_slot)
    g.bring_up()
    g.add(linux_i6300esb.probe(g.slot, BAR, heartbeat=1) + linux_i6300esb.start(g.slot, BAR))
    for _ in range(2):
        g.add(clock_step(400_000_000) + linux_i6300esb.ping(BAR))
    both = 2 * stage_ns(1 << 9)
    g.add(clock_step(both - 1))
    expiry = g.add(clock_step(1))
    if action != "pause":
        g.bring_up()
        g.add(linux_i6300esb.boot_status(BAR))
    steps = check(config, g.ops, impl)
    fired = [i for i, s in enumerate(steps) if s.watchdogs]
    assert fired == [expiry]
    if action != "pause":
        assert steps[-1].reply == "OK 0x0000000000001200"  # CARDRESET


def test_linux_mainline_nowayout_stop_fails(qemu, impl):
    """SPEC.md §6.6 #9: nowayout locks 0x68; the stop's read-back still shows enabled."""
    config = Config(action="none", esb_slot=3)
    g = Guest(config.esb_slot)
    g.bring_up()
    g.add(linux_i6300esb.probe(g.slot, BAR, heartbeat=30)
          + linux_i6300esb.start(g.slot, BAR, nowayout=True))
    g.add(linux_i6300esb.stop(g.slot, BAR))
    steps = check(config, g.ops, impl)
    assert steps[-1].reply == "OK 0x0003"


def test_linux_legacy_i6300esb(qemu, impl):
    """SPEC.md §6.2: byte unlocks, the flag cleared with bits 12 and 8, stop at the end."""
    drv = linux_i6300esb_legacy
    config = Config(action="reset", esb_slot=4)
    g = Guest(config.esb_slot)
    g.bring_up()
    # leave the flag set first: a quick stage-2 expiry (1 MHz, preloads 1), each preload
    # written after a byte unlock followed by a word unlock
    g.add(pci_config_write(g.slot, 0x60, 2, 0x0004))
    for reg in (0x00, 0x04):
        g.add(esb_unlock(BAR, 1) + esb_unlock(BAR, 2) + mem_write(BAR + reg, 4, 1))
    g.add(pci_config_write(g.slot, 0x68, 1, 0x02))
    g.add(clock_step(2 * stage_ns(1, one_mhz=True)))
    g.bring_up()
    # legacy probe, abbreviated to the boot status (no lock-register accesses, no
    # set_timeout), with a second boot-status read to see the clear
    g.add(pci_config_write(g.slot, 0x60, 2, drv.CONFIG))
    flag_before = g.add(drv.boot_status(BAR))
    g.add(drv.clear_boot_status(BAR))
    flag_after = g.add(drv.boot_status(BAR))
    lock = g.add(drv.stop(g.slot, BAR))  # reload, disable, read the lock register
    g.add(drv.getstatus(g.slot))          # GETSTATUS reads raw config dword 0x64
    steps = check(config, g.ops, impl)
    assert steps[flag_before].reply == "OK 0x0000000000001200"  # the flag was set...
    assert steps[flag_after].reply == "OK 0x0000000000000000"  # ...and bit 12 cleared it
    assert steps[lock].reply == "OK 0x0000" and steps[-1].reply == "OK 0x0000"  # %04x


def test_freebsd_i6300esbwd(qemu, impl):
    """SPEC.md §6.3 attach, then event n = 30: P = 2^10, expiry 2 013 265 920 ns after
    the enabling write (§6.6 #12); then the sysctl lock."""
    drv = freebsd_i6300esbwd
    config = Config(action="debug", esb_slot=7)
    g = Guest(config.esb_slot)
    g.bring_up()
    g.add(drv.attach(g.slot, BAR) + drv.event(g.slot, BAR, 30))
    assert drv.preload(30) == 1 << 10
    before = g.add(clock_step(2 * stage_ns(1 << 10) - 1))
    expiry = g.add(clock_step(1))
    config_reg = g.add(pci_config_read(g.slot, 0x60, 2))  # after the internal reset: 0
    # sysctl lock: CR8(0x68) | 1, the watchdog being off after the reset
    g.add(drv.sysctl_lock(g.slot, 0x00))
    g.add(pci_config_write(g.slot, 0x68, 1, 0x02))  # locked: ignored
    g.add(drv.read_lock(g.slot))
    steps = check(config, g.ops, impl)
    assert steps[before].watchdogs == [] and steps[expiry].watchdogs == [{"action": "debug"}]
    assert steps[config_reg].reply == "OK 0x0000"
    assert steps[-1].reply == "OK 0x0001"


def test_freebsd_int_type_3_reads_back_1_in_qemu_7_2(qemu, impl):
    """SPEC.md §6.3: "Its INT_TYPE 3 reads back 1 in 7.2" (mask 0x11)."""
    config = Config(action="none", esb_slot=6)
    g = Guest(config.esb_slot)
    g.add(pci_config_write(g.slot, 0x60, 2, freebsd_i6300esbwd.CONFIG))
    g.add(pci_config_read(g.slot, 0x60, 2))
    steps = check(config, g.ops, impl)
    assert steps[-1].reply == "OK 0x0001"


@pytest.mark.parametrize("timeout_s", [0, 5, 10, 30])
def test_linux_ib700wdt(qemu, impl, timeout_s):
    """SPEC.md §6.4: open, SETTIMEOUT(t), pings, then silence; t rounds up to even."""
    drv = linux_ib700wdt
    config = Config(action="reset")
    real = (30 - 2 * drv.index(timeout_s)) * S
    ops = drv.start() + clock_step(10 * S) + drv.set_timeout(timeout_s)
    if real:
        ops += clock_step(real // 2) + drv.ping(timeout_s) + clock_step(real - 1) + clock_step(1)
    steps = check(config, ops, impl)
    fired = [i for i, s in enumerate(steps) if s.watchdogs]
    assert fired == [len(ops) - 1]


def test_qemu_pci_addr_is_hex_regression(qemu, impl):
    """Harness regression: QEMU parses ``-device i6300esb,addr=16`` as slot 0x16; the
    harness must pass slots in hex or every config access to slots >= 10 misses."""
    config = Config(action="none", esb_slot=16)
    steps = check(config, firmware.read_id(config.esb_slot), impl)
    assert steps[-1].reply == "OK 0x25ab8086"


def test_debug_fire_lines_are_all_counted_regression(qemu, impl):
    """Harness regression (campaign seed 100616): QEMU's "watchdog: timer fired" lines
    were counted before the stderr reader had drained the pipe, so a run could see
    0 of 2.  The reader is now joined first; two debug expiries must count as two."""
    config = Config(action="debug")
    ops = [("outb", 0x443, 0x0E), ("clock_step", 2 * S), ("outb", 0x443, 0x0F),
           ("clock_step", 0)]
    for _ in range(5):  # the race was intermittent
        steps = check(config, ops, impl)
        assert steps[1].watchdogs == [{"action": "debug"}]


@pytest.mark.parametrize("seed", range(7000, 7010))
def test_replay_prints_what_qemus_qtest_server_prints(qemu, seed):
    """`python -m wdcore replay` against QEMU's own qtest replies, line for line, on
    generated scripts (QMP ops left out: they are not qtest)."""
    import os
    import subprocess
    import sys

    from tests.conformance.generate import generate
    from tests.conformance.qemu import Qemu, QemuExited
    from tests.conformance.runner import qtest_line

    config, ops = generate(seed)
    lines = [qtest_line(op) for op in ops if op[0] != "qmp"]
    expected = []
    with Qemu(action=config.action, no_reboot=config.no_reboot, esb_slot=config.esb_slot) as q:
        for line in lines:
            try:
                expected.append(q.cmd(line))
            except QemuExited:
                break
            q.settle()
            if q.exited:
                break
    args = ["--action", config.action, "--profile", "qemu-7.2", "--esb-slot", str(config.esb_slot)]
    if config.no_reboot:
        args.append("--no-reboot")
    r = subprocess.run([sys.executable, "-m", "wdcore", "replay", "-", *args],
                       input="\n".join(lines) + "\n", capture_output=True, text=True, timeout=60,
                       env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == expected
