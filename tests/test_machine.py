"""The Machine: bus routing, QEMU's action layer, run states, snapshots (SPEC.md §4, §5).

Every test builds its Machine through ``make_machine`` and so runs on the compiled core and on
the Python twin.  Expected values come from SPEC.md / API.md; the sentence being checked is
quoted next to the assertion.  In this release a Machine holds only the IB700.
"""
from __future__ import annotations

import copy
import json
import pickle

import pytest

from tests.conftest import S, _require_compiled
from wdcore import WatchdogAction, WatchdogEvent, _select

# IB700 ports (SPEC.md §2.1) and the PCI configuration mechanism #1 (§5.2)
DISABLE, DISABLE_ALIAS, ARM, ARM_ALIAS = 0x441, 0x442, 0x443, 0x444
CONFIG_ADDRESS, CONFIG_DATA = 0xCF8, 0xCFC
IDX_2S, IDX_0S = 0x0E, 0x0F  # §2.2: index E = 2 s, index F = 0 s
ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF}

GUEST = {"guest": True, "reason": "guest-reset"}
HOST = {"guest": False, "reason": "host-qmp-system-reset"}


def ev(name, t, data=None):
    return {"event": name, "data": {} if data is None else data, "time_ns": t}


def wd(action, t):
    return ev("WATCHDOG", t, {"action": action})


def arm(m, index=IDX_2S):
    m.io_write(ARM, 1, index)


def rearm_in_callback(m, index, times=1):
    """Let the IB700's on_expire re-arm it through the bus (§2.3 "clearing first ... keeps
    a callback's re-arm"; an access from a callback joins the operation in progress, and
    the Machine's own devices refuse direct calls); returns the device events seen."""
    seen = []

    def on_expire(event):
        seen.append(event)
        if len(seen) <= times:
            m.io_write(ARM, 1, index)

    m.ib700.on_expire = on_expire
    return seen


# =============================================================================================
# Routing, SPEC.md §5.1 / §5.2
# =============================================================================================

def test_outb_0x443_arms_through_the_machine(make_machine):
    m = make_machine()
    assert m.ib700 is not None
    m.advance(S + 5)
    arm(m)
    # §2.1: "0x443, 0x444 | arm: deadline = now + table[value & 0x0F]"
    assert m.next_deadline == 3 * S + 5
    assert m.ib700.next_deadline == 3 * S + 5
    m.advance_to(3 * S + 4)
    assert m.events == []
    assert m.advance_to(3 * S + 5) == 1
    assert m.events[0] == wd("reset", 3 * S + 5)


def test_arm_alias_0x444_and_disable_alias_0x442(make_machine):
    m = make_machine()
    # §2.1: "0x442/0x444 alias"
    m.io_write(ARM_ALIAS, 1, 0x0C)  # 6 s
    assert m.next_deadline == 6 * S
    m.io_write(DISABLE_ALIAS, 1, 0x00)
    assert m.next_deadline is None


@pytest.mark.parametrize("size,value", [(2, 0xFFFF), (2, 0x0E0E), (4, 0xFFFFFFFF), (4, 0x0E0E0E0E)])
def test_word_and_dword_at_0x440_never_reach_the_ib700(make_machine, size, value):
    # §5.1: "`outw`/`outl 0x440` never reach the IB700"
    m = make_machine()
    m.io_write(0x440, size, value)
    assert m.next_deadline is None  # would have armed via 0x443 if bytes had leaked
    arm(m)
    m.io_write(0x440, size, value)
    assert m.next_deadline == 2 * S  # would have been disabled via 0x441/0x442
    assert m.events == []


def test_outl_0x43f_delivers_its_top_byte_to_0x442(make_machine):
    # §5.1: "`outl 0x43F` delivers its top byte to 0x442"; §2.1: 0x442 = disable
    m = make_machine()
    arm(m)
    assert m.next_deadline == 2 * S
    m.io_write(0x43F, 4, 0x01000000)
    assert m.next_deadline is None
    m.advance(10 * S)
    assert m.events == []


def test_outl_0x43f_low_bytes_do_not_arm(make_machine):
    # §5.1 splitting: 0x43F byte, 0x440 word (unclaimed), 0x442 byte (disable)
    m = make_machine()
    m.io_write(0x43F, 4, 0x000F0F0F)
    assert m.next_deadline is None
    assert m.events == []


def test_outw_0x443_0e0f_fires_nothing_at_the_write_and_arms_2s(make_machine):
    # §1.4: "probe: `outw 0x443,0x0E0F` arms 0 s then 2 s and fires only at 2 s"
    m = make_machine()
    m.advance(7)
    m.io_write(ARM, 2, 0x0E0F)
    assert m.events == []
    assert m.next_deadline == 7 + 2 * S
    assert m.advance(2 * S) == 1
    assert m.events == [wd("reset", 7 + 2 * S), ev("RESET", 7 + 2 * S, GUEST)]


def test_outw_0x443_0e00_high_byte_wins(make_machine):
    # §2.1: "`outw 0x443,0x0E00` arms index 0, then 0xE: 2 s wins"
    m = make_machine()
    m.io_write(ARM, 2, 0x0E00)
    assert m.next_deadline == 2 * S


def test_dword_at_ib700_ports_is_ignored(make_machine):
    # §2.1: "dword at 0x441–0x444: **ignored entirely**"
    m = make_machine()
    for port in (0x441, 0x442, 0x443, 0x444):
        m.io_write(port, 4, 0x0F0F0F0F)
        assert m.next_deadline is None
    arm(m)
    for port in (0x441, 0x442, 0x443, 0x444):
        m.io_write(port, 4, 0x01010101)
        assert m.next_deadline == 2 * S
    assert m.events == []


def test_ping_replaces_the_deadline(make_machine):
    # §2.3: "Arm always replaces the deadline (probe: a ping 1 s into 2 s fires 3 s after
    # the first arm)"
    m = make_machine(action="none")
    arm(m)
    m.advance(S)
    arm(m)
    m.advance_to(3 * S - 1)
    assert m.events == []
    m.advance(1)
    assert m.events == [wd("none", 3 * S)]


@pytest.mark.parametrize("port", [0x0, 0x80, 0x3F8, 0x440, 0x445, 0xCF4, 0xD00, 0xFFFC])
@pytest.mark.parametrize("size", [1, 2, 4])
def test_unclaimed_port_reads_all_ones_per_width(make_machine, port, size):
    # §5.2: "All else unclaimed, offsets from port 0: reads all-ones per lane, writes ignored"
    m = make_machine()
    assert m.io_read(port, size) == ONES[size]


def test_unclaimed_port_writes_are_ignored(make_machine):
    m = make_machine()
    m.io_write(CONFIG_ADDRESS, 4, 0x80001000)
    arm(m)
    before = m.snapshot()
    for port in (0x80, 0x3F8, 0x440, 0x445, 0xD00, 0xFFFF):
        m.io_write(port, 1, 0x0F)
    assert m.snapshot() == before
    assert m.events == []


def test_unaligned_unclaimed_read_composes_all_ones(make_machine):
    # §5.1: "Reads compose little-endian"; inl 0x43D = byte, word, byte, all unclaimed
    m = make_machine()
    assert m.io_read(0x43D, 4) == 0xFFFFFFFF
    assert m.io_read(0x43F, 4) == 0xFFFFFFFF  # last byte from the IB700, which reads all-ones


@pytest.mark.parametrize("port", [0x441, 0x442, 0x443, 0x444])
@pytest.mark.parametrize("size", [1, 2, 4])
def test_ib700_port_reads_all_ones_without_side_effect(make_machine, port, size):
    # §2.1: "reads, any width, any port: all-ones of the width; no side effect"
    m = make_machine()
    arm(m)
    assert m.io_read(port, size) == ONES[size]
    assert m.next_deadline == 2 * S
    assert m.events == []


# --- CONFIG_ADDRESS / CONFIG_DATA, §5.2 --------------------------------------------------------

def test_config_address_is_zero_at_construction(make_machine):
    # §5.2: "CONFIG_ADDRESS: 32 bits, 0 at construction"
    m = make_machine()
    assert m.io_read(CONFIG_ADDRESS, 4) == 0


def test_config_address_dword_write_sets_all_32_bits(make_machine):
    # §5.2: "Only a 4-byte piece at 0xCF8 writes (all 32 bits, reserved ones included)"
    m = make_machine()
    m.io_write(CONFIG_ADDRESS, 4, 0x7F000003)
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x7F000003
    m.io_write(CONFIG_ADDRESS, 4, 0x92345678)
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x92345678


@pytest.mark.parametrize("port", [0xCF8, 0xCF9, 0xCFA, 0xCFB])
def test_config_address_reads_return_low_bytes_anywhere(make_machine, port):
    # §5.2: "A read piece of n bytes anywhere in 0xCF8–0xCFB returns the low n bytes (probe:
    # `inb 0xCFA` after 0x92345678 = 0x78)"
    m = make_machine()
    m.io_write(CONFIG_ADDRESS, 4, 0x92345678)
    assert m.io_read(port, 1) == 0x78


def test_config_address_split_reads(make_machine):
    m = make_machine()
    m.io_write(CONFIG_ADDRESS, 4, 0x92345678)
    assert m.io_read(0xCFA, 1) == 0x78          # the probe example
    assert m.io_read(0xCFA, 2) == 0x5678        # one word piece at offset 2
    assert m.io_read(0xCF9, 2) == 0x7878        # two byte pieces (offset 1 is odd)
    assert m.io_read(0xCF8, 2) == 0x5678
    # §5.1: "`inw 0xCFB` = low byte of CONFIG_ADDRESS + config byte via 0xCFC"; bus 0x34 has
    # no device, so the CONFIG_DATA byte reads all-ones
    assert m.io_read(0xCFB, 2) == 0xFF78
    # word 0xCFA (0x5678), then word 0xCFC (empty slot: 0xFFFF)
    assert m.io_read(0xCFA, 4) == 0xFFFF5678
    # byte 0xCF9, word 0xCFA, byte 0xCFC
    assert m.io_read(0xCF9, 4) == 0xFF567878


def test_read_crossing_into_config_address(make_machine):
    # §5.1: "An access is delivered in pieces, lowest address first, each to the region
    # holding its first byte"; inl 0xCF7 = byte 0xCF7 (unclaimed), word 0xCF8, byte 0xCFA
    m = make_machine()
    assert m.io_read(0xCF7, 2) == 0x00FF
    m.io_write(CONFIG_ADDRESS, 4, 0x92345678)
    assert m.io_read(0xCF7, 2) == 0x78FF
    assert m.io_read(0xCF7, 4) == 0x785678FF


@pytest.mark.parametrize("port,size,value", [
    (0xCF8, 1, 0x12), (0xCF8, 2, 0x1234), (0xCF9, 1, 0x12), (0xCFA, 2, 0x1234),
    (0xCFB, 1, 0x12), (0xCF9, 4, 0x12345678), (0xCFA, 4, 0x12345678), (0xCFB, 4, 0x12345678),
    (0xCFB, 2, 0x0200),
])
def test_config_address_byte_and_word_writes_are_ignored(make_machine, port, size, value):
    # §5.2: "Only a 4-byte piece at 0xCF8 writes ...; other write pieces are ignored"
    m = make_machine()
    m.io_write(CONFIG_ADDRESS, 4, 0x80001068)
    m.io_write(port, size, value)
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x80001068


@pytest.mark.parametrize("address", [0x00001000, 0x80001000, 0x80000000, 0x80000800,
                                     0x80010000, 0x80001068, 0x80001003])
@pytest.mark.parametrize("port,size", [(0xCFC, 1), (0xCFD, 1), (0xCFE, 1), (0xCFF, 1),
                                       (0xCFC, 2), (0xCFD, 2), (0xCFE, 2), (0xCFC, 4)])
def test_config_data_reads_all_ones_with_no_device(make_machine, address, port, size):
    # §5.2 CONFIG_DATA: bit 31 clear -> all-ones; "Else empty: all-ones / dropped";
    # a Machine without an i6300ESB has no function in any slot, esb_slot 2 (0x80001000)
    # included ("CONFIG_DATA (present even without an i6300ESB)")
    m = make_machine(devices=("ib700",))
    m.io_write(CONFIG_ADDRESS, 4, address)
    assert m.io_read(port, size) == ONES[size]


def test_config_data_past_0xcff_is_unclaimed(make_machine):
    # §5.2: "Bytes past 0xCFF are unclaimed pieces"
    m = make_machine(devices=("ib700",))
    m.io_write(CONFIG_ADDRESS, 4, 0x80001000)
    assert m.io_read(0xCFF, 2) == 0xFFFF
    assert m.io_read(0xCFF, 4) == 0xFFFFFFFF


def test_config_data_writes_are_dropped(make_machine):
    m = make_machine(devices=("ib700",))
    m.io_write(CONFIG_ADDRESS, 4, 0x80001000)
    before = m.snapshot()
    m.io_write(CONFIG_DATA, 4, 0x12345678)
    m.io_write(0xCFD, 1, 0x12)
    m.io_write(0xCFE, 2, 0x1234)
    assert m.snapshot() == before
    assert m.io_read(CONFIG_DATA, 4) == 0xFFFFFFFF
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x80001000


# --- memory, §5.3 ---------------------------------------------------------------------------------

@pytest.mark.parametrize("addr", [0, 0x1000, 0xE0000000, 0xFFFFFFFF, 2**64 - 4])
@pytest.mark.parametrize("size", [1, 2, 4])
def test_memory_reads_zero_and_drops_writes(make_machine, addr, size):
    # §5.3: "all other memory is one unassigned region from address 0 that reads 0 per lane
    # and drops writes"
    m = make_machine()
    before = m.snapshot()
    m.mem_write(addr, size, ONES[size])
    assert m.mem_read(addr, size) == 0
    assert m.snapshot() == before
    assert m.events == []


def test_memory_last_byte_is_valid(make_machine):
    # §5.3: "0 ≤ addr, addr+size ≤ 2^64"
    m = make_machine()
    assert m.mem_read(2**64 - 1, 1) == 0
    assert m.mem_read(2**64 - 2, 2) == 0
    m.mem_write(2**64 - 1, 1, 0xFF)


@pytest.mark.parametrize("addr,size", [(2**64 - 1, 2), (2**64 - 3, 4), (2**64, 1), (-1, 1)])
def test_memory_span_past_2_64_is_value_error(make_machine, addr, size):
    # §5.3: "0 ≤ addr, addr+size ≤ 2^64, else `ValueError`"
    m = make_machine()
    before = m.snapshot()
    with pytest.raises(ValueError):
        m.mem_read(addr, size)
    with pytest.raises(ValueError):
        m.mem_write(addr, size, 0)
    assert m.snapshot() == before


def test_port_range(make_machine):
    # §5.2: "I/O map (ports 0..0xFFFF; beyond is `ValueError`)"
    m = make_machine()
    assert m.io_read(0xFFFF, 1) == 0xFF
    assert m.io_read(0xFFFE, 2) == 0xFFFF
    assert m.io_read(0xFFFF, 4) == 0xFFFFFFFF  # API.md: in-range guest input never raises
    m.io_write(0xFFFF, 1, 0)
    m.io_write(0x0000, 4, 0)
    arm(m)
    before = m.snapshot()
    with pytest.raises(ValueError, match="port"):
        m.io_read(0x10000, 1)
    with pytest.raises(ValueError, match="port"):
        m.io_write(0x10000, 1, 0)
    with pytest.raises(ValueError, match="port"):
        m.io_write(-1, 1, 0)
    assert m.snapshot() == before


def test_bad_size_and_value(make_machine):
    # API.md: "`size` is 1, 2 or 4. Anything else from the host is `ValueError`"; a value out
    # of range for its size is ValueError naming the argument, state unchanged
    m = make_machine()
    before = m.snapshot()
    with pytest.raises(ValueError, match="size"):
        m.io_write(ARM, 3, 0)
    with pytest.raises(ValueError, match="size"):
        m.io_read(ARM, 8)
    with pytest.raises(ValueError, match="value"):
        m.io_write(ARM, 1, 0x10F)
    with pytest.raises(ValueError, match="value"):
        m.io_write(ARM, 2, -1)
    assert m.snapshot() == before
    assert m.next_deadline is None


# =============================================================================================
# Actions, SPEC.md §4.1 / §4.2
# =============================================================================================

# (action, reboot_action, events for "arm 2 s at 0, advance 5 s", status after, now after)
ACTION_TABLE = [
    ("reset", "reset", [wd("reset", 2 * S), ev("RESET", 5 * S, GUEST)], "running", 5 * S),
    ("reset", "shutdown", [wd("reset", 2 * S), ev("SHUTDOWN", 5 * S, GUEST)], "shutdown", 5 * S),
    ("shutdown", "reset", [wd("shutdown", 2 * S), ev("POWERDOWN", 5 * S)], "running", 5 * S),
    ("poweroff", "reset", [wd("poweroff", 2 * S)], "poweroff", 2 * S),
    ("pause", "reset", [wd("pause", 2 * S), ev("STOP", 5 * S)], "watchdog", 5 * S),
    ("debug", "reset", [wd("debug", 2 * S)], "running", 5 * S),
    ("none", "reset", [wd("none", 2 * S)], "running", 5 * S),
    ("inject-nmi", "reset", [wd("inject-nmi", 2 * S), ev("NMI", 2 * S)], "running", 5 * S),
]


@pytest.mark.parametrize("action,reboot,expected,status,now", ACTION_TABLE,
                         ids=[f"{a}-{r}" for a, r, *_ in ACTION_TABLE])
def test_action_table(make_machine, action, reboot, expected, status, now):
    # §4.2 table "| action | at the expiry t | at the operation's end T | status after |"
    m = make_machine(action=action, reboot_action=reboot)
    arm(m)
    assert m.advance(5 * S) == 1
    assert m.events == expected
    assert m.status == status
    assert m.now == now
    # §4.1: "`m.events` entries have exactly the keys `event`, `data` (QMP's payload), `time_ns`"
    for e in m.events:
        assert set(e) == {"event", "data", "time_ns"}
        assert type(e["time_ns"]) is int
        assert json.loads(json.dumps(e)) == e  # QMP-shaped: plain JSON


def test_reset_action_resets_devices_at_the_end_of_the_operation(make_machine):
    # §4.2: "A reset resets every device, then logs RESET."  The callback re-arms 30 s at 2 s;
    # the RESET at 5 s must clear that deadline.
    m = make_machine()
    rearm_in_callback(m, 0x00)
    seen_at_reset = []
    m.on_event = lambda e: seen_at_reset.append(m.ib700.next_deadline) if e["event"] == "RESET" else None
    arm(m)
    m.advance(5 * S)
    assert m.events == [wd("reset", 2 * S), ev("RESET", 5 * S, GUEST)]
    assert seen_at_reset == [None]  # devices already reset when RESET is logged
    assert m.next_deadline is None
    assert m.ib700.next_deadline is None
    assert m.status == "running"
    m.advance(60 * S)
    assert len(m.events) == 2


def test_reset_with_no_reboot_finishes_the_machine(make_machine):
    # §4.2: "reset, `reboot_action="shutdown"` | WATCHDOG | SHUTDOWN | `shutdown`"
    # API.md: "In status "shutdown" or "poweroff" the Machine is finished ...: host accesses are
    # accepted but writes are dropped and reads return the unclaimed value; time does not run
    # any timer."
    m = make_machine(reboot_action="shutdown")
    m.io_write(CONFIG_ADDRESS, 4, 0x80001000)
    rearm_in_callback(m, 0x00)  # a deadline at 32 s is still stored when SHUTDOWN comes
    arm(m)
    m.advance(5 * S)
    assert m.events == [wd("reset", 2 * S), ev("SHUTDOWN", 5 * S, GUEST)]
    assert m.status == "shutdown"
    assert m.next_deadline is None
    m.io_write(ARM, 1, IDX_0S)                     # dropped: no zero-length expiry
    m.io_write(CONFIG_ADDRESS, 4, 0x12345678)      # dropped
    assert m.io_read(CONFIG_ADDRESS, 4) == 0xFFFFFFFF  # unclaimed value, not 0x80001000
    assert m.io_read(ARM, 2) == 0xFFFF
    assert m.mem_read(0x1000, 4) == 0
    assert m.advance(60 * S) == 0                  # the 32 s deadline never runs
    assert m.events == [wd("reset", 2 * S), ev("SHUTDOWN", 5 * S, GUEST)]
    assert m.status == "shutdown"


def test_shutdown_action_is_only_a_powerdown_request(make_machine):
    # §4.2: "shutdown | WATCHDOG | POWERDOWN (no guest acts on it) | `running`"
    m = make_machine(action="shutdown")
    arm(m)
    m.advance(5 * S)
    assert m.events == [wd("shutdown", 2 * S), ev("POWERDOWN", 5 * S)]
    assert m.status == "running"
    arm(m)  # the guest keeps running: the watchdog still works
    m.advance(2 * S)
    assert m.events[2:] == [wd("shutdown", 7 * S), ev("POWERDOWN", 7 * S)]


def test_poweroff_stops_at_once(make_machine):
    # §4.2: "poweroff | WATCHDOG, then stop at once: no later expiry, pending requests dropped,
    # `now` stays t, the operation ends"
    m = make_machine(action="poweroff")
    seen = rearm_in_callback(m, IDX_2S)  # would expire again at 4 s inside the same advance
    arm(m)
    assert m.advance(5 * S) == 1
    assert m.events == [wd("poweroff", 2 * S)]
    assert len(seen) == 1
    assert m.status == "poweroff"
    assert m.now == 2 * S
    assert m.next_deadline is None
    # nothing runs after
    assert m.advance(60 * S) == 0
    m.io_write(ARM, 1, IDX_0S)
    m.resume()
    m.pause()
    m.system_reset()
    assert m.events == [wd("poweroff", 2 * S)]
    assert m.status == "poweroff"
    assert m.io_read(CONFIG_ADDRESS, 4) == 0xFFFFFFFF


def test_pause_action_stops_the_machine(make_machine):
    # §4.2: "pause | WATCHDOG | STOP | `watchdog`"; API.md: "device timers do not run until
    # resume()"
    m = make_machine(action="pause")
    arm(m)
    m.advance(5 * S)
    assert m.events == [wd("pause", 2 * S), ev("STOP", 5 * S)]
    assert m.status == "watchdog"
    arm(m)
    assert m.next_deadline is None
    assert m.advance(10 * S) == 0
    assert len(m.events) == 2


def test_pause_action_later_timers_in_the_same_step_still_fire(make_machine):
    # §4.2: "timers due later in the same step still fire ... likewise with pause"
    m = make_machine(action="pause")
    rearm_in_callback(m, IDX_2S)
    arm(m)
    assert m.advance(5 * S) == 2
    assert m.events == [wd("pause", 2 * S), wd("pause", 4 * S), ev("STOP", 5 * S)]
    assert m.status == "watchdog"


@pytest.mark.parametrize("action", ["debug", "none"])
def test_debug_and_none_log_only(make_machine, action):
    # §4.2: "debug | WATCHDOG ... | – | `running`", "none | WATCHDOG | – | `running`"
    m = make_machine(action=action)
    arm(m)
    m.advance(5 * S)
    assert m.events == [wd(action, 2 * S)]
    assert m.status == "running"
    arm(m)
    assert m.next_deadline == 7 * S


def test_inject_nmi(make_machine):
    # §4.2: "inject-nmi | WATCHDOG, NMI | – | `running`"
    m = make_machine(action=WatchdogAction.INJECT_NMI)
    arm(m)
    m.advance(5 * S)
    assert m.events == [wd("inject-nmi", 2 * S), ev("NMI", 2 * S)]
    assert m.status == "running"


@pytest.mark.parametrize("value", ["pause", WatchdogAction.PAUSE])
def test_action_setter_accepts_names_and_members(make_machine, value):
    # §4.1: "setting `m.action` ... sets every device's"
    m = make_machine()
    assert m.action is WatchdogAction.RESET
    m.action = value
    assert m.action is WatchdogAction.PAUSE
    assert m.ib700.action is WatchdogAction.PAUSE


def test_constructor_action_reaches_the_device(make_machine):
    m = make_machine(action="inject-nmi")
    assert m.action is WatchdogAction.INJECT_NMI
    assert m.ib700.action is WatchdogAction.INJECT_NMI


def test_action_in_force_at_the_expiry_decides(make_machine):
    # §4.1: "the action in force at the expiry decides (probe)"
    m = make_machine(action="reset")
    arm(m)
    m.advance(S)
    m.action = "none"
    m.advance(4 * S)
    assert m.events == [wd("none", 2 * S)]
    m.action = WatchdogAction.PAUSE
    arm(m)
    m.advance(S)
    m.action = "shutdown"
    m.advance(4 * S)
    assert m.events[1:] == [wd("shutdown", 7 * S), ev("POWERDOWN", 10 * S)]
    assert m.ib700.events[-1] == WatchdogEvent(7 * S, "ib700", WatchdogAction.SHUTDOWN)


def test_action_setter_rejects_unknown_names(make_machine):
    m = make_machine(action="pause")
    with pytest.raises(ValueError, match="action"):
        m.action = "halt"
    assert m.action is WatchdogAction.PAUSE
    assert m.ib700.action is WatchdogAction.PAUSE


# =============================================================================================
# Requests at the end of the operation, SPEC.md §4.2; callback order §4.5
# =============================================================================================

def test_zero_timeout_fires_inside_the_write_with_its_reset(make_machine):
    # §1.4: "A timeout of zero armed by an access fires at the end of that access";
    # §4.2: an io_* call is an operation, its requests act at its end
    m = make_machine()
    m.advance(3 * S + 11)
    arm(m, IDX_0S)
    assert m.events == [wd("reset", 3 * S + 11), ev("RESET", 3 * S + 11, GUEST)]
    assert m.now == 3 * S + 11
    assert m.status == "running"
    assert m.next_deadline is None


def test_zero_timeout_with_pause_stops_inside_the_write(make_machine):
    m = make_machine(action="pause")
    m.advance(S)
    arm(m, IDX_0S)
    assert m.events == [wd("pause", S), ev("STOP", S)]
    assert m.status == "watchdog"


def test_two_requests_of_one_kind_give_one_reset(make_machine):
    # §4.2: "each kind at most once (probe: two simultaneous resets give one RESET)"
    m = make_machine()
    rearm_in_callback(m, IDX_2S)
    arm(m)
    assert m.advance(5 * S) == 2
    assert m.events == [wd("reset", 2 * S), wd("reset", 4 * S), ev("RESET", 5 * S, GUEST)]


def test_callback_order_inject_nmi(make_machine):
    # §4.5: "device `events`/`on_expire`, then the WATCHDOG entry and `on_event`, then NMI"
    m = make_machine(action="inject-nmi")
    log = []
    m.ib700.on_expire = lambda e: log.append(("device", e, m.ib700.now, len(m.ib700.events)))
    m.on_event = lambda e: log.append(("machine", e))
    arm(m)
    m.advance(5 * S)
    assert log == [
        ("device", WatchdogEvent(2 * S, "ib700", WatchdogAction.INJECT_NMI), 2 * S, 1),
        ("machine", wd("inject-nmi", 2 * S)),
        ("machine", ev("NMI", 2 * S)),
    ]
    assert [e for _, e, *rest in log[1:]] == m.events


def test_callback_order_reset(make_machine):
    # §4.5 + §4.2: device, WATCHDOG at t, then RESET at the operation's end
    m = make_machine()
    log = []
    m.ib700.on_expire = lambda e: log.append(("device", e.time_ns))
    m.on_event = lambda e: log.append((e["event"], e["time_ns"]))
    arm(m)
    m.advance(5 * S)
    assert log == [("device", 2 * S), ("WATCHDOG", 2 * S), ("RESET", 5 * S)]


def test_device_now_equals_event_time_in_callback(make_machine):
    # API.md: "while a callback runs, `dev.now` equals the event's `time_ns`"
    m = make_machine(action="none")
    nows = []
    m.ib700.on_expire = lambda e: nows.append((m.ib700.now, e.time_ns))
    m.advance(123)
    arm(m)
    m.advance(10 * S)
    assert nows == [(2 * S + 123, 2 * S + 123)]


# =============================================================================================
# Run states and time while stopped, SPEC.md §4.3 / §4.4
# =============================================================================================

def test_pause_from_running(make_machine):
    # §4.3: "`running` | ... | `pause()`: STOP → `paused`"
    m = make_machine()
    m.advance(S)
    m.pause()
    assert m.events == [ev("STOP", S)]
    assert m.status == "paused"
    m.pause()  # "`watchdog`, `paused` | ... | pause(): nothing"
    assert m.events == [ev("STOP", S)]
    assert m.status == "paused"


def test_time_while_paused_moves_but_fires_nothing(make_machine):
    # §4.4: "While not `running`, `advance` moves `now` (devices' too) but handles nothing,
    # and `m.next_deadline` is None"
    m = make_machine()
    arm(m)
    m.advance(S)
    m.pause()
    assert m.next_deadline is None
    assert m.advance(10 * S) == 0
    assert m.now == 11 * S
    assert m.ib700.now == 11 * S
    m.advance_to(20 * S)
    assert m.now == 20 * S
    assert m.next_deadline is None
    assert m.events == [ev("STOP", S)]
    assert m.status == "paused"


def test_accesses_reach_devices_while_paused(make_machine):
    # §4.3: "`watchdog`, `paused` | stopped | reach devices"
    m = make_machine()
    m.pause()
    m.io_write(CONFIG_ADDRESS, 4, 0x80001000)
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x80001000
    arm(m)
    assert m.ib700.next_deadline == 2 * S


def test_overdue_rearm_fires_at_resume_pause_action(make_machine):
    # §4.4: "`resume()` sets `running`, logs RESUME, then handles every overdue deadline at the
    # resume time ...; requests are processed at the end of `resume()` (probe: an IB700
    # re-armed while paused fired at the 12 s `cont` as RESUME, WATCHDOG, STOP)"
    m = make_machine(action="pause")
    arm(m)
    m.advance(S)
    m.pause()
    m.advance(4 * S)
    arm(m)  # re-armed while paused: due at 7 s
    m.advance_to(12 * S)
    assert m.events == [ev("STOP", S)]
    m.resume()
    assert m.events == [ev("STOP", S), ev("RESUME", 12 * S), wd("pause", 12 * S), ev("STOP", 12 * S)]
    assert m.status == "watchdog"
    assert m.now == 12 * S


def test_overdue_arm_fires_at_resume_reset_action(make_machine):
    m = make_machine()
    m.pause()
    arm(m)
    m.advance(5 * S + 3)
    m.resume()
    assert m.events == [ev("STOP", 0), ev("RESUME", 5 * S + 3), wd("reset", 5 * S + 3),
                        ev("RESET", 5 * S + 3, GUEST)]
    assert m.status == "running"
    assert m.next_deadline is None


def test_zero_timeout_armed_while_paused_fires_at_resume(make_machine):
    # §4.4: timers do not run while stopped; the zero-length deadline is overdue at resume
    m = make_machine(action="none")
    m.advance(S)
    m.pause()
    arm(m, IDX_0S)
    assert m.events == [ev("STOP", S)]
    m.advance(S)
    m.resume()
    assert m.events == [ev("STOP", S), ev("RESUME", 2 * S), wd("none", 2 * S)]
    assert m.status == "running"


def test_resume_before_deadline_keeps_it(make_machine):
    m = make_machine(action="none")
    arm(m)
    m.pause()
    m.advance(S)
    m.resume()
    assert m.events == [ev("STOP", 0), ev("RESUME", S)]
    assert m.next_deadline == 2 * S
    m.advance(5 * S)
    assert m.events[2:] == [wd("none", 2 * S)]


def test_resume_from_running_does_nothing(make_machine):
    # §4.3: "`running` | ... | `resume()`: nothing"
    m = make_machine()
    arm(m)
    m.advance(S)
    m.resume()
    assert m.events == []
    assert m.status == "running"
    assert m.now == S
    assert m.next_deadline == 2 * S


def test_resume_from_watchdog(make_machine):
    m = make_machine(action="pause")
    arm(m)
    m.advance(3 * S)
    assert m.status == "watchdog"
    m.resume()
    assert m.events == [wd("pause", 2 * S), ev("STOP", 3 * S), ev("RESUME", 3 * S)]
    assert m.status == "running"


def test_system_reset_from_running(make_machine):
    # §4.3: "`running` | ... | system_reset(): resets, RESET, stays"
    m = make_machine()
    arm(m)
    m.advance(S + 500)
    m.system_reset()
    assert m.events == [ev("RESET", S + 500, HOST)]
    assert m.status == "running"
    assert m.next_deadline is None
    assert m.ib700.next_deadline is None
    m.advance(60 * S)
    assert m.events == [ev("RESET", S + 500, HOST)]


def test_system_reset_from_paused_goes_to_prelaunch(make_machine):
    # §4.3: "`watchdog`, `paused` | ... | resets, RESET → `prelaunch`"
    m = make_machine()
    m.advance(S)
    m.pause()
    arm(m)
    m.advance(S)
    m.system_reset()
    assert m.events == [ev("STOP", S), ev("RESET", 2 * S, HOST)]
    assert m.status == "prelaunch"
    # "`prelaunch` | stopped | ... | pause(): nothing | system_reset(): resets, RESET"
    m.pause()
    assert m.status == "prelaunch"
    m.system_reset()
    assert m.events[2:] == [ev("RESET", 2 * S, HOST)]
    assert m.status == "prelaunch"
    m.advance(5 * S)
    assert m.next_deadline is None
    # "`prelaunch` | ... | resume(): RESUME → `running`"; the reset disarmed the IB700
    m.resume()
    assert m.events[3:] == [ev("RESUME", 7 * S)]
    assert m.status == "running"
    assert m.next_deadline is None
    m.advance(60 * S)
    assert len(m.events) == 4


def test_system_reset_from_watchdog_goes_to_prelaunch(make_machine):
    m = make_machine(action="pause")
    arm(m)
    m.advance(3 * S)
    assert m.status == "watchdog"
    m.system_reset()
    assert m.events == [wd("pause", 2 * S), ev("STOP", 3 * S), ev("RESET", 3 * S, HOST)]
    assert m.status == "prelaunch"
    m.resume()
    assert m.events[3:] == [ev("RESUME", 3 * S)]
    assert m.status == "running"


@pytest.mark.parametrize("stop_first", [False, True])
def test_system_reset_with_no_reboot_shuts_down(make_machine, stop_first):
    # §4.3: "With `reboot_action="shutdown"`, `system_reset()` gives SHUTDOWN and `shutdown`"
    m = make_machine(reboot_action="shutdown")
    m.advance(S)
    if stop_first:
        m.pause()
    m.system_reset()
    assert m.events[-1] == ev("SHUTDOWN", S, HOST)
    assert m.status == "shutdown"


@pytest.mark.parametrize("finish", ["shutdown", "poweroff"])
def test_finished_machine_ignores_run_state_calls(make_machine, finish):
    # §4.3: "`shutdown`, `poweroff` | stopped | writes dropped, reads as unclaimed | nothing |
    # nothing | nothing"
    if finish == "shutdown":
        m = make_machine(reboot_action="shutdown")
    else:
        m = make_machine(action="poweroff")
    arm(m, IDX_0S)
    assert m.status == finish
    n = len(m.events)
    for call in (m.system_reset, m.resume, m.pause, m.system_reset):
        call()
        assert m.status == finish
    assert len(m.events) == n


def test_system_reset_keeps_now_action_and_config_address(make_machine):
    # §4.3: "System resets keep `now`, the action and CONFIG_ADDRESS (probe)"
    m = make_machine()
    m.action = "pause"
    m.io_write(CONFIG_ADDRESS, 4, 0x80001234)
    m.advance(7 * S + 1)
    arm(m)
    m.system_reset()
    assert m.now == 7 * S + 1
    assert m.ib700.now == 7 * S + 1
    assert m.action is WatchdogAction.PAUSE
    assert m.ib700.action is WatchdogAction.PAUSE
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x80001234
    assert m.next_deadline is None
    # and again from a stopped state
    m.pause()
    m.system_reset()
    assert m.now == 7 * S + 1
    assert m.action is WatchdogAction.PAUSE
    assert m.io_read(CONFIG_ADDRESS, 4) == 0x80001234


# =============================================================================================
# next_deadline / advance_to exactness, SPEC.md §1.4, §4.2
# =============================================================================================

def test_next_deadline_idle_is_none(make_machine):
    m = make_machine()
    assert m.next_deadline is None
    assert m.advance(S) == 0
    assert m.advance_to(2 * S) == 0
    assert m.now == 2 * S


@pytest.mark.parametrize("action,follow", [
    ("reset", ("RESET", GUEST)), ("pause", ("STOP", {})), ("shutdown", ("POWERDOWN", {})),
])
def test_stepping_by_next_deadline_puts_requests_at_the_expiry(make_machine, action, follow):
    # §4.2: "Hosts wanting the reset exactly at the expiry advance in steps bounded by
    # `next_deadline`."
    m = make_machine(action=action)
    m.advance(500_000_001)
    arm(m)
    target = 10 * S
    while True:
        d = m.next_deadline
        step = target if d is None or d > target else d
        m.advance_to(step)
        if step == target:
            break
    expiry = 2 * S + 500_000_001
    assert m.events[:2] == [wd(action, expiry), ev(follow[0], expiry, follow[1])]


def test_deadline_equal_to_target_fires(make_machine):
    # §1.4: "a deadline equal to T fires (probe)"
    m = make_machine(action="none")
    arm(m)
    assert m.advance_to(2 * S - 1) == 0
    assert m.events == []
    assert m.next_deadline == 2 * S
    assert m.advance_to(2 * S) == 1
    assert m.events == [wd("none", 2 * S)]
    assert m.next_deadline is None


def test_advance_returns_number_of_expiries(make_machine):
    # §1.4: "`advance` returns the number of `WatchdogEvent`s produced"
    m = make_machine(action="none")
    assert m.advance(5 * S) == 0
    rearm_in_callback(m, IDX_2S, times=2)
    arm(m)
    assert m.advance(10 * S) == 3
    assert [e["time_ns"] for e in m.events] == [7 * S, 9 * S, 11 * S]
    arm(m)
    assert m.advance_to(20 * S) == 1  # armed at 15 s, index E: 17 s; no more re-arms
    assert m.events[-1] == wd("none", 17 * S)
    assert m.advance(S) == 0


def test_time_misuse(make_machine):
    # API.md: "a negative time, time going backwards ...: `ValueError` ... that names the
    # argument, and the device state is unchanged"
    m = make_machine()
    m.advance(5 * S)
    arm(m)
    before = m.snapshot()
    with pytest.raises(ValueError, match="delta_ns"):
        m.advance(-1)
    with pytest.raises(ValueError, match="t_ns"):
        m.advance_to(5 * S - 1)
    with pytest.raises(ValueError, match="t_ns"):
        m.advance_to(2**63)
    assert m.snapshot() == before


# =============================================================================================
# Snapshot / restore / copy, API.md Machine
# =============================================================================================

def _future(m):
    """The same further operations for every machine; returns the events they produce."""
    start = len(m.events)
    m.advance(S)
    m.io_read(CONFIG_ADDRESS, 4)
    m.resume()
    m.advance(3 * S)
    m.io_write(ARM, 1, 0x0D)
    m.advance(10 * S)
    m.resume()
    m.io_write(ARM, 1, IDX_0S)
    m.advance(1)
    return m.events[start:], m.now, m.status, m.io_read(CONFIG_ADDRESS, 4)


@pytest.mark.parametrize("reboot", ["reset", "shutdown"])
@pytest.mark.parametrize("action", ["reset", "pause", "none"])
def test_snapshot_mid_countdown_gives_identical_future(make_machine, reboot, action):
    m = make_machine(reboot_action=reboot)
    m.action = action
    m.io_write(CONFIG_ADDRESS, 4, 0x80001068)
    m.advance(700_000_003)
    arm(m)
    m.advance(S)
    data = m.snapshot()
    fresh = make_machine(reboot_action=reboot)
    fresh.restore(data)
    assert fresh.snapshot() == data
    assert fresh.now == m.now == 1_700_000_003
    assert fresh.action is WatchdogAction(action)
    assert fresh.ib700.action is WatchdogAction(action)
    assert fresh.next_deadline == 2_700_000_003
    assert fresh.io_read(CONFIG_ADDRESS, 4) == 0x80001068
    assert fresh.events == []  # the event log is not state
    expected = _future(m)
    assert expected[0][0] == wd(action, 2_700_000_003)
    assert _future(fresh) == expected
    assert fresh.snapshot() == m.snapshot()


@pytest.mark.parametrize("status_via", ["pause", "watchdog"])
def test_snapshot_while_stopped_gives_identical_future(make_machine, status_via):
    m = make_machine(action="pause")
    if status_via == "pause":
        m.advance(S)
        m.pause()
    else:
        arm(m)
        m.advance(3 * S)
    arm(m)                 # armed while stopped
    m.advance(5 * S)       # overdue by now
    data = m.snapshot()
    fresh = make_machine()
    fresh.restore(data)
    assert fresh.status == m.status == ("paused" if status_via == "pause" else "watchdog")
    assert fresh.next_deadline is None
    assert fresh.action is WatchdogAction.PAUSE
    now = m.now
    m_tail, fresh_tail = len(m.events), 0
    m.resume()
    fresh.resume()
    assert m.events[m_tail:] == [ev("RESUME", now), wd("pause", now), ev("STOP", now)]
    assert fresh.events[fresh_tail:] == m.events[m_tail:]
    assert _future(fresh) == _future(m)


@pytest.mark.parametrize("source_status", ["running", "paused"])
@pytest.mark.parametrize("target_status", ["running", "paused"])
def test_restore_sets_whether_timers_run(make_machine, source_status, target_status):
    # §4.3: timers run only in `running`; restore brings the status ("now, status, action,
    # both devices, the PCI address register", API.md) and with it whether timers run
    src = make_machine(action="none")
    src.advance(S)
    if source_status == "paused":
        src.pause()
    target = make_machine()
    if target_status == "paused":
        target.pause()
    target.restore(src.snapshot())
    assert target.status == source_status
    target.io_write(ARM, 1, IDX_0S)
    if source_status == "running":
        assert target.events[-1:] == [wd("none", S)]  # §1.4: fires at the end of the write
    else:
        assert [e["event"] for e in target.events] == (["STOP"] if target_status == "paused" else [])
        target.resume()
        assert target.events[-2:] == [ev("RESUME", S), wd("none", S)]


def test_prelaunch_timers_wait_for_resume(make_machine):
    # §4.3: "`prelaunch` | stopped | reach devices | RESUME → `running`"
    m = make_machine(action="none")
    m.pause()
    m.system_reset()
    assert m.status == "prelaunch"
    arm(m, IDX_0S)
    m.advance(S)
    assert m.events == [ev("STOP", 0), ev("RESET", 0, HOST)]
    m.resume()
    assert m.events[2:] == [ev("RESUME", S), wd("none", S)]


def test_on_event_sees_every_entry_as_appended(make_machine):
    # §4.1: "`on_event` sees each as it is appended"
    m = make_machine(action="pause")
    seen = []
    m.on_event = seen.append
    arm(m)
    m.advance(3 * S)
    m.resume()
    m.pause()
    m.system_reset()
    m.resume()
    assert seen == m.events
    assert [e["event"] for e in m.events] == ["WATCHDOG", "STOP", "RESUME", "STOP", "RESET",
                                              "RESUME"]


def _history(m):
    m.action = "pause"
    m.io_write(CONFIG_ADDRESS, 4, 0x8000_1068)
    m.advance(1_500_000_001)
    m.io_write(ARM, 1, 0x0B)
    m.advance(S)
    m.io_write(ARM, 2, 0x0E0C)     # two armings: the sequence counter moves twice
    m.advance(3 * S)               # fires at 4.5 s, STOP at 5.5 s
    m.io_write(ARM, 1, 0x0A)       # armed while stopped
    m.advance(S + 7)


def _other_impl(make_machine, impl, **kw):
    _require_compiled()  # skips (or fails under WDCORE_REQUIRE_EXTENSIONS) without the core
    return make_machine(implementation="python" if impl == "compiled" else "compiled", **kw)


def test_snapshot_across_implementations(make_machine, impl):
    # §3.10 (shared format): "Both implementations MUST write byte-identical snapshots for
    # identical states and accept each other's"
    here = make_machine()
    there = _other_impl(make_machine, impl)
    assert type(here.ib700) is not type(there.ib700)
    _history(here)
    _history(there)
    assert here.events == there.events
    assert here.status == "watchdog"
    data = here.snapshot()
    assert there.snapshot() == data
    # restore each into a fresh machine of the other implementation
    a = _other_impl(make_machine, impl)
    a.restore(here.snapshot())
    b = make_machine()
    b.restore(there.snapshot())
    assert a.snapshot() == b.snapshot() == data
    expected = _future(here)
    assert _future(a) == expected
    assert _future(b) == expected
    assert _future(there)[0] == expected[0]


@pytest.mark.parametrize("target_reboot,source_reboot", [("reset", "shutdown"), ("shutdown", "reset")])
def test_restore_into_differently_configured_machine(make_machine, target_reboot, source_reboot):
    src = make_machine(reboot_action=source_reboot)
    arm(src)
    src.advance(S)
    target = make_machine(reboot_action=target_reboot, action="none")
    target.io_write(CONFIG_ADDRESS, 4, 0x80000800)
    target.advance(3 * S)
    target.io_write(ARM, 1, 0x0C)
    before = target.snapshot()
    with pytest.raises(ValueError):
        target.restore(src.snapshot())
    assert target.snapshot() == before
    assert target.now == 3 * S
    assert target.next_deadline == 9 * S
    assert target.action is WatchdogAction.NONE
    assert target.status == "running"
    target.advance(10 * S)
    assert target.events == [wd("none", 9 * S)]


def _corruptions(good: bytes, device_snapshot: bytes):
    yield b""
    yield b"\x00" * len(good)
    yield b"XXXX" + good[4:]
    yield good + b"\x00"
    yield good[:-1]
    for n in range(0, len(good), 3):
        yield good[:n]
    yield device_snapshot
    mid = len(good) // 2
    yield good[:mid] + bytes([good[mid] ^ 0xFF]) + good[mid + 1:]


def test_restore_corrupt_data_is_value_error_state_unchanged(make_machine):
    # API.md: "dev.restore(data: bytes) -> None  # exact state incl. pending deadline; bad data ->
    # ValueError, device unchanged"
    src = make_machine()
    arm(src)
    src.advance(S)
    good = src.snapshot()
    target = make_machine(action="pause")
    target.io_write(CONFIG_ADDRESS, 4, 0x80001000)
    arm(target)
    target.advance(S)
    target.pause()
    before = target.snapshot()
    for bad in _corruptions(good, src.ib700.snapshot()):
        with pytest.raises(ValueError):
            target.restore(bad)
        assert target.snapshot() == before
    assert target.status == "paused"
    assert target.io_read(CONFIG_ADDRESS, 4) == 0x80001000
    target.resume()
    target.advance(S)
    assert target.events == [ev("STOP", S), ev("RESUME", S), wd("pause", 2 * S), ev("STOP", 2 * S)]


def test_deepcopy_is_equal_and_independent(make_machine):
    # API.md: "copy.deepcopy(m) works too"
    m = make_machine(action="pause")
    m.io_write(CONFIG_ADDRESS, 4, 0x80001068)
    m.on_event = lambda e: None
    arm(m)
    m.advance(S)
    c = copy.deepcopy(m)
    assert c is not m and c.ib700 is not m.ib700
    assert type(c.ib700) is type(m.ib700)
    assert c.snapshot() == m.snapshot()
    before = m.snapshot()
    c.advance(5 * S)
    c.io_write(CONFIG_ADDRESS, 4, 0)
    assert c.status == "watchdog"
    assert m.snapshot() == before
    assert m.status == "running"
    assert m.next_deadline == 2 * S
    assert m.events == []
    m.advance(S)
    assert m.events == [wd("pause", 2 * S)] + [ev("STOP", 2 * S)]


def test_pickle_round_trip(make_machine):
    m = make_machine(reboot_action="shutdown")
    m.action = "inject-nmi"
    m.io_write(CONFIG_ADDRESS, 4, 0x80001068)
    m.on_event = lambda e: None  # callbacks are not pickled
    m.advance(S)
    arm(m)
    m.pause()
    c = pickle.loads(pickle.dumps(m))
    assert c.snapshot() == m.snapshot()
    # built in the implementation selected where it is loaded (issue 10 item 10)
    assert c.implementation == _select.implementation().name
    assert type(c.ib700) is _select.implementation().IB700
    assert c.on_event is None
    assert c.status == "paused"
    before = m.snapshot()
    c.resume()
    c.advance(5 * S)
    assert c.events == [ev("RESUME", S), wd("inject-nmi", 3 * S), ev("NMI", 3 * S)]
    assert m.snapshot() == before
    c.system_reset()
    assert c.events[-1] == ev("SHUTDOWN", 6 * S, HOST)  # reboot_action survived the pickle


# =============================================================================================
# Constructor misuse
# =============================================================================================

@pytest.mark.parametrize("kw,name", [
    ({"esb_slot": 32}, "esb_slot"),
    ({"esb_slot": -1}, "esb_slot"),
    ({"profile": "qemu-8"}, "profile"),
    ({"reboot_action": "halt"}, "reboot_action"),
    ({"devices": ("bogus",)}, "devices"),
    ({"devices": ("ib700", "ib700")}, "devices"),
    ({"implementation": "rust"}, "implementation"),
    ({"action": "halt"}, "action"),
])
def test_constructor_misuse(make_machine, kw, name):
    # API.md: errors from host misuse "name the offending parameter as spelled in the signature"
    with pytest.raises(ValueError, match=name):
        make_machine(**kw)


def test_constructor_defaults(make_machine):
    m = make_machine()
    assert m.status == "running"
    assert m.now == 0
    assert m.action is WatchdogAction.RESET
    assert m.events == []
    assert m.on_event is None
    assert m.ib700 is not None
    assert m.i6300esb is not None  # API.md: devices=("ib700", "i6300esb")
    alone = make_machine(devices=("ib700",))
    assert alone.ib700 is not None and alone.i6300esb is None
    assert make_machine(devices=()).ib700 is None
