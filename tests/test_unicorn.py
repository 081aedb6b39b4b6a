"""The unicorn adapter (API.md "Adapters"): real x86 guest code, assembled with keystone,
on a real unicorn CPU; each expiry must land on the instruction the timeouts imply.

Two kinds of check: instruction counts worked out by hand from the programs below, and
a differential run against a reference bus that counts every instruction with a
per-instruction code hook (slow, and simple enough to be obviously right).
"""
from __future__ import annotations

import pytest

unicorn = pytest.importorskip("unicorn")
keystone = pytest.importorskip("keystone")
pytest.importorskip("capstone")

from unicorn import x86_const as X86  # noqa: E402

from wdcore import guests  # noqa: E402
from wdcore.adapters.unicorn import attach  # noqa: E402

S = 1_000_000_000
CODE, DATA, BAR = guests.CODE, guests.DATA, guests.BAR
KS = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_32)
# ns per instruction: some divide no timeout (2 s, 4 s, the i6300ESB's stages)
NS = [1000, 7777, 999_999]


def asm(src: str) -> bytes:
    return bytes(KS.asm(src, CODE)[0])


def cpu(code: bytes):
    uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_32)
    uc.mem_map(CODE, 0x1000)
    uc.mem_map(DATA, 0x1000)
    uc.mem_write(CODE, code)
    uc.reg_write(X86.UC_X86_REG_ESP, DATA + 0x800)
    return uc


def reg(uc, name: str) -> int:
    return uc.reg_read(getattr(X86, f"UC_X86_REG_{name.upper()}"))


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# --- the IB700 guest (wdcore.guests.IB700_SOURCE) --------------------------------------------
# Instructions, counted by hand from the source:
#   1 mov dx / 2 mov al / 3 out (arm) / 4 mov ebx
#   per ping round: mov ecx (1) + 100 x (dec, jnz) (200) + out (1) + dec, jnz (2) = 204
#   the third round's out is instruction 4 + 2*204 + 1 + 200 + 1 = 614
#   then dec (615), jnz (616), mov dx (617), out 0x441 (618: disarm), mov dx (619),
#   mov al (620), out 0x443 (621: arm 4 s); then 2 instructions a loop
IB700_GUEST = guests.IB700_SOURCE
IB700_REARM = 621


@pytest.mark.parametrize("ns", NS)
def test_ib700_guest_expires_on_the_instruction_its_timeout_implies(make_machine, ns):
    m = make_machine(action="reset")
    uc = cpu(asm(IB700_GUEST))
    bus = attach(uc, m, ns)
    assert bus.run(CODE) == "reset"
    deadline = IB700_REARM * ns + 4 * S          # the disarm cancelled the 2 s arm
    c = ceil_div(deadline, ns)
    assert bus.insns == c
    assert m.now == c * ns
    events = m.events
    assert [e["event"] for e in events] == ["WATCHDOG", "RESET"]
    assert events[0]["time_ns"] == deadline and events[1]["time_ns"] == c * ns
    # the guest's registers show exactly c instructions: the quiet loop ran (c - 621) of them
    quiet = c - IB700_REARM
    assert reg(uc, "esi") == (quiet + 1) // 2
    assert reg(uc, "eip") == (CODE + asm(IB700_GUEST).index(bytes([0x46]))  # inc esi
                              if quiet % 2 == 0 else CODE + len(asm(IB700_GUEST)) - 2)


def test_pings_keep_the_ib700_quiet(make_machine):
    # the 2 s arm would fire at 3*ns + 2 s; the pings 204 instructions apart keep it off,
    # and stopping before the disarm leaves the last ping's deadline pending
    ns = 999_999
    m = make_machine(action="reset")
    bus = attach(cpu(asm(IB700_GUEST)), m, ns)
    assert bus.run(CODE, max_insns=616) == "max_insns"
    assert bus.insns == 616 and m.now == 616 * ns and m.events == []
    assert m.next_deadline == 614 * ns + 2 * S


@pytest.mark.parametrize("action, expect", [("pause", "pause"), ("poweroff", "poweroff"),
                                            ("none", None), ("shutdown", None)])
def test_actions_stop_the_guest_where_they_should(make_machine, action, expect):
    ns = 999_999
    m = make_machine(action=action)
    bus = attach(cpu(asm(IB700_GUEST)), m, ns)
    deadline = IB700_REARM * ns + 4 * S
    c = ceil_div(deadline, ns)
    if expect is None:  # debug/none/shutdown: the guest keeps running
        assert bus.run(CODE, max_insns=c + 10) == "max_insns"
        assert bus.insns == c + 10 and m.events[0]["time_ns"] == deadline
        return
    assert bus.run(CODE) == expect
    assert bus.insns == c
    if action == "poweroff":
        assert m.status == "poweroff" and m.now == deadline  # the clock stays at the expiry
    else:
        assert m.status == "watchdog" and m.now == c * ns


def test_no_reboot_stops_with_shutdown(make_machine):
    ns = 999_999
    m = make_machine(action="reset", reboot_action="shutdown")
    bus = attach(cpu(asm(IB700_GUEST)), m, ns)
    assert bus.run(CODE) == "shutdown"
    assert bus.insns == ceil_div(IB700_REARM * ns + 4 * S, ns) and m.status == "shutdown"


def test_a_zero_second_arm_stops_right_after_the_accessing_instruction(make_machine):
    # index 0x0F is 0 s: the expiry fires at the access; the reset request acts at its end,
    # and the guest stops right after the OUT, not at the end of unicorn's block
    code = asm("mov dx, 0x443; mov al, 0x0f; out dx, al; inc esi; inc esi; h: jmp h")
    m = make_machine(action="reset")
    uc = cpu(code)
    bus = attach(uc, m, 1000)
    assert bus.run(CODE) == "reset"
    assert bus.insns == 3 and reg(uc, "esi") == 0
    assert [e["time_ns"] for e in m.events] == [3000, 3000]


def test_until_hlt_and_max_insns(make_machine):
    code = asm("mov ecx, 10; l: dec ecx; jnz l; nop; hlt; nop")
    m = make_machine()
    uc = cpu(code)
    bus = attach(uc, m, 5)
    nop = CODE + code.index(bytes([0x90]))
    assert bus.run(CODE, until=nop) == "until"
    assert bus.insns == 21 and reg(uc, "eip") == nop and m.now == 21 * 5
    assert bus.run(nop) == "hlt"
    assert bus.insns == 23 and m.now == 23 * 5
    # max_insns counts from this call
    uc.reg_write(X86.UC_X86_REG_EIP, CODE)
    assert bus.run(CODE, max_insns=4) == "max_insns" and bus.insns == 27


def test_unclaimed_ports_go_to_the_fallbacks(make_machine):
    seen = []
    code = asm("mov dx, 0x80; mov al, 0x5a; out dx, al; in al, dx; mov bl, al;"
               "mov dx, 0x443; in al, dx; mov cl, al; hlt")
    m = make_machine()
    uc = cpu(code)
    bus = attach(uc, m, 1, fallback_in=lambda port, size: 0x42,
                 fallback_out=lambda port, size, value: seen.append((port, size, value)))
    assert bus.run(CODE) == "hlt"
    assert seen == [(0x80, 1, 0x5A)]
    assert reg(uc, "bl") == 0x42 and reg(uc, "cl") == 0xFF  # the IB700 reads all-ones


# --- the i6300ESB guest (wdcore.guests.ESB_SOURCE) ---------------------------------------------
PRELOAD = guests.PRELOAD
STAGE_NS = (PRELOAD << 15) * 30
ESB_GUEST = guests.ESB_SOURCE


class ReferenceBus:
    """The slow, obvious way: a code hook counts every instruction; before each one the
    Machine's clock moves to (instructions so far) x ns, and an access of instruction k
    happens at k x ns.  BAR0 is mapped where this guest puts it."""

    def __init__(self, uc, m, ns):
        self.uc, self.m, self.ns, self.insns, self.reason = uc, m, ns, 0, None
        uc.hook_add(unicorn.UC_HOOK_CODE, self._code)
        uc.hook_add(unicorn.UC_HOOK_INSN, self._in, None, 1, 0, X86.UC_X86_INS_IN)
        uc.hook_add(unicorn.UC_HOOK_INSN, self._out, None, 1, 0, X86.UC_X86_INS_OUT)
        uc.mmio_map(BAR & ~0xFFF, 0x1000, self._mr, None, self._mw, None)
        self.log = []

    def _check(self, events):
        if any(e["event"] == "RESET" for e in events) or self.m.status != "running":
            self.reason = "stop"
            self.uc.emu_stop()

    def _code(self, uc, address, size, _):
        if self.reason:
            return
        n = len(self.m.events)
        self.m.advance_to(self.insns * self.ns)  # after the previous instruction
        self._check(self.m.events[n:])
        if self.reason:
            return
        self.insns += 1

    def _access(self, fn, *args):
        n = len(self.m.events)
        self.m.advance_to(self.insns * self.ns)
        value = fn(*args)
        self.log.append((self.insns, fn.__name__, args))
        self._check(self.m.events[n:])
        return value

    def _in(self, uc, port, size, _):
        return self._access(self.m.io_read, port, size)

    def _out(self, uc, port, size, value, _):
        self._access(self.m.io_write, port, size, value)

    def _mr(self, uc, offset, size, _):
        return self._access(self.m.mem_read, (BAR & ~0xFFF) + offset, size)

    def _mw(self, uc, offset, size, value, _):
        self._access(self.m.mem_write, (BAR & ~0xFFF) + offset, size, value)


@pytest.mark.parametrize("ns", NS)
def test_i6300esb_guest_matches_the_per_instruction_reference(make_machine, ns):
    m = make_machine(action="reset")
    uc = cpu(asm(ESB_GUEST))
    bus = attach(uc, m, ns)
    assert bus.run(CODE) == "reset"
    ref_m = make_machine(action="reset")
    ref_uc = cpu(asm(ESB_GUEST))
    ref = ReferenceBus(ref_uc, ref_m, ns)
    ref_uc.emu_start(CODE, 0xFFFFFFFF)
    assert bus.insns == ref.insns
    assert m.events == ref_m.events
    for r in ("eax", "ebx", "ecx", "edx", "esi", "edi", "ebp", "eip"):
        assert reg(uc, r) == reg(ref_uc, r), r
    # and by the timeouts: stage 1, then stage 2, from the last arming (the enable, or a
    # ping) before the expiry end the count; at ~1 ms an instruction the stages end
    # before the first ping
    arms = [k for k, name, args in ref.log
            if (name == "mem_write" and args[2] == 0x100) or (name == "io_write" and args == (0xCFC, 1, 2))]
    fired = m.events[0]["time_ns"]
    last_arm = max(k for k in arms if k * ns < fired)
    assert (ns == 999_999) == (last_arm == arms[0])
    deadline = last_arm * ns + 2 * STAGE_NS
    assert m.events[0]["time_ns"] == deadline and bus.insns == ceil_div(deadline, ns)
    assert bytes(uc.mem_read(DATA + 4, 4)) == (0xFFFFFFF0).to_bytes(4, "little")  # BAR0 size


@pytest.mark.parametrize("ns", [7777])
def test_after_the_reset_the_guest_boots_again_and_finds_the_boot_status(make_machine, ns):
    m = make_machine(action="reset")
    uc = cpu(asm(ESB_GUEST))
    bus = attach(uc, m, ns)
    assert bus.run(CODE) == "reset"
    assert int.from_bytes(uc.mem_read(DATA, 2), "little") == 0   # first boot: normal
    # the host resets the CPU and runs again: BAR0 was unmapped by the reset
    with pytest.raises(unicorn.UcError):
        uc.mem_read(BAR, 4)
    uc.reg_write(X86.UC_X86_REG_ESI, 0)
    assert bus.run(CODE, max_insns=200) == "max_insns"
    assert int.from_bytes(uc.mem_read(DATA, 2), "little") == 0x1200  # CARDRESET seen
    assert m.i6300esb.stage == 1 and m.i6300esb.remaining_ns is not None


def test_bar0_page_follows_the_guest(make_machine):
    m = make_machine()
    uc = cpu(asm("hlt"))
    bus = attach(uc, m, 1)
    m.io_write(0xCF8, 4, 0x80001010)
    m.io_write(0xCFC, 4, 0xFEBF0000)
    m.io_write(0xCF8, 4, 0x80001004)
    m.io_write(0xCFC, 2, 0x0002)
    bus.run(CODE)  # the bus re-reads the decode after a run
    assert int.from_bytes(uc.mem_read(0xFEBF000C, 2), "little") == 0
    bus.detach()
    with pytest.raises(unicorn.UcError):
        uc.mem_read(0xFEBF000C, 2)


def test_attach_misuse(make_machine):
    m = make_machine()
    uc = cpu(asm("hlt"))
    with pytest.raises(ValueError, match="ns_per_insn"):
        attach(uc, m, 0)
    with pytest.raises(TypeError, match="machine"):
        attach(uc, object(), 1)
    m.advance(5)
    with pytest.raises(ValueError, match="machine.now"):
        attach(uc, m, 1)


def test_the_stored_guest_code_is_the_assembly_of_its_source():
    # the demo runs the stored bytes without an assembler; they must be the source's
    assert asm(guests.IB700_SOURCE) == guests.IB700_CODE
    assert asm(guests.ESB_SOURCE) == guests.ESB_CODE
    assert guests.IB700_REARM == IB700_REARM


def test_guest_demo_runs_and_checks_itself(impl, capsys):
    from wdcore.guest_demo import guest_demo
    assert guest_demo(impl) == 0
    out = capsys.readouterr().out
    assert "run -> reset after instruction 4000621 (expected 4000621)" in out
    assert "boot status 0x1200" in out and "every expiry on its instruction" in out


MOVER = f"""
    mov dx, 0xcf8
    mov eax, 0x80001010
    out dx, eax
    mov dx, 0xcfc
    mov eax, {BAR}
    out dx, eax
    mov dx, 0xcf8
    mov eax, 0x80001004
    out dx, eax
    mov dx, 0xcfc
    mov ax, 2
    out dx, ax
    mov ebp, {BAR}
    mov bx, word ptr [ebp + 0xc]
    mov dx, 0xcf8
    mov eax, 0x80001010
    out dx, eax
    mov dx, 0xcfc
    mov eax, {BAR + 0x10000}
    out dx, eax
    mov ebp, {BAR + 0x10000}
    mov word ptr [ebp + 0xc], 0x80
    mov word ptr [ebp + 0xc], 0x86
    mov dword ptr [ebp], 5
    mov dx, 0xcf8
    mov eax, 0x80001068
    out dx, eax
    mov dx, 0xcfc
    mov al, 2
    out dx, al
    hlt
"""


def test_the_guest_places_and_moves_bar0(make_machine):
    # the store right after the move reaches the device at its new address (the page is
    # remapped inside the OUT that moved it); the old page is gone
    m = make_machine()
    uc = cpu(asm(MOVER))
    bus = attach(uc, m, 1)
    assert bus.run(CODE) == "hlt"
    assert m.i6300esb.config_read(0x10, 4) == BAR + 0x10000
    assert m.i6300esb.remaining_ns == (5 << 15) * 30 - 1   # preload 5; the hlt ran 1 ns after
    with pytest.raises(unicorn.UcError):
        uc.mem_read(BAR, 2)
    assert int.from_bytes(uc.mem_read(BAR + 0x1000C, 2), "little") == 0   # the device reads
    # decoding off (by the host, between runs): the page is unmapped at the next run
    m.io_write(0xCF8, 4, 0x80001004)
    m.io_write(0xCFC, 2, 0)
    uc.mem_write(CODE + 0x800, asm("hlt"))
    assert bus.run(CODE + 0x800) == "hlt"
    with pytest.raises(unicorn.UcError):
        uc.mem_read(BAR + 0x10000, 2)


def test_a_halted_guest_waits_while_the_host_advances(make_machine):
    # arm 2 s, hlt; the host advances 1 s (the guest waits for an interrupt), then the
    # guest runs on: the deadline still lands on the instruction that reaches it
    code = asm("mov dx, 0x443; mov al, 0x0e; out dx, al; hlt; l: inc esi; jmp l")
    m = make_machine(action="reset")
    uc = cpu(code)
    bus = attach(uc, m, 1000)
    assert bus.run(CODE) == "hlt" and bus.insns == 4 and m.now == 4000
    m.advance(S)
    assert bus.run(uc.reg_read(X86.UC_X86_REG_EIP)) == "reset"
    # deadline 3000 + 2 s; time is 1 s + k * 1000 ns: reached by k = 1 000 003
    assert m.events[0]["time_ns"] == 3000 + 2 * S
    assert bus.insns == 1_000_003 and m.now == S + bus.insns * 1000
