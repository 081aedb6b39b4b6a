"""State at its limits (issue 10, items 9, 10 and 12), on both implementations.

1. snapshots that validate can live: the arming counter's bound (docs/snapshot.md:
   "≤ 2^63 (arming from 0 never gets there, and from there cannot wrap it)"), and a
   standalone i6300ESB's profile and extension ("must match the restoring device's");
2. the end of time (docs/design.md): a deadline past 2^63−1 ns "is never reached:
   `next_deadline` (a device's and the Machine's) is None for it, so the loop
   `while (d := m.next_deadline) is not None: m.advance_to(d)` ends there", while a
   bare `clock_step` keeps saturating at 2^63−1 ns (docs/ops.md);
3. pickles name no implementation (docs/design.md, Copies): "Unpickling builds the
   object in the implementation selected where it is loaded", so a pickle moves between
   them, even to where the compiled core cannot be imported; "A `copy.deepcopy` keeps
   the original's implementation".
"""
from __future__ import annotations

import base64
import copy
import dataclasses
import io
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from wdcore import Machine, _core_py, _select, _snapshot, clients
from wdcore._snapshot import I6300ESBState, IB700State, MachineState

from .conftest import S, _require_compiled
from .test_i6300esb import load, ping  # SPEC.md §6's UNLOCK16 sequences

TIME_MAX = (1 << 63) - 1
BOUND = 1 << 63                 # docs/snapshot.md: counter "≤ 2^63"
ARM = 0x443                     # SPEC.md §2.1: an IB700 start port
IDX_2S = 0x0E                   # §2.2: index E = 2 s


@pytest.fixture
def ESB(impl):
    return _select.implementation(impl).I6300ESB


def with_counter(record, counter: int):
    """A device record holding ``counter``, its armed timer numbered just below it."""
    seq = counter - 1 if record.armed else 0
    return dataclasses.replace(record, counter=counter, seq=seq)


def device_snapshot_with_counter(dev, counter: int) -> bytes:
    return with_counter(dev.STATE.unpack(dev.snapshot()), counter).pack()


def machine_snapshot_with_counter(m, counter: int) -> bytes:
    state = MachineState.unpack(m.snapshot())
    devices = tuple(with_counter(rec.unpack(blob), counter).pack()
                    for rec, blob in zip((IB700State, I6300ESBState), state.devices))
    return dataclasses.replace(state, counter=counter, devices=devices).pack()


def armed_ib700(IB700):
    dev = IB700()
    dev.advance(S)
    dev.io_write(ARM, 1, IDX_2S)                        # deadline 3 s
    return dev


def armed_esb(ESB):
    dev = ESB(profile="qemu-7.2", stage1_interrupt=True)
    dev.advance(S)
    dev.config_write(0x60, 2, 0x0004)                   # 1 MHz: preloads 1/1 last 960 ns
    load(dev, 1, 1)
    dev.config_write(0x68, 1, 0x02)                     # enable: stage 1 ends 960 ns later
    return dev


def _raw_counter_and_seq(snapshot: bytes, kind: int) -> tuple[int, int]:
    """(counter, seq) as stored, read without the record's checks (docs/snapshot.md:
    seq at payload offset 18, counter at 26)."""
    payload = _snapshot.unwrap(snapshot, kind)
    return int.from_bytes(payload[26:34], "little"), int.from_bytes(payload[18:26], "little")


# ---------------------------------------------------------------------------------
# 1. Snapshots that validate can live (item 9)
# ---------------------------------------------------------------------------------

def test_ib700_at_the_counter_bound_lives(IB700):
    """docs/snapshot.md: counter "≤ 2^63 (arming from 0 never gets there, and from there
    cannot wrap it)": a snapshot at the bound restores, arms by a guest write, fires,
    snapshots (the twin's pack no longer overflows, the compiled counter no longer
    wraps) and the used device restores the snapshot again."""
    at_bound = device_snapshot_with_counter(armed_ib700(IB700), BOUND)
    dev = IB700()
    dev.restore(at_bound)
    assert dev.snapshot() == at_bound
    dev.io_write(ARM, 1, IDX_2S)                        # a guest write takes number 2^63
    later = dev.snapshot()
    assert _raw_counter_and_seq(later, _snapshot.KIND_IB700) == (BOUND, BOUND - 1)  # saturated
    assert dev.advance(2 * S) == 1                      # the deadline fires at its time
    assert dev.events[-1].time_ns == S + 2 * S
    after = dev.snapshot()
    assert _raw_counter_and_seq(after, _snapshot.KIND_IB700) == (BOUND, 0)
    IB700().restore(later)                              # the used device's snapshots restore
    IB700().restore(after)
    dev.restore(at_bound)                               # the used device takes it back
    assert dev.snapshot() == at_bound
    assert dev.advance(2 * S) == 1


def test_i6300esb_at_the_counter_bound_lives(ESB):
    """As for the IB700: an enabled i6300ESB at the bound arms its stages (a guest ping,
    then each stage end takes a number), fires and snapshots; restore takes the bound
    snapshot back."""
    src = armed_esb(ESB)
    at_bound = device_snapshot_with_counter(src, BOUND)
    dev = ESB(profile="qemu-7.2", stage1_interrupt=True)
    dev.restore(at_bound)
    assert dev.snapshot() == at_bound
    ping(dev)                                           # stage 1 again: the counter stays
    assert _raw_counter_and_seq(dev.snapshot(), _snapshot.KIND_I6300ESB) == (BOUND, BOUND - 1)
    ESB(profile="qemu-7.2", stage1_interrupt=True).restore(dev.snapshot())
    assert dev.advance(960 + 960) == 1                  # stage 2 (number 2^63-1 again), then expiry
    assert dev.events[-1].time_ns == dev.now
    assert _raw_counter_and_seq(dev.snapshot(), _snapshot.KIND_I6300ESB) == (BOUND, 0)
    ESB(profile="qemu-7.2", stage1_interrupt=True).restore(dev.snapshot())
    dev.restore(at_bound)
    assert dev.snapshot() == at_bound


def test_machine_at_the_counter_bound_lives(make_machine):
    """A Machine's header counter and its devices' share the bound: at the bound a
    Machine arms both devices by guest writes, fires and snapshots; restore takes the
    bound snapshot back."""
    m = make_machine(action="none")
    m.advance(S)
    m.io_write(ARM, 1, IDX_2S)
    at_bound = machine_snapshot_with_counter(m, BOUND)
    other = make_machine(action="none")
    other.restore(at_bound)
    assert other.snapshot() == at_bound
    other.io_write(ARM, 1, IDX_2S)                      # re-arm: the counter stays at 2^63
    assert other.advance(2 * S) == 1
    assert [e["event"] for e in other.events] == ["WATCHDOG"]
    header = _snapshot.unwrap(other.snapshot(), _snapshot.KIND_MACHINE)
    assert int.from_bytes(header[19:27], "little") == BOUND  # docs: counter at 19
    make_machine(action="none").restore(other.snapshot())   # the used Machine's snapshot lives
    other.restore(at_bound)
    assert other.snapshot() == at_bound


@pytest.mark.parametrize("counter", [BOUND + 1, 2**64 - 1])
def test_a_counter_above_the_bound_is_refused(IB700, ESB, make_machine, counter):
    """docs/snapshot.md: counter "≤ 2^63"; on main 2^64−1 was accepted and the next arming
    wrapped it (compiled: its own snapshot then refused; twin: snapshot() raised
    struct.error).  Refused with ValueError, the object unchanged."""
    for dev in (armed_ib700(IB700), armed_esb(ESB)):
        data = device_snapshot_with_counter(dev, counter)
        before = dev.snapshot()
        with pytest.raises(ValueError, match=r"arming counter \d+ beyond 2\*\*63"):
            dev.restore(data)
        assert dev.snapshot() == before
    m = make_machine()
    m.io_write(ARM, 1, IDX_2S)
    data = machine_snapshot_with_counter(m, counter)
    before = m.snapshot()
    with pytest.raises(ValueError, match=r"arming counter \d+ beyond 2\*\*63"):
        m.restore(data)
    assert m.snapshot() == before


def test_arming_at_the_bound_stays_there_and_every_later_snapshot_restores(IB700):
    """docs/snapshot.md: "a device restored from a (made-up) snapshot at it stays there,
    each arming taking number 2^63−1 ..., so every snapshot `restore` accepts can be
    used, snapshotted and restored again"."""
    dev = IB700()
    dev.restore(device_snapshot_with_counter(armed_ib700(IB700), BOUND))
    for _ in range(3):
        dev.io_write(ARM, 1, IDX_2S)
        assert _raw_counter_and_seq(dev.snapshot(), _snapshot.KIND_IB700) == (BOUND, BOUND - 1)
        again = IB700()
        again.restore(dev.snapshot())
        assert again.snapshot() == dev.snapshot()


def test_a_standalone_i6300esb_restores_only_its_own_configuration(ESB):
    """docs/snapshot.md: profile and stage1_interrupt "must match the restoring device's",
    as a Machine refuses an i6300esb of another profile or extension; on main a
    standalone device silently took them from the snapshot."""
    src = armed_esb(ESB)                                # "qemu-7.2", extension on
    for built, differs in [({}, "profile"), ({"profile": "qemu-7.2"}, "stage1_interrupt"),
                           ({"stage1_interrupt": True}, "profile")]:
        dev = ESB(**built)
        before = dev.snapshot()
        with pytest.raises(ValueError, match=f"data holds an i6300esb whose {differs} "
                                             "differs from this device's"):
            dev.restore(src.snapshot())
        assert dev.snapshot() == before
    same = ESB(profile="qemu-7.2", stage1_interrupt=True)
    same.restore(src.snapshot())
    assert same.snapshot() == src.snapshot()


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_an_i6300esb_of_another_configuration_still_copies(ESB, how):
    """Unpickling and deepcopy build the device with the snapshot's profile and
    stage1_interrupt, then restore it."""
    src = armed_esb(ESB)
    clone = pickle.loads(pickle.dumps(src)) if how == "pickle" else copy.deepcopy(src)
    assert (clone.profile, clone.stage1_interrupt) == ("qemu-7.2", True)
    assert clone.snapshot() == src.snapshot()
    clone.config_write(0x60, 2, 0x0013)
    assert clone.config_read(0x60, 2) == 0x0011         # the 7.2 mask (SPEC.md §3.3)


# ---------------------------------------------------------------------------------
# 2. The end of time (item 12)
# ---------------------------------------------------------------------------------

BAR = 0xFEBF0000                # a BAR0 in the PCI hole (SPEC.md §7.3 item 6)
SLOT = 2                        # the Machine's default esb_slot


def run_the_documented_loop(obj) -> list[int]:
    """API.md's host loop, advancing in steps bounded by next_deadline; the times it
    stepped to."""
    steps = []
    while (d := obj.next_deadline) is not None:
        obj.advance_to(d)
        steps.append(d)
        assert len(steps) < 100, "the loop does not end"
    return steps


def test_the_loop_ends_at_the_end_of_time_on_an_ib700(IB700):
    """An IB700 re-armed by its callback every 2 s from 7 s before the end: it fires at
    −5, −3 and −1 s; the fourth arming lies past the end and the loop ends (on main,
    advance_to(2^63−1 + 1 s) raised ValueError)."""
    dev = IB700(action="none")
    dev.advance_to(TIME_MAX - 7 * S)
    dev.on_expire = lambda e: dev.io_write(ARM, 1, IDX_2S)
    dev.io_write(ARM, 1, IDX_2S)
    assert run_the_documented_loop(dev) == [TIME_MAX - 5 * S, TIME_MAX - 3 * S, TIME_MAX - S]
    assert [e.time_ns for e in dev.events] == [TIME_MAX - 5 * S, TIME_MAX - 3 * S, TIME_MAX - S]
    assert dev.next_deadline is None
    assert _raw_deadline(dev.snapshot(), _snapshot.KIND_IB700) == TIME_MAX + S  # still armed
    assert dev.advance_to(TIME_MAX) == 0


def test_the_loop_ends_at_the_end_of_time_on_an_i6300esb(ESB):
    """A free-running i6300ESB (reboot disabled, 1 MHz, preloads 1/1: a stage every
    960 ns, SPEC.md §3.9) enabled 5 000 ns before the end: five stage ends, then the
    sixth lies past the end and the loop ends."""
    dev = ESB()
    dev.advance_to(TIME_MAX - 5_000)
    dev.config_write(0x60, 2, 0x0024)                   # reboot disabled, 1 MHz
    load(dev, 1, 1)
    dev.config_write(0x68, 1, 0x06)                     # enabled, free_run
    t0 = TIME_MAX - 5_000
    assert run_the_documented_loop(dev) == [t0 + 960 * k for k in range(1, 6)]
    assert dev.now == t0 + 4_800
    assert dev.next_deadline is None
    assert _raw_deadline(dev.snapshot(), _snapshot.KIND_I6300ESB) == t0 + 5_760
    assert dev.advance_to(TIME_MAX) == 0 and dev.stage == 2


def esb_setup_ops():
    """BAR0 assigned, 1 MHz and reboot disabled, preloads 1/1 (SPEC.md §6, §3.3, §3.5)."""
    return (clients.firmware.assign_bar0(SLOT, BAR)
            + clients.pci_config_write(SLOT, 0x60, 2, 0x0024)
            + clients.esb_preloads(BAR, 1, 1))


def free_running_esb_ops(ns_before_end: int):
    """esb_setup_ops, then free-running enabled ``ns_before_end`` before the end of time
    (§3.4, §3.6)."""
    return (esb_setup_ops() + [("clock_set", TIME_MAX - ns_before_end)]
            + clients.pci_config_write(SLOT, 0x68, 1, 0x06))


@pytest.mark.parametrize("devices", [("ib700",), ("i6300esb",), ("ib700", "i6300esb")])
def test_the_loop_ends_at_the_end_of_time_on_a_machine(make_machine, devices):
    """The Machine's next_deadline is the earliest of its devices': an IB700 armed 3 s
    before the end fires at −1 s; a free-running i6300ESB enabled 5 000 ns before the
    end has five stage ends handled; an IB700 armed then lies past the end, as does the
    i6300ESB's sixth stage end, and the loop ends."""
    m = make_machine(devices=devices, action="none")
    t0 = TIME_MAX - 5_000
    if "ib700" in devices:
        m.advance_to(TIME_MAX - 3 * S)
        m.io_write(ARM, 1, IDX_2S)
        assert run_the_documented_loop(m) == [TIME_MAX - S]
        assert m.events == [{"event": "WATCHDOG", "data": {"action": "none"},
                             "time_ns": TIME_MAX - S}]
        m.clear_events()
    if "i6300esb" in devices:
        m.run(free_running_esb_ops(5_000))
    assert m.advance_to(t0) == 0
    if "ib700" in devices:
        m.io_write(ARM, 1, IDX_2S)                      # deadline t0 + 2 s: past the end
    expected = [t0 + 960 * k for k in range(1, 6)] if "i6300esb" in devices else []
    assert run_the_documented_loop(m) == expected
    assert m.next_deadline is None
    assert m.events == []                               # free-running stage ends are silent
    assert m.advance_to(TIME_MAX) == 0
    assert m.now == TIME_MAX and m.next_deadline is None


def test_a_bare_clock_step_still_saturates_at_the_end_of_time(make_machine):
    """docs/ops.md: a bare `clock_step` "advances to the earliest pending deadline,
    saturating at 2^63−1 ns (...a deadline past the end of time, for which
    `next_deadline` is None, still moves the clock to 2^63−1 ns)" — unchanged."""
    m = make_machine(devices=("ib700",))
    m.advance_to(TIME_MAX - S)
    m.io_write(ARM, 1, IDX_2S)                          # deadline 2^63−1 + 1 s
    assert m.next_deadline is None
    result = m.run([("clock_step",)])
    assert result.ops_executed == 1 and result.events == []
    assert m.now == TIME_MAX
    m2 = make_machine(devices=("ib700",))
    m2.run([("clock_set", TIME_MAX - S), ("outb", ARM, IDX_2S), ("clock_step",)])
    assert m2.snapshot() == m.snapshot()


def _raw_deadline(snapshot: bytes, kind: int) -> int:
    """The stored deadline (docs/snapshot.md: payload offset 10)."""
    return int.from_bytes(_snapshot.unwrap(snapshot, kind)[10:18], "little")


# ---------------------------------------------------------------------------------
# 3. Pickles name no implementation (item 10)
# ---------------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent
OLD_PICKLES = ROOT / "tests" / "data" / "pickles-03f006a.json"


class HostMachine(Machine):
    """A host's subclass: pickles keep it (the front class), not the implementation."""

    def ping(self) -> None:
        self.io_write(ARM, 1, IDX_2S)


def objects_on(name: str) -> list:
    """An armed IB700, an i6300ESB of profile "qemu-7.2" with the extension, a Machine
    and a host's Machine subclass with history, all on implementation ``name``."""
    i = _select.implementation(name)
    ib = i.IB700(action="debug")
    ib.advance(S)
    ib.io_write(ARM, 1, IDX_2S)
    m = Machine(implementation=name, action="pause", profile="qemu-7.2")
    m.run(esb_setup_ops())
    m.io_write(ARM, 1, IDX_2S)
    host = HostMachine(implementation=name, devices=("ib700",))
    host.ping()
    host.advance(S)
    return [ib, armed_esb(i.I6300ESB), m, host]


def found_classes(data: bytes) -> set:
    """The (module, name) globals a pickle refers to."""
    found = set()

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            found.add((module, name))
            return super().find_class(module, name)

    Recorder(io.BytesIO(data)).load()
    return found


def implementation_of(obj) -> str:
    if isinstance(obj, Machine):
        return obj.implementation
    return "python" if type(obj).__module__.endswith("_py") else "compiled"


def test_pickles_name_no_implementation(impl):
    """Only pure-Python callables (and a host's own class) and a device kind: nothing
    of the compiled modules or the twins, no implementation name."""
    ib, esb, m, host = objects_on(impl)
    for dev, kind in ((ib, "ib700"), (esb, "i6300esb")):
        assert found_classes(pickle.dumps(dev)) == {("wdcore._core_py", "rebuild")}
        assert dev.__reduce__() == (_core_py.rebuild, (kind, dev.snapshot()))
    assert found_classes(pickle.dumps(m)) == {("wdcore.machine", "_machine_from_snapshot"),
                                              ("wdcore.machine", "Machine")}
    assert found_classes(pickle.dumps(host)) == {("wdcore.machine", "_machine_from_snapshot"),
                                                 (__name__, "HostMachine")}
    for machine in (m, host):
        args = machine.__reduce__()[1]
        assert not {"compiled", "python"} & {a for a in args if isinstance(a, str)}


def test_a_deepcopy_keeps_its_implementation(impl):
    for obj in objects_on(impl):
        clone = copy.deepcopy(obj)
        assert type(clone) is type(obj) and implementation_of(clone) == impl
        assert clone.snapshot() == obj.snapshot()


LOADER = """
import base64, json, pickle, sys
%s
import wdcore
out = []
for b64 in json.loads(sys.stdin.read()):
    obj = pickle.loads(base64.b64decode(b64))
    if isinstance(obj, wdcore.Machine):
        impl = obj.implementation
    else:
        impl = "python" if type(obj).__module__.endswith("_py") else "compiled"
    out.append([type(obj).__name__, impl, obj.snapshot().hex()])
print(json.dumps({"has_extensions": wdcore.HAS_EXTENSIONS, "objects": out}))
"""

#: what makes the compiled modules unimportable in a process (as where they were never built)
NO_COMPILED_MODULES = "\n".join(
    f"sys.modules[{name!r}] = None" for name in _select.COMPILED_MODULES)


def load_elsewhere(pickles: list[bytes], env: dict, prelude: str = "") -> dict:
    """Unpickle in a fresh process with ``env`` set (the WDCORE_* flags cleared first)."""
    full = {k: v for k, v in os.environ.items() if not k.startswith("WDCORE_")}
    full.update(env)
    out = subprocess.run([sys.executable, "-c", LOADER % prelude], cwd=ROOT, env=full,
                         input=json.dumps([base64.b64encode(p).decode() for p in pickles]),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


#: (made on, the loading process's WDCORE_* flags, code run before importing wdcore,
#: built as there)
WHERE = {
    # on main a pickle named the compiled class and ignored WDCORE_NO_EXTENSIONS=1
    "compiled-pickle-under-no-extensions": ("compiled", {"WDCORE_NO_EXTENSIONS": "1"}, "",
                                            "python"),
    "twin-pickle-by-default": ("python", {"WDCORE_REQUIRE_EXTENSIONS": "1"}, "", "compiled"),
    # _select falls back to the twin when the compiled modules do not import; on main a
    # compiled pickle named wdcore._ib700 etc. and did not load there
    "compiled-pickle-without-the-compiled-core": ("compiled", {}, NO_COMPILED_MODULES, "python"),
}


@pytest.mark.parametrize("case", WHERE)
def test_a_pickle_loads_in_the_implementation_selected_where_it_is_loaded(case):
    """Each object builds in the loading process's selection, with an identical
    snapshot (and a host's subclass stays one)."""
    _require_compiled()
    made_on, env, prelude, built_as = WHERE[case]
    objects = objects_on(made_on)
    got = load_elsewhere([pickle.dumps(o) for o in objects], env, prelude)
    assert got["has_extensions"] is (built_as == "compiled")
    assert got["objects"] == [[type(o).__name__, built_as, o.snapshot().hex()] for o in objects]


def test_old_pickles_load_in_the_selected_implementation():
    """tests/data's pickles from commit 03f006a: a Machine's stored implementation name
    is ignored in favour of the selection, and so is a device's module (which must
    still be importable: old device pickles name it)."""
    rows = json.loads(OLD_PICKLES.read_text())
    if not _select.HAS_EXTENSIONS:
        rows = [r for r in rows if r["implementation"] == "python"]
    pickles = [base64.b64decode(r["pickle_b64"]) for r in rows]
    for env, impl in (({"WDCORE_NO_EXTENSIONS": "1"}, "python"),) + (
            (({"WDCORE_REQUIRE_EXTENSIONS": "1"}, "compiled"),) if _select.HAS_EXTENSIONS else ()):
        got = load_elsewhere(pickles, env)
        assert [o[1] for o in got["objects"]] == [impl] * len(rows)
        assert [o[2] for o in got["objects"]] == [r["snapshot_hex"] for r in rows]
