"""Host misuse of the IB700, on both implementations.

API.md conventions: "`size` is 1, 2 or 4. Anything else from the host is ValueError";
"A value out of range for its size, a negative time, time going backwards, a non-int:
ValueError or TypeError with a message that names the argument, and the device state
is unchanged"; restore: "bad data -> ValueError, device unchanged".  SPEC §1.4:
"0 ≤ t ≤ 2^63−1 (beyond: ValueError)"; §5.2: ports 0..0xFFFF, "beyond is ValueError".

Every error case checks that the device is unchanged: the same snapshot before and
after, the same event log, and a device that still arms and expires normally.

Sections:
1. a device with some history, and the unchanged-state check
2. io_write / io_read arguments: size, value, port, non-ints, __index__
3. time arguments: delta_ns, t_ns
4. restore() with bad data
5. the action attribute
6. the compiled core and the twin raise the same errors
"""
from __future__ import annotations

import struct
import zlib

import pytest

from wdcore import WatchdogAction, WatchdogEvent, _select, _snapshot

from .conftest import S

TIME_MAX = (1 << 63) - 1
NON_INTS = [1.0, "1", None, b"\x01"]
NON_INT_IDS = ["float", "str", "None", "bytes"]


# ---------------------------------------------------------------------------------
# 1. A device with history, and the check that misuse changed nothing
# ---------------------------------------------------------------------------------

def busy(IB700):
    """A device at 4 s with one past expiry (3 s), armed for 8 s, action debug."""
    dev = IB700(action="debug", on_expire=lambda e: None)
    dev.advance(S)
    dev.io_write(0x443, 1, 0x0E)      # 2 s -> fires at 3 s
    dev.advance(3 * S)
    dev.io_write(0x443, 1, 0x0D)      # 4 s -> deadline 8 s
    assert dev.events == [WatchdogEvent(3 * S, "ib700", WatchdogAction.DEBUG)]
    assert dev.next_deadline == 8 * S
    return dev


class Unchanged:
    """Context manager: the device's snapshot, events and callback are the same after
    the block, and it still expires at its pending deadline (8 s for ``busy``)."""

    def __init__(self, dev):
        self.dev = dev

    def __enter__(self):
        self.snap = self.dev.snapshot()
        self.events = list(self.dev.events)
        self.cb = self.dev.on_expire
        self.action = self.dev.action
        return self.dev

    def __exit__(self, *exc):
        dev = self.dev
        assert dev.snapshot() == self.snap
        assert dev.events == self.events
        assert dev.on_expire is self.cb
        assert dev.action is self.action
        return False


def assert_still_works(dev):
    """The device still arms and expires normally: a 2 s arm, one ns before / at /
    after."""
    t0 = dev.now
    n = len(dev.events)
    dev.io_write(0x443, 1, 0x0E)
    assert dev.advance_to(t0 + 2 * S - 1) == 0
    assert dev.advance_to(t0 + 2 * S) == 1
    assert dev.advance_to(t0 + 2 * S + 1) == 0
    assert len(dev.events) == n + 1
    assert dev.events[-1].time_ns == t0 + 2 * S


def expect_error(dev, exc_type, name, call, *args):
    """``call(*args)`` raises ``exc_type`` naming ``name``; ``dev`` is unchanged."""
    with Unchanged(dev):
        with pytest.raises(exc_type) as info:
            call(*args)
    assert name in str(info.value), str(info.value)
    assert dev.next_deadline == 8 * S
    return info.value


# ---------------------------------------------------------------------------------
# 2. io_write / io_read arguments
# ---------------------------------------------------------------------------------

BAD_SIZES = [0, 3, 8, -1, 5, 2**64, -(2**64)]


@pytest.mark.parametrize("size", BAD_SIZES)
def test_io_write_bad_size(IB700, size):
    """API.md: "`size` is 1, 2 or 4. Anything else from the host is ValueError"."""
    dev = busy(IB700)
    expect_error(dev, ValueError, "size", dev.io_write, 0x443, size, 0x0F)
    assert_still_works(dev)


@pytest.mark.parametrize("size", BAD_SIZES)
def test_io_read_bad_size(IB700, size):
    dev = busy(IB700)
    expect_error(dev, ValueError, "size", dev.io_read, 0x443, size)


@pytest.mark.parametrize("size,value", [
    (1, 0x100), (2, 0x10000), (4, 2**32),
    (1, -1), (2, -1), (4, -1),
    (1, 0x10F), (2, 0x1000F), (4, 2**64), (4, 2**100), (1, -(2**64)),
])
def test_io_write_value_out_of_range(IB700, size, value):
    """API.md: "A value out of range for its size ... ValueError ... that names the
    argument".  0x10F with size 1 would arm 0 s if truncated: it must not."""
    dev = busy(IB700)
    expect_error(dev, ValueError, "value", dev.io_write, 0x443, size, value)
    assert dev.events == [WatchdogEvent(3 * S, "ib700", WatchdogAction.DEBUG)]
    assert_still_works(dev)


@pytest.mark.parametrize("size,largest", [(1, 0xFF), (2, 0xFFFF), (4, 0xFFFFFFFF)])
def test_io_write_largest_value_accepted(IB700, size, largest):
    """Boundary: the largest value of each width is in range; one more is not."""
    dev = busy(IB700)
    dev.io_write(0x440, size, largest)        # not the device's port: no effect
    dev.io_write(0x440, size, 0)
    expect_error(dev, ValueError, "value", dev.io_write, 0x440, size, largest + 1)


@pytest.mark.parametrize("port", [-1, 0x10000, 0x10443, -0x443, 2**64, -(2**64)])
def test_io_write_bad_port(IB700, port):
    """SPEC §5.2: "I/O map (ports 0..0xFFFF; beyond is ValueError)".  0x10443 would
    hit 0x443 if truncated to 16 bits."""
    dev = busy(IB700)
    expect_error(dev, ValueError, "port", dev.io_write, port, 1, 0x0F)
    assert_still_works(dev)


@pytest.mark.parametrize("port", [-1, 0x10000, 2**64])
def test_io_read_bad_port(IB700, port):
    dev = busy(IB700)
    expect_error(dev, ValueError, "port", dev.io_read, port, 1)


@pytest.mark.parametrize("port", [0, 0xFFFF])
def test_port_range_ends_accepted(IB700, port):
    dev = busy(IB700)
    with Unchanged(dev):
        dev.io_write(port, 1, 0x0F)
        assert dev.io_read(port, 1) == 0xFF


@pytest.mark.parametrize("bad", NON_INTS, ids=NON_INT_IDS)
@pytest.mark.parametrize("param", ["port", "size", "value"])
def test_io_write_non_int(IB700, param, bad):
    """API.md: "a non-int: ... TypeError with a message that names the argument"."""
    dev = busy(IB700)
    args = {"port": 0x443, "size": 1, "value": 0x0F}
    args[param] = bad
    expect_error(dev, TypeError, param, dev.io_write,
                 args["port"], args["size"], args["value"])
    assert_still_works(dev)


@pytest.mark.parametrize("bad", NON_INTS, ids=NON_INT_IDS)
@pytest.mark.parametrize("param", ["port", "size"])
def test_io_read_non_int(IB700, param, bad):
    dev = busy(IB700)
    args = {"port": 0x443, "size": 1}
    args[param] = bad
    expect_error(dev, TypeError, param, dev.io_read, args["port"], args["size"])


class Index:
    """A tiny int-like (numpy scalars behave the same way): has ``__index__``."""

    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


class IntOnly:
    """Has ``__int__`` but no ``__index__``: not an int (like float or Decimal)."""

    def __int__(self):
        return 1


def test_index_objects_accepted(IB700):
    """API.md: ints are what the API takes; objects with ``__index__`` are ints to
    Python (operator.index)."""
    dev = IB700()
    assert dev.advance(Index(S)) == 0
    assert dev.now == S
    dev.io_write(Index(0x443), Index(1), Index(0x0E))
    assert dev.next_deadline == 3 * S
    assert dev.io_read(Index(0x443), Index(2)) == 0xFFFF
    assert dev.advance_to(Index(3 * S - 1)) == 0
    assert dev.advance_to(Index(3 * S)) == 1
    assert dev.events == [WatchdogEvent(3 * S, "ib700", WatchdogAction.RESET)]
    dev.io_write(Index(0x443), Index(2), Index(0x0F0E))   # 2 s, then 0 s: fires now
    assert dev.events[-1].time_ns == 3 * S


def test_index_object_out_of_range_rejected(IB700):
    dev = busy(IB700)
    expect_error(dev, ValueError, "value", dev.io_write, 0x443, 1, Index(0x100))
    expect_error(dev, ValueError, "port", dev.io_write, Index(-1), 1, 0)
    expect_error(dev, ValueError, "size", dev.io_write, 0x443, Index(3), 0)
    expect_error(dev, ValueError, "delta_ns", dev.advance, Index(-1))


@pytest.mark.parametrize("param", ["port", "size", "value"])
def test_int_only_objects_rejected(IB700, param):
    dev = busy(IB700)
    args = {"port": 0x443, "size": 1, "value": 0x0F}
    args[param] = IntOnly()
    expect_error(dev, TypeError, param, dev.io_write,
                 args["port"], args["size"], args["value"])


# ---------------------------------------------------------------------------------
# 3. Time arguments (SPEC §1.4)
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad", NON_INTS + [IntOnly(), 1.5, float("nan")],
                         ids=NON_INT_IDS + ["int-only", "float1.5", "nan"])
def test_advance_non_int(IB700, bad):
    dev = busy(IB700)
    expect_error(dev, TypeError, "delta_ns", dev.advance, bad)


@pytest.mark.parametrize("bad", NON_INTS + [IntOnly(), 1.5, float("nan")],
                         ids=NON_INT_IDS + ["int-only", "float1.5", "nan"])
def test_advance_to_non_int(IB700, bad):
    dev = busy(IB700)
    expect_error(dev, TypeError, "t_ns", dev.advance_to, bad)


@pytest.mark.parametrize("delta", [-1, -S, -(2**63), -(2**64)])
def test_advance_negative(IB700, delta):
    """API.md: "a negative time ... ValueError"."""
    dev = busy(IB700)
    expect_error(dev, ValueError, "delta_ns", dev.advance, delta)
    assert_still_works(dev)


def test_advance_past_time_max(IB700):
    """§1.4: "0 ≤ t ≤ 2^63−1 (beyond: ValueError)" — one ns before / at / after."""
    dev = busy(IB700)
    room = TIME_MAX - dev.now
    for delta in (room + 1, TIME_MAX, 2**63, 2**64):
        expect_error(dev, ValueError, "delta_ns", dev.advance, delta)
    dev.io_write(0x441, 1, 0)
    dev.advance(room - 1)
    assert dev.now == TIME_MAX - 1
    dev.advance(1)
    assert dev.now == TIME_MAX
    with pytest.raises(ValueError, match="delta_ns"):
        dev.advance(1)
    assert dev.now == TIME_MAX
    assert dev.advance(0) == 0


def test_advance_from_zero_to_time_max(IB700):
    dev = IB700()
    assert dev.advance(TIME_MAX) == 0
    assert dev.now == TIME_MAX


@pytest.mark.parametrize("back", [1, S, 4 * S])
def test_advance_to_backwards(IB700, back):
    """API.md: "time going backwards ... ValueError"."""
    dev = busy(IB700)
    expect_error(dev, ValueError, "t_ns", dev.advance_to, dev.now - back)
    assert dev.advance_to(dev.now) == 0      # exactly now is fine
    assert_still_works(dev)


@pytest.mark.parametrize("t", [-1, 2**63, 2**63 + 8 * S, 2**64, -(2**64)])
def test_advance_to_out_of_range(IB700, t):
    """§1.4: "0 ≤ t ≤ 2^63−1 (beyond: ValueError)"."""
    dev = busy(IB700)
    expect_error(dev, ValueError, "t_ns", dev.advance_to, t)
    assert_still_works(dev)


def test_advance_to_time_max_accepted(IB700):
    dev = busy(IB700)
    assert dev.advance_to(TIME_MAX) == 1     # the 8 s deadline fires on the way
    assert dev.now == TIME_MAX


# ---------------------------------------------------------------------------------
# 4. restore() with bad data (API.md: "bad data -> ValueError, device unchanged")
# ---------------------------------------------------------------------------------

def ib700_payload(now=10 * S, action=0, armed=1, deadline=12 * S, seq=0, counter=1):
    return struct.pack("<QBBQQQ", now, action, armed, deadline, seq, counter)


def good_snapshot(**kw):
    return _snapshot.wrap(_snapshot.KIND_IB700, ib700_payload(**kw))


def with_crc(body: bytes) -> bytes:
    """Re-seal a modified envelope so that only the intended field is wrong."""
    return body + struct.pack("<I", zlib.crc32(body))


def test_reference_snapshot_is_valid(IB700):
    """The builder below makes a valid snapshot; every bad case is one change away."""
    dev = IB700()
    dev.restore(good_snapshot())
    assert dev.now == 10 * S
    assert dev.next_deadline == 12 * S
    assert dev.action is WatchdogAction.RESET


@pytest.mark.parametrize("data", ["WDCS", None, 123, [1, 2], bytes], ids=repr)
def test_restore_non_bytes(IB700, data):
    dev = busy(IB700)
    expect_error(dev, TypeError, "data", dev.restore, data)
    assert_still_works(dev)


def _bad_envelopes():
    good = good_snapshot()
    body = good[:-4]
    flipped_payload = bytearray(good)
    flipped_payload[12] ^= 0x01
    flipped_crc = bytearray(good)
    flipped_crc[-1] ^= 0x80
    header = struct.Struct("<4sHBI")
    payload = ib700_payload()
    return {
        "empty": b"",
        "one-byte": b"W",
        "truncated-by-one": good[:-1],
        "header-only": good[:header.size],
        "trailing-byte": good + b"\0",
        "bad-magic": with_crc(b"XDCS" + body[4:]),
        "version-0": with_crc(header.pack(b"WDCS", 0, _snapshot.KIND_IB700, len(payload))
                              + payload),
        "version-2": with_crc(header.pack(b"WDCS", _snapshot.FORMAT_VERSION + 1,
                                          _snapshot.KIND_IB700, len(payload)) + payload),
        "kind-i6300esb": _snapshot.wrap(_snapshot.KIND_I6300ESB, payload),
        "kind-machine": _snapshot.wrap(_snapshot.KIND_MACHINE, payload),
        "kind-unknown": _snapshot.wrap(99, payload),
        "length-field-wrong": with_crc(header.pack(b"WDCS", _snapshot.FORMAT_VERSION,
                                                   _snapshot.KIND_IB700, len(payload) + 1)
                                       + payload),
        "payload-short": _snapshot.wrap(_snapshot.KIND_IB700, payload[:-1]),
        "payload-long": _snapshot.wrap(_snapshot.KIND_IB700, payload + b"\0"),
        "flipped-payload-byte": bytes(flipped_payload),
        "flipped-crc-byte": bytes(flipped_crc),
    }


BAD_ENVELOPES = _bad_envelopes()


@pytest.mark.parametrize("name", list(BAD_ENVELOPES))
def test_restore_bad_envelope(IB700, name):
    """API.md: "bad data -> ValueError, device unchanged"; errors name the parameter
    (`data`)."""
    dev = busy(IB700)
    expect_error(dev, ValueError, "data", dev.restore, BAD_ENVELOPES[name])
    assert_still_works(dev)


@pytest.mark.parametrize("name", list(BAD_ENVELOPES))
def test_restore_bad_envelope_as_bytearray(IB700, name):
    dev = busy(IB700)
    expect_error(dev, ValueError, "data", dev.restore, bytearray(BAD_ENVELOPES[name]))


BAD_FIELDS = {
    "action-7": dict(action=7),
    "action-255": dict(action=255),
    "armed-2": dict(armed=2),
    "armed-255": dict(armed=255),
    "now-2**63": dict(now=2**63, deadline=2**63 + S),
    "now-2**64-1": dict(now=2**64 - 1, armed=0, deadline=0),
    "deadline-beyond-30s": dict(deadline=10 * S + 30 * S + 1),
    "deadline-far": dict(deadline=2**64 - 1),
    "disarmed-with-deadline": dict(armed=0, deadline=12 * S, seq=0),
    "disarmed-with-deadline-1ns": dict(armed=0, deadline=1, seq=0),
    "seq-equals-counter": dict(seq=1, counter=1),
    "seq-beyond-counter": dict(seq=5, counter=1),
    "counter-zero-armed": dict(seq=0, counter=0),
}


@pytest.mark.parametrize("name", list(BAD_FIELDS))
def test_restore_semantically_invalid(IB700, name):
    """§2.3 snapshot fields; §1.4 time range; §2.2: no timeout exceeds 30 s; a
    disarmed timer has no deadline; a sequence number comes from the counter."""
    dev = busy(IB700)
    expect_error(dev, ValueError, "data", dev.restore, good_snapshot(**BAD_FIELDS[name]))
    assert_still_works(dev)


@pytest.mark.parametrize("fields", [
    dict(deadline=10 * S + 30 * S - 1),   # one ns inside the longest timeout
    dict(deadline=10 * S + 30 * S),       # exactly the longest timeout
    dict(now=TIME_MAX, deadline=TIME_MAX + 30 * S),
    dict(now=TIME_MAX, armed=0, deadline=0),
    dict(seq=4, counter=5),
    dict(action=6),
    dict(deadline=3 * S),                 # overdue (§1.4 allows restoring it)
], ids=["30s-1ns", "30s", "now-max", "now-max-disarmed", "seq-counter-1", "action-6",
        "overdue"])
def test_restore_boundary_values_accepted(IB700, fields):
    """The valid side of each boundary above is accepted and restored exactly."""
    dev = busy(IB700)
    data = good_snapshot(**fields)
    dev.restore(data)
    assert dev.snapshot() == data


# ---------------------------------------------------------------------------------
# 5. The action attribute
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bad,exc", [
    ("bogus", ValueError), ("RESET", ValueError), ("", ValueError),
    (3, TypeError), (None, TypeError), (b"reset", TypeError),
])
def test_set_bad_action(IB700, bad, exc):
    """API.md: action is a WatchdogAction or its wire name; misuse names it."""
    dev = busy(IB700)
    with Unchanged(dev):
        with pytest.raises(exc, match="action"):
            dev.action = bad
    assert dev.action is WatchdogAction.DEBUG
    dev.io_write(0x443, 1, 0x0F)
    assert dev.events[-1].action is WatchdogAction.DEBUG


@pytest.mark.parametrize("bad,exc", [("bogus", ValueError), (3, TypeError)])
def test_construct_with_bad_action(IB700, bad, exc):
    with pytest.raises(exc, match="action"):
        IB700(action=bad)


# ---------------------------------------------------------------------------------
# 6. Same error type and message from the compiled core and the twin
# ---------------------------------------------------------------------------------

def _both():
    try:
        compiled = _select.implementation("compiled").IB700
    except (ImportError, ValueError) as exc:
        pytest.skip(f"compiled core unavailable: {exc}")
    return compiled, _select.implementation("python").IB700


CROSS_CASES = {
    "size-3": lambda d: d.io_write(0x443, 3, 0),
    "size-2**64": lambda d: d.io_write(0x443, 2**64, 0),
    "size-float": lambda d: d.io_read(0x443, 1.0),
    "value-0x100": lambda d: d.io_write(0x443, 1, 0x100),
    "value-neg": lambda d: d.io_write(0x443, 2, -1),
    "value-2**64": lambda d: d.io_write(0x443, 4, 2**64),
    "value-str": lambda d: d.io_write(0x443, 1, "1"),
    "port-neg": lambda d: d.io_write(-1, 1, 0),
    "port-0x10000": lambda d: d.io_read(0x10000, 1),
    "port-2**70": lambda d: d.io_read(2**70, 1),
    "port-None": lambda d: d.io_write(None, 1, 0),
    "delta-neg": lambda d: d.advance(-1),
    "delta-overflow": lambda d: d.advance(TIME_MAX),
    "delta-2**64": lambda d: d.advance(2**64),
    "delta-bytes": lambda d: d.advance(b"\x01"),
    "t-backwards": lambda d: d.advance_to(S),
    "t-2**63": lambda d: d.advance_to(2**63),
    "t-neg": lambda d: d.advance_to(-1),
    "t-float": lambda d: d.advance_to(5.0 * S),
    "restore-empty": lambda d: d.restore(b""),
    "restore-str": lambda d: d.restore("x"),
    "restore-magic": lambda d: d.restore(BAD_ENVELOPES["bad-magic"]),
    "restore-crc": lambda d: d.restore(BAD_ENVELOPES["flipped-payload-byte"]),
    "restore-armed-2": lambda d: d.restore(good_snapshot(armed=2)),
    "action-bogus": lambda d: setattr(d, "action", "bogus"),
    "action-3": lambda d: setattr(d, "action", 3),
}


@pytest.mark.parametrize("case", list(CROSS_CASES))
def test_same_error_from_both_implementations(case):
    """API.md: the twin has "the identical API and behaviour" — errors included."""
    Compiled, Twin = _both()
    results = []
    for cls in (Compiled, Twin):
        dev = busy(cls)
        with Unchanged(dev):
            with pytest.raises((TypeError, ValueError)) as info:
                CROSS_CASES[case](dev)
        results.append((type(info.value), str(info.value)))
    assert results[0] == results[1]
