"""Op streams: QEMU's qtest command set as tuples, and a compact binary encoding.

An op is a tuple: ``("outb", port, value)``, ``("inw", port)``, ``("writel", addr,
value)``, ``("readb", addr)``, ``("clock_step", ns)``, ``("clock_step",)`` (bare: to the
next deadline), ``("clock_set", ns)``.  The binary form is specified byte by byte in
docs/ops.md.  ``decode`` accepts *every* byte string — a fuzzer's raw input included —
and returns valid ops; a trailing partial op is dropped.
"""
from __future__ import annotations

import struct
from typing import Iterable, Iterator, SupportsIndex, Tuple, Union

__all__ = ["OPS", "WIDTH", "SUFFIX", "encode", "decode", "iter_decode", "TIME_MAX_NS", "RUN_STOPS"]

TIME_MAX_NS = (1 << 63) - 1
ADDR_END = 1 << 64

#: opcode (low 4 bits of the op byte) -> op name; the high 4 bits are ignored
OPS = ("outb", "outw", "outl", "inb", "inw", "inl", "writeb", "writew", "writel",
       "readb", "readw", "readl", "clock_step", "clock_step", "clock_set", "clock_step")
OP_STEP, OP_STEP_BARE, OP_SET, OP_STEP32 = 12, 13, 14, 15
_CODE = {name: i for i, name in enumerate(OPS[:12])}
#: access width by the op name's last letter, and back
WIDTH = {"b": 1, "w": 2, "l": 4}
SUFFIX = {size: letter for letter, size in WIDTH.items()}
_VALUE_FMT = {1: "B", 2: "H", 4: "I"}

#: why a run of an op stream stopped (RunResult.stopped), by code (_machine.pxd's RUN_*):
#: the stream ended (a trailing partial op is left unconsumed), the Machine finished
#: (shutdown or poweroff), a bound was reached, or an exception (a callback's, Ctrl-C)
RUN_STOPS = ("end", "finished", "max_ops", "max_events", "error")

#: an op, by arity: ``("clock_step",)``; ``(name, port/addr/ns)``; ``(name, port/addr, value)``
Op = Union[Tuple[str], Tuple[str, int], Tuple[str, int, int]]


def _size(op_code: int) -> int:
    return (1, 2, 4)[op_code % 3]


def encode(ops: Iterable[Op]) -> bytes:
    """The binary form of a list of op tuples (``ValueError``/``TypeError`` naming the
    op for anything outside the vocabulary or its ranges)."""
    out = bytearray()
    for i, op in enumerate(ops):
        try:
            out += _encode_one(op)
        except (ValueError, TypeError, IndexError) as exc:
            raise type(exc)(f"ops[{i}] {op!r}: {exc}") from None
    return bytes(out)


def _int(x: SupportsIndex, what: str, lo: int, hi: int) -> int:
    if type(x) is not int and not hasattr(x, "__index__"):
        raise TypeError(f"{what} must be an int, not {type(x).__name__}")
    i = x.__index__()
    if not lo <= i <= hi:
        raise ValueError(f"{what} {i} out of range {lo}..{hi:#x}")
    return i


def _encode_one(op: object) -> bytes:
    if not isinstance(op, tuple) or not op or not isinstance(op[0], str):
        raise TypeError("an op is a tuple starting with its name")
    name = op[0]
    if name == "clock_step" and len(op) == 1:
        return bytes([OP_STEP_BARE])
    if name in ("clock_step", "clock_set"):
        if len(op) != 2:
            raise ValueError(f"{name} takes one argument (ns)")
        ns = _int(op[1], "ns", 0, TIME_MAX_NS)
        if name == "clock_step" and ns <= 0xFFFFFFFF:
            return struct.pack("<BI", OP_STEP32, ns)
        return struct.pack("<BQ", OP_STEP if name == "clock_step" else OP_SET, ns)
    if name not in _CODE:
        raise ValueError(f"unknown op {name!r}")
    code = _CODE[name]
    size = WIDTH[name[-1]]
    if name.startswith(("out", "write")):
        if len(op) != 3:
            raise ValueError(f"{name} takes (address, value)")
        value = _int(op[2], "value", 0, (1 << (8 * size)) - 1)
    elif len(op) != 2:
        raise ValueError(f"{name} takes (address,)")
    if name.startswith(("out", "in")):
        head = struct.pack("<BH", code, _int(op[1], "port", 0, 0xFFFF))
    else:
        head = struct.pack("<BQ", code, _int(op[1], "addr", 0, ADDR_END - size))
    if name.startswith(("out", "write")):
        head += struct.pack("<" + _VALUE_FMT[size], value)
    return head


def decode(data: bytes) -> list[Op]:
    """The op list of any byte string (see docs/ops.md); never raises for bytes."""
    return [op for op, _ in iter_decode(data)]


def iter_decode(data: bytes) -> Iterator[Tuple[Op, int]]:
    """Each op of any byte string with the offset just past it, in order (``decode``
    one at a time: a run can stop anywhere and say where)."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    buf = bytes(data)
    pos, end = 0, len(buf)
    while pos < end:
        code = buf[pos] & 0x0F
        name = OPS[code]
        if code == OP_STEP_BARE:
            pos += 1
            yield ("clock_step",), pos
            continue
        if code in (OP_STEP, OP_SET):
            if pos + 9 > end:
                break
            ns = int.from_bytes(buf[pos + 1:pos + 9], "little") & TIME_MAX_NS
            pos += 9
            yield (name, ns), pos
            continue
        if code == OP_STEP32:
            if pos + 5 > end:
                break
            ns = int.from_bytes(buf[pos + 1:pos + 5], "little")
            pos += 5
            yield ("clock_step", ns), pos
            continue
        size = _size(code)
        is_port = name.startswith(("out", "in"))
        has_value = name.startswith(("out", "write"))
        alen = 2 if is_port else 8
        need = 1 + alen + (size if has_value else 0)
        if pos + need > end:
            break
        addr = int.from_bytes(buf[pos + 1:pos + 1 + alen], "little")
        if not is_port and addr > ADDR_END - size:
            addr = ADDR_END - size  # an access must end within the 2**64 address space
        op: Op = ((name, addr, int.from_bytes(buf[pos + 1 + alen:pos + need], "little"))
                  if has_value else (name, addr))
        pos += need
        yield op, pos
