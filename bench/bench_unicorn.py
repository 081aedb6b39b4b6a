"""The unicorn adapter: guest instructions per second with exact time, against bare
unicorn on the same program and against counting with a per-instruction Python code
hook; and the cost of one guest OUT / MMIO store through unicorn with a trivial Python
hook against the same access through the adapter into wdcore.  One run, ratios printed
at the end (bench/conftest.py)."""
from __future__ import annotations

import pytest

unicorn = pytest.importorskip("unicorn")
keystone = pytest.importorskip("keystone")
pytest.importorskip("capstone")

from unicorn import x86_const as X86  # noqa: E402

from bench.conftest import require_compiled  # noqa: E402
from wdcore import Machine  # noqa: E402
from wdcore.adapters.unicorn import attach  # noqa: E402

CODE, BAR = 0x1000, 0xE0000000
KS = keystone.Ks(keystone.KS_ARCH_X86, keystone.KS_MODE_32)
NS = 1000            # 1 us an instruction: the IB700's 2 s are 2 M instructions
INSNS = 2_000_000    # guest instructions per timed round
# a driver's life: compute in a delay loop, ping the IB700 every ~10 000 instructions
WORK = """
    mov dx, 0x443
    mov al, 0x0e
top:
    mov ecx, 1000
work:
    add ebx, ecx
    xor esi, ebx
    rol ebx, 3
    dec ecx
    jnz work
    out dx, al
    jmp top
"""
ACCESSES = 20_000
OUTS = f"""
    mov ecx, {ACCESSES}
l:
    out dx, al
    dec ecx
    jnz l
    hlt
"""
STORES = f"""
    mov ecx, {ACCESSES}
    mov ebp, {BAR}
l:
    mov word ptr [ebp + 0xc], 0x80
    dec ecx
    jnz l
    hlt
"""


def cpu(src: str):
    uc = unicorn.Uc(unicorn.UC_ARCH_X86, unicorn.UC_MODE_32)
    uc.mem_map(CODE, 0x1000)
    uc.mem_write(CODE, bytes(KS.asm(src, CODE)[0]))
    return uc


def placed_bar0(m: Machine) -> None:
    for port, size, value in ((0xCF8, 4, 0x80001010), (0xCFC, 4, BAR), (0xCF8, 4, 0x80001004),
                              (0xCFC, 2, 0x0002)):
        m.io_write(port, size, value)


@pytest.mark.parametrize("kind", ["adapter", "bare", "per_insn_hook"])
def bench_unicorn_guest_instructions(benchmark, kind):
    require_compiled()
    benchmark.group = f"unicorn guest x{INSNS}"
    benchmark.extra_info["calls_per_round"] = INSNS
    uc = cpu(WORK)
    if kind == "adapter":
        m = Machine(action="reset", implementation="compiled")
        bus = attach(uc, m, NS)

        def go():
            assert bus.run(uc.reg_read(X86.UC_X86_REG_EIP) or CODE, max_insns=INSNS) == "max_insns"
    elif kind == "bare":
        def go():
            uc.emu_start(uc.reg_read(X86.UC_X86_REG_EIP) or CODE, 0xFFFFFFFF, count=INSNS)
    else:
        count = [0]

        def hook(uc, address, size, _):
            count[0] += 1
        uc.hook_add(unicorn.UC_HOOK_CODE, hook)
        uc.hook_add(unicorn.UC_HOOK_INSN, lambda *a: None, None, 1, 0, X86.UC_X86_INS_OUT)

        def go():
            uc.emu_start(uc.reg_read(X86.UC_X86_REG_EIP) or CODE, 0xFFFFFFFF, count=INSNS)
    benchmark.pedantic(go, rounds=5, iterations=1, warmup_rounds=1)
    if kind == "adapter":
        assert m.events == [] and m.now == bus.insns * NS  # pinged all along, time exact


@pytest.mark.parametrize("kind", ["adapter", "python_hook"])
@pytest.mark.parametrize("access", ["out", "mmio"])
def bench_unicorn_access(benchmark, kind, access):
    require_compiled()
    benchmark.group = f"unicorn {access} access x{ACCESSES}"
    benchmark.extra_info["calls_per_round"] = ACCESSES
    src = OUTS if access == "out" else STORES
    uc = cpu(src)
    if kind == "adapter":
        m = Machine(action="none", implementation="compiled")
        if access == "mmio":
            placed_bar0(m)
        bus = attach(uc, m, NS)
        uc.reg_write(X86.UC_X86_REG_EDX, 0x443)
        uc.reg_write(X86.UC_X86_REG_EAX, 0x0E)

        def go():
            assert bus.run(CODE) == "hlt"
    else:
        seen = [0]
        if access == "out":
            def out(uc, port, size, value, _):
                seen[0] += 1
            uc.hook_add(unicorn.UC_HOOK_INSN, out, None, 1, 0, X86.UC_X86_INS_OUT)
        else:
            def store(uc, offset, size, value, _):
                seen[0] += 1
            uc.mmio_map(BAR, 0x1000, lambda *a: 0, None, store, None)

        def go():
            uc.emu_start(CODE, 0xFFFFFFFF)
    benchmark.pedantic(go, rounds=5, iterations=1, warmup_rounds=1)
