"""The architecture holds: one device contract, one action table, registers declared
once, and each module with its one job (docs/design.md)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import wdcore
from wdcore import _select, regs
from wdcore.actions import ACTIONS, EFFECTS, RUN_STATES, Request, RunState

SRC = Path(__file__).resolve().parent.parent / "src" / "wdcore"


def compiled_module(name):
    if not _select.HAS_EXTENSIONS:
        if os.environ.get("WDCORE_REQUIRE_EXTENSIONS", "") not in ("", "0"):
            pytest.fail("compiled core required but missing")
        pytest.skip("compiled core not built")
    import importlib
    return importlib.import_module(name)


# --- registers declared once --------------------------------------------------------------
def test_regs_pxd_is_generated_from_the_rows():
    # the compiled core's enums come from _regs.pxd; it must be what regs.py generates
    assert (SRC / "_regs.pxd").read_text() == regs.pxd_text(), \
        "src/wdcore/_regs.pxd is stale: run python3 tools/gen_regs_pxd.py"


def test_every_row_reaches_the_pxd():
    text = regs.pxd_text()
    for space in regs.SPACES:
        for r in space.regs:
            assert f"{space.prefix}_{r.name} = {r.offset:#x}" in text
        for b in space.bits:
            for name, mask in b.masks:
                entry = f"{space.prefix}_{b.reg}_{name}"
                assert (f"{entry} = {mask:#x}" in text or f"WD_{entry} {mask:#x}U" in text)


def test_rows_do_not_overlap_within_a_space():
    for space in regs.SPACES:
        spans = sorted((r.offset, r.offset + r.width, r.name) for r in space.regs if r.name != "RAW")
        for (a0, a1, an), (b0, b1, bn) in zip(spans, spans[1:]):
            assert a1 <= b0, f"{space.prefix}: {an} overlaps {bn}"
        if space.size:
            assert all(r.offset + r.width <= space.size for r in space.regs)


def test_no_compiled_module_spells_a_register_number():
    # the compiled device modules name their registers through _regs.pxd, never by number
    for name in ("_ib700.pyx", "_i6300esb.pyx", "_machine.pyx"):
        code = re.sub(r'""".*?"""', "", (SRC / name).read_text(), flags=re.S)
        code = re.sub(r"#.*", "", code)
        for raw in ("0x441", "0x442", "0x443", "0x444", "0xCF8", "0xCFC", "0xD00", "0x60",
                    "0x68", "0x0C", "0x80", "0x86", "0x1200", "0x0100", "0xFFFFF"):
            assert not re.search(rf"\b{raw}\b", code, re.I), f"{name} spells {raw}: use _regs.pxd"


# --- one action table, as data ---------------------------------------------------------------
def test_compiled_effect_table_is_the_python_table():
    m = compiled_module("wdcore._machine")
    expected = tuple((int(e.request), e.power_off, e.immediate_event) for e in EFFECTS)
    assert m.effect_table() == expected
    assert len(EFFECTS) == len(ACTIONS)


def test_compiled_run_states_requests_and_opcodes_match_the_python_tables():
    m = compiled_module("wdcore._machine")
    consts = m.c_constants()
    # every run state at its position in RUN_STATES (its snapshot code)
    assert consts["run_states"] == {s.name: i for i, s in enumerate(RUN_STATES)}
    assert consts["requests"] == {r.name: int(r) for r in Request}
    # QEMU's handling order: shutdown, reset, powerdown, stop
    assert [r.name for r in Request] == ["SHUTDOWN", "RESET", "POWERDOWN", "STOP"]
    from wdcore import ops
    assert consts["opcodes"] == {"OUTB": ops.OPS.index("outb"), "INB": ops.OPS.index("inb"),
                                 "WRITEB": ops.OPS.index("writeb"), "READB": ops.OPS.index("readb"),
                                 "STEP": ops.OP_STEP, "STEP_BARE": ops.OP_STEP_BARE,
                                 "SET": ops.OP_SET, "STEP32": ops.OP_STEP32}


def test_twin_run_state_codes_are_the_run_state_positions():
    from wdcore import _machine_py
    names = ("RUNNING", "WATCHDOG", "PAUSED", "PRELAUNCH", "SHUTDOWN", "POWEROFF")
    assert [getattr(_machine_py, n) for n in names] == [RUN_STATES.index(RunState[n]) for n in names]


def test_register_rows_say_what_a_reset_does(impl):
    # ESB_CONFIG rows: after every writable bit is set, a reset restores the "restores"
    # rows to their reset value and keeps the others
    dev = _select.implementation(impl).I6300ESB()
    rows = [r for r in regs.ESB_CONFIG.regs if r.width <= 4 and r.wmask]
    for r in rows:
        size = 2 if r.width == 3 else r.width
        dev.config_write(r.offset, size, r.wmask & ((1 << (8 * size)) - 1) & ~0x03 if r.name == "WDT_LOCK"
                         else r.wmask & ((1 << (8 * size)) - 1))
    dev.config_write(0x40, 4, 0x12345678)  # RAW: every bit writable, kept by reset
    dev.reset()
    assert regs.ESB_CONFIG["RAW"].on_reset == "keeps" and dev.config_read(0x40, 4) == 0x12345678
    for r in rows:
        size = 2 if r.width == 3 else r.width
        got = dev.config_read(r.offset, size)
        if r.on_reset == "restores":
            assert got == r.reset & ((1 << (8 * size)) - 1), r.name
        else:
            assert got != r.reset, r.name


# --- every module has one job -------------------------------------------------------------
def test_a_compiled_run_never_loads_a_twin():
    compiled_module("wdcore._machine")
    code = ("import sys, wdcore\n"
            "m = wdcore.Machine(); m.io_write(0x443, 1, 0x0F); m.advance(1)\n"
            "m.run(bytes([13])); m.snapshot()\n"
            "print(sorted(n for n in sys.modules if n.startswith('wdcore.') and n.endswith('_py')))\n")
    env = dict(os.environ, WDCORE_REQUIRE_EXTENSIONS="1")
    env.pop("WDCORE_NO_EXTENSIONS", None)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         check=True)
    # the core's twin holds the argument checks the compiled core raises through; no
    # device or Machine twin is ever imported
    assert out.stdout.split("\n")[0] == "['wdcore._core_py']"


@pytest.mark.parametrize("name", ["compiled", "python"])
def test_public_implementation_gives_a_typed_record(name):
    if name == "compiled":
        compiled_module("wdcore._ib700")
    impl = wdcore.implementation(name)
    assert isinstance(impl, wdcore.Implementation) and impl.name == name
    module = {"compiled": "wdcore._ib700", "python": "wdcore._ib700_py"}[name]
    assert impl.IB700.__module__ == module
    dev = impl.IB700()
    dev.io_write(0x443, 1, 0x0F)
    assert dev.next_deadline == 0 or dev.events  # 0 s: fired at the write
    assert impl.I6300ESB().config_read(0, 4) == 0x25AB8086
    with pytest.raises(ValueError, match="implementation"):
        wdcore.implementation("rust")


def test_machine_methods_come_from_the_core_by_inheritance(make_machine, impl):
    m = make_machine()
    core = _select.implementation(impl).MachineCore
    assert isinstance(m, wdcore.Machine) and isinstance(m, core)
    for name in ("io_write", "io_read", "mem_write", "mem_read", "advance", "advance_to"):
        assert name not in vars(m), f"{name} is bound on the instance"
        assert name not in vars(wdcore.Machine), f"Machine has a dead copy of {name}"
        assert getattr(type(m), name) is getattr(core, name)


def test_devices_share_one_timer_base(impl):
    base = {"compiled": "wdcore._core", "python": "wdcore._core_py"}[impl]
    implementation = _select.implementation(impl)
    import importlib
    Watchdog = importlib.import_module(base).Watchdog
    for cls in (implementation.IB700, implementation.I6300ESB):
        assert issubclass(cls, Watchdog)
        for name in ("now", "next_deadline", "advance", "advance_to", "action", "events",
                     "clear_events", "__reduce__", "snapshot", "restore", "reset"):
            assert name not in vars(cls), f"{cls.__name__} redefines the base's {name}"


def test_floor_classes_are_not_shipped():
    for path in SRC.glob("*.py*"):
        assert "CallFloor" not in path.read_text(), path.name


# --- the typed surface ------------------------------------------------------------------
def test_devices_satisfy_the_watchdog_protocol(impl):
    implementation = _select.implementation(impl)
    for dev in (implementation.IB700(), implementation.I6300ESB()):
        assert isinstance(dev, wdcore.Watchdog)
    assert not isinstance(object(), wdcore.Watchdog)


def _stub_names(path: Path) -> dict:
    import ast
    tree = ast.parse(path.read_text())
    out = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef):
            names = set()
            for item in node.body:
                if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    names.add(item.name)
                elif isinstance(item, ast.AnnAssign):
                    names.add(item.target.id)
            out[node.name] = (names, [b.id for b in node.bases if isinstance(b, ast.Name)])
    return out


@pytest.mark.parametrize("module, cls", [("_core", "Watchdog"), ("_ib700", "IB700"),
                                         ("_i6300esb", "I6300ESB"), ("_machine", "MachineCore")])
def test_stubs_declare_every_public_name_of_the_compiled_classes(module, cls):
    real = getattr(compiled_module(f"wdcore.{module}"), cls)
    stubs = {}
    for name in ("_core", "_ib700", "_i6300esb", "_machine"):
        stubs.update(_stub_names(SRC / f"{name}.pyi"))
    declared, bases = stubs[cls]
    for base in bases:
        declared = declared | stubs[base][0]
    public = {n for n in dir(real) if not n.startswith("_")}
    assert public <= declared, f"{cls}: not in the stub: {sorted(public - declared)}"
    # (the private names the stubs declare, stubtest checks: tests/test_types.py)
    declared = {n for n in declared if not n.startswith("_")}
    assert declared <= public | {"on_expire", "on_irq", "on_event", "STATE", "KIND"}


def test_machine_status_is_a_run_state_equal_to_its_string(make_machine):
    m = make_machine(action="pause")
    assert m.status is RunState.RUNNING and m.status == "running"
    m.io_write(0x443, 1, 0x0F)  # 0 s: fires at the write, pauses at its end
    assert m.status is RunState.WATCHDOG and m.status == "watchdog"
    assert [e["event"] for e in m.events] == ["WATCHDOG", "STOP"]
    assert set(m.events[0]) == set(wdcore.MachineEvent.__annotations__)
    result = m.run([("clock_step", 1)])
    assert isinstance(result, wdcore.RunResult) and result.ops_executed == 1


# --- the layering docs/design.md draws -------------------------------------------------------
# module -> the wdcore modules it may import (cimports included)
ALLOWED_IMPORTS = {
    "regs": set(), "actions": set(), "protocol": {"actions"},
    "_core_py": {"actions", "regs", "_select"}, "_core": {"_core_py", "actions", "_regs", "_snapshot"},
    "_snapshot": {"_core_py", "actions", "regs"},
    "_ib700_py": {"_core_py", "_snapshot", "regs"},
    "_ib700": {"_core", "_regs", "_snapshot", "regs", "_core_py"},
    "_i6300esb_py": {"_core_py", "_snapshot", "regs", "actions"},
    "_i6300esb": {"_core", "_regs", "_snapshot", "regs", "_core_py", "actions"},
    "_machine_py": {"_core_py", "actions", "regs", "ops"},
    "_machine": {"_core", "_ib700", "_i6300esb", "_regs", "_core_py", "actions", "ops", "_snapshot"},
    "_select": set(), "machine": {"_snapshot", "ops", "_core_py", "_select", "actions", "regs"},
    "ops": set(), "qtest": {"ops", "wdcore"}, "clients": {"regs", "ops"},
    "demo": {"clients", "wdcore", "actions", "ops"},
    "adapters/unicorn": {"regs", "machine", "ops"}, "guests": set(),
    "guest_demo": {"wdcore", "guests", "adapters"},
}


def _wdcore_imports(path: Path) -> set:
    text = path.read_text()
    found = set(re.findall(r"^\s*(?:from|c?import)\s+wdcore\.(\w+)", text, re.M))
    for group in re.findall(r"^\s*from\s+wdcore\s+c?import\s+\(?([\w, ]+)", text, re.M):
        for item in group.split(","):
            name = item.split()[0] if item.split() else ""
            modular = (SRC / f"{name}.py").exists() or (SRC / f"{name}.pyx").exists()
            found.add(name if modular else "wdcore")  # a name of the package itself
    if re.search(r"^\s*import\s+wdcore\s*$", text, re.M):
        found.add("wdcore")
    return found


@pytest.mark.parametrize("module", sorted(ALLOWED_IMPORTS))
def test_each_module_imports_only_what_the_design_allows(module):
    paths = [p for p in (SRC / f"{module}.py", SRC / f"{module}.pyx") if p.exists()]
    assert paths, module
    for path in paths:
        extra = _wdcore_imports(path) - ALLOWED_IMPORTS[module] - {module}
        assert not extra, f"{path.name} imports {sorted(extra)}, outside docs/design.md's arrows"


def test_the_layering_table_covers_every_module():
    modules = {p.stem for p in SRC.glob("*.py") if p.stem not in ("__init__", "__main__")}
    modules |= {p.stem for p in SRC.glob("*.pyx")}
    modules |= {f"adapters/{p.stem}" for p in SRC.glob("adapters/*.py") if p.stem != "__init__"}
    assert modules == set(ALLOWED_IMPORTS)


class HostMachine(wdcore.Machine):
    """A host's subclass, as an emulator might add its own helpers."""

    def ping_ib700(self) -> None:
        self.io_write(0x443, 1, 0x0E)


def test_a_host_can_subclass_machine(impl):
    import pickle
    m = HostMachine(implementation=impl)
    assert isinstance(m, HostMachine) and isinstance(m, wdcore.Machine)
    assert isinstance(m, _select.implementation(impl).MachineCore)
    m.ping_ib700()
    assert m.next_deadline == 2 * 10**9 and m.implementation == impl
    loaded = pickle.loads(pickle.dumps(m))  # in the implementation selected here
    assert type(loaded) is type(HostMachine()) and loaded.snapshot() == m.snapshot()
    assert isinstance(loaded, HostMachine) and loaded.implementation == _select.implementation().name
    import copy
    copied = copy.deepcopy(m)  # a copy keeps its implementation
    assert type(copied) is type(m) and copied.snapshot() == m.snapshot()


def test_pickles_made_before_the_reshape_still_load():
    # made by wdcore at commit 03f006a (before the Watchdog base): an armed IB700 and
    # i6300ESB and a Machine, on both implementations, with each one's snapshot then
    import base64
    import json
    import pickle
    for row in json.loads((Path(__file__).parent / "data" / "pickles-03f006a.json").read_text()):
        if row["implementation"] == "compiled" and not _select.HAS_EXTENSIONS:
            continue
        obj = pickle.loads(base64.b64decode(row["pickle_b64"]))
        assert obj.snapshot() == bytes.fromhex(row["snapshot_hex"]), (row["implementation"], row["kind"])
        assert obj.next_deadline is not None


def test_both_implementations_have_the_same_public_names():
    # the twin's own state is private, as the compiled classes' cdef state is; the c_*
    # contract is the one thing the twin shows that Python cannot see on the compiled side
    compiled_module("wdcore._machine")
    def public(obj):
        return {n for n in dir(obj) if not n.startswith(("_", "c_"))}
    for make in (lambda i: wdcore.Machine(implementation=i),
                 lambda i: wdcore.implementation(i).IB700(),
                 lambda i: wdcore.implementation(i).I6300ESB()):
        assert public(make("python")) == public(make("compiled"))
