"""The fuzz targets' logic, importable without atheris (pytest replays the corpus and
every saved crash input through these functions on both implementations).

``check_ops(data, implementations)``: the first byte picks the Machine's configuration,
the rest is a binary op stream (docs/ops.md).  Invariants:
1. the run never raises (guest input is total);
2. ``next_deadline`` is never in the past; the status is a legal run state;
3. snapshot, restore into a fresh Machine and run the rest gives identical results;
4. all given implementations agree on everything (reads, events, final snapshot).

``check_restore(data)``: ``restore()`` of arbitrary bytes raises only ValueError and a
refused snapshot leaves the object unchanged; an accepted one reads back identically.
Returns "accepted" or "refused".
"""
from __future__ import annotations

from wdcore import I6300ESB, IB700, Machine, _snapshot

STATUSES = ("running", "watchdog", "paused", "prelaunch", "shutdown", "poweroff")
ACTIONS = ("reset", "shutdown", "poweroff", "pause", "debug", "none", "inject-nmi")
KINDS = (_snapshot.KIND_IB700, _snapshot.KIND_I6300ESB, _snapshot.KIND_MACHINE)


class InvariantError(AssertionError):
    """An invariant of the harness does not hold: a bug in wdcore."""


def config_of(byte: int) -> dict:
    return {"action": ACTIONS[byte % 7], "reboot_action": "shutdown" if byte & 0x08 else "reset",
            "profile": "qemu-7.2" if byte & 0x10 else "qemu",
            "esb_slot": (2, 3, 17, 31)[(byte >> 5) & 3], "stage1_interrupt": bool(byte & 0x80)}


def run_split(config: dict, stream: bytes, cut: int, impl: str):
    """Run stream[:cut], snapshot, run the rest; restore the snapshot into a fresh
    Machine and run the rest there too.  What the whole run produced."""
    m = Machine(implementation=impl, **config)
    first = m.run(stream[:cut])
    snap = m.snapshot()
    rest = m.run(stream[cut:])
    m2 = Machine(implementation=impl, **config)
    m2.restore(snap)
    again = m2.run(stream[cut:])
    if (again.ops_executed, again.reads, again.events) != (rest.ops_executed, rest.reads, rest.events):
        raise InvariantError(f"{impl}: restore then run differs from running on")
    if m2.snapshot() != m.snapshot():
        raise InvariantError(f"{impl}: restore then run ends in another state")
    if m.status not in STATUSES:
        raise InvariantError(f"{impl}: illegal status {m.status!r}")
    nd = m.next_deadline
    if nd is not None and nd < m.now:
        raise InvariantError(f"{impl}: next_deadline {nd} is before now {m.now}")
    return (first.ops_executed + rest.ops_executed, first.reads + rest.reads,
            first.events + rest.events, m.snapshot(), m.status)


def check_ops(data: bytes, implementations=("compiled", "python")):
    """Check every invariant on one input; returns (ops executed, reads, events,
    final snapshot, status) of the first implementation, None for empty input."""
    if not data:
        return None
    config = config_of(data[0])
    stream = data[1:]
    cut = len(stream) // 2
    results = [run_split(config, stream, cut, impl) for impl in implementations]
    for impl, result in zip(implementations[1:], results[1:]):
        if result != results[0]:
            raise InvariantError(f"{implementations[0]} and {impl} disagree")
    return results[0]


def restore_target(choice: int):
    if choice == 0:
        dev = IB700()
        dev.io_write(0x443, 1, 0x0E)
        return dev
    if choice == 1:
        dev = I6300ESB(stage1_interrupt=True)
        dev.config_write(0x68, 1, 0x02)
        return dev
    m = Machine()
    m.io_write(0x443, 1, 0x0D)
    return m


def check_restore(data: bytes):
    """First byte: target (bits 6:0 mod 3) and, with bit 7, wrap the rest in a valid envelope so
    that mutations reach the field checks behind the checksum."""
    if not data:
        return
    choice = (data[0] & 0x7F) % 3
    obj = restore_target(choice)
    blob = data[1:]
    if data[0] & 0x80:
        blob = _snapshot.wrap(KINDS[choice], blob)
    before = obj.snapshot()
    try:
        obj.restore(blob)
    except ValueError:
        if obj.snapshot() != before:
            raise InvariantError("a refused snapshot changed the state") from None
        return "refused"
    if obj.snapshot() != bytes(blob):
        raise InvariantError("an accepted snapshot does not read back identically")
    return "accepted"
