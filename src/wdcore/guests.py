"""x86 guests that do what the watchdogs' drivers do, for the unicorn adapter's demo and
tests: the assembly (32-bit, loaded at CODE) and the machine code it assembles to, kept
here so that running them needs no assembler (tests/test_unicorn.py re-assembles the
source with keystone and checks the bytes)."""
from __future__ import annotations

CODE = 0x1000        #: where the programs are loaded
DATA = 0x3000        #: a page the i6300ESB guest stores to: boot status at +0, BAR0 size at +4
BAR = 0xE0000000     #: where the i6300ESB guest places BAR0
PRELOAD = 3          #: both i6300ESB preloads: a stage of (3 << 15) * 30 ns

#: Linux ib700wdt-like (SPEC.md §6.4): arm 2 s (index 0x0E), ping three times from a
#: delay loop, disarm (0x441), re-arm 4 s (0x0D) at instruction IB700_REARM, go quiet
#: counting its loop in esi.
IB700_SOURCE = """
    mov dx, 0x443
    mov al, 0x0e
    out dx, al
    mov ebx, 3
ping:
    mov ecx, 100
delay:
    dec ecx
    jnz delay
    out dx, al
    dec ebx
    jnz ping
    mov dx, 0x441
    out dx, al
    mov dx, 0x443
    mov al, 0x0d
    out dx, al
quiet:
    inc esi
    jmp quiet
"""
IB700_REARM = 621
IB700_CODE = bytes.fromhex(
    "66ba4304b00eeebb03000000b9640000004975fdee4b75f466ba4104ee66ba43"
    "04b00dee46ebfd")

#: firmware + Linux i6300esb-like (SPEC.md §6, §6.1): scan bus 0 for 8086:25ab, size BAR0
#: (size mask stored at DATA+4) and place it at BAR, enable memory decoding, read the boot
#: status (stored at DATA) and clear it, program both preloads, enable, ping four times
#: from a delay loop, go quiet counting in esi.
ESB_SOURCE = """
    xor ebx, ebx
scan:
    mov eax, ebx
    shl eax, 11
    or eax, 0x80000000
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    in eax, dx
    cmp eax, 0x25ab8086
    je found
    inc ebx
    cmp ebx, 32
    jne scan
    hlt
found:
    mov edi, ebx
    shl edi, 11
    or edi, 0x80000000
    mov eax, edi
    or eax, 0x10
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    mov eax, 0xffffffff
    out dx, eax
    in eax, dx
    mov dword ptr [0x3004], eax
    mov eax, 0xe0000000
    out dx, eax
    mov eax, edi
    or eax, 0x04
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    mov ax, 2
    out dx, ax
    mov ebp, 0xe0000000
    mov word ptr [ebp + 0xc], 0x80
    mov word ptr [ebp + 0xc], 0x86
    mov cx, word ptr [ebp + 0xc]
    mov word ptr [0x3000], cx
    mov word ptr [ebp + 0xc], 0x80
    mov word ptr [ebp + 0xc], 0x86
    mov word ptr [ebp + 0xc], 0x200
    mov word ptr [ebp + 0xc], 0x80
    mov word ptr [ebp + 0xc], 0x86
    mov dword ptr [ebp], 3
    mov word ptr [ebp + 0xc], 0x80
    mov word ptr [ebp + 0xc], 0x86
    mov dword ptr [ebp + 4], 3
    mov eax, edi
    or eax, 0x68
    mov dx, 0xcf8
    out dx, eax
    mov dx, 0xcfc
    mov al, 2
    out dx, al
    mov ebx, 4
ping:
    mov ecx, 300
delay:
    dec ecx
    jnz delay
    mov word ptr [ebp + 0xc], 0x80
    mov word ptr [ebp + 0xc], 0x86
    mov word ptr [ebp + 0xc], 0x100
    dec ebx
    jnz ping
quiet:
    inc esi
    jmp quiet
"""
ESB_CODE = bytes.fromhex(
    "31db89d8c1e00b0d0000008066baf80cef66bafc0ced3d8680ab2574074383fb"
    "2075dff489dfc1e70b81cf0000008089f883c81066baf80cef66bafc0cb8ffff"
    "ffffefeda304300000b8000000e0ef89f883c80466baf80cef66bafc0c66b802"
    "0066efbd000000e066c7450c800066c7450c8600668b4d0c66890d0030000066"
    "c7450c800066c7450c860066c7450c000266c7450c800066c7450c8600c74500"
    "0300000066c7450c800066c7450c8600c745040300000089f883c86866baf80c"
    "ef66bafc0cb002eebb04000000b92c0100004975fd66c7450c800066c7450c86"
    "0066c7450c00014b75e346ebfd")
