"""Op streams: the binary codec (docs/ops.md), qtest text, Machine.run, and replay."""
from __future__ import annotations

import json
import os
import struct
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests import guest
from wdcore import ops, qtest

S = 1_000_000_000
TIME_MAX = (1 << 63) - 1

# --- the codec ---------------------------------------------------------------------------

WIDTH = {"b": 1, "w": 2, "l": 4}


def op_strategy():
    def value(name):
        return st.integers(0, (1 << (8 * WIDTH[name[-1]])) - 1)

    port_ops = [st.tuples(st.just(n), st.integers(0, 0xFFFF), value(n)) for n in ("outb", "outw", "outl")]
    port_ops += [st.tuples(st.just(n), st.integers(0, 0xFFFF)) for n in ("inb", "inw", "inl")]
    mem_ops = [st.tuples(st.just(n), st.integers(0, 2**64 - WIDTH[n[-1]]), value(n))
               for n in ("writeb", "writew", "writel")]
    mem_ops += [st.tuples(st.just(n), st.integers(0, 2**64 - WIDTH[n[-1]])) for n in ("readb", "readw", "readl")]
    clock = [st.tuples(st.just("clock_step"), st.integers(0, TIME_MAX)), st.just(("clock_step",)),
             st.tuples(st.just("clock_set"), st.integers(0, TIME_MAX))]
    return st.one_of(*port_ops, *mem_ops, *clock)


@given(st.lists(op_strategy(), max_size=30))
def test_decode_inverts_encode(op_list):
    assert ops.decode(ops.encode(op_list)) == op_list


@settings(max_examples=300)
@given(st.binary(max_size=200))
def test_every_byte_string_decodes_to_valid_ops(data):
    decoded = ops.decode(data)
    # valid means: encode accepts it (ranges checked there) ...
    again = ops.encode(decoded)
    # ... and decoding its encoding is a fixed point
    assert ops.decode(again) == decoded


def test_layout_byte_by_byte():
    # docs/ops.md: op byte, then little-endian fields
    assert ops.encode([("outb", 0x443, 0x0E)]) == bytes([0x00, 0x43, 0x04, 0x0E])
    assert ops.encode([("outl", 0xCF8, 0x80001000)]) == bytes([0x02, 0xF8, 0x0C]) + struct.pack("<I", 0x80001000)
    assert ops.encode([("inw", 0xCFC)]) == bytes([0x04, 0xFC, 0x0C])
    assert ops.encode([("writew", 0xE000000C, 0x86)]) == b"\x07" + struct.pack("<QH", 0xE000000C, 0x86)
    assert ops.encode([("readl", 5)]) == b"\x0b" + struct.pack("<Q", 5)
    assert ops.encode([("clock_step", 7)]) == b"\x0f" + struct.pack("<I", 7)
    assert ops.encode([("clock_step", 2**32)]) == b"\x0c" + struct.pack("<Q", 2**32)
    assert ops.encode([("clock_step",)]) == b"\x0d"
    assert ops.encode([("clock_set", 9)]) == b"\x0e" + struct.pack("<Q", 9)


def test_decode_rules_for_raw_input():
    # high nibble ignored
    assert ops.decode(bytes([0xF0, 0x43, 0x04, 0x0E])) == [("outb", 0x443, 0x0E)]
    # bit 63 of a time cleared
    assert ops.decode(b"\x0c" + b"\xff" * 8) == [("clock_step", TIME_MAX)]
    # an access running past 2**64 is clamped
    assert ops.decode(b"\x0b" + b"\xff" * 8) == [("readl", 2**64 - 4)]
    # trailing partial op dropped
    assert ops.decode(bytes([0x00, 0x43, 0x04, 0x0E, 0x02, 0xF8])) == [("outb", 0x443, 0x0E)]
    assert ops.decode(b"") == []


@pytest.mark.parametrize("bad, exc", [
    ([("outb", 0x10000, 0)], ValueError), ([("outb", 0x443, 0x100)], ValueError),
    ([("readl", 2**64 - 3)], ValueError), ([("clock_step", -1)], ValueError),
    ([("clock_set", 2**63)], ValueError), ([("hop", 1)], ValueError),
    ([("outb", 0x443)], ValueError), ([["outb", 1, 2]], TypeError), ([("outb", 1.0, 2)], TypeError),
])
def test_encode_rejects_invalid_ops_naming_them(bad, exc):
    with pytest.raises(exc, match=r"ops\[0\]"):
        ops.encode(bad)


def test_decode_rejects_non_bytes():
    with pytest.raises(TypeError, match="data"):
        ops.decode("outb")


# --- qtest text ---------------------------------------------------------------------------

def test_parse_reads_qemus_syntax():
    text = """outb 0x443 0xe
    inw 0xcfc
    # a comment, then a blank line

    writel 0xe000000c 0x80
    readb 3758096396
    clock_step 010
    clock_step
    clock_set 5000000000
    outb 0x443 0x1ff
    """
    assert qtest.parse(text) == [
        ("outb", 0x443, 0x0E), ("inw", 0xCFC), ("writel", 0xE000000C, 0x80),
        ("readb", 0xE000000C), ("clock_step", 8),  # C's base 0: a leading 0 is octal
        ("clock_step",), ("clock_set", 5 * S),
        ("outb", 0x443, 0xFF),  # wider values are truncated to the access, as QEMU does
    ]


@pytest.mark.parametrize("line", ["outb 0x10000 0", "hop 1", "outb 0x443", "inb", "inb 1 2",
                                  "clock_step -1", "clock_set", "clock_step 0x8000000000000000",
                                  "readl 0xfffffffffffffffe", "outb 0x443 zz", "outb 09 1"])
def test_parse_names_the_bad_line(line):
    with pytest.raises(ValueError, match=r"^line 2: "):
        qtest.parse("outb 0x443 0xe\n" + line + "\n")


# --- Machine.run ----------------------------------------------------------------------------

def scenario_ops():
    return [("outb", 0x443, 0x0E), ("clock_step", 2 * S - 1), ("inb", 0x443),
            ("outl", 0xCF8, 0x80001000), ("inl", 0xCFC), ("clock_step", 1),
            ("outl", 0xCF8, 0x80001010), ("outl", 0xCFC, 0xE0000000),
            ("outl", 0xCF8, 0x80001004), ("outw", 0xCFC, 0x0002),
            ("writew", 0xE000000C, 0x80), ("writew", 0xE000000C, 0x86),
            ("writel", 0xE0000000, 1), ("outl", 0xCF8, 0x80001060), ("outw", 0xCFC, 0x0004),
            ("outl", 0xCF8, 0x80001068), ("outb", 0xCFC, 0x02), ("readw", 0xE000000C),
            ("clock_step",), ("clock_step",), ("readw", 0xE000000C), ("clock_set", 10 * S)]


def test_run_equals_per_access_calls(make_machine):
    a, b = make_machine(action="none"), make_machine(action="none")
    result = a.run(ops.encode(scenario_ops()))
    reads = guest.do(b, scenario_ops())
    assert result.ops_executed == len(scenario_ops())
    assert result.reads == reads
    # the IB700 at 2 s, the i6300ESB after its 1 kHz preload-1 stage 1 and the reset stage 2
    assert [e["event"] for e in result.events] == ["WATCHDOG", "WATCHDOG"]
    assert result.events == a.events == b.events
    assert a.snapshot() == b.snapshot()
    assert reads[0] == 0xFF and reads[1] == 0x25AB8086 and reads[2] == 0 and reads[3] == 0x1200


def test_run_accepts_op_lists_and_stops_after_poweroff(make_machine):
    m = make_machine(action="poweroff")
    result = m.run([("outb", 0x443, 0x0F), ("outb", 0x443, 0x0E), ("clock_step", S)])
    assert result.ops_executed == 1 and m.status == "poweroff"
    assert [e["event"] for e in result.events] == ["WATCHDOG"]
    assert m.run([("clock_step", 1)]).ops_executed == 0


def test_run_clock_saturates(make_machine):
    m = make_machine()
    m.run([("clock_set", TIME_MAX - 5), ("clock_step", 100)])
    assert m.now == TIME_MAX


def test_run_rejects_non_ops(make_machine):
    m = make_machine()
    with pytest.raises(TypeError, match="ops"):
        m.run("outb 0x443 0xe")
    with pytest.raises(ValueError, match=r"ops\[1\]"):
        m.run([("outb", 0x443, 0x0E), ("outb", 0x443, 0x100)])
    assert m.next_deadline is None  # nothing ran


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_run_of_raw_bytes_never_raises_and_both_implementations_agree(data):
    from wdcore import Machine, _select

    impls = ["python"] + (["compiled"] if _select.HAS_EXTENSIONS else [])
    results = []
    for impl in impls:
        m = Machine(action="none", implementation=impl)
        results.append((m.run(data), m.snapshot()))
    assert all(r == results[0] for r in results)


# --- replay ---------------------------------------------------------------------------------

def replay(script: str, *args):
    return subprocess.run([sys.executable, "-m", "wdcore", "replay", "-", *args], input=script,
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))


@pytest.mark.parametrize("impl", ["compiled", "python"])
def test_replay_prints_qemus_replies_and_events(impl, tmp_path):
    from wdcore import _select
    if impl == "compiled" and not _select.HAS_EXTENSIONS:
        pytest.skip("compiled core not built")
    script = "outb 0x443 0xe\nclock_step 3000000000\ninl 0xcfc\noutl 0xcf8 0x80001000\n" \
             "inl 0xcfc\nreadw 0xe000000c\nclock_step\nclock_set 1\n"
    r = replay(script, "--implementation", impl)
    assert r.returncode == 0, r.stderr
    # SPEC.md §7.2: OK for writes, OK 0x%04x for in*, OK 0x%016x for read*, OK <ns> for clocks
    assert r.stdout.splitlines() == ["OK", "OK 3000000000", "OK 0xffffffff", "OK", "OK 0x25ab8086",
                                     "OK 0x0000000000000000", "OK 3000000000", "OK 3000000000"]
    events = [json.loads(line) for line in r.stderr.splitlines()]
    assert events == [{"event": "WATCHDOG", "data": {"action": "reset"}, "time_ns": 2 * S},
                      {"event": "RESET", "data": {"guest": True, "reason": "guest-reset"}, "time_ns": 3 * S}]
    out = tmp_path / "events.jsonl"
    r = replay(script, "--events", str(out), "--action", "pause")
    assert r.returncode == 0 and r.stderr == ""
    assert [json.loads(line)["event"] for line in out.read_text().splitlines()] == ["WATCHDOG", "STOP"]


def test_replay_bad_line_is_a_clear_error_not_a_traceback():
    r = replay("outb 0x443 0xe\nfrobnicate 1\n")
    assert r.returncode == 2
    assert "line 2" in r.stderr and "frobnicate" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_replay_poweroff_ends_without_a_reply():
    # SPEC.md §7.3: poweroff exits QEMU inside the clock_step: no reply
    r = replay("outb 0x443 0xe\nclock_step 3000000000\ninb 0x443\n", "--action", "poweroff")
    assert r.returncode == 0
    assert r.stdout.splitlines() == ["OK"]


# --- replay in-process: wdcore.qtest.replay ------------------------------------------------

REPLAY_SCRIPT = ("outb 0x443 0xe\nclock_step 3000000000\ninl 0xcfc\noutl 0xcf8 0x80001000\n"
                 "inl 0xcfc\nreadw 0xe000000c\nclock_step\nclock_set 1\n")
GUEST_RESET = {"guest": True, "reason": "guest-reset"}


def replay_in_process(script, impl, **kw):
    import io

    out, events, err = io.StringIO(), io.StringIO(), io.StringIO()
    kw.setdefault("events_out", events)
    rc = qtest.replay(script, out=out, err=err, implementation=impl, **kw)
    return (rc, out.getvalue().splitlines(),
            [json.loads(line) for line in events.getvalue().splitlines()], err.getvalue())


def test_replay_function_prints_qemus_replies_and_events(impl):
    rc, lines, events, err = replay_in_process(REPLAY_SCRIPT, impl)
    assert rc == 0 and err == ""
    # SPEC.md §7.2: OK for writes, OK 0x%04x for in*, OK 0x%016x for read*, OK <ns> for clocks;
    # CONFIG_ADDRESS 0 at construction: CONFIG_DATA reads all-ones (§5.2 rule 1); 00:02.0
    # holds 8086:25ab (§3.1); BAR0 unassigned, so memory reads 0 (§5.3); the bare clock_step
    # with no deadline and the clock_set into the past leave the clock (§7.2)
    assert lines == ["OK", "OK 3000000000", "OK 0xffffffff", "OK", "OK 0x25ab8086",
                     "OK 0x0000000000000000", "OK 3000000000", "OK 3000000000"]
    # index 0xE = 2 s (§2.2); the RESET at the end of the 3 s step (§4.2)
    assert events == [{"event": "WATCHDOG", "data": {"action": "reset"}, "time_ns": 2 * S},
                      {"event": "RESET", "data": GUEST_RESET, "time_ns": 3 * S}]


def test_replay_function_events_default_to_err_and_to_a_path(impl, tmp_path):
    import io

    out, err = io.StringIO(), io.StringIO()
    assert qtest.replay(REPLAY_SCRIPT, out=out, err=err, action="pause", implementation=impl) == 0
    assert [json.loads(line)["event"] for line in err.getvalue().splitlines()] == ["WATCHDOG", "STOP"]
    path = tmp_path / "events.jsonl"
    rc, lines, _, err = replay_in_process(REPLAY_SCRIPT, impl, events_out=str(path), action="pause")
    assert rc == 0 and err == "" and lines[:2] == ["OK", "OK 3000000000"]
    assert [json.loads(line)["event"] for line in path.read_text().splitlines()] == ["WATCHDOG", "STOP"]


def test_replay_function_bad_line_and_bad_events_path(impl, tmp_path):
    rc, lines, events, err = replay_in_process("outb 0x443 0xe\nfrobnicate 1\n", impl,
                                               source="script.qtest")
    assert rc == 2 and lines == [] and events == []
    assert err.startswith("wdcore replay: script.qtest: line 2: ") and "frobnicate" in err
    rc, lines, _, err = replay_in_process("outb 0x443 0xe\n", impl,
                                          events_out=str(tmp_path / "no" / "such" / "dir"))
    assert rc == 2 and lines == [] and err.startswith("wdcore replay: cannot write ")


def test_replay_function_poweroff_ends_without_a_reply(impl):
    # SPEC.md §7.3 item 2: poweroff exits QEMU inside the clock_step: no reply, nothing after
    rc, lines, events, _ = replay_in_process("outb 0x443 0xe\nclock_step 3000000000\ninb 0x443\n",
                                             impl, action="poweroff")
    assert rc == 0 and lines == ["OK"]
    assert events == [{"event": "WATCHDOG", "data": {"action": "poweroff"}, "time_ns": 2 * S}]


def test_replay_function_no_reboot_exits_after_the_reply(impl):
    # §7.3 item 2: "-no-reboot + reset exits after the reply and SHUTDOWN"; index 0xF = 0 s
    # fires at the write (§6.6 #3)
    rc, lines, events, _ = replay_in_process("outb 0x443 0xf\ninb 0x443\nclock_step 5\n", impl,
                                             reboot_action="shutdown")
    assert rc == 0 and lines == ["OK"]
    assert events == [{"event": "WATCHDOG", "data": {"action": "reset"}, "time_ns": 0},
                      {"event": "SHUTDOWN", "data": GUEST_RESET, "time_ns": 0}]


@pytest.mark.parametrize("profile, config_readback", [("qemu", "OK 0x0027"), ("qemu-7.2", "OK 0x0035")])
def test_replay_function_slot_and_profile(impl, profile, config_readback):
    # 00:05.0 with esb_slot=5, 00:02.0 empty (§5.2 rule 3); WDT Configuration 0xFFFF reads back
    # 0x0027 in qemu, 0x0035 in qemu-7.2 (§3.3)
    script = ("outl 0xcf8 0x80001000\ninl 0xcfc\noutl 0xcf8 0x80002800\ninl 0xcfc\n"
              "outl 0xcf8 0x80002860\noutw 0xcfc 0xffff\ninw 0xcfc\n")
    rc, lines, _, _ = replay_in_process(script, impl, esb_slot=5, profile=profile)
    assert rc == 0
    assert lines == ["OK", "OK 0xffffffff", "OK", "OK 0x25ab8086", "OK", "OK", config_readback]


def test_replay_function_runs_a_linux_client_script(impl):
    # SPEC.md §6.6 #5 and #6 as a qtest script built from wdcore.clients: bring-up, mainline
    # probe and open (heartbeat 30 s: both stages 30 198 988 800 ns, §3.9), silence, then
    # after the reset a new bring-up whose boot-status read shows the flag (0x1200)
    from wdcore.clients import firmware, linux_i6300esb as drv

    bar, both = 0xE0000000, 30_198_988_800
    seq = (firmware.bring_up(2, bar) + drv.probe(2, bar) + drv.start(2, bar)
           + [("clock_step", both)] + firmware.bring_up(2, bar) + drv.boot_status(bar))

    def line(op):
        return " ".join([op[0]] + [f"{x:#x}" if op[0] != "clock_step" else str(x) for x in op[1:]])

    rc, lines, events, _ = replay_in_process("\n".join(map(line, seq)) + "\n", impl)
    assert rc == 0
    reads = [l for l, op in zip(lines, seq) if op[0].startswith(("in", "read"))]
    first = ["OK 0xffffffff", "OK 0xffffffff", "OK 0x25ab8086", "OK 0xfffffff0"]  # scan, sizing
    assert reads == first + ["OK 0x0000", "OK 0x0000000000000000"] + first + ["OK 0x0000000000001200"]
    assert lines[seq.index(("clock_step", both))] == f"OK {both}"
    assert all(l == "OK" for l, op in zip(lines, seq) if op[0].startswith(("out", "write")))
    assert events == [{"event": "WATCHDOG", "data": {"action": "reset"}, "time_ns": both},
                      {"event": "RESET", "data": GUEST_RESET, "time_ns": both}]
