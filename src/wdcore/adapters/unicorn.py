"""wdcore on a unicorn x86 CPU, with virtual time counted in guest instructions.

``attach(uc, machine, ns_per_insn)`` routes the guest's IN/OUT to the Machine (for the
ports it claims; others to ``fallback_in``/``fallback_out``) and maps the i6300ESB's
BAR0 page with ``mmio_map`` wherever the guest places it.  ``bus.run(begin, until,
max_insns)`` runs the guest so that the access made by the k-th instruction happens at
``k * ns_per_insn`` and a deadline D stops the guest right after instruction
``ceil(D / ns_per_insn)`` (API.md, "Adapters").

How the count is exact on a CPU that has no instruction counter (unicorn 2.1):

- every slice runs with ``emu_start(count=n)``, n bounded by the instruction that reaches
  the Machine's next deadline: unicorn then stops exactly after n instructions, keeps
  EIP exact inside MMIO callbacks, and makes ``emu_stop()`` from a hook take effect
  right after the current instruction;
- a block hook records where each translated block starts and which instructions it
  holds (decoded once per block with capstone), so a hook inside a block knows how many
  instructions of the slice ran before it;
- ``until`` is a code hook on that one address (the translation cache is cleared around
  it, so an earlier-translated block cannot run past it).
"""
from __future__ import annotations

import ctypes

from typing import TYPE_CHECKING, Callable, Dict, Optional, Tuple

try:
    import capstone
    import unicorn
    from unicorn import x86_const as X86
    from unicorn.unicorn import Uc, UcError
    # unicorn 2.1's C API as its binding loads it, for the block hook and the PC read
    from unicorn.unicorn_py3.unicorn import HOOK_CODE_CFUNC, uclib
    from unicorn.unicorn_py3.unicorn import uc_hook_h  # type: ignore[attr-defined]  # re-exported ctypes alias
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError("wdcore.adapters.unicorn needs the 'unicorn' extra: "
                      "pip install 'wdcore[unicorn]'") from exc

if TYPE_CHECKING:
    from wdcore.machine import Machine, MachineEvent, RunResult

from wdcore import ops
from wdcore.regs import (ESB_CONFIG, IB700_PORT_FIRST, IB700_PORT_LAST, PCI_BAR0, PCI_COMMAND,
                         PCI_COMMAND_MEMORY, PCI_CONFIG_ADDRESS, PCI_CONFIG_END)

__all__ = ["attach", "UnicornBus"]

PAGE = 0x1000
_BAR_MASK = ESB_CONFIG.const("BAR0_ADDR_MASK")
_BAR_MAX = ESB_CONFIG.const("BAR0_BASE_MAX")
_SLICE = 1 << 24            # instructions per slice when no deadline is nearer
_NEVER = (1 << 64) - 1      # an `until` unicorn never reaches (the real one is a hook)
#: op stream opcodes (docs/ops.md) by (kind, size), from wdcore.ops
_CODE = {(kind, size): bytes([ops.OPS.index(kind + ops.SUFFIX[size])])
         for kind in ("out", "in", "write", "read") for size in (1, 2, 4)}
_HLT = 0xF4


def attach(uc: "Uc", machine: "Machine", ns_per_insn: int = 1, *,
           fallback_in: Optional[Callable[[int, int], int]] = None,
           fallback_out: Optional[Callable[[int, int, int], object]] = None) -> "UnicornBus":
    """Put ``machine`` on ``uc``'s buses; time advances ``ns_per_insn`` ns per guest
    instruction.  The Machine's clock must be at 0 (attach at power-on): then
    ``machine.now == bus.insns * ns_per_insn`` whenever ``run`` returns, until the host
    advances the Machine itself (after "hlt", say), which adds to every later time."""
    return UnicornBus(uc, machine, ns_per_insn, fallback_in, fallback_out)


class UnicornBus:
    """The hooks and mappings that put one Machine on one unicorn x86 CPU."""

    def __init__(self, uc: "Uc", machine: "Machine", ns_per_insn: int,
                 fallback_in: Optional[Callable[[int, int], int]],
                 fallback_out: Optional[Callable[[int, int, int], object]]) -> None:
        from wdcore.machine import Machine, RunResult

        if not isinstance(uc, Uc):
            raise TypeError(f"uc must be a unicorn.Uc, not {type(uc).__name__}")
        if uc.ctl_get_arch() != unicorn.UC_ARCH_X86:
            raise ValueError("uc must be an x86 unicorn (UC_ARCH_X86)")
        if not isinstance(machine, Machine):
            raise TypeError(f"machine must be a wdcore.Machine, not {type(machine).__name__}")
        if type(ns_per_insn) is not int:
            raise TypeError(f"ns_per_insn must be an int, not {type(ns_per_insn).__name__}")
        if ns_per_insn < 1:
            raise ValueError(f"ns_per_insn must be >= 1, not {ns_per_insn}")
        for name, fn in (("fallback_in", fallback_in), ("fallback_out", fallback_out)):
            if fn is not None and not callable(fn):
                raise TypeError(f"{name} must be callable or None")
        if machine.now != 0:
            raise ValueError(f"machine.now must be 0 at attach (time is instructions since "
                             f"attach), not {machine.now}")
        mode = uc.ctl_get_mode()
        self.uc, self.machine, self.ns = uc, machine, ns_per_insn
        self.fallback_in, self.fallback_out = fallback_in, fallback_out
        self.insns = 0                      # guest instructions since attach
        # time the host moved the Machine itself (while the guest was halted): the k-th
        # instruction runs at base + k * ns; 0 unless the host advances between runs
        self._base_ns = 0
        self._eip = X86.UC_X86_REG_RIP if mode == unicorn.UC_MODE_64 else X86.UC_X86_REG_EIP
        cs_mode = {unicorn.UC_MODE_16: capstone.CS_MODE_16, unicorn.UC_MODE_32: capstone.CS_MODE_32,
                   unicorn.UC_MODE_64: capstone.CS_MODE_64}[mode]
        self._cs = capstone.Cs(capstone.CS_ARCH_X86, cs_mode)
        # (address, size) -> ({insn address: index}, indices of its IN/OUT, or None when
        # a string IN/OUT makes hook order no guide)
        self._blocks: Dict[Tuple[int, int], Tuple[Dict[int, int], Optional[Tuple[int, ...]]]] = {}
        self._claims_ib700 = machine.ib700 is not None
        self._result = RunResult(0)  # filled by every _stream (the core's run, not Machine.run's wrapper)
        self._mapped: Optional[int] = None  # the BAR0 page mapped, or None
        self._in_mmio = False
        self._mmio_dirty = False
        # the slice in progress
        self._done = 0                      # instructions of the slice before the block
        self._blk: Dict[int, int] = {}
        self._blk_io: Optional[Tuple[int, ...]] = ()
        self._io_seen = 0                   # IN/OUT hooks fired in this entry of the block
        self._blk_len = 0
        self._blk_end = 0
        self._slice_n = 0                   # the slice's instruction budget
        self._stop_k: Optional[int] = None  # instructions of the slice at our own stop
        self._reason: Optional[str] = None  # what run returns after that stop
        # the block hook runs once per translated block entered: registered straight with
        # unicorn's C API (unicorn 2.1's own wrapper adds two Python calls a block)
        self._block_cb = HOOK_CODE_CFUNC(self._on_block_c)
        self._block_hook = uc_hook_h()
        status = uclib.uc_hook_add(uc._uch, ctypes.byref(self._block_hook), unicorn.UC_HOOK_BLOCK,
                                   self._block_cb, None, ctypes.c_uint64(1), ctypes.c_uint64(0))
        if status != unicorn.UC_ERR_OK:
            raise UcError(status)
        self._hook_error: Optional[BaseException] = None
        self._pc_buf = ctypes.c_uint64()
        self._hooks = [
            uc.hook_add(unicorn.UC_HOOK_INSN, self._on_in, None, 1, 0, X86.UC_X86_INS_IN),
            uc.hook_add(unicorn.UC_HOOK_INSN, self._on_out, None, 1, 0, X86.UC_X86_INS_OUT),
        ]
        self._sync_mmio()

    # --- counting ----------------------------------------------------------------------
    def _on_block_c(self, _uch: object, address: int, size: int, _ud: object) -> None:
        try:
            self._on_block(address, size)
        except BaseException as exc:  # noqa: BLE001 - ctypes cannot carry it out: run re-raises
            if self._hook_error is None:
                self._hook_error = exc
            self.uc.emu_stop()

    def _on_block(self, address: int, size: int) -> None:
        self._done += self._blk_len          # the block before ran to its end
        key = (address, size)
        entry = self._blocks.get(key)
        if entry is None:
            insns = list(self._cs.disasm(bytes(self.uc.mem_read(address, size)), address))
            io: Optional[Tuple[int, ...]] = tuple(
                i for i, insn in enumerate(insns) if insn.mnemonic in ("in", "out"))
            if any(insn.mnemonic.startswith(("ins", "outs", "rep")) for insn in insns):
                io = None
            entry = ({insn.address: i for i, insn in enumerate(insns)}, io)
            self._blocks[key] = entry
        self._blk, self._blk_io = entry
        self._blk_len, self._blk_end, self._io_seen = len(self._blk), address + size, 0

    def _now_ns(self) -> int:
        """The virtual time after the instructions run so far."""
        return self._base_ns + self.insns * self.ns

    def _insn_of(self, deadline: int) -> int:
        """The instruction that reaches ``deadline``: the first whose time is >= it."""
        return -(-(deadline - self._base_ns) // self.ns)

    def _pc(self) -> int:
        """EIP/RIP, read straight through unicorn's C API (exact inside hooks while a
        count is active)."""
        buf = self._pc_buf
        buf.value = 0
        uclib.uc_reg_read(self.uc._uch, self._eip, ctypes.byref(buf))
        return buf.value

    def _count_at(self, pc: int) -> int:
        """Instructions of the slice up to and including the one at ``pc``."""
        return self._done + self._blk.get(pc, self._blk_len - 1) + 1

    def _count_at_io(self, uc: "Uc") -> int:
        """The same for the IN/OUT whose hook runs: within a block, the n-th IN/OUT hook
        is the block's n-th IN/OUT instruction (no register read needed)."""
        io, n = self._blk_io, self._io_seen
        self._io_seen = n + 1
        if io is not None and n < len(io):
            return self._done + io[n] + 1
        return self._count_at(self._pc())

    # --- the Machine's side of an access ----------------------------------------------------
    def _operation(self, k: int, op: bytes) -> Optional[int]:
        """Run one access of the slice's k-th instruction at its time; returns the value
        read (or None).  Requests that stop the guest end the slice right after it."""
        m = self.machine
        t = self._base_ns + (self.insns + k) * self.ns
        d = m.next_deadline
        if d is not None and d <= t:
            # the deadline instruction is this access: the expiry comes first
            reason = self._settle(self._stream(_clock_set(t)).events)
            if reason is not None:
                self._stop(k, reason)
                return None
        result = self._stream(_clock_set(t) + op)
        reads, events = result.reads, result.events
        reason = self._settle(events)
        if reason is not None:
            self._stop(k, reason)
        else:
            d = m.next_deadline
            if d is not None and self._insn_of(d) < self.insns + self._slice_n:
                self._stop(k, "again")  # the access armed a deadline inside this slice
        return int(reads[0]) if reads else None

    def _stream(self, data: bytes) -> "RunResult":
        """One op stream through the Machine's core, unbounded: the result, reused."""
        self.machine.run_stream(data, -1, -1, self._result)
        return self._result

    def _settle(self, events: "list[MachineEvent]") -> Optional[str]:
        """What the guest must do after an operation that logged ``events``: None to go
        on, else run's answer."""
        status = self.machine.status
        if status == "poweroff":
            return "poweroff"
        if status == "shutdown":
            return "shutdown"
        if any(e["event"] == "RESET" for e in events):
            self._mmio_dirty = True  # the reset turned BAR0's decoding off
            return "reset"
        if status != "running":
            return "pause"
        return None

    def _stop(self, k: int, reason: str) -> None:
        if self._stop_k is None:
            self._stop_k, self._reason = k, reason
            self.uc.emu_stop()

    def _claimed(self, port: int, size: int) -> bool:
        end = port + size
        if PCI_CONFIG_ADDRESS < end and port < PCI_CONFIG_END:
            return True
        return self._claims_ib700 and IB700_PORT_FIRST < end and port <= IB700_PORT_LAST

    def _on_in(self, uc: "Uc", port: int, size: int, _ud: object) -> int:
        if self._stop_k is not None:
            return (1 << (8 * size)) - 1
        if not self._claimed(port, size):
            self._io_seen += 1
            if self.fallback_in is None:
                return (1 << (8 * size)) - 1
            return int(self.fallback_in(port, size)) & ((1 << (8 * size)) - 1)
        value = self._operation(self._count_at_io(uc),
                                _CODE["in", size] + port.to_bytes(2, "little"))
        return (1 << (8 * size)) - 1 if value is None else value

    def _on_out(self, uc: "Uc", port: int, size: int, value: int, _ud: object) -> None:
        if self._stop_k is not None:
            return
        if not self._claimed(port, size):
            self._io_seen += 1
            if self.fallback_out is not None:
                self.fallback_out(port, size, value)
            return
        self._operation(self._count_at_io(uc),
                        _CODE["out", size] + port.to_bytes(2, "little")
                        + value.to_bytes(size, "little"))
        if PCI_CONFIG_ADDRESS <= port < PCI_CONFIG_END or self._mmio_dirty:
            self._mmio_dirty = True  # a configuration write may move BAR0 or its decoding
            self._after_access()

    def _on_mmio_read(self, uc: "Uc", offset: int, size: int, page: int) -> int:
        self._in_mmio = True
        try:
            if self._stop_k is not None:
                return 0
            value = self._operation(self._count_at(self._pc()),
                                    _CODE["read", size] + (page + offset).to_bytes(8, "little"))
            return 0 if value is None else value
        finally:
            self._in_mmio = False

    def _on_mmio_write(self, uc: "Uc", offset: int, size: int, value: int, page: int) -> None:
        self._in_mmio = True
        try:
            if self._stop_k is None:
                self._operation(self._count_at(self._pc()),
                                _CODE["write", size] + (page + offset).to_bytes(8, "little")
                                + value.to_bytes(size, "little"))
        finally:
            self._in_mmio = False

    def _after_access(self) -> None:
        if self._mmio_dirty and not self._in_mmio:
            self._sync_mmio()

    # --- BAR0 ------------------------------------------------------------------------------
    def _bar0_page(self) -> Optional[int]:
        esb = self.machine.i6300esb
        if esb is None or self.machine.status in ("shutdown", "poweroff"):
            return None
        if not esb.config_read(PCI_COMMAND, 2) & PCI_COMMAND_MEMORY:
            return None
        base = esb.config_read(PCI_BAR0, 4) & _BAR_MASK
        if base == 0 or base > _BAR_MAX:
            return None
        return int(base) & ~(PAGE - 1)

    def _sync_mmio(self) -> None:
        """Map BAR0's page where the guest decodes it now (never from inside its own
        callback: that waits until the slice ends)."""
        self._mmio_dirty = False
        page = self._bar0_page()
        if page == self._mapped:
            return
        if self._mapped is not None:
            self.uc.mem_unmap(self._mapped, PAGE)
            self._mapped = None
        if page is not None:
            try:
                self.uc.mmio_map(page, PAGE, self._on_mmio_read, page, self._on_mmio_write, page)
            except UcError:
                return  # over RAM (or another mapping): the guest's stores go to that RAM
            self._mapped = page

    # --- running -------------------------------------------------------------------------------
    def run(self, begin: int, until: int = 0, max_insns: Optional[int] = None) -> str:
        """Run the guest from ``begin``; returns why it stopped: "until", "max_insns",
        "reset", "pause", "poweroff", "shutdown" or "hlt" (API.md)."""
        if type(begin) is not int or begin < 0:
            raise ValueError(f"begin must be an int >= 0, not {begin!r}")
        if type(until) is not int or until < 0:
            raise ValueError(f"until must be an int >= 0, not {until!r}")
        if max_insns is not None and (type(max_insns) is not int or max_insns < 0):
            raise ValueError(f"max_insns must be None or an int >= 0, not {max_insns!r}")
        m, uc = self.machine, self.uc
        status = m.status
        if status in ("poweroff", "shutdown"):
            return status
        if status != "running":
            return "pause"
        self._sync_mmio()  # the host may have moved BAR0 between runs
        lag = m.now - self._now_ns()
        if lag > 0:  # the host advanced the Machine (a halted guest waiting for a timer)
            self._base_ns += lag
        until_hook = None
        if until:
            until_hook = uc.hook_add(unicorn.UC_HOOK_CODE, self._on_until, None, until, until)
            uc.ctl_remove_cache(until, until + 1)
        try:
            return self._run(begin, until, max_insns)
        finally:
            if until_hook is not None:
                uc.hook_del(until_hook)
                uc.ctl_remove_cache(until, until + 1)
            if self._mmio_dirty:
                self._sync_mmio()

    def _on_until(self, uc: "Uc", address: int, size: int, _ud: object) -> None:
        if self._stop_k is None:
            # stop before the instruction at `until`: the ones before it ran
            self._stop_k, self._reason = self._done + self._blk.get(address, 0), "until"
            uc.emu_stop()

    def _run(self, pc: int, until: int, max_insns: Optional[int]) -> str:
        m, uc = self.machine, self.uc
        left = max_insns
        while True:
            if left == 0:
                return "max_insns"
            n = _SLICE
            d = m.next_deadline
            if d is not None:
                n = min(n, max(self._insn_of(d) - self.insns, 0))
            if left is not None:
                n = min(n, left)
            if n == 0:  # a deadline already due at this instruction: handle it now
                reason = self._settle(self._stream(_clock_set(self._now_ns())).events)
                if reason is not None:
                    return reason
                if self._mmio_dirty:
                    self._sync_mmio()
                continue
            self._done, self._blk, self._blk_len, self._stop_k, self._reason = 0, {}, 0, None, None
            self._slice_n = n
            error = None
            try:
                uc.emu_start(pc, _NEVER, count=n)
            except UcError as exc:
                error = exc
            pc = uc.reg_read(self._eip)
            if self._hook_error is not None:
                failure, self._hook_error = self._hook_error, None
                raise failure
            if self._stop_k is not None:
                executed = self._stop_k
            elif error is not None:
                executed = self._done + self._blk.get(pc, self._blk_len)
            elif pc == self._blk_end and self._blk_len and uc.mem_read(pc - 1, 1)[0] == _HLT \
                    and self._blk.get(pc - 1) == self._blk_len - 1:
                executed = self._done + self._blk_len  # stopped by HLT
            else:
                executed = n
            self.insns += executed
            if left is not None:
                left -= executed
            if self._stop_k is not None and self._reason not in ("until", "again"):
                return self._reason  # the access's own request: the clock is at its time
            reason = self._settle(self._stream(_clock_set(self._now_ns())).events)
            if reason is not None:
                return reason
            if self._mmio_dirty:
                self._sync_mmio()
            if error is not None:
                raise error
            if self._reason == "until":
                return "until"
            if self._stop_k is None and executed < n:
                return "hlt"

    def detach(self) -> None:
        """Remove every hook and mapping this bus made."""
        for h in self._hooks:
            self.uc.hook_del(h)
        self._hooks = []
        if self._block_hook.value:
            uclib.uc_hook_del(self.uc._uch, self._block_hook)
            self._block_hook = uc_hook_h()
        if self._mapped is not None:
            self.uc.mem_unmap(self._mapped, PAGE)
            self._mapped = None


def _clock_set(t: int) -> bytes:
    return bytes([ops.OP_SET]) + t.to_bytes(8, "little")
