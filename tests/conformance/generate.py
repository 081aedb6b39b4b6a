"""Random op sequences in qtest vocabulary, biased so that both watchdogs actually get
unlocked, programmed, enabled, pinged and expired.

Generation is adaptive: a shadow wdcore Machine follows the ops as they are chosen, so
clock steps can land one ns before, exactly at and one ns after the next deadline.
The result is a plain op list; QEMU and wdcore then each run it from scratch.

Kept within what QEMU's ``pc`` and wdcore model alike (SPEC.md §7.3, §7.4): ports of
the IB700 block and its neighbours and the PCI configuration ports (never a piece
starting at 0xCF9, PIIX3's reset register); configuration slots 3..31; memory only in
the PCI hole around BAR0; no zero-length free-running cycle (it hangs QEMU 7.2).
"""
from __future__ import annotations

import random

from tests.conformance.runner import S, Config
from wdcore import clients

BAR_BASES = (0xE0000000, 0xE0010000)
MAX_QEMU_CYCLES = 100_000  # free-running cycles QEMU may have to run in one step
ACTIONS = ("reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi")
# poweroff ends a run at its first expiry: keep it rare so that runs stay long
ACTION_WEIGHTS = (6, 3, 1, 4, 5, 5, 3)
IB700_PORTS = (0x441, 0x442, 0x443, 0x444)
NEAR_IB700 = (0x43F, 0x440, 0x445)
CFG_PORTS = (0xCF8, 0xCFA, 0xCFB, 0xCFC, 0xCFD, 0xCFE, 0xCFF)


def random_config(rng: random.Random) -> Config:
    return Config(action=rng.choices(ACTIONS, ACTION_WEIGHTS)[0],
                  no_reboot=rng.random() < 0.2, esb_slot=rng.randint(3, 31))


class Generator:
    def __init__(self, rng: random.Random, config: Config) -> None:
        from wdcore import Machine

        self.rng = rng
        self.config = config
        self.shadow = Machine(**config.machine_kwargs())
        self.ops: list[tuple] = []
        self.bar = BAR_BASES[0]

    # --- emitting ops ------------------------------------------------------------------
    def emit(self, op: tuple) -> None:
        """Append ``op`` unless it would leave the i6300ESB set up for the zero-length
        free-running cycle (reboot disabled, free-run, enabled, both preloads 0), on
        which QEMU 7.2 spins forever at the next stage end (SPEC.md §3.6); such an op
        is dropped and the shadow rolled back."""
        from tests.conformance.runner import wdcore_reply

        if op[0] in ("clock_step", "clock_set") and len(op) == 2 and self._too_many_cycles(op):
            return
        before = self.shadow.snapshot()
        wdcore_reply(self.shadow, op)
        if self._zero_cycle_armed():
            self.shadow.restore(before)
            return
        self.ops.append(op)

    def _esb_fields(self):
        from wdcore._snapshot import I6300ESBState

        return I6300ESBState.unpack(self.shadow.i6300esb.snapshot())

    def _zero_cycle_armed(self) -> bool:
        f = self._esb_fields()
        return bool(f.enabled and f.free_run and f.reboot_disabled
                    and f.preload1 == 0 and f.preload2 == 0)

    def _too_many_cycles(self, op: tuple) -> bool:
        """QEMU handles free-running cycles one timer callback at a time (wdcore jumps
        them in O(1)): a step over millions of tiny cycles takes QEMU longer than the
        harness waits.  Such steps are dropped; up to MAX_QEMU_CYCLES are kept."""
        f = self._esb_fields()
        if not (f.enabled and f.free_run and f.reboot_disabled):
            return False
        shift = 5 if f.one_mhz else 15
        period = ((f.preload1 << shift) + (f.preload2 << shift)) * 30
        step = op[1] if op[0] == "clock_step" else max(op[1] - self.shadow.now, 0)
        return period > 0 and step // period > MAX_QEMU_CYCLES

    def emit_all(self, ops: list[tuple]) -> None:
        for op in ops:
            self.emit(op)

    def cfg_write(self, offset: int, size: int, value: int) -> None:
        self.emit_all(clients.pci_config_write(self.config.esb_slot, offset, size, value))

    def cfg_read(self, offset: int, size: int) -> None:
        self.emit_all(clients.pci_config_read(self.config.esb_slot, offset, size))

    def mmio(self, kind: str, offset: int, size: int, value: int | None = None) -> None:
        name = f"{kind}{'bwl'[size >> 1]}"
        self.emit((name, self.bar + offset) if value is None else (name, self.bar + offset, value))

    def unlock(self) -> None:
        self.emit_all(clients.esb_unlock(self.bar, self.rng.choice((2, 2, 2, 1, 4))))

    # --- building blocks ---------------------------------------------------------------
    def ib700(self) -> None:
        r = self.rng.random()
        if r < 0.55:
            index = self.rng.choice((0x0B, 0x0C, 0x0D, 0x0E, 0x0E, 0x0F, self.rng.randrange(256)))
            self.emit(("outb", self.rng.choice((0x443, 0x443, 0x444)), index))
        elif r < 0.7:
            self.emit(("outb", self.rng.choice((0x441, 0x442)), self.rng.randrange(256)))
        else:
            size = self.rng.choice((1, 2, 4))
            port = self.rng.choice(IB700_PORTS + NEAR_IB700)
            self.emit((f"out{'bwl'[size >> 1]}", port, self.rng.randrange(1 << (8 * size))))

    def bring_up(self) -> None:
        if self.rng.random() < 0.3:  # size probe first, as firmware does
            self.cfg_write(0x10, 4, 0xFFFFFFFF)
            self.cfg_read(0x10, 4)
        if self.rng.random() < 0.1:
            self.bar = self.rng.choice(BAR_BASES)
        self.cfg_write(0x10, 4, self.bar)
        self.cfg_write(0x04, 2, self.rng.choice((0x0002, 0x0002, 0x0006, 0x0000)))

    def program(self) -> None:
        one_mhz = self.rng.random() < 0.8
        reboot_disabled = self.rng.random() < 0.3
        int_type = self.rng.choice((0, 0, 1, 2, 3, 0x10, 0x11))
        self.cfg_write(0x60, 2, (0x04 if one_mhz else 0) | (0x20 if reboot_disabled else 0) | int_type)
        preloads = []
        for reg in (0x00, 0x04):
            p = self.rng.choice((1, 2, 10, 100, 1000, 30000, self.rng.randrange(1, 0x100000),
                                 0, 0x200))
            preloads.append(p)
            self.unlock()
            self.mmio("write", reg, 4, p | (self.rng.randrange(4096) << 20 if self.rng.random() < 0.2 else 0))
        if preloads == [0, 0]:  # keep away from the zero-length free-running cycle
            self.unlock()
            self.mmio("write", 0x04, 4, 7)
        lock = self.rng.choice((0x02, 0x02, 0x06, 0x03, 0x00, 0x04, 0x07))
        self.cfg_write(0x68, 1, lock)

    def ping(self) -> None:
        self.unlock()
        self.mmio("write", 0x0C, 2, self.rng.choice((0x0100, 0x0100, 0x0300, 0x1100, 0x0200)))

    def esb_misc(self) -> None:
        r = self.rng.random()
        if r < 0.25:
            self.mmio("read", 0x0C, 2)
        elif r < 0.4:
            self.cfg_read(self.rng.choice((0x60, 0x68, 0x00, 0x04, 0x08, 0x10, 0x40)),
                          self.rng.choice((1, 2, 4)))
        elif r < 0.55:
            off = self.rng.randrange(-4, 20)
            size = self.rng.choice((1, 2, 4))
            if self.rng.random() < 0.5:
                self.mmio("write", off, size, self.rng.randrange(1 << (8 * size)))
            else:
                self.mmio("read", off, size)
        elif r < 0.7:
            self.cfg_write(self.rng.choice((0x60, 0x68, 0x40, 0x44, 0x3C, 0x0C, 0x04)),
                           self.rng.choice((1, 2, 4)), self.rng.randrange(256))
        elif r < 0.85:
            port = self.rng.choice(CFG_PORTS)
            size = self.rng.choice((1, 2, 4))
            if self.rng.random() < 0.5:
                self.emit((f"in{'bwl'[size >> 1]}", port))
            else:
                self.emit((f"out{'bwl'[size >> 1]}", port, self.rng.randrange(1 << (8 * size))))
        else:
            dev = self.rng.choice((self.config.esb_slot, self.rng.randint(3, 31)))
            self.emit(("outl", 0xCF8, (self.rng.choice((0x80000000, 0x80000000, 0)))
                       | (self.rng.choice((0, 0, 1)) << 16) | (dev << 11)
                       | (self.rng.choice((0, 0, 1)) << 8) | self.rng.randrange(256)))
            self.emit(("inl", 0xCFC))

    def clock(self) -> None:
        m = self.shadow
        deadline = m.next_deadline
        if m.status != "running":
            deadline = None
        r = self.rng.random()
        if deadline is not None and r < 0.6:
            d = deadline - m.now
            step = self.rng.choice((d, d, d - 1, d + 1, d + self.rng.randrange(1, 3 * S)))
            self.emit(("clock_step", max(step, 0)))
        elif r < 0.8:
            self.emit(("clock_step", self.rng.choice((0, 1, self.rng.randrange(3 * S),
                                                      self.rng.randrange(40 * S)))))
        else:
            self.emit(("clock_set", max(m.now + self.rng.choice((-1, 0, 1, self.rng.randrange(5 * S))), 0)))

    def host(self) -> None:
        r = self.rng.random()
        if r < 0.35:
            self.emit(("qmp", "stop"))
        elif r < 0.7:
            self.emit(("qmp", "cont"))
        elif r < 0.85:
            self.emit(("qmp", "system_reset"))
        else:
            self.emit(("qmp", "watchdog-set-action", self.rng.choices(ACTIONS, ACTION_WEIGHTS)[0]))

    def sequence(self, min_ops: int) -> list[tuple]:
        blocks = [(self.ib700, 14), (self.bring_up, 4), (self.program, 8), (self.ping, 10),
                  (self.esb_misc, 10), (self.clock, 30), (self.host, 4)]
        funcs, weights = zip(*blocks)
        if self.rng.random() < 0.7:
            self.bring_up()
            self.program()
        while len(self.ops) < min_ops and self.shadow.status not in ("shutdown", "poweroff"):
            self.rng.choices(funcs, weights)[0]()
        # let whatever is armed run out
        for _ in range(3):
            if self.shadow.status == "running" and self.shadow.next_deadline is not None:
                self.emit(("clock_step", self.shadow.next_deadline - self.shadow.now))
        return self.ops


def generate(seed: int, min_ops: int = 30) -> tuple[Config, list[tuple]]:
    """The sequence for ``seed``: deterministic, at least ``min_ops`` ops.  A draw whose
    machine shut down or powered off before ``min_ops`` is drawn again (same config)."""
    rng = random.Random(seed)
    config = random_config(rng)
    for attempt in range(100):
        ops = Generator(random.Random(f"{seed}/{attempt}"), config).sequence(min_ops)
        if len(ops) >= min_ops:
            return config, ops
    raise RuntimeError(f"seed {seed}: no sequence of {min_ops} ops in 100 draws")
