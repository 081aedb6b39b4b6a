"""Host-argument validation shared by the Python twins and the Machine.

The compiled core decides in C whether an argument is bad (``_core.pxd``) and then
calls these checks to raise, so both implementations give the same messages
(``tests/test_misuse.py`` holds them to it).  Every error names the
parameter as spelled in the public signature.
"""
from __future__ import annotations

import operator

TIME_MAX_NS = (1 << 63) - 1


def as_int(value: object, name: str) -> int:
    """``value`` as a Python int (anything with ``__index__``), else ``TypeError``."""
    if type(value) is int:
        return value  # type: ignore[return-value]
    try:
        return operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise TypeError(f"{name} must be an int, not {type(value).__name__}") from None


def check_size(size: object) -> int:
    s = as_int(size, "size")
    if s != 1 and s != 2 and s != 4:
        raise ValueError(f"size must be 1, 2 or 4, not {s}")
    return s


def check_value(value: object, size: int) -> int:
    v = as_int(value, "value")
    if v < 0 or v >> (8 * size):
        raise ValueError(f"value {v:#x} does not fit in {size} byte(s)"
                         if v >= 0 else f"value must be >= 0, not {v}")
    return v


def check_port(port: object) -> int:
    p = as_int(port, "port")
    if p < 0 or p > 0xFFFF:
        raise ValueError(f"port must be in 0..0xffff, not {p:#x}" if p >= 0
                         else f"port must be in 0..0xffff, not {p}")
    return p


def check_delta(now: int, delta_ns: object) -> int:
    d = as_int(delta_ns, "delta_ns")
    if d < 0:
        raise ValueError(f"delta_ns must be >= 0, not {d}")
    if d > TIME_MAX_NS - now:
        raise ValueError(f"delta_ns {d} would move time past 2**63-1 ns (now is {now})")
    return now + d


def check_time(now: int, t_ns: object) -> int:
    t = as_int(t_ns, "t_ns")
    if t < 0 or t > TIME_MAX_NS:
        raise ValueError(f"t_ns must be in 0..2**63-1, not {t}")
    if t < now:
        raise ValueError(f"t_ns {t} is before now ({now}): time only moves forward")
    return t


def check_bytes(data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, not {type(data).__name__}")
    return bytes(data)
