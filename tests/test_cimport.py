"""`cimport wdcore` works for downstream Cython (src/wdcore/__init__.pxd).

A tiny downstream extension (tests/downstream/wd_downstream.pyx) is compiled in a
subprocess against the *installed* package's .pxd files, with this interpreter's
Cython and setuptools, then imported.  It drives an IB700, an I6300ESB and a Machine
core through their c_* methods from `with nogil:` loops, following the protocol the
.pxd files document; every result is compared with the same operations through the
Python API on another instance (the compiled one and the twin).

Skips when the compiled core (or Cython) is missing, unless WDCORE_REQUIRE_EXTENSIONS is
set: then it fails.
"""
from __future__ import annotations

import importlib
import importlib.util
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import wdcore
from wdcore import _select, clients, ops as wd_ops, regs
from wdcore._core_py import piece_size
from wdcore.actions import ACTION_CODE, RUN_STATES, RunState, WatchdogAction

HERE = Path(__file__).resolve().parent
PYX = HERE / "downstream" / "wd_downstream.pyx"
S = 1_000_000_000
BAR = 0xFEBF0000

# the op codes of wd_downstream.pyx
WRITE, READ, MEM_WRITE, MEM_READ, STEP, NEXT = range(6)
WD_DUE, WD_SIGNAL = 1, 2

SETUP = """\
import os
from setuptools import Extension, setup
from Cython.Build import cythonize

setup(name="wd_downstream",
      ext_modules=cythonize([Extension("wd_downstream", ["wd_downstream.pyx"])],
                            include_path=[os.environ["WD_INCLUDE"]], quiet=True),
      script_args=["build_ext", "--inplace", "--quiet"])
"""


def _required() -> bool:
    return os.environ.get("WDCORE_REQUIRE_EXTENSIONS", "") not in ("", "0")


def _need(ok: bool, why: str) -> None:
    if not ok:
        if _required():
            pytest.fail(f"{why} (WDCORE_REQUIRE_EXTENSIONS is set)")
        pytest.skip(why)


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    """The downstream module, built once."""
    _need(_select.HAS_EXTENSIONS, "compiled core not built")
    for mod in ("Cython", "setuptools"):
        _need(importlib.util.find_spec(mod) is not None, f"{mod} is not installed")
    include = os.path.dirname(os.path.dirname(wdcore.__file__))  # the package's parent dir
    pkg = Path(include) / "wdcore"
    _need((pkg / "__init__.pxd").is_file(), f"no __init__.pxd in {pkg}")
    build = tmp_path_factory.mktemp("downstream")
    shutil.copy(PYX, build)
    (build / "setup.py").write_text(SETUP)
    env = {k: v for k, v in os.environ.items() if not k.startswith("WDCORE_")}
    env["WD_INCLUDE"] = include
    r = subprocess.run([sys.executable, "setup.py"], cwd=build, env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    sys.path.insert(0, str(build))
    try:
        return importlib.import_module("wd_downstream")
    finally:
        sys.path.remove(str(build))


def compare(seen, expected):
    """seen: the downstream's (value, now, armed, deadline, seq, expiries) per op;
    expected: the Python API's, with value None for writes (their flags are checked
    apart).  Deadlines only count while armed."""
    norm = [(None if e[0] is None else s[0], s[1], s[2], s[3] if s[2] else None, s[4], s[5])
            for s, e in zip(seen, expected)]
    assert len(seen) == len(expected)
    for i, (got, want) in enumerate(zip(norm, expected)):
        assert got == want, f"op {i}: downstream {got} != Python API {want}"


def flags_of(seen, ops, code=(WRITE, MEM_WRITE)):
    return {i: s[0] for i, (s, op) in enumerate(zip(seen, ops)) if op[0] in code and s[0]}


# --- names ------------------------------------------------------------------------------------
def test_the_names_downstream_code_cimports(ds):
    c = ds.constants()
    assert c["WD_DUE"] == WD_DUE and c["WD_SIGNAL"] == WD_SIGNAL
    assert c["WD_TIME_MAX_NS"] == wd_ops.TIME_MAX_NS
    assert (c["IB700_PORT_FIRST"], c["IB700_PORT_LAST"]) == (regs.IB700_PORT_FIRST, regs.IB700_PORT_LAST)
    assert c["IB700_WDT_START"] == regs.IB700_START and c["ESB_SIZE"] == regs.MMIO_SIZE
    states = {s.name: i for i, s in enumerate(RUN_STATES)}
    for name in ("RUNNING", "WATCHDOG", "SHUTDOWN", "POWEROFF"):
        assert c[name] == states[name]
    assert c["MAX_DEVICES"] >= 2


def test_host_argument_checks_raise_the_python_errors(ds):
    assert ds.check_access(0x443, 1, 0x0E) == (0x443, 1, 0x0E)
    dev = wdcore.IB700()
    for bad in [(0x10000, 1, 0), (-1, 1, 0), (0x443, 3, 0), (0x443, 1, 0x100), (0x443, 2, -1),
                ("0x443", 1, 0), (0x443, 1.0, 0)]:
        with pytest.raises((TypeError, ValueError)) as want:
            dev.io_write(*bad)
        with pytest.raises(want.type, match=None) as got:
            ds.check_access(*bad)
        assert str(got.value) == str(want.value), bad
    esb = wdcore.I6300ESB()
    assert ds.check_bar0(12, 4) == 12
    with pytest.raises(ValueError) as want:
        esb.mmio_read(14, 4)
    with pytest.raises(ValueError) as got:
        ds.check_bar0(14, 4)
    assert str(got.value) == str(want.value)
    assert ds.check_time(5, 7) == 7
    with pytest.raises(ValueError, match="before now"):
        ds.check_time(5, 4)


def test_piece_size_and_the_timer_order(ds):
    for offset in range(9):
        for left in range(1, 9):
            want, o, n = [], offset, left
            while n:
                k = piece_size(o, n)
                want.append(k)
                o, n = o + k, n - k
            assert ds.pieces(offset, left) == want
    assert ds.timer_order(5, 1, 5, 2, 5) == (True, True, True)     # equal deadlines: FIFO
    assert ds.timer_order(5, 9, 6, 2, 5) == (True, False, True)    # earlier deadline first
    assert ds.timer_order(7, 1, 6, 2, 6) == (False, True, False)


# --- standalone devices -------------------------------------------------------------------------
def _state_seq(dev):
    return dev.STATE.unpack(dev.snapshot()).seq


def mirror_device(dev, ops, *, write, read, mem_write=None, mem_read=None):
    """The ops through the Python API: what wd_downstream's device_step records."""
    out = []
    for code, a, size, value in ops:
        v = None
        if code == WRITE:
            write(a, size, value)
        elif code == MEM_WRITE:
            mem_write(a, size, value)
        elif code == READ:
            v = read(a, size)
        elif code == MEM_READ:
            v = mem_read(a, size)
        elif code == STEP:
            v = dev.advance(a)
        else:
            d = dev.next_deadline
            v = dev.advance_to(dev.now if d is None else d)
        out.append((v, dev.now, dev.next_deadline is not None, dev.next_deadline,
                    _state_seq(dev), len(dev.events)))
    return out


IB700_OPS = [
    (READ, 0x441, 2, 0),
    (WRITE, 0x443, 1, 0x0E),          # 2 s
    (STEP, S, 0, 0),
    (WRITE, 0x443, 1, 0x0E),          # ping at 1 s: due at 3 s
    (STEP, 2 * S - 1, 0, 0),
    (STEP, 1, 0, 0),                  # the expiry
    (WRITE, 0x443, 2, 0x0D0C),        # word: 0x443 then 0x444 (the later arming wins)
    (NEXT, 0, 0, 0),
    (WRITE, 0x443, 1, 0x0F),          # index 15: a zero timeout, due at the end of the access
    (WRITE, 0x443, 1, 0x00),          # 30 s
    (WRITE, 0x441, 1, 0),             # stop
    (STEP, 40 * S, 0, 0),
    (WRITE, 0x444, 1, 0x03),
    (WRITE, 0x445, 1, 0x00),          # not an IB700 port
    (WRITE, 0x443, 4, 0x0F),          # dwords reach no handler
    (WRITE, 0x442, 2, 0xFFFF),        # word at 0x442: a stop
    (WRITE, 0x444, 1, 0x0E),
    (READ, 0x443, 1, 0),
    (NEXT, 0, 0, 0),
    (NEXT, 0, 0, 0),                  # nothing armed: time stays
]


@pytest.mark.parametrize("impl", ["compiled", "python"])
def test_ib700_driven_from_nogil(ds, impl):
    seen_events, want_events = [], []
    dev = wdcore.implementation("compiled").IB700(action="pause", on_expire=seen_events.append)
    py = wdcore.implementation(impl).IB700(action="pause", on_expire=want_events.append)
    seen = ds.drive_ib700(dev, IB700_OPS)
    want = mirror_device(py, IB700_OPS, write=py.io_write, read=py.io_read)
    compare(seen, want)
    assert flags_of(seen, IB700_OPS) == {8: WD_DUE}  # only the zero timeout was due at once
    # 3 s; the word write's 0x444 byte (4 s) at 3 s; the zero timeout; 0x444's 2 s at 47 s
    assert [e.time_ns for e in dev.events] == [3 * S, 7 * S, 7 * S, 49 * S]
    assert dev.events == py.events == seen_events == want_events
    assert dev.snapshot() == py.snapshot()


def _esb_ops():
    unlock = [(MEM_WRITE, regs.REG_RELOAD, 2, regs.UNLOCK1), (MEM_WRITE, regs.REG_RELOAD, 2, regs.UNLOCK2)]

    def preloads(p1, p2):
        return (unlock + [(MEM_WRITE, regs.REG_PRELOAD1, 4, p1)]
                + unlock + [(MEM_WRITE, regs.REG_PRELOAD2, 4, p2)])

    lock, config = regs.CFG_WDT_LOCK, regs.CFG_WDT_CONFIG
    return ([(READ, 0, 4, 0), (READ, 0x0E, 2, 0),
             (WRITE, config, 2, regs.WDT_1MHZ)]
            + preloads(100, 50)
            + [(WRITE, lock, 1, regs.WDT_ENABLE), (READ, lock, 1, 0), (READ, config, 2, 0),
               (STEP, 50_000, 0, 0)]
            + unlock + [(MEM_WRITE, regs.REG_RELOAD, 2, regs.RELOAD_PING),  # ping
                        (NEXT, 0, 0, 0),                                    # stage 1 ends: GINTSR set
                        (MEM_READ, regs.REG_GINTSR, 4, 0),
                        (MEM_WRITE, regs.REG_GINTSR, 4, 1),                 # clear: WD_SIGNAL
                        (MEM_READ, regs.REG_GINTSR, 1, 0),
                        (NEXT, 0, 0, 0),                                    # stage 2: the expiry
                        (MEM_READ, regs.REG_RELOAD, 2, 0),                  # previous-reboot flag
                        (MEM_READ, 0x0A, 4, 0), (READ, lock, 1, 0)]
            + preloads(0, 0)
            + [(WRITE, lock, 1, regs.WDT_ENABLE)]                           # zero: WD_DUE
            + [(WRITE, config, 2, regs.WDT_REBOOT_DISABLE | regs.WDT_1MHZ)]
            + preloads(10, 7)
            + [(WRITE, lock, 1, regs.WDT_FREE_RUN | regs.WDT_ENABLE),
               (STEP, 1, 0, 0), (NEXT, 0, 0, 0),                            # GINTSR set again
               (STEP, 10 * S, 0, 0),                                        # free-running: c_skip
               (MEM_READ, regs.REG_PRELOAD1, 4, 0), (WRITE, 0x40, 4, 0xDEADBEEF),
               (READ, 0x40, 4, 0), (READ, 0xFE, 2, 0), (WRITE, 0xFF, 4, 0x12345678),
               (READ, 0xFC, 4, 0), (WRITE, lock, 1, 0), (STEP, S, 0, 0)])


@pytest.mark.parametrize("impl", ["compiled", "python"])
def test_i6300esb_driven_from_nogil(ds, impl):
    ops = _esb_ops()
    irqs, want_irqs = [], []
    dev = wdcore.implementation("compiled").I6300ESB(action="none", stage1_interrupt=True)
    py = wdcore.implementation(impl).I6300ESB(action="none", stage1_interrupt=True)
    dev.on_irq, py.on_irq = irqs.append, want_irqs.append
    seen = ds.drive_i6300esb(dev, ops)
    want = mirror_device(py, ops, write=py.config_write, read=py.config_read,
                         mem_write=py.mmio_write, mem_read=py.mmio_read)
    compare(seen, want)
    flags = flags_of(seen, ops)
    assert sorted(flags.values()) == [WD_DUE, WD_SIGNAL], flags
    # stage 1 ends, the guest clears it; the zero-length cycle raises and drops it
    # again (the expiry resets the device); free-running stage 1 ends
    assert irqs == want_irqs == [True, False, True, False, True]
    assert len(dev.events) == 2 and dev.events == py.events
    assert dev.snapshot() == py.snapshot()
    enabled, locked, stage, p1, p2, gintsr, bar0, action = ds.esb_state(dev)
    assert (enabled, locked, stage, gintsr) == (False, False, py.stage, py.irq_level)
    assert (p1, p2, bar0) == (10, 7, 0)  # a standalone device never decodes memory
    assert action == ACTION_CODE[WatchdogAction.NONE]


# --- the Machine core ------------------------------------------------------------------------
def to_ds_ops(op_tuples):
    """qtest-vocabulary op tuples (wdcore.clients) as wd_downstream ops."""
    out = []
    for op in op_tuples:
        name = op[0]
        if name == "clock_step":
            out.append((NEXT, 0, 0, 0) if len(op) == 1 else (STEP, op[1], 0, 0))
            continue
        size = wd_ops.WIDTH[name[-1]]
        kind = name[:-1]
        code = {"out": WRITE, "in": READ, "write": MEM_WRITE, "read": MEM_READ}[kind]
        out.append((code, op[1], size, op[2] if code in (WRITE, MEM_WRITE) else 0))
    return out


def mirror_machine(m, ops):
    """The ops through the Machine's Python methods: what wd_downstream's machine_op
    records."""
    out = []
    write = {WRITE: m.io_write, MEM_WRITE: m.mem_write}
    read = {READ: m.io_read, MEM_READ: m.mem_read}
    for code, a, size, value in ops:
        v = None
        if code in write:
            write[code](a, size, value)
        elif code in read:
            v = read[code](a, size)
        elif code == STEP:
            v = m.advance(a)
        else:
            d = m.next_deadline
            v = m.advance_to(m.now if d is None else d)
        watchdogs = sum(e["event"] == "WATCHDOG" for e in m.events)
        out.append((v, m.now, m.next_deadline is not None, m.next_deadline, m.status_code, watchdogs))
    return out


def machine_pair(impl, **kw):
    seen, want = [], []
    m = wdcore.Machine(implementation="compiled", **kw)
    py = wdcore.Machine(implementation=impl, **kw)
    assert isinstance(m, wdcore.implementation("compiled").MachineCore)
    m.on_event, py.on_event = seen.append, want.append
    return m, py, seen, want


def machine_session():
    linux = clients.linux_i6300esb
    return to_ds_ops(
        clients.firmware.bring_up(2, BAR) + linux.probe(2, BAR, heartbeat=2) + linux.start(2, BAR)
        + clients.io_write(0x443, 1, 0x0D)                       # the IB700 too: 4 s
        + clients.clock_step(S) + linux.ping(BAR) + clients.io_read(0x443, 2)
        + clients.clock_step()                                  # to the next deadline
        + clients.clock_step(3 * S)
        + linux.boot_status(BAR) + clients.mem_read(BAR, 4) + clients.mem_read(BAR - 2, 4)
        + clients.io_write(0x443, 1, 0x0F)                        # zero timeout: fires in the access
        + clients.pci_config_read(2, 0, 4) + clients.io_read(0xCF8, 4)
        + clients.pci_config_write(2, 0x68, 1, 0x02)
        + clients.clock_step() + clients.clock_step() + clients.clock_step(10 * S)
        + clients.io_write(0x80, 1, 0x55) + clients.io_read(0x80, 4)
        + clients.io_write(0xCFE, 2, 0xFFFF) + clients.io_read(0xCFD, 2))


@pytest.mark.parametrize("impl", ["compiled", "python"])
@pytest.mark.parametrize("kw", [{"action": "reset"}, {"action": "pause"},
                                {"action": "inject-nmi"}, {"action": "poweroff"},
                                {"action": "reset", "reboot_action": "shutdown"}],
                         ids=lambda kw: "-".join(kw.values()))
def test_machine_core_driven_from_nogil(ds, impl, kw):
    ops = machine_session()
    m, py, events, want_events = machine_pair(impl, **kw)
    seen = ds.drive_machine(m, ops)
    want = mirror_machine(py, ops)
    compare(seen, want)
    assert m.events == py.events == events == want_events
    assert any(e["event"] == "WATCHDOG" for e in m.events)
    assert m.snapshot() == py.snapshot()
    now, status, running, finished, action, cfg_addr, expiries, has_ib, has_esb = ds.machine_state(m)
    assert (now, status, action, cfg_addr) == py.get_state()
    assert running == (py.status is RunState.RUNNING)
    assert finished == (py.status in (RunState.SHUTDOWN, RunState.POWEROFF))
    assert (has_ib, has_esb) == (True, True)


@pytest.mark.parametrize("impl", ["compiled", "python"])
def test_a_callback_exception_propagates_out_of_nogil(ds, impl):
    m, py, _, _ = machine_pair(impl, devices=("ib700",))

    def boom(event):
        raise RuntimeError(f"host callback at {event.time_ns}")

    m.ib700.on_expire = py.ib700.on_expire = boom
    ops = [(STEP, S, 0, 0), (WRITE, 0x443, 1, 0x0F)]   # a zero timeout: the expiry in the access
    with pytest.raises(RuntimeError, match="host callback at 1000000000"):
        ds.drive_machine(m, ops)
    py.advance(S)
    with pytest.raises(RuntimeError, match="host callback at 1000000000"):
        py.io_write(0x443, 1, 0x0F)
    # the failing callback cut nothing short: WATCHDOG, and the reset at the end of that
    # same operation, before the exception propagated (issue 10)
    assert m.events == py.events and [e["event"] for e in m.events] == ["WATCHDOG", "RESET"]
    assert ds.drive_machine(m, [(READ, 0x443, 1, 0)])[0][0] == py.io_read(0x443, 1) == 0xFF
    assert m.events == py.events and [e["event"] for e in m.events] == ["WATCHDOG", "RESET"]
    assert m.snapshot() == py.snapshot()


@pytest.mark.parametrize("impl", ["compiled", "python"])
def test_op_streams_through_c_run(ds, impl):
    rng = random.Random(20240609)
    streams = [wd_ops.encode([tuple(op) for op in
                              clients.firmware.bring_up(2, BAR) + clients.linux_i6300esb.probe(2, BAR, 1)
                              + clients.linux_i6300esb.start(2, BAR)
                              + [("outb", 0x443, 0x0E), ("clock_step",), ("clock_step", 5 * S)]])]
    streams += [bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) for _ in range(20)]
    for data in streams:
        m, py, _, _ = machine_pair(impl)
        executed, reads, consumed, stop = ds.run_stream(m, data)
        r = py.run(data)
        assert (executed, reads, consumed) == (r.ops_executed, r.reads, r.bytes_consumed)
        assert wd_ops.RUN_STOPS[stop] == r.stopped
        assert m.events == py.events
        assert m.snapshot() == py.snapshot()
    # the bound: a C caller stops after max_ops ops, exactly where the Python run does
    m, py, _, _ = machine_pair(impl)
    executed, reads, consumed, stop = ds.run_stream(m, streams[0], 7)
    r = py.run(streams[0], max_ops=7)
    assert (executed, consumed, wd_ops.RUN_STOPS[stop]) == (7, r.bytes_consumed, "max_ops")
    assert m.snapshot() == py.snapshot()
