"""QEMU conformance for the IB700 on a Machine.

1. QEMU's ``tests/qtest/wdt_ib700-test.c`` (SPEC.md §6.7, ``clients.qemu_wdt_ib700_test``),
   checked after every op.
2. The Linux ib700wdt drivers (SPEC.md §6.4 current, §6.5 2.6 era; ``clients.linux_ib700wdt``,
   ``clients.linux_ib700wdt_2_6``) driven through Machine port writes, with the §6.6
   scenarios 1-4 checked to the nanosecond.

Every test runs on the compiled core and on the Python twin (``make_machine``).
"""
from __future__ import annotations

import pytest

from tests.conftest import S
from tests.guest import do
from wdcore import clients
from wdcore.clients import linux_ib700wdt, linux_ib700wdt_2_6, qemu_wdt_ib700_test

# SPEC.md §2.1 ports
DISABLE, ARM = 0x441, 0x443
assert (clients.IB700_DISABLE, clients.IB700_ARM) == (DISABLE, ARM)

GUEST = {"guest": True, "reason": "guest-reset"}


def ev(name, t, data=None):
    return {"event": name, "data": {} if data is None else data, "time_ns": t}


def wd(action, t):
    return ev("WATCHDOG", t, {"action": action})


# =============================================================================================
# 1. QEMU tests/qtest/wdt_ib700-test.c (SPEC.md §6.7)
# =============================================================================================

# case -> Machine config, the WATCHDOG action, the follow-up events, the final status.
# §6.7: "pause → STOP (status `watchdog`); reset → RESET guest-reset; shutdown → SHUTDOWN
# guest-reset; none → nothing", shutdown being "reset + `-no-reboot`".
QEMU_CASES = {
    "pause": ({"action": "pause"}, "pause", [ev("STOP", 50 * S)], "watchdog"),
    "reset": ({"action": "reset"}, "reset", [ev("RESET", 50 * S, GUEST)], "running"),
    "shutdown": ({"action": "reset", "reboot_action": "shutdown"}, "reset",
                 [ev("SHUTDOWN", 50 * S, GUEST)], "shutdown"),
    "none": ({"action": "none"}, "none", [], "running"),
}


def _no_event(m, now):
    """QEMU's qmp_check_no_event: a query-status round trip with no event before its reply."""
    assert m.events == []
    assert m.status == "running"
    assert m.now == now  # qtest's "OK <clock>" reply


# after each op of clients.qemu_wdt_ib700_test.ops(): (now, next_deadline, expiries of a step)
QTEST_EXPECT = [
    (40 * S, None, 0),      # 1. "step 40 s, no event"
    (40 * S, 42 * S, None),  # 2. "outb(0x0E → 0x443) (deadline 42 s)": index E = 2 s (§2.2)
    (41 * S, 42 * S, 0),    # 3. "step 1 s, no event, outb(0x0E → 0x443) (43 s)": the ping
    (41 * S, 43 * S, None),  #    replaces the deadline
    (42 * S, 43 * S, 0),    # 4. "step 1 s, no event, outb(1 → 0x441)": disable (42 s, the
    (42 * S, None, None),    #    old 42 s deadline is gone)
    (45 * S, None, 0),      # 5. "step 3 s, no event": 45 s, past the cancelled 43 s deadline
    (45 * S, 49 * S, None),  # 6. "outb(0x0D → 0x443) at 45 s (49 s)": index D = 30 - 2*13 = 4 s
    (48 * S, 49 * S, 0),    # 7. "step 3 s, no event" (48 s) ...
]


@pytest.mark.parametrize("case", list(QEMU_CASES))
def test_wdt_ib700_qtest(make_machine, case):
    config, action, follow_up, status = QEMU_CASES[case]
    m = make_machine(**config)
    seq = qemu_wdt_ib700_test.ops()
    assert seq[:2] == [("clock_step", 40 * S), ("outb", 0x443, 0x0E)]
    assert len(seq) == len(QTEST_EXPECT) + 1
    for op, (now, deadline, expiries) in zip(seq, QTEST_EXPECT):
        if op[0] == "clock_step":
            assert m.advance(op[1]) == expiries
        else:
            do(m, [op])
        assert m.next_deadline == deadline
        _no_event(m, now)
    # ... "step 2 s → WATCHDOG with the case's action at 49 s".  Arithmetic: the step starts
    # at 48 s and ends at 50 s; the deadline 45 + 4 = 49 s lies inside it, so WATCHDOG carries
    # 49 s.  §4.2: "Requests are processed at the end of the operation, after every expiry due
    # by then, at the final `now`" - the operation is this 2 s step, which ends at 48 + 2 =
    # 50 s, so STOP / RESET / SHUTDOWN carry time_ns 50 s ("In wdcore the follow-up has
    # `time_ns` 50 s", §6.7).
    assert seq[-1] == ("clock_step", 2 * S)
    assert m.advance(seq[-1][1]) == 1
    assert m.events == [wd(action, 49 * S)] + follow_up
    assert (qemu_wdt_ib700_test.EXPIRY_NS, qemu_wdt_ib700_test.END_NS) == (49 * S, 50 * S)
    assert m.status == status
    assert m.now == 50 * S
    assert m.next_deadline is None


# =============================================================================================
# 2. Linux ib700wdt drivers (SPEC.md §6.4, §6.5) and scenarios 1-4 (§6.6)
# =============================================================================================

class LinuxIb700Current:
    """drivers/watchdog/ib700wdt.c, current (§6.4): ``clients.linux_ib700wdt`` and the
    stored timeout."""

    def __init__(self, m):
        self.m = m
        self.timeout = linux_ib700wdt.TIMEOUT_DEFAULT  # "t = 0..30 s, default 30"
        assert self.timeout == 30

    def ping(self):
        # "outb(15 − (t+1)/2 → 0x443), integer division"
        do(self.m, linux_ib700wdt.ping(self.timeout))

    open = keepalive = ping

    def settimeout(self, t):
        # "SETTIMEOUT(t): EINVAL outside 0..30; else store t and ping"
        if not 0 <= t <= 30:
            raise OSError("EINVAL")
        self.timeout = t
        do(self.m, linux_ib700wdt.set_timeout(t))

    def disable(self):
        # "disable (DISABLECARD, close with 'V', shutdown): outb(0 → 0x441)"
        do(self.m, linux_ib700wdt.stop())

    close_with_v = disable


class LinuxIb700Legacy:
    """ib700wdt, 2.6 era (§6.5): ``clients.linux_ib700wdt_2_6`` and the stored index."""

    WD_TIMES = [30 - 2 * i for i in range(16)]  # the driver's own copy of the §2.2 table
    assert tuple(WD_TIMES) == linux_ib700wdt_2_6.TABLE

    def __init__(self, m):
        self.m = m
        self.index = linux_ib700wdt_2_6.INDEX_DEFAULT  # "index starts at 0 (30 s)"
        assert self.index == 0

    def ping(self):
        # "outb(index → 0x443)"; index -1 is written as the byte 0xFF
        do(self.m, linux_ib700wdt_2_6.ping(self.index))

    open = ping

    def settimeout(self, n):
        # "index = first i from 15 down to 0 with table[i] > n ...; n = 30 leaves −1"
        self.index = linux_ib700wdt_2_6.index(n)
        self.ping()

    def close_with_v(self):
        do(self.m, linux_ib700wdt_2_6.stop())


T0 = 12_345_678_901  # an arbitrary access time, to the ns


def _expect_fire_at(m, t, action="reset"):
    """Step to 1 ns before ``t`` (nothing), then to ``t`` (WATCHDOG exactly at ``t``)."""
    assert m.advance_to(t - 1) == 0
    assert [e for e in m.events if e["event"] == "WATCHDOG"] == []
    assert m.advance_to(t) == 1
    assert m.events[0] == wd(action, t)


def test_scenario_1_current_open_never_ping(make_machine):
    # §6.6 #1: "ib700 current, open, never ping | WATCHDOG at t0 + 30 000 000 000"
    m = make_machine()
    drv = LinuxIb700Current(m)
    m.advance_to(T0)
    drv.open()  # t = 30: 15 - 31//2 = 0, index 0 = 30 s
    assert m.next_deadline == T0 + 30_000_000_000
    _expect_fire_at(m, T0 + 30_000_000_000)
    assert m.events[1:] == [ev("RESET", T0 + 30_000_000_000, GUEST)]


def test_scenario_2_current_settimeout_5(make_machine):
    # §6.6 #2: "ib700 current, SETTIMEOUT(5) | index 12: WATCHDOG at t0 + 6 000 000 000"
    m = make_machine()
    drv = LinuxIb700Current(m)
    m.advance(1_000_000_003)
    drv.open()
    m.advance_to(T0)
    drv.settimeout(5)
    assert 15 - (5 + 1) // 2 == 12
    assert m.next_deadline == T0 + 6_000_000_000
    _expect_fire_at(m, T0 + 6_000_000_000)


@pytest.mark.parametrize("t", range(31))
def test_current_driver_timeout_rounds_up_to_even(make_machine, t):
    # §6.4: "t rounds up to even; t = 0 → 0 s"
    m = make_machine(action="none")
    drv = LinuxIb700Current(m)
    m.advance_to(T0)
    drv.settimeout(t)
    expected_s = t + (t % 2)
    if expected_s == 0:
        assert m.events == [wd("none", T0)]  # fires at the write (§6.6 #3)
    else:
        assert m.events == []
        _expect_fire_at(m, T0 + expected_s * S, action="none")


def test_scenario_3_current_settimeout_0_fires_at_the_write(make_machine):
    # §6.6 #3: "ib700 current SETTIMEOUT(0) | WATCHDOG at the write"
    m = make_machine()
    drv = LinuxIb700Current(m)
    drv.open()
    m.advance_to(T0)
    drv.settimeout(0)  # 15 - 1//2 = 15: index F = 0 s
    assert m.events == [wd("reset", T0), ev("RESET", T0, GUEST)]
    assert m.now == T0
    assert m.next_deadline is None


def test_scenario_3_legacy_settimeout_30_fires_at_the_write(make_machine):
    # §6.6 #3: "2.6 driver SETTIMEOUT(30) | WATCHDOG at the write"; §6.5: "n = 30 leaves −1,
    # so the ping writes 0xFF (0 s)"
    m = make_machine(action="pause")
    drv = LinuxIb700Legacy(m)
    drv.open()  # index 0: 30 s
    assert m.next_deadline == 30 * S
    m.advance_to(T0)
    drv.settimeout(30)
    assert drv.index == -1
    assert m.events == [wd("pause", T0), ev("STOP", T0)]
    assert m.status == "watchdog"


@pytest.mark.parametrize("n", range(30))
def test_legacy_driver_smallest_even_timeout_above_n(make_machine, n):
    # §6.5: "index = first i from 15 down to 0 with table[i] > n (smallest even timeout > n)"
    m = make_machine(action="none")
    drv = LinuxIb700Legacy(m)
    m.advance_to(T0)
    drv.settimeout(n)
    expected_s = n + 1 if n % 2 else n + 2
    assert m.next_deadline == T0 + expected_s * S
    _expect_fire_at(m, T0 + expected_s * S, action="none")


def test_legacy_driver_open_is_30s(make_machine):
    # §6.5: "ping (open): outb(index → 0x443); index starts at 0 (30 s)"
    m = make_machine()
    drv = LinuxIb700Legacy(m)
    m.advance_to(T0)
    drv.open()
    _expect_fire_at(m, T0 + 30 * S)


@pytest.mark.parametrize("driver", [LinuxIb700Current, LinuxIb700Legacy])
def test_scenario_4_close_with_v_never_fires(make_machine, driver):
    # §6.6 #4: "ib700 close with 'V' | never fires"
    m = make_machine()
    drv = driver(m)
    m.advance_to(T0)
    drv.open()
    m.advance(29 * S)
    drv.close_with_v()
    assert m.next_deadline is None
    assert m.advance(1000 * S) == 0
    assert m.events == []
    assert m.status == "running"


def test_keepalive_every_20s_never_fires(make_machine):
    # §6.4: KEEPALIVE pings; §2.3: "Arm always replaces the deadline"
    m = make_machine()
    drv = LinuxIb700Current(m)
    drv.open()
    for k in range(1, 50):
        m.advance_to(k * 20 * S)
        drv.keepalive()
        assert m.next_deadline == k * 20 * S + 30 * S
    assert m.events == []
    # the last keepalive at 980 s: the 30 s timeout runs out at 1010 s
    _expect_fire_at(m, 980 * S + 30 * S)
