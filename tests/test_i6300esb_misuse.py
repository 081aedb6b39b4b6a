"""Host misuse of the i6300ESB, on both implementations.

API.md conventions: "`size` is 1, 2 or 4. Anything else from the host is ValueError";
"A value out of range for its size, a negative time, time going backwards, a non-int:
ValueError or TypeError with a message that names the argument, and the device state is
unchanged"; "Errors from host misuse name the offending parameter as spelled in the
signature (size, value, delta_ns, t_ns, offset, port, data, ...)"; restore: "bad data ->
ValueError, device unchanged".  SPEC §3.2: config "offset 0..0xFF (else ValueError)";
§3.5: MMIO "0 ≤ offset, offset+size ≤ 16 (else ValueError)"; §1.2: a profile other than
"qemu" / "qemu-7.2" "is ValueError"; §3.10: "restore validates every field (preloads ≤
0xFFFFF, stage 1/2, unlock_state ≤ 2, flags 0/1, kind) and on error raises ValueError, the
device unchanged".

Every error case checks that the device is unchanged: the same snapshot before and after,
the same event log, callbacks and IRQ history, and a device that still expires at its
pending deadline.

Sections:
1. a device with some history, and the unchanged-state check
2. config_read / config_write arguments
3. mmio_read / mmio_write arguments
4. constructor arguments
5. time arguments
6. restore() with bad data: envelopes, then semantically invalid payloads
7. the compiled core and the twin raise the same errors
"""
from __future__ import annotations

import struct

import pytest

from wdcore import WatchdogAction, WatchdogEvent, _select, _snapshot
from wdcore._core_py import piece_size

from .conftest import S

TIME_MAX = (1 << 63) - 1
MAX_STAGE_NS = 1_030_791_168_000       # §3.9: the longest stage (0xFFFFF at 1 kHz)
NON_INTS = [1.0, "1", None, b"\x01"]
NON_INT_IDS = ["float", "str", "None", "bytes"]

# docs/snapshot.md, i6300ESB payload, in order
ESB_FMT = struct.Struct("<QBBQQQ BBBBBBBB II BBBB 256s")
ESB_FIELDS = ("now", "action", "armed", "deadline", "seq", "counter", "profile", "s1i",
              "enabled", "locked", "free_run", "reboot_disabled", "one_mhz", "int_type",
              "preload1", "preload2", "stage", "unlock", "prev_reboot", "gintsr", "cfg")


@pytest.fixture
def ESB(impl):
    return _select.implementation(impl).I6300ESB


# ---------------------------------------------------------------------------------
# 1. A device with history, and the check that misuse changed nothing
# ---------------------------------------------------------------------------------

def dur(preload: int, one_mhz: bool = False) -> int:
    """§3.6: "duration(P) = (P << 15) × 30 ns at 1 kHz, (P << 5) × 30 ns at 1 MHz"."""
    return (preload << (5 if one_mhz else 15)) * 30


def unlock(dev) -> None:
    dev.mmio_write(0x0C, 2, 0x80)
    dev.mmio_write(0x0C, 2, 0x86)


def load(dev, p1, p2) -> None:
    unlock(dev)
    dev.mmio_write(0x00, 4, p1)
    unlock(dev)
    dev.mmio_write(0x04, 4, p2)


class Recorder:
    """An on_irq callback that keeps the levels it was called with."""

    def __init__(self):
        self.calls = []

    def __call__(self, level):
        self.calls.append(level)


T_TRIP = S + 1_920                        # the past expiry
T_ENABLE = T_TRIP + 10
DEADLINE = T_ENABLE + 2 * dur(10)         # stage 2 ends here


def busy(ESB):
    """A device with history: extension on, BAR0/command/raw bytes set, one past expiry
    (flag set), running in stage 2 with GINTSR raised and the unlock machine in state 1;
    action debug, both callbacks installed."""
    dev = ESB(action="debug", on_expire=lambda e: None, stage1_interrupt=True)
    dev.on_irq = Recorder()
    dev.advance(S)
    dev.config_write(0x04, 2, 0x0002)
    dev.config_write(0x10, 4, 0xFEBF1000)
    dev.config_write(0x40, 4, 0x12345678)
    dev.config_write(0x60, 2, 0x0004)               # 1 MHz, preloads 1/1: 1 920 ns
    load(dev, 1, 1)
    dev.config_write(0x68, 1, 0x02)
    assert dev.advance_to(T_TRIP) == 1
    dev.advance_to(T_ENABLE)
    dev.config_write(0x60, 2, 0x0000)                # 1 kHz, INT_TYPE 0
    load(dev, 10, 10)
    dev.config_write(0x68, 1, 0x02)
    dev.advance(dur(10) + 5)                          # stage 2, GINTSR set
    dev.mmio_write(0x0C, 2, 0x80)                     # unlock state 1
    assert dev.events == [WatchdogEvent(T_TRIP, "i6300esb", WatchdogAction.DEBUG)]
    assert dev.stage == 2
    assert dev.irq_level is True
    assert dev.next_deadline == DEADLINE
    assert dev.mmio_read(0x0C, 2) == 0x1200
    assert dev.on_irq.calls == [True, False, True]   # trip raised, reset cleared, raised
    return dev


class Unchanged:
    """Context manager: the device's snapshot, events, callbacks, action, IRQ level and
    the host-visible registers are the same after the block."""

    def __init__(self, dev):
        self.dev = dev

    def _view(self):
        d = self.dev
        irq_calls = list(d.on_irq.calls) if isinstance(d.on_irq, Recorder) else None
        return (d.snapshot(), list(d.events), d.on_expire, d.on_irq, irq_calls, d.action,
                d.irq_level,
                d.now, d.stage, d.next_deadline, d.remaining_ns,
                d.config_read(0x60, 2), d.config_read(0x68, 1), d.mmio_read(0x08, 4),
                d.mmio_read(0x0C, 2), tuple(d.config_read(o, 4) for o in range(0, 256, 4)))

    def __enter__(self):
        self.before = self._view()
        return self.dev

    def __exit__(self, *exc):
        assert self._view() == self.before
        return False


def assert_still_works(dev) -> None:
    """The pending stage 2 still ends at DEADLINE with one event; the unlock machine is
    still in state 1 (0x86 then a reload pings)."""
    clone_snapshot = dev.snapshot()
    assert dev.advance_to(DEADLINE - 1) == 0
    assert dev.advance_to(DEADLINE) == 1
    assert dev.events[-1] == WatchdogEvent(DEADLINE, "i6300esb", WatchdogAction.DEBUG)
    dev.restore(clone_snapshot)
    dev.mmio_write(0x0C, 2, 0x86)
    dev.mmio_write(0x0C, 2, 0x0100)
    assert dev.stage == 1
    assert dev.next_deadline == dev.now + dur(10)


def expect_error(dev, exc_type, name, call, *args):
    """``call(*args)`` raises ``exc_type`` naming ``name``; ``dev`` is unchanged."""
    with Unchanged(dev):
        with pytest.raises(exc_type) as info:
            call(*args)
    assert not isinstance(info.value, OverflowError), repr(info.value)
    assert name in str(info.value), str(info.value)
    return info.value


def test_busy_device_still_works(ESB):
    """The reference device above behaves as described (baseline for every case)."""
    assert_still_works(busy(ESB))


# ---------------------------------------------------------------------------------
# 2. config_read / config_write (SPEC §3.2: "offset 0..0xFF (else ValueError)")
# ---------------------------------------------------------------------------------

BAD_CFG_OFFSETS = [-1, 0x100, 0x168, 0x1060, 0x10000, 2**32, 2**32 + 0x68, 2**64,
                   -(2**64)]


@pytest.mark.parametrize("offset", BAD_CFG_OFFSETS, ids=hex)
def test_config_write_bad_offset(ESB, offset):
    """0x168 and 2**32 + 0x68 would reach the WDT Lock (0x03: enable and lock) if
    truncated; they must not."""
    dev = busy(ESB)
    expect_error(dev, ValueError, "offset", dev.config_write, offset, 1, 0x03)
    assert_still_works(dev)


@pytest.mark.parametrize("offset", BAD_CFG_OFFSETS, ids=hex)
@pytest.mark.parametrize("size", [1, 2, 4])
def test_config_read_bad_offset(ESB, offset, size):
    dev = busy(ESB)
    err = expect_error(dev, ValueError, "offset", dev.config_read, offset, size)
    assert "0..0xff" in str(err), str(err)
    assert_still_works(dev)


@pytest.mark.parametrize("offset,size", [(0x00, 4), (0xFF, 1), (0xFF, 2), (0xFF, 4),
                                         (0xFD, 4)])
def test_config_offset_range_ends_accepted(ESB, offset, size):
    """§3.2: "offset 0..0xFF ..., size 1/2/4, any alignment" — lanes past 0xFF read 0."""
    dev = busy(ESB)
    with Unchanged(dev):
        value = dev.config_read(offset, size)
    assert 0 <= value < 1 << (8 * size)


BAD_SIZES = [0, 3, 8, -1, 5, 16, 2**64, -(2**64)]


@pytest.mark.parametrize("size", BAD_SIZES)
def test_config_write_bad_size(ESB, size):
    """API.md: "`size` is 1, 2 or 4. Anything else from the host is ValueError"."""
    dev = busy(ESB)
    expect_error(dev, ValueError, "size", dev.config_write, 0x68, size, 0x03)
    assert_still_works(dev)


@pytest.mark.parametrize("size", BAD_SIZES)
def test_config_read_bad_size(ESB, size):
    dev = busy(ESB)
    err = expect_error(dev, ValueError, "size", dev.config_read, 0x60, size)
    assert str(err) == f"size must be 1, 2 or 4, not {size}"
    assert_still_works(dev)


@pytest.mark.parametrize("offset,size,value", [
    (0x68, 1, 0x103),          # 0x03 if truncated: enable and lock
    (0x68, 1, 0x100),
    (0x60, 2, 0x10020),        # 0x20 if truncated: reboot disabled
    (0x10, 4, 2**32),
    (0x10, 4, 2**64 + 0x1000),
    (0x40, 1, -1),
    (0x40, 2, -0x10000),
    (0x40, 4, -(2**64)),
    (0x04, 2, 0x10002),
])
def test_config_write_value_out_of_range(ESB, offset, size, value):
    """API.md: "A value out of range for its size ... ValueError ... that names the
    argument, and the device state is unchanged"."""
    dev = busy(ESB)
    expect_error(dev, ValueError, "value", dev.config_write, offset, size, value)
    assert_still_works(dev)


@pytest.mark.parametrize("size,largest", [(1, 0xFF), (2, 0xFFFF), (4, 0xFFFFFFFF)])
def test_config_write_largest_value_accepted(ESB, size, largest):
    dev = busy(ESB)
    dev.config_write(0x40, size, largest)
    assert dev.config_read(0x40, size) == largest
    expect_error(dev, ValueError, "value", dev.config_write, 0x40, size, largest + 1)


@pytest.mark.parametrize("bad", NON_INTS, ids=NON_INT_IDS)
@pytest.mark.parametrize("param", ["offset", "size", "value"])
def test_config_write_non_int(ESB, param, bad):
    """API.md: "a non-int: ... TypeError with a message that names the argument"."""
    dev = busy(ESB)
    args = {"offset": 0x68, "size": 1, "value": 0x03}
    args[param] = bad
    expect_error(dev, TypeError, param, dev.config_write,
                 args["offset"], args["size"], args["value"])
    assert_still_works(dev)


@pytest.mark.parametrize("bad", NON_INTS, ids=NON_INT_IDS)
@pytest.mark.parametrize("param", ["offset", "size"])
def test_config_read_non_int(ESB, param, bad):
    dev = busy(ESB)
    args = {"offset": 0x60, "size": 2}
    args[param] = bad
    err = expect_error(dev, TypeError, param, dev.config_read, args["offset"], args["size"])
    assert str(err) == f"{param} must be an int, not {type(bad).__name__}"
    assert_still_works(dev)


# ---------------------------------------------------------------------------------
# 3. mmio_read / mmio_write (SPEC §3.5: "0 ≤ offset, offset+size ≤ 16 (else ValueError)")
# ---------------------------------------------------------------------------------

BAD_MMIO = [(16, 1), (15, 2), (14, 4), (13, 4), (15, 4), (16, 4), (17, 1), (0x100C, 2),
            (2**32 + 0x0C, 2), (2**64, 1), (-1, 1), (-2, 2), (-4, 4), (-(2**64), 4)]
BAD_MMIO_IDS = [f"{o:#x}+{s}" if o >= 0 else f"-{-o:#x}+{s}" for o, s in BAD_MMIO]


@pytest.mark.parametrize("offset,size", BAD_MMIO, ids=BAD_MMIO_IDS)
def test_mmio_write_bad_offset(ESB, offset, size):
    """0x100C and 2**32 + 0x0C would reach the reload register if truncated: 0x86
    completes the pending unlock there; it must not."""
    dev = busy(ESB)
    expect_error(dev, ValueError, "offset", dev.mmio_write, offset, size, 0x86)
    assert_still_works(dev)


@pytest.mark.parametrize("offset,size", BAD_MMIO, ids=BAD_MMIO_IDS)
def test_mmio_read_bad_offset(ESB, offset, size):
    dev = busy(ESB)
    err = expect_error(dev, ValueError, "offset", dev.mmio_read, offset, size)
    assert str(err) == f"offset {offset} with size {size} is outside the 16-byte BAR0"
    assert_still_works(dev)


@pytest.mark.parametrize("offset,size", [(0, 4), (12, 4), (14, 2), (15, 1), (13, 2),
                                         (11, 4)])
def test_mmio_range_ends_accepted(ESB, offset, size):
    """§3.5: an access is cut into naturally aligned pieces; at the window's end a read
    is accepted and reads what its pieces read one by one."""
    dev = busy(ESB)
    with Unchanged(dev):
        value = dev.mmio_read(offset, size)
    pieces, off = 0, 0
    while off < size:
        n = piece_size(offset + off, size - off)
        pieces |= dev.mmio_read(offset + off, n) << (8 * off)
        off += n
    assert 0 <= value < 1 << (8 * size)
    assert value == pieces
    assert_still_works(dev)


@pytest.mark.parametrize("size", BAD_SIZES)
def test_mmio_write_bad_size(ESB, size):
    dev = busy(ESB)
    expect_error(dev, ValueError, "size", dev.mmio_write, 0x0C, size, 0x86)
    assert_still_works(dev)


@pytest.mark.parametrize("size", BAD_SIZES)
def test_mmio_read_bad_size(ESB, size):
    dev = busy(ESB)
    err = expect_error(dev, ValueError, "size", dev.mmio_read, 0x0C, size)
    assert str(err) == f"size must be 1, 2 or 4, not {size}"
    assert_still_works(dev)


@pytest.mark.parametrize("offset,size,value", [
    (0x0C, 2, 0x10086),        # 0x86 if truncated: completes the unlock
    (0x0C, 1, 0x186),
    (0x08, 1, 0x101),          # 0x01 if truncated: clears GINTSR
    (0x08, 2, 0x10001),
    (0x00, 4, 2**32 + 5),
    (0x00, 4, 2**64),
    (0x0C, 2, -1),
    (0x08, 4, -(2**32)),
])
def test_mmio_write_value_out_of_range(ESB, offset, size, value):
    dev = busy(ESB)
    expect_error(dev, ValueError, "value", dev.mmio_write, offset, size, value)
    assert dev.irq_level is True
    assert_still_works(dev)


@pytest.mark.parametrize("bad", NON_INTS, ids=NON_INT_IDS)
@pytest.mark.parametrize("param", ["offset", "size", "value"])
def test_mmio_write_non_int(ESB, param, bad):
    dev = busy(ESB)
    args = {"offset": 0x0C, "size": 2, "value": 0x86}
    args[param] = bad
    expect_error(dev, TypeError, param, dev.mmio_write,
                 args["offset"], args["size"], args["value"])
    assert_still_works(dev)


@pytest.mark.parametrize("bad", NON_INTS, ids=NON_INT_IDS)
@pytest.mark.parametrize("param", ["offset", "size"])
def test_mmio_read_non_int(ESB, param, bad):
    dev = busy(ESB)
    args = {"offset": 0x0C, "size": 2}
    args[param] = bad
    err = expect_error(dev, TypeError, param, dev.mmio_read, args["offset"], args["size"])
    assert str(err) == f"{param} must be an int, not {type(bad).__name__}"
    assert_still_works(dev)


class Index:
    """An int-like with ``__index__`` (numpy scalars behave this way)."""

    def __init__(self, v):
        self.v = v

    def __index__(self):
        return self.v


def test_index_objects_accepted(ESB):
    """Objects with ``__index__`` are ints to Python (operator.index)."""
    dev = busy(ESB)
    dev.mmio_write(Index(0x0C), Index(2), Index(0x86))
    dev.mmio_write(Index(0x0C), Index(2), Index(0x0100))
    assert dev.stage == 1
    assert dev.config_read(Index(0x00), Index(2)) == 0x8086
    dev.config_write(Index(0x40), Index(1), Index(0xAB))
    assert dev.config_read(0x40, 1) == 0xAB
    assert dev.mmio_read(Index(0x08), Index(1)) == 1


def test_index_objects_out_of_range_rejected(ESB):
    """An ``__index__`` object is checked by its value, like the int it stands for."""
    dev = busy(ESB)
    errors = [expect_error(dev, ValueError, "offset", dev.config_write, Index(0x100), 1, 0),
              expect_error(dev, ValueError, "offset", dev.mmio_read, Index(16), 1),
              expect_error(dev, ValueError, "size", dev.mmio_write, 0x0C, Index(3), 0),
              expect_error(dev, ValueError, "value", dev.mmio_write, 0x0C, 1, Index(0x186))]
    assert [str(e) for e in errors] == [
        "offset must be in 0..0xff, not 256",
        "offset 16 with size 1 is outside the 16-byte BAR0",
        "size must be 1, 2 or 4, not 3",
        "value 0x186 does not fit in 1 byte(s)"]
    assert_still_works(dev)  # the refused 0x186 did not complete the unlock as 0x86


# ---------------------------------------------------------------------------------
# 4. Constructor arguments
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("profile", ["qemu-8", "", "QEMU", "qemu-7.2 ", "7.2", "qemu-7",
                                     "upstream", None])
def test_bad_profile(ESB, profile):
    """§1.2: "profile= on I6300ESB and Machine; anything else is ValueError"."""
    with pytest.raises(ValueError, match="profile"):
        ESB(profile=profile)


@pytest.mark.parametrize("value", [1, 0, "yes", None, 1.0])
def test_stage1_interrupt_must_be_bool(ESB, value):
    """API.md: stage1_interrupt=False is a bool; 1 (an int) is a TypeError naming it."""
    with pytest.raises(TypeError, match="stage1_interrupt"):
        ESB(stage1_interrupt=value)


@pytest.mark.parametrize("bad,exc", [("bogus", ValueError), ("RESET", ValueError),
                                     (3, TypeError), (None, TypeError)])
def test_bad_action(ESB, bad, exc):
    with pytest.raises(exc, match="action"):
        ESB(action=bad)
    dev = busy(ESB)
    with Unchanged(dev):
        with pytest.raises(exc, match="action"):
            dev.action = bad


# ---------------------------------------------------------------------------------
# 5. Time arguments (SPEC §1.4, API.md)
# ---------------------------------------------------------------------------------

@pytest.mark.parametrize("delta", [-1, -S, TIME_MAX, 2**64])
def test_advance_bad_delta(ESB, delta):
    dev = busy(ESB)
    expect_error(dev, ValueError, "delta_ns", dev.advance, delta)
    assert_still_works(dev)


@pytest.mark.parametrize("back", [1, S])
def test_advance_to_backwards(ESB, back):
    dev = busy(ESB)
    expect_error(dev, ValueError, "t_ns", dev.advance_to, dev.now - back)
    assert_still_works(dev)


@pytest.mark.parametrize("bad", NON_INTS + [1.5], ids=NON_INT_IDS + ["1.5"])
def test_advance_non_int(ESB, bad):
    dev = busy(ESB)
    errors = [expect_error(dev, TypeError, "delta_ns", dev.advance, bad),
              expect_error(dev, TypeError, "t_ns", dev.advance_to, bad)]
    kind = type(bad).__name__
    assert [str(e) for e in errors] == [f"delta_ns must be an int, not {kind}",
                                        f"t_ns must be an int, not {kind}"]
    assert_still_works(dev)


# ---------------------------------------------------------------------------------
# 6. restore() with bad data
# ---------------------------------------------------------------------------------

def fields_of(dev) -> dict:
    return dict(zip(ESB_FIELDS, ESB_FMT.unpack(
        _snapshot.unwrap(dev.snapshot(), _snapshot.KIND_I6300ESB))))


def make_snapshot(base: dict, **changes) -> bytes:
    f = dict(base)
    cfg = bytearray(f["cfg"])
    for o, b in changes.pop("cfg_bytes", {}).items():
        cfg[o] = b
    f["cfg"] = bytes(cfg)
    f.update(changes)
    return _snapshot.wrap(_snapshot.KIND_I6300ESB, ESB_FMT.pack(*(f[k] for k in ESB_FIELDS)))


@pytest.fixture
def base(ESB):
    """The fields of a valid, armed state (a busy device one ms later, on profile "qemu")."""
    src = busy(ESB)
    src.advance(1_000_000)
    return fields_of(src)


def _profile_code(ESB, name):
    return fields_of(ESB(profile=name))["profile"]


def test_reference_snapshot_is_valid(ESB, base):
    """The builder makes a valid snapshot; every bad case below is one change away."""
    data = make_snapshot(base)
    dev = ESB(stage1_interrupt=True)                 # built as busy()'s
    dev.restore(data)
    assert dev.snapshot() == data
    assert dev.next_deadline == DEADLINE
    assert dev.irq_level is True


def bad_field_cases(ESB, base):
    cfg = base["cfg"]
    q72 = _profile_code(ESB, "qemu-7.2")
    now = base["now"]
    cases = {
        "preload1-0x100000": dict(preload1=0x100000),
        "preload2-0x100000": dict(preload2=0x100000),
        "preload1-all-ones": dict(preload1=0xFFFFFFFF),
        "stage-0": dict(stage=0),
        "stage-3": dict(stage=3),
        "stage-255": dict(stage=255),
        "unlock-3": dict(unlock=3),
        "unlock-255": dict(unlock=255),
        "int_type-0x10-qemu": dict(int_type=0x10),
        "int_type-0x04-qemu": dict(int_type=0x04),
        "int_type-0x02-qemu-7.2": dict(profile=q72, int_type=0x02),
        "int_type-0x13-qemu-7.2": dict(profile=q72, int_type=0x13),
        "gintsr-without-extension": dict(s1i=0, gintsr=1),
        "armed-but-disabled": dict(enabled=0),
        "disarmed-with-deadline": dict(armed=0, seq=0),
        "deadline-beyond-longest-stage": dict(deadline=now + MAX_STAGE_NS + 1),
        "deadline-2**64-1": dict(deadline=2**64 - 1),
        "seq-equals-counter": dict(seq=base["counter"]),
        "seq-beyond-counter": dict(seq=base["counter"] + 5),
        "action-7": dict(action=7),
        "action-255": dict(action=255),
        "profile-2": dict(profile=2),
        "profile-255": dict(profile=255),
        "now-2**63": dict(now=2**63, deadline=2**63 + 5),
        "vendor-id-changed": dict(cfg_bytes={0x00: 0x87}),
        "device-id-changed": dict(cfg_bytes={0x03: 0x26}),
        "class-changed": dict(cfg_bytes={0x0B: 0x0C}),
        "header-type-multifunction": dict(cfg_bytes={0x0E: 0x80}),
        "status-bit": dict(cfg_bytes={0x06: 0x10}),
        "command-bit-3": dict(cfg_bytes={0x04: cfg[0x04] | 0x08}),
        "command-bit-9": dict(cfg_bytes={0x05: cfg[0x05] | 0x02}),
        "bar0-low-bits": dict(cfg_bytes={0x10: 0x01}),
        "bar1-set": dict(cfg_bytes={0x17: 0xFE}),
        "subsystem-changed": dict(cfg_bytes={0x2E: 0x01}),
        "interrupt-pin-1": dict(cfg_bytes={0x3D: 0x01}),
    }
    for name in ("armed", "s1i", "enabled", "locked", "free_run", "reboot_disabled",
                 "one_mhz", "prev_reboot", "gintsr"):
        cases[f"{name}-2"] = {name: 2}
        cases[f"{name}-255"] = {name: 255}
    return cases


BAD_FIELD_NAMES = [
    "preload1-0x100000", "preload2-0x100000", "preload1-all-ones", "stage-0", "stage-3",
    "stage-255", "unlock-3", "unlock-255", "int_type-0x10-qemu", "int_type-0x04-qemu",
    "int_type-0x02-qemu-7.2", "int_type-0x13-qemu-7.2", "gintsr-without-extension",
    "armed-but-disabled", "disarmed-with-deadline", "deadline-beyond-longest-stage",
    "deadline-2**64-1", "seq-equals-counter", "seq-beyond-counter", "action-7",
    "action-255", "profile-2", "profile-255", "now-2**63", "vendor-id-changed",
    "device-id-changed", "class-changed", "header-type-multifunction", "status-bit",
    "command-bit-3", "command-bit-9", "bar0-low-bits", "bar1-set", "subsystem-changed",
    "interrupt-pin-1",
] + [f"{n}-{v}" for n in ("armed", "s1i", "enabled", "locked", "free_run",
                          "reboot_disabled", "one_mhz", "prev_reboot", "gintsr")
     for v in (2, 255)]


@pytest.mark.parametrize("name", BAD_FIELD_NAMES)
def test_restore_semantically_invalid(ESB, base, name):
    """§3.10: "restore validates every field (preloads ≤ 0xFFFFF, stage 1/2, unlock_state
    ≤ 2, flags 0/1, kind) and on error raises ValueError, the device unchanged"; §1.2/§3.3:
    INT_TYPE within the profile's mask; §1.3: GINTSR only with the extension; §3.1: the
    read-only configuration bits; docs/snapshot.md: armed only while enabled, deadline ≤
    now + 1 030 791 168 000 ns, sequence number < counter."""
    data = make_snapshot(base, **bad_field_cases(ESB, base)[name])
    dev = busy(ESB)
    expect_error(dev, ValueError, "data", dev.restore, data)
    assert_still_works(dev)


@pytest.mark.parametrize("name,changes", [
    ("preloads-0xfffff", dict(preload1=0xFFFFF, preload2=0xFFFFF)),
    ("preloads-0", dict(preload1=0, preload2=0)),
    ("int_type-3-qemu", dict(int_type=3)),
    ("unlock-2", dict(unlock=2)),
    ("stage-1", dict(stage=1)),
    ("disarmed", dict(armed=0, deadline=0, seq=0)),
    ("deadline-longest-stage", "longest"),
    ("deadline-overdue", "overdue"),
    ("raw-bytes-anything", dict(cfg_bytes={o: (o * 7) & 0xFF for o in range(0x40, 0x100)})),
    ("bar0-all-writable", dict(cfg_bytes={0x10: 0xF0, 0x11: 0xFF, 0x12: 0xFF, 0x13: 0xFF})),
    ("command-0x0507", dict(cfg_bytes={0x04: 0x07, 0x05: 0x05})),
    ("cache-and-int-line", dict(cfg_bytes={0x0C: 0xFF, 0x3C: 0xFF})),
    ("flags-clear", dict(prev_reboot=0, gintsr=0, locked=1, free_run=1)),
])
def test_restore_valid_boundaries_accepted(ESB, base, name, changes):
    """The valid side of each boundary is accepted and restored exactly."""
    if changes == "longest":
        changes = dict(deadline=base["now"] + MAX_STAGE_NS)
    elif changes == "overdue":
        changes = dict(deadline=base["now"] - 1)
    data = make_snapshot(base, **changes)
    dev = busy(ESB)
    dev.restore(data)
    assert dev.snapshot() == data


def test_restore_int_type_0x11_in_qemu_7_2_accepted(ESB, base):
    data = make_snapshot(base, profile=_profile_code(ESB, "qemu-7.2"), int_type=0x11)
    dev = ESB(profile="qemu-7.2", stage1_interrupt=True)
    dev.restore(data)
    assert dev.config_read(0x60, 2) == 0x11


def _bad_envelopes(ESB):
    good = ESB().snapshot()
    flipped_payload = bytearray(good)
    flipped_payload[20] ^= 0x01
    flipped_crc = bytearray(good)
    flipped_crc[-1] ^= 0x80
    payload = _snapshot.unwrap(good, _snapshot.KIND_I6300ESB)
    return {
        "empty": b"",
        "truncated": good[:-1],
        "trailing-byte": good + b"\0",
        "flipped-payload-byte": bytes(flipped_payload),
        "flipped-crc-byte": bytes(flipped_crc),
        "kind-ib700": _snapshot.wrap(_snapshot.KIND_IB700, payload),
        "kind-machine": _snapshot.wrap(_snapshot.KIND_MACHINE, payload),
        "ib700-snapshot": _select.implementation("python").IB700().snapshot(),
        "payload-short": _snapshot.wrap(_snapshot.KIND_I6300ESB, payload[:-1]),
        "payload-long": _snapshot.wrap(_snapshot.KIND_I6300ESB, payload + b"\0"),
        "bad-magic": b"XDCS" + good[4:],
    }


ENVELOPE_NAMES = ["empty", "truncated", "trailing-byte", "flipped-payload-byte",
                  "flipped-crc-byte", "kind-ib700", "kind-machine", "ib700-snapshot",
                  "payload-short", "payload-long", "bad-magic"]


@pytest.mark.parametrize("name", ENVELOPE_NAMES)
def test_restore_bad_envelope(ESB, name):
    """§3.10: restore validates the kind; API.md: bad data -> ValueError, unchanged."""
    dev = busy(ESB)
    expect_error(dev, ValueError, "data", dev.restore, _bad_envelopes(ESB)[name])
    assert_still_works(dev)


@pytest.mark.parametrize("data", ["WDCS", None, 123, [1, 2]], ids=repr)
def test_restore_non_bytes(ESB, data):
    dev = busy(ESB)
    expect_error(dev, TypeError, "data", dev.restore, data)
    assert_still_works(dev)


# ---------------------------------------------------------------------------------
# 7. Same error type and message from the compiled core and the twin
# ---------------------------------------------------------------------------------

def _both():
    try:
        compiled = _select.implementation("compiled").I6300ESB
    except (ImportError, ValueError) as exc:
        pytest.skip(f"compiled core unavailable: {exc}")
    return compiled, _select.implementation("python").I6300ESB


def _restore_case(name):
    def call(dev):
        cls = type(dev)
        b = fields_of(busy(cls))
        dev.restore(make_snapshot(b, **bad_field_cases(cls, b)[name]))
    return call


CROSS_CASES = {
    "cfg-offset-neg": lambda d: d.config_write(-1, 1, 0),
    "cfg-offset-0x100": lambda d: d.config_read(0x100, 1),
    "cfg-offset-2**64": lambda d: d.config_read(2**64, 4),
    "cfg-offset-str": lambda d: d.config_read("0", 4),
    "cfg-size-3": lambda d: d.config_write(0x40, 3, 0),
    "cfg-size-float": lambda d: d.config_read(0x40, 1.0),
    "cfg-value-0x100": lambda d: d.config_write(0x68, 1, 0x103),
    "cfg-value-neg": lambda d: d.config_write(0x40, 4, -1),
    "cfg-value-str": lambda d: d.config_write(0x40, 1, "1"),
    "mmio-16+1": lambda d: d.mmio_read(16, 1),
    "mmio-13+4": lambda d: d.mmio_write(13, 4, 0),
    "mmio-neg": lambda d: d.mmio_write(-1, 1, 0),
    "mmio-2**64": lambda d: d.mmio_read(2**64, 2),
    "mmio-size-8": lambda d: d.mmio_write(0, 8, 0),
    "mmio-value-2**32": lambda d: d.mmio_write(0, 4, 2**32),
    "mmio-value-None": lambda d: d.mmio_write(0x0C, 2, None),
    "advance-neg": lambda d: d.advance(-1),
    "advance_to-back": lambda d: d.advance_to(0),
    "restore-empty": lambda d: d.restore(b""),
    "restore-str": lambda d: d.restore("x"),
    "restore-preload": _restore_case("preload1-0x100000"),
    "restore-stage-3": _restore_case("stage-3"),
    "restore-unlock-3": _restore_case("unlock-3"),
    "restore-flag-2": _restore_case("prev_reboot-2"),
    "restore-int_type": _restore_case("int_type-0x10-qemu"),
    "restore-gintsr": _restore_case("gintsr-without-extension"),
    "restore-armed-disabled": _restore_case("armed-but-disabled"),
    "restore-vendor": _restore_case("vendor-id-changed"),
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


@pytest.mark.parametrize("kw", [dict(profile="qemu-8"), dict(profile=None),
                                dict(stage1_interrupt=1), dict(stage1_interrupt="yes"),
                                dict(action="bogus"), dict(action=3)],
                         ids=["profile-qemu-8", "profile-None", "s1i-1", "s1i-str",
                              "action-bogus", "action-3"])
def test_same_constructor_error_from_both_implementations(kw):
    Compiled, Twin = _both()
    results = []
    for cls in (Compiled, Twin):
        with pytest.raises((TypeError, ValueError)) as info:
            cls(**kw)
        results.append((type(info.value), str(info.value)))
    assert results[0] == results[1]
