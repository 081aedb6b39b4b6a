"""Issue 11, item 1: the compiled core's snapshot codec against the twin's.

The compiled core writes snapshots and checks restores in C; the twin's codec
(_snapshot.py) is the judge.  For every byte string here, valid or corrupt, both
implementations must give the same outcome: accepted with the same state afterwards
(read back byte for byte), or refused with the same ValueError message and the state
unchanged.  Corrupt inputs are made from valid snapshots of random histories, mutated
both behind a recomputed checksum (so the field checks are reached; inside a Machine's
device snapshots too) and in front of it, and from the fuzz restore corpus and every
saved finding.
"""
from __future__ import annotations

import random
import struct
from pathlib import Path

import pytest

from wdcore import _select, _snapshot
from wdcore import ops as wd_ops

ROOT = Path(__file__).resolve().parent.parent
IMPLS = ("compiled", "python")
S = 1_000_000_000

# (name, build(impl) -> a fresh object); each target kind in the configurations a
# restore checks against
DEVICE_TARGETS = {
    "ib700": lambda impl: _select.implementation(impl).IB700(),
    "esb": lambda impl: _select.implementation(impl).I6300ESB(),
    "esb-7.2-s1i": lambda impl: _select.implementation(impl).I6300ESB(profile="qemu-7.2",
                                                                       stage1_interrupt=True),
}
MACHINE_TARGETS = {
    "machine": {},
    "machine-ib700": {"devices": ("ib700",)},
    "machine-esb-slot5-7.2-s1i": {"devices": ("i6300esb",), "esb_slot": 5, "profile": "qemu-7.2",
                                  "stage1_interrupt": True},
    "machine-no-reboot": {"reboot_action": "shutdown", "action": "pause"},
}


def build(name, impl):
    if name in DEVICE_TARGETS:
        return DEVICE_TARGETS[name](impl)
    from wdcore import Machine
    return Machine(**MACHINE_TARGETS[name], implementation=impl)


def drive(obj, rng):
    """A random but plausible history: arms, pings, config and BAR0 writes, time."""
    if hasattr(obj, "run"):
        ops = []
        for _ in range(rng.randrange(1, 30)):
            ops.append(rng.choice([
                ("outb", 0x443, rng.randrange(16)), ("outb", 0x441, 0),
                ("outl", 0xCF8, 0x8000_0000 | (rng.choice([2, 5]) << 11) | rng.choice([0x10, 0x04, 0x60, 0x68])),
                ("outw", 0xCFC, rng.randrange(1 << 16)), ("outb", 0xCFC, rng.randrange(256)),
                ("writew", 0xE000_000C, rng.choice([0x80, 0x86, 0x100])),
                ("writel", 0xE000_0000, rng.randrange(1 << 20)),
                ("clock_step", rng.randrange(4 * S)), ("clock_step",)]))
        obj.run(ops)
    elif hasattr(obj, "config_write"):
        for _ in range(rng.randrange(1, 12)):
            k = rng.randrange(5)
            if k == 0:
                obj.config_write(0x68, 1, rng.randrange(8))
            elif k == 1:
                obj.config_write(0x60, 2, rng.randrange(1 << 16))
            elif k == 2:
                obj.mmio_write(0x0C, 2, 0x80)
                obj.mmio_write(0x0C, 2, 0x86)
                obj.mmio_write(rng.choice([0, 4]), 4, rng.randrange(1 << 20))
            elif k == 3:
                obj.config_write(rng.randrange(0x40, 0x100), 1, rng.randrange(256))
            else:
                obj.advance(rng.randrange(3 * S))
    else:
        for _ in range(rng.randrange(1, 8)):
            if rng.random() < 0.6:
                obj.io_write(rng.choice([0x443, 0x441]), 1, rng.randrange(16))
            else:
                obj.advance(rng.randrange(40 * S))


def outcome(name, impl, blob, history_seed):
    obj = build(name, impl)
    drive(obj, random.Random(history_seed))
    before = obj.snapshot()
    try:
        obj.restore(blob)
    except ValueError as exc:
        return ("refused", str(exc), obj.snapshot() == before)
    return ("accepted", obj.snapshot())


#: byte values at the edges of the fields' ranges (flags, stages, unlock states, codes)
BOUNDARIES = (0, 1, 2, 3, 4, 5, 6, 7, 0x11, 0x12, 0x7F, 0x80, 0xFF)


def reseal(blob):
    """``blob`` (a snapshot, maybe mutated) with its length and checksum made right."""
    kind, payload = blob[6], blob[_snapshot._HEADER.size:-_snapshot._CRC.size]
    return _snapshot.wrap(kind, payload)


def mutations(blob, rng, n):
    """n corrupt variants of snapshot ``blob``: a byte set behind a fresh checksum (in a
    Machine, inside a device's own snapshot half the time, both checksums fixed), a byte
    set in front of it, and truncations and extensions."""
    header, crc = _snapshot._HEADER.size, _snapshot._CRC.size
    out = []
    for _ in range(n):
        b = bytearray(blob)
        how = rng.randrange(8)
        value = rng.choice([*BOUNDARIES, rng.randrange(256)])
        if how <= 2:   # a field behind the checksum
            payload = bytearray(b[header:-crc])
            if blob[6] == _snapshot.KIND_MACHINE and how == 2 and len(payload) > 27 + 4 + header + crc:
                # inside the first device's snapshot, resealed
                n_dev = struct.unpack_from("<I", payload, 27)[0]
                dev = bytearray(payload[31:31 + n_dev])
                dev[rng.randrange(header, len(dev) - crc)] = value
                payload[31:31 + n_dev] = reseal(bytes(dev))
            else:
                payload[rng.randrange(len(payload))] = value
            out.append(_snapshot.wrap(blob[6], bytes(payload)))
        elif how == 3:  # anywhere, checksum untouched
            b[rng.randrange(len(b))] = value
            out.append(bytes(b))
        elif how == 4:
            out.append(bytes(b[:rng.randrange(len(b))]))
        elif how == 5:
            out.append(bytes(b) + bytes([value]) * rng.randrange(1, 4))
        else:           # a payload cut short or run long, behind a fresh checksum
            payload = blob[header:-crc]
            payload = (payload[:rng.randrange(len(payload))] if how == 6
                       else payload + bytes([value]) * rng.randrange(1, 5))
            out.append(_snapshot.wrap(blob[6], payload))
    return out


def agree(name, blob, history_seed):
    results = [outcome(name, impl, blob, history_seed) for impl in IMPLS]
    assert results[0] == results[1], (name, blob.hex())
    if results[0][0] == "refused":
        assert results[0][2], "a refused snapshot changed the state"
    else:
        assert results[0][1] == blob, "an accepted snapshot does not read back"
    return results[0][0]


@pytest.mark.parametrize("name", [*DEVICE_TARGETS, *MACHINE_TARGETS])
@pytest.mark.parametrize("seed", range(4))
def test_both_codecs_write_the_same_bytes_and_judge_corrupt_ones_alike(name, seed):
    rng = random.Random(f"{name}-{seed}")
    snaps = []
    for impl in IMPLS:
        obj = build(name, impl)
        drive(obj, random.Random(seed))
        snaps.append(obj.snapshot())
    assert snaps[0] == snaps[1]                   # identical states, identical bytes
    valid = snaps[0]
    assert agree(name, valid, seed + 1) == "accepted"
    seen = set()
    for blob in mutations(valid, rng, 150):
        seen.add(agree(name, blob, seed + 1))
    assert "refused" in seen                       # the mutations reached the checks


@pytest.mark.parametrize("name", ["ib700", "esb-7.2-s1i", "machine"])
def test_every_payload_byte_at_every_boundary_is_judged_alike(name):
    # each byte of a valid payload set to each boundary value, behind a fresh checksum;
    # in a Machine, the bytes of its device snapshots too (both checksums fixed)
    src = build(name, "compiled")
    drive(src, random.Random(7))
    valid = src.snapshot()
    header, crc = _snapshot._HEADER.size, _snapshot._CRC.size
    payload = valid[header:-crc]
    outcomes = set()
    for i in range(len(payload)):
        for value in BOUNDARIES:
            mutated = bytearray(payload)
            mutated[i] = value
            outcomes.add(agree(name, _snapshot.wrap(valid[6], bytes(mutated)), 3))
    if valid[6] == _snapshot.KIND_MACHINE:
        pos = 27
        while pos < len(payload):
            n = struct.unpack_from("<I", payload, pos)[0]
            dev = payload[pos + 4:pos + 4 + n]
            for i in range(header, len(dev) - crc):
                for value in BOUNDARIES:
                    mutated = bytearray(dev)
                    mutated[i] = value
                    whole = payload[:pos + 4] + reseal(bytes(mutated)) + payload[pos + 4 + n:]
                    outcomes.add(agree(name, _snapshot.wrap(valid[6], whole), 3))
            pos += 4 + n
    assert outcomes == {"accepted", "refused"}


def _restore_inputs():
    for folder in ("fuzz/corpus/restore", "fuzz/crashes"):
        for path in sorted((ROOT / folder).glob("*")):
            if path.is_file() and path.name != "README.md" and "restore" in str(path):
                yield path


@pytest.mark.parametrize("path", list(_restore_inputs()), ids=lambda p: p.name)
def test_the_restore_corpus_and_findings_are_judged_alike(path):
    # fuzz/harness.py's restore target: byte 0 picks the object and maybe wraps the rest
    data = path.read_bytes()
    assert data
    choice = (data[0] & 0x7F) % 3
    name = ("ib700", "esb-7.2-s1i", "machine")[choice]
    blob = data[1:]
    if data[0] & 0x80:
        blob = _snapshot.wrap((_snapshot.KIND_IB700, _snapshot.KIND_I6300ESB,
                               _snapshot.KIND_MACHINE)[choice], blob)
    agree(name, blob, 11)


def test_not_bytes_and_bytes_like_are_judged_alike():
    m = build("machine", "compiled")
    valid = m.snapshot()
    for blob in (bytearray(valid), memoryview(valid)):
        for impl in IMPLS:
            other = build("machine", impl)
            other.restore(blob)
            assert other.snapshot() == valid
    for bad in ("text", 42, None):
        messages = set()
        for impl in IMPLS:
            with pytest.raises(TypeError) as info:
                build("machine", impl).restore(bad)
            messages.add(str(info.value))
        assert len(messages) == 1


def test_a_run_after_a_compiled_restore_matches_the_twin():
    # the restored state is the whole state: both go on identically
    stream = wd_ops.encode([("clock_step", 3 * S), ("outb", 0x443, 0x0F), ("clock_step",)] * 3)
    for name in MACHINE_TARGETS:
        src = build(name, "python")
        drive(src, random.Random(5))
        snap = src.snapshot()
        results = []
        for impl in IMPLS:
            m = build(name, impl)
            m.restore(snap)
            r = m.run(stream)
            results.append((r.reads, r.events, m.snapshot()))
        assert results[0] == results[1]


def test_restoring_the_same_snapshot_object_again_and_again_is_exact():
    # the compiled core remembers the last snapshot object it checked (a fuzz loop's
    # reset): each restore of it must still give exactly the snapshot's state, whatever
    # ran in between, as on the twin; a different object with equal bytes too
    rng = random.Random(9)
    for name in MACHINE_TARGETS:
        src = build(name, "python")
        drive(src, random.Random(2))
        snap = src.snapshot()
        machines = [build(name, impl) for impl in IMPLS]
        for _ in range(30):
            data = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 80)))
            results = []
            for m in machines:
                m.restore(snap if rng.random() < 0.8 else bytes(bytearray(snap)))
                assert m.snapshot() == snap
                r = m.run(data)
                results.append((r.reads, r.events, m.snapshot()))
            assert results[0] == results[1]
