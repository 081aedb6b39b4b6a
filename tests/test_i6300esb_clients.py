"""Real i6300ESB clients on a Machine, driven the way a guest drives them (SPEC.md §6).

The guest only has port I/O (PCI configuration mechanism #1 at 0xCF8 / 0xCFC..0xCFF), memory
accesses (the BAR0 window it placed itself) and the passing of time.  Everything here goes
through ``m.io_*``, ``m.mem_*`` and ``m.advance*``; ``m.events``, ``m.status`` and
``m.next_deadline`` are only read, to observe.

1. A small PCI helper, the firmware bring-up of §6, and driver models: Linux mainline (§6.1),
   Linux legacy v0.03/v0.04 (§6.2), FreeBSD i6300esbwd (§6.3).  Their accesses are the op
   lists of ``wdcore.clients``, applied one op at a time (``tests.guest.do``).
2. Every i6300ESB row of the §6.6 scenario table (#5..#14), to the nanosecond.
3. Finding the function: ``esb_slot`` and other scan orders.

Every test runs on the compiled core and on the Python twin (``make_machine``).  Expected
numbers come from SPEC.md (formula and table quoted next to them), never from running wdcore.
"""
from __future__ import annotations

import pytest

from tests.conftest import S
from tests.guest import do
from wdcore import clients
from wdcore.clients import ESB_ID, firmware

# =============================================================================================
# Constants from SPEC.md
# =============================================================================================

CONFIG_ADDRESS, CONFIG_DATA = 0xCF8, 0xCFC          # §5.2
assert (clients.CONFIG_ADDRESS, clients.CONFIG_DATA) == (CONFIG_ADDRESS, CONFIG_DATA)
assert ESB_ID == 0x25AB8086                         # §3.1: vendor 0x8086 / device 0x25AB
BASE = 0xFEBF0000                                    # a BAR0 in the PCI hole (§7.3 item 6)
OTHER_BASE = 0xE0000000

GUEST = {"guest": True, "reason": "guest-reset"}
HOST = {"guest": False, "reason": "host-qmp-system-reset"}

# §3.9 "Numbers and overflow" (one stage / both stages, ns)
LINUX_30S_STAGE, LINUX_30S_BOTH = 15_099_494_400, 30_198_988_800       # preload 0x3C00, 1 kHz
LINUX_1S_STAGE, LINUX_1S_BOTH = 503_316_480, 1_006_632_960             # preload 0x200, 1 kHz
FREEBSD_2_30_STAGE, FREEBSD_2_30_BOTH = 1_006_632_960, 2_013_265_920   # preload 0x400, 1 kHz
P1_1KHZ_STAGE, P1_1KHZ_BOTH = 983_040, 1_966_080                       # preload 1, 1 kHz
P1_1MHZ_STAGE, P1_1MHZ_BOTH = 960, 1_920                               # preload 1, 1 MHz
P10_1MHZ_STAGE, P10_1MHZ_BOTH = 9_600, 19_200                          # preload 10, 1 MHz
RESET_1KHZ_STAGE, RESET_1KHZ_BOTH = 1_030_791_168_000, 2_061_582_336_000  # 0xFFFFF, 1 kHz
# §6.6 #10: "esb SETTIMEOUT(10) while running | WATCHDOG 10 066 329 600 after the last reload"
LINUX_10S_BOTH = 10_066_329_600
LINUX_10S_STAGE = LINUX_10S_BOTH // 2


def stage_ns(preload, one_mhz=False):
    """§3.6: "duration(P) = (P << 15) × 30 ns at 1 kHz, (P << 5) × 30 ns at 1 MHz"."""
    return (preload << (5 if one_mhz else 15)) * 30


# the table of §3.9 and the formula of §3.6 are one fact: check the transcribed constants
assert stage_ns(0x3C00) == LINUX_30S_STAGE and 2 * LINUX_30S_STAGE == LINUX_30S_BOTH
assert stage_ns(0x200) == LINUX_1S_STAGE and 2 * LINUX_1S_STAGE == LINUX_1S_BOTH
assert stage_ns(0x400) == FREEBSD_2_30_STAGE and 2 * FREEBSD_2_30_STAGE == FREEBSD_2_30_BOTH
assert stage_ns(10 << 9) == LINUX_10S_STAGE
assert stage_ns(1) == P1_1KHZ_STAGE and stage_ns(1, True) == P1_1MHZ_STAGE
assert stage_ns(10, True) == P10_1MHZ_STAGE
assert stage_ns(0xFFFFF) == RESET_1KHZ_STAGE and 2 * RESET_1KHZ_STAGE == RESET_1KHZ_BOTH


def ev(name, t, data=None):
    return {"event": name, "data": {} if data is None else data, "time_ns": t}


def wd(action, t):
    return ev("WATCHDOG", t, {"action": action})


# =============================================================================================
# 1. The guest's tools: PCI configuration mechanism #1, the BAR0 window, bring-up
# =============================================================================================

class Pci:
    """One PCI function as a guest kernel reaches it: configuration mechanism #1 with
    CONFIG_ADDRESS = 0x80000000 | bus<<16 | dev<<11 | fn<<8 | (offset & 0xFC) and the data at
    port 0xCFC + (offset & 3) (``clients.pci_config_*``), and its BAR0 window through memory
    accesses."""

    def __init__(self, m, dev, bus=0, fn=0, base=None):
        self.m, self.dev, self.bus, self.fn, self.base = m, dev, bus, fn, base

    def do(self, ops):
        return do(self.m, ops)

    def address(self, offset):
        return clients.pci_address(self.dev, offset, bus=self.bus, function=self.fn)

    def cfg_read(self, offset, size):
        return self.do(clients.pci_config_read(self.dev, offset, size, bus=self.bus,
                                               function=self.fn))[0]

    def cfg_write(self, offset, size, value):
        self.do(clients.pci_config_write(self.dev, offset, size, value, bus=self.bus,
                                         function=self.fn))

    def cr8(self, o): return self.cfg_read(o, 1)
    def cr16(self, o): return self.cfg_read(o, 2)
    def cr32(self, o): return self.cfg_read(o, 4)
    def cw8(self, o, v): self.cfg_write(o, 1, v)
    def cw16(self, o, v): self.cfg_write(o, 2, v)
    def cw32(self, o, v): self.cfg_write(o, 4, v)

    # BAR0 (§3.5 registers at BAR0 + offset; §5.3 decode)
    def mr(self, off, size): return self.do(clients.mem_read(self.base + off, size))[0]
    def mw(self, off, size, v): self.do(clients.mem_write(self.base + off, size, v))
    def mr16(self, off): return self.mr(off, 2)
    def mw8(self, off, v): self.mw(off, 1, v)
    def mw16(self, off, v): self.mw(off, 2, v)
    def mw32(self, off, v): self.mw(off, 4, v)


def scan(m, order=range(32)):
    """§6 bring-up: "scan bus 0 devices 0–31 via dword reads of offset 0 until 0x25AB8086"."""
    for dev in order:
        if do(m, firmware.read_id(dev)) == [ESB_ID]:
            return dev
    return None


def bring_up(m, base=BASE, order=range(32)):
    """§6: "BAR0 ← 0xFFFFFFFF, read 0xFFFFFFF0; BAR0 ← base; set command bit 1"."""
    dev = scan(m, order)
    assert dev is not None, "no 8086:25ab on bus 0"
    pci = Pci(m, dev)
    [sizing] = do(m, firmware.size_bar0(dev))
    # §3.1: "BAR0 size probe: all-ones reads back 0xFFFFFFF0 (16 bytes)"
    assert sizing == 0xFFFFFFF0
    assert ((~sizing & 0xFFFFFFFF) | 0xF) + 1 == 16 == firmware.bar_size(sizing)
    do(m, firmware.place_bar0(dev, base))
    assert pci.cr32(0x10) == base
    do(m, firmware.enable_memory(dev, pci.cr16(0x04)))
    assert pci.cr16(0x04) & 0x0002
    pci.base = base
    return pci


# =============================================================================================
# 2. Driver models: the clients' op lists (wdcore.clients) plus the state a driver keeps
# =============================================================================================

class LinuxMainline:
    """drivers/watchdog/i6300esb.c (SPEC.md §6.1): ``clients.linux_i6300esb``."""

    CLIENT = clients.linux_i6300esb

    def __init__(self, pci, heartbeat=30, nowayout=False):
        self.CLIENT.preload(heartbeat)  # "Heartbeat t = 1..2046 s": ValueError outside
        self.pci, self.heartbeat, self.nowayout = pci, heartbeat, nowayout
        self.running = False
        self.nowayout_already_set = None
        self.cardreset = None

    def do(self, ops):
        return self.pci.do(ops)

    def unlock(self):  # "UNLOCK16 = MW16(0x0C ← 0x80), MW16(0x0C ← 0x86)"
        self.do(self.CLIENT.unlock(self.pci.base))

    def probe(self):
        # §6.1 step 1, then set_timeout(heartbeat); reads: the lock byte, the reload word
        lock, reload = self.do(self.CLIENT.probe(self.pci.dev, self.pci.base, self.heartbeat))
        self.nowayout_already_set = self.CLIENT.nowayout_already_set(lock)
        self.cardreset = self.CLIENT.cardreset(reload)

    def set_timeout(self, t):
        self.heartbeat = t
        self.do(self.CLIENT.set_timeout(self.pci.base, t))

    def ioctl_settimeout(self, t):
        # "(The watchdog core pings afterwards if running.)"
        self.set_timeout(t)
        if self.running:
            self.ping()

    def start(self):
        self.do(self.CLIENT.start(self.pci.dev, self.pci.base, self.nowayout))
        self.running = True

    def ping(self):
        self.do(self.CLIENT.ping(self.pci.base))

    def stop(self):
        """True on success ("CR8(0x68): bit 1 still set = failure"; the legacy driver
        tests bit 0)."""
        [lock] = self.do(self.CLIENT.stop(self.pci.dev, self.pci.base))
        ok = not self.CLIENT.stop_failed(lock)
        if ok:
            self.running = False
        return ok


class LinuxLegacy(LinuxMainline):
    """Linux i6300esb v0.03/v0.04 (SPEC.md §6.2): ``clients.linux_i6300esb_legacy``
    (UNLOCK8, the bit-0 boot-status test, the 0x1100 clear, stop testing the lock bit,
    open = ping + enable)."""

    CLIENT = clients.linux_i6300esb_legacy

    def init(self):
        # "3. module init ends with stop, whose result tests bit 0 (lock)."
        self.probe()
        return self.stop()

    def getstatus(self):
        # "GETSTATUS reads config dword 0x64 (raw, 0)"
        return self.do(self.CLIENT.getstatus(self.pci.dev))[0]


FREEBSD = clients.freebsd_i6300esbwd
EINVAL, EPERM = FREEBSD.EINVAL, FREEBSD.EPERM
assert (EINVAL, EPERM) == (22, 1)


class FreeBSD:
    """FreeBSD i6300esbwd (SPEC.md §6.3): ``clients.freebsd_i6300esbwd`` and the driver's
    ``locked`` flag."""

    def __init__(self, pci):
        self.pci = pci
        self.locked = False

    def do(self, ops):
        return self.pci.do(ops)

    def unlock(self):
        self.do(clients.esb_unlock(self.pci.base))

    def attach(self):
        # §6.3 step 1; the lock-register read decides whether 0x68 is cleared
        [lock] = self.do(FREEBSD.attach_begin(self.pci.dev))
        self.locked = FREEBSD.locked(lock)
        self.do(FREEBSD.attach_end(self.pci.dev, self.pci.base, locked=self.locked))

    def event(self, n):
        # §6.3 step 2: EINVAL unless n = 0 or 20 ≤ n < 40 (no access made)
        if not FREEBSD.valid_interval(n):
            return EINVAL
        if n == 0:
            self.do(FREEBSD.event_disable_reload(self.pci.base))
            if self.locked:
                return EPERM
            [lock] = self.do(FREEBSD.read_lock(self.pci.dev))
            self.do(FREEBSD.event_disable(self.pci.dev, lock))
            return 0
        reads = self.do(FREEBSD.event(self.pci.dev, self.pci.base, n, locked=self.locked))
        if not self.locked:
            self.locked = FREEBSD.locked(reads[0])
        return 0

    def sysctl_lock(self):
        # "3. sysctl lock: CW8(0x68 ← CR8(0x68) | 1)."
        [lock] = self.do(FREEBSD.read_lock(self.pci.dev))
        self.do(FREEBSD.sysctl_lock(self.pci.dev, lock))
        self.locked = bool(self.pci.cr8(0x68) & 0x01)


# =============================================================================================
# Observation helpers: to the nanosecond, with the nanosecond before
# =============================================================================================

def expect_stage1_end(m, t_end, stage2_end):
    """Stage 1 ends exactly at ``t_end`` (no event, §3.6 "Stage-1 expiry ... No event") and
    stage 2 then runs to ``stage2_end``."""
    n = len(m.events)
    assert m.next_deadline == t_end
    assert m.advance_to(t_end - 1) == 0
    assert m.next_deadline == t_end          # still stage 1 one ns before
    assert m.advance_to(t_end) == 0          # §1.4: "stage-1 expiries ... do not count"
    assert m.next_deadline == stage2_end     # §3.6: "start(2) at t"
    assert m.events[n:] == []


def expect_watchdog(m, t, action="reset"):
    """The WATCHDOG is exactly at ``t``; returns the events logged after it."""
    n = len(m.events)
    assert m.advance_to(t - 1) == 0
    assert m.events[n:] == []
    assert m.next_deadline == t
    assert m.advance_to(t) == 1
    assert m.events[n] == wd(action, t)
    return m.events[n + 1:]


def expect_silent(m, until):
    n = len(m.events)
    assert m.advance_to(until) == 0
    assert m.events[n:] == []


def set_previous_reboot_flag(m, pci):
    """A quick stage-2 expiry (1 MHz, preloads 1/1, action none) sets the flag (§3.7)."""
    saved = m.action
    m.action = "none"
    pci.cw16(0x60, 0x0004)
    for off in (0x00, 0x04):
        pci.mw16(0x0C, 0x80)
        pci.mw16(0x0C, 0x86)
        pci.mw32(off, 1)
    pci.cw8(0x68, 0x02)
    t0 = m.now
    assert m.advance(P1_1MHZ_BOTH) == 1
    assert m.events[-1] == wd("none", t0 + P1_1MHZ_BOTH)
    m.action = saved


# =============================================================================================
# 3. Bring-up itself
# =============================================================================================

def test_bring_up_finds_slot_2_and_maps_bar0(make_machine):
    m = make_machine()
    # §7.1: "With `-nodefaults` the i6300ESB is 00:02.0"; API.md: esb_slot=2 by default
    assert scan(m) == 2
    pci = bring_up(m)
    assert pci.dev == 2
    # §3.1 header through the ports
    assert pci.cr32(0x00) == ESB_ID
    assert pci.cr32(0x08) == 0x08800000
    assert pci.cr16(0x2C) == 0x1AF4 and pci.cr16(0x2E) == 0x1100
    assert pci.cr16(0x04) == 0x0002
    assert pci.cr32(0x10) == BASE
    # the window answers: a word read at 0x0C with no flag is 0 (§3.5), and the unmapped
    # neighbourhood reads 0 as well (§5.3) - so prove decode with the flag below
    set_previous_reboot_flag(m, pci)
    assert pci.mr16(0x0C) == 0x1200          # §3.7 "Visible ... as 0x1200"
    assert m.mem_read(BASE - 16 + 0x0C, 2) == 0


# =============================================================================================
# 4. The scenario table, SPEC.md §6.6 #5 .. #14
# =============================================================================================

T0 = 7_123_456_789  # an arbitrary, odd, access time


def _mainline_running(m, **kw):
    """Bring-up, §6.1 probe and open at T0; returns (pci, driver)."""
    pci = bring_up(m)
    drv = LinuxMainline(pci, **kw)
    m.advance_to(T0 - 1000)
    drv.probe()
    m.advance_to(T0)
    drv.start()
    return pci, drv


def test_scenario_5_mainline_probe_open_no_ping(make_machine):
    # §6.6 #5: "esb mainline probe + open (t0 = enable), no ping | stage 1 ends
    # t0 + 15 099 494 400; WATCHDOG at t0 + 30 198 988 800; flag set; 0x68 reads 0; preloads
    # 0xFFFFF"
    m = make_machine()
    pci, drv = _mainline_running(m)
    assert drv.nowayout_already_set is False
    assert drv.cardreset is False            # fresh machine: flag 0 at construction (§3.7)
    assert pci.cr16(0x60) == 0x0003          # §3.3: INT_TYPE 3 kept by the 0x03 mask (qemu)
    assert pci.cr8(0x68) == 0x02             # enabled, not locked (§3.4)
    expect_stage1_end(m, T0 + LINUX_30S_STAGE, T0 + LINUX_30S_BOTH)
    after = expect_watchdog(m, T0 + LINUX_30S_BOTH, "reset")
    # §4.2: "reset | WATCHDOG | device resets, RESET"; advance_to ended at the expiry itself
    assert after == [ev("RESET", T0 + LINUX_30S_BOTH, GUEST)]
    assert m.status == "running"
    assert m.next_deadline is None
    # §3.8: the system reset cleared command and BAR0: the window is gone (reads 0, §5.3)
    assert m.mem_read(BASE + 0x0C, 2) == 0
    assert pci.cr32(0x10) == 0 and pci.cr16(0x04) == 0
    # "0x68 reads 0"; 0x60 back to 0x0000 (§3.3 "Reset 0x0000")
    assert pci.cr8(0x68) == 0x00
    assert pci.cr16(0x60) == 0x0000
    # "flag set": visible as 0x1200 once the guest re-maps BAR0 (§3.7, §7.3 item 5)
    pci = bring_up(m)
    assert pci.mr16(0x0C) == 0x1200
    # "preloads 0xFFFFF": re-enable without reprogramming (§6.6 #14)
    t1 = m.now + 3
    m.advance_to(t1)
    pci.cw8(0x68, 0x02)
    expect_stage1_end(m, t1 + RESET_1KHZ_STAGE, t1 + RESET_1KHZ_BOTH)


def test_scenario_5_one_step_over_everything(make_machine):
    # the same, in one big advance: the RESET comes at the end of that operation (§4.2)
    m = make_machine()
    _mainline_running(m)
    end = T0 + LINUX_30S_BOTH + 5 * S
    assert m.advance_to(end) == 1
    assert m.events == [wd("reset", T0 + LINUX_30S_BOTH), ev("RESET", end, GUEST)]


def test_scenario_6_probe_after_expiry_reports_cardreset(make_machine):
    # §6.6 #6: "esb probe after 5 (reset action, BAR re-mapped) | MR16(0x0C) = 0x1200 →
    # CARDRESET; 0 after the 0x0300 write"
    m = make_machine()
    _mainline_running(m)
    m.advance_to(T0 + LINUX_30S_BOTH)
    assert m.events[-1] == ev("RESET", T0 + LINUX_30S_BOTH, GUEST)
    m.advance(S)
    pci = bring_up(m)                 # §3.8: "After a system reset the guest must reprogram"
    assert pci.mr16(0x0C) == 0x1200
    drv = LinuxMainline(pci)
    drv.probe()
    assert drv.cardreset is True
    assert drv.nowayout_already_set is False
    assert pci.mr16(0x0C) == 0x0000   # cleared by bit 9 of 0x0300 (§3.5 rule 4)
    assert m.next_deadline is None    # probe does not start the watchdog
    assert pci.cr8(0x68) == 0x00


def test_scenario_6_read_keeps_the_unlock(make_machine):
    # §6.1: "MR16(0x0C) ... (the read keeps the unlock)"; §3.5 "Reads never have side effects
    # or touch the unlock state": UNLOCK16, read, then a lone 0x0300 still clears the flag
    m = make_machine()
    pci = bring_up(m)
    set_previous_reboot_flag(m, pci)
    pci.mw16(0x0C, 0x80)
    pci.mw16(0x0C, 0x86)
    assert pci.mr16(0x0C) == 0x1200
    pci.mw16(0x0C, 0x0300)
    assert pci.mr16(0x0C) == 0x0000


def test_scenario_7_ping_every_10s_never_fires(make_machine):
    # §6.6 #7: "esb ping every 10 s | never fires"
    m = make_machine()
    pci, drv = _mainline_running(m)
    for k in range(1, 101):
        m.advance_to(T0 + k * 10 * S)
        drv.ping()
        # §3.6 "reload ... start(1)": a fresh stage 1 from the ping
        assert m.next_deadline == T0 + k * 10 * S + LINUX_30S_STAGE
    assert m.events == []
    assert pci.cr8(0x68) == 0x02
    # and once the pings stop, the last one counts
    last = T0 + 1000 * S
    expect_stage1_end(m, last + LINUX_30S_STAGE, last + LINUX_30S_BOTH)
    expect_watchdog(m, last + LINUX_30S_BOTH)


def test_scenario_8_ping_in_stage_2(make_machine):
    # §6.6 #8: "esb ping in stage 2 (t0 + 20 s) | WATCHDOG at ping + 30 198 988 800"
    m = make_machine(action="none")
    pci, drv = _mainline_running(m)
    ping = T0 + 20 * S
    m.advance_to(ping)
    assert m.next_deadline == T0 + LINUX_30S_BOTH     # in stage 2 since t0 + 15.0995 s
    assert m.events == []
    drv.ping()
    # §3.6: "a ping in stage 2 returns to stage 1"
    expect_stage1_end(m, ping + LINUX_30S_STAGE, ping + LINUX_30S_BOTH)
    assert expect_watchdog(m, ping + LINUX_30S_BOTH, "none") == []
    assert m.advance_to(T0 + 10_000 * S) == 0     # the internal reset disabled it (§3.6)


def test_scenario_9_nowayout_start_then_stop(make_machine):
    # §6.6 #9: "esb nowayout start, then stop | 0x68 stays 0x03; stop reports failure"
    m = make_machine()
    pci, drv = _mainline_running(m, nowayout=True)
    assert pci.cr8(0x68) == 0x03
    stop_at = T0 + 5 * S
    m.advance_to(stop_at)
    assert drv.stop() is False        # "CR8(0x68): bit 1 still set = failure"
    assert pci.cr8(0x68) == 0x03      # §3.4 "Locked: ignored entirely until a device reset"
    # the stop's own ping reloaded stage 1; the watchdog keeps running from there
    expect_stage1_end(m, stop_at + LINUX_30S_STAGE, stop_at + LINUX_30S_BOTH)
    # a second module probe sees the lock (§6.1 "bit 0 → "nowayout already set"")
    again = LinuxMainline(pci)
    again.probe()
    assert again.nowayout_already_set is True
    assert pci.cr8(0x68) == 0x03
    # probe's set_timeout reload restarted stage 1 (enabled): §3.5 rule 4, §3.6
    t = m.now
    assert m.next_deadline == t + LINUX_30S_STAGE
    assert expect_watchdog(m, t + LINUX_30S_BOTH) == [ev("RESET", t + LINUX_30S_BOTH, GUEST)]
    assert pci.cr8(0x68) == 0x00      # unlocked only by the reset


def test_scenario_10_settimeout_while_running(make_machine):
    # §6.6 #10: "esb SETTIMEOUT(10) while running | WATCHDOG 10 066 329 600 after the last
    # reload"
    m = make_machine(action="pause")
    pci, drv = _mainline_running(m)
    t1 = T0 + 7 * S + 11
    m.advance_to(t1)
    drv.ioctl_settimeout(10)          # set_timeout's reload and the core's ping, both at t1
    assert m.next_deadline == t1 + LINUX_10S_STAGE
    last = t1 + 3 * S + 5
    m.advance_to(last)
    drv.ping()                        # the last reload
    expect_stage1_end(m, last + LINUX_10S_STAGE, last + LINUX_10S_BOTH)
    after = expect_watchdog(m, last + LINUX_10S_BOTH, "pause")
    assert after == [ev("STOP", last + LINUX_10S_BOTH)]
    assert m.status == "watchdog"


def test_scenario_10_new_preloads_apply_at_the_next_start_only(make_machine):
    # §3.6: "Preload writes apply at their stage's next start": writing the preloads without
    # the final reload leaves the running stage alone
    m = make_machine(action="none")
    pci, drv = _mainline_running(m)
    m.advance_to(T0 + S)
    for off in (0x00, 0x04):
        drv.unlock()
        pci.mw32(off, 10 << 9)
    assert m.next_deadline == T0 + LINUX_30S_STAGE            # stage 1 unchanged
    # stage 2 starts with the new preload 2
    expect_stage1_end(m, T0 + LINUX_30S_STAGE, T0 + LINUX_30S_STAGE + LINUX_10S_STAGE)
    expect_watchdog(m, T0 + LINUX_30S_STAGE + LINUX_10S_STAGE, "none")


def test_scenario_11_legacy_init(make_machine):
    # §6.6 #11: "esb legacy init | flag cleared via bit 12; watchdog off at the end"
    m = make_machine()
    pci = bring_up(m)
    set_previous_reboot_flag(m, pci)
    assert pci.mr16(0x0C) == 0x1200
    drv = LinuxLegacy(pci)
    assert drv.init() is True                 # stop's lock test: bit 0 clear
    # §6.2 "precedence bug; never true on 0x1200": the old driver misses the card reset
    assert drv.cardreset is False
    assert pci.mr16(0x0C) == 0x0000           # MW16(0x0C ← 0x1100): bit 12 clears (§3.5 r. 4)
    assert pci.cr8(0x68) == 0x00
    assert m.next_deadline is None
    expect_silent(m, m.now + 3000 * S)
    # GETSTATUS reads raw config dword 0x64: 0 (§3.1 raw 0x40–0xFF)
    assert drv.getstatus() == 0
    # open: byte unlocks still load and reload (UNLOCK8, §3.5 rules 1-2)
    t = m.now + 17
    m.advance_to(t)
    drv.start()
    assert pci.cr8(0x68) == 0x02
    expect_stage1_end(m, t + LINUX_30S_STAGE, t + LINUX_30S_BOTH)
    expect_watchdog(m, t + LINUX_30S_BOTH)


def test_scenario_11_legacy_clear_needs_bit_12_not_bit_9(make_machine):
    # §3.7 "Cleared by an unlocked word write to 0x0C with bit 9 or 12": 0x1100 has bit 12
    # and bit 8 only; a bare 0x0100 (bit 8 only) must not clear
    m = make_machine()
    pci = bring_up(m)
    set_previous_reboot_flag(m, pci)
    drv = LinuxLegacy(pci)
    drv.ping()                                # UNLOCK8 + 0x0100
    assert pci.mr16(0x0C) == 0x1200
    drv.unlock()
    pci.mw16(0x0C, 0x1000)
    assert pci.mr16(0x0C) == 0x0000


def test_scenario_11_legacy_nowayout(make_machine):
    # §6.2: "module init ends with stop, whose result tests bit 0 (lock)"; after a nowayout
    # open the lock holds and a stop reports it
    m = make_machine()
    pci = bring_up(m)
    drv = LinuxLegacy(pci, nowayout=True)
    assert drv.init() is True
    drv.start()
    assert pci.cr8(0x68) == 0x03
    assert drv.stop() is False
    assert pci.cr8(0x68) == 0x03


def test_scenario_12_freebsd_n30(make_machine):
    # §6.6 #12: "esb FreeBSD n = 30, no further event | WATCHDOG 2 013 265 920 after the
    # enabling write"
    m = make_machine()
    pci = bring_up(m)
    drv = FreeBSD(pci)
    drv.attach()
    assert pci.cr16(0x60) == 0x0003
    m.advance_to(T0)
    assert drv.event(30) == 0
    assert drv.locked is False
    assert pci.cr8(0x68) == 0x02
    expect_stage1_end(m, T0 + FREEBSD_2_30_STAGE, T0 + FREEBSD_2_30_BOTH)
    assert expect_watchdog(m, T0 + FREEBSD_2_30_BOTH) == [
        ev("RESET", T0 + FREEBSD_2_30_BOTH, GUEST)]


def test_scenario_12_freebsd_watchdogd_pets_then_stops(make_machine):
    # watchdogd repeats event(30): each reloads (§3.6); CW8(0x68 ← 0x02) on a running timer
    # does not restart it (§3.4 "1→1: no restart"), the reload did
    m = make_machine(action="none")
    pci = bring_up(m)
    drv = FreeBSD(pci)
    drv.attach()
    m.advance_to(T0)
    drv.event(30)
    for k in range(1, 20):
        m.advance_to(T0 + k * S)
        assert drv.event(30) == 0
        assert m.next_deadline == T0 + k * S + FREEBSD_2_30_STAGE
    assert m.events == []
    # n = 0 disables (not locked)
    assert drv.event(0) == 0
    assert pci.cr8(0x68) == 0x00
    assert m.next_deadline is None
    expect_silent(m, m.now + 100 * S)
    # EINVAL outside n = 0 or 20 ≤ n < 40, no access made
    for n in (1, 19, 40):
        assert drv.event(n) == EINVAL
    assert pci.cr8(0x68) == 0x00


@pytest.mark.parametrize("n", [20, 25, 39])
def test_scenario_12_freebsd_interval_to_preload(make_machine, n):
    # §6.3: "P = 2^(n−20)"; §3.6 duration at 1 kHz
    m = make_machine(action="none")
    pci = bring_up(m)
    drv = FreeBSD(pci)
    drv.attach()
    m.advance_to(T0)
    assert drv.event(n) == 0
    d = stage_ns(1 << (n - 20))
    assert d == (1 << (n - 20) << 15) * 30      # §3.6 at 1 kHz, written out
    expect_stage1_end(m, T0 + d, T0 + 2 * d)
    assert expect_watchdog(m, T0 + 2 * d, "none") == []   # action none: WATCHDOG only
    assert m.events == [wd("none", T0 + 2 * d)]


def test_scenario_12_freebsd_sysctl_lock(make_machine):
    # §6.3 "sysctl lock: CW8(0x68 ← CR8(0x68) | 1)"; then "n = 0: EPERM if locked"
    m = make_machine(action="none")
    pci = bring_up(m)
    drv = FreeBSD(pci)
    drv.attach()
    m.advance_to(T0)
    drv.event(30)
    drv.sysctl_lock()
    assert pci.cr8(0x68) == 0x03             # §3.4: "0x03 enables and locks"
    t = T0 + S
    m.advance_to(t)
    assert drv.event(0) == EPERM             # its ping still happened (UNLOCK16; 0x0100)
    assert pci.cr8(0x68) == 0x03
    expect_watchdog(m, t + FREEBSD_2_30_BOTH, "none")
    # after the stage-2 internal reset (§3.8) a new attach finds it unlocked
    assert pci.cr8(0x68) == 0x00
    drv2 = FreeBSD(pci)
    drv2.attach()
    assert drv2.locked is False


@pytest.mark.parametrize("profile,int_type", [("qemu", 0x0003), ("qemu-7.2", 0x0001)])
def test_freebsd_int_type_readback_by_profile(make_machine, profile, int_type):
    # §6.3: "Its INT_TYPE 3 reads back 1 in 7.2"; §3.3 mask 0x03 (qemu), 0x11 (qemu-7.2)
    m = make_machine(profile=profile)
    pci = bring_up(m)
    FreeBSD(pci).attach()
    assert pci.cr16(0x60) == int_type


def test_scenario_13_reboot_disabled_one_shot(make_machine):
    # §6.6 #13: "esb 0x60 ← 0x20, preloads 1/1, enable | stages end +983 040, +1 966 080;
    # no event; 0x68 = 0x02"
    m = make_machine()
    pci = bring_up(m)
    pci.cw16(0x60, 0x0020)
    assert pci.cr16(0x60) == 0x0020
    for off in (0x00, 0x04):
        pci.mw16(0x0C, 0x80)
        pci.mw16(0x0C, 0x86)
        pci.mw32(off, 1)
    m.advance_to(T0)
    pci.cw8(0x68, 0x02)
    expect_stage1_end(m, T0 + P1_1KHZ_STAGE, T0 + P1_1KHZ_BOTH)
    assert m.advance_to(T0 + P1_1KHZ_BOTH - 1) == 0
    assert m.next_deadline == T0 + P1_1KHZ_BOTH
    assert m.advance_to(T0 + P1_1KHZ_BOTH) == 0
    # §3.6 "reboot disabled, free_run clear: no deadline, enabled stays 1, stage stays 2,
    # no event"
    assert m.next_deadline is None
    assert m.events == []
    assert pci.cr8(0x68) == 0x02
    assert pci.mr16(0x0C) == 0x0000          # no flag: reboot was disabled (§3.7)
    expect_silent(m, T0 + 1000 * S)
    # "a later reload starts stage 1"
    t = m.now
    pci.mw16(0x0C, 0x80)
    pci.mw16(0x0C, 0x86)
    pci.mw16(0x0C, 0x0100)
    expect_stage1_end(m, t + P1_1KHZ_STAGE, t + P1_1KHZ_BOTH)
    assert m.advance_to(t + 10 * S) == 0
    assert m.events == []


def test_scenario_13_free_running_alternates(make_machine):
    # §3.6 "reboot disabled, free_run set: start(1), no event; stages alternate (probe:
    # deadlines 9 830 400, 19 660 800, 29 491 200, 39 321 600 ns for preloads 10/10)"
    m = make_machine()
    pci = bring_up(m)
    pci.cw16(0x60, 0x0020)
    for off in (0x00, 0x04):
        pci.mw16(0x0C, 0x80)
        pci.mw16(0x0C, 0x86)
        pci.mw32(off, 10)
    m.advance_to(T0)
    pci.cw8(0x68, 0x06)
    seen = []
    for d in (9_830_400, 19_660_800, 29_491_200, 39_321_600):
        assert m.next_deadline == T0 + d
        m.advance_to(T0 + d)
        seen.append(m.next_deadline - T0)
    assert seen == [19_660_800, 29_491_200, 39_321_600, 49_152_000]
    assert m.events == []
    assert pci.cr8(0x68) == 0x06


# §4.2 table: the follow-up of each action at the end of the operation, and the status after
ACTION_FOLLOW = {
    "reset": (["RESET"], "running"),
    "shutdown": (["POWERDOWN"], "running"),
    "pause": (["STOP"], "watchdog"),
    "debug": ([], "running"),
    "none": ([], "running"),
    "inject-nmi": (["NMI"], "running"),
}


@pytest.mark.parametrize("action", list(ACTION_FOLLOW))
def test_scenario_14_reenable_without_reprogramming(make_machine, action):
    # §6.6 #14: "any stage-2 action, re-enable without reprogramming | stage 1 =
    # 1 030 791 168 000 ns (probe)"; §3.6 "For **every** action (probe), so free-running never
    # survives and the guest must reprogram".  The first run uses 1 MHz, preloads 10/10,
    # free_run and the lock, so every one of them must be undone by the internal reset.
    m = make_machine(action=action)
    pci = bring_up(m)
    pci.cw16(0x60, 0x0004)
    for off in (0x00, 0x04):
        pci.mw16(0x0C, 0x80)
        pci.mw16(0x0C, 0x86)
        pci.mw32(off, 10)
    m.advance_to(T0)
    pci.cw8(0x68, 0x07)                       # free_run, enable, lock
    assert pci.cr8(0x68) == 0x07
    expect_stage1_end(m, T0 + P10_1MHZ_STAGE, T0 + P10_1MHZ_BOTH)
    after = expect_watchdog(m, T0 + P10_1MHZ_BOTH, action)
    follow, status = ACTION_FOLLOW[action]
    assert [e["event"] for e in after] == follow
    assert all(e["time_ns"] == T0 + P10_1MHZ_BOTH for e in after)
    assert m.status == status
    assert m.next_deadline is None            # free-running did not survive
    if status == "watchdog":
        m.resume()
    if action == "reset":
        pci = bring_up(m)                     # the system reset cleared BAR0 (§3.8)
    # flag set, 0x68 and 0x60 back to reset values (§3.8 "internal" column)
    assert pci.mr16(0x0C) == 0x1200
    assert pci.cr8(0x68) == 0x00
    assert pci.cr16(0x60) == 0x0000
    t = m.now + 1
    m.advance_to(t)
    pci.cw8(0x68, 0x02)
    # preloads 0xFFFFF at 1 kHz (§3.9 "0xFFFFF (reset) | ... 1 030 791 168 000 (probe)")
    expect_stage1_end(m, t + RESET_1KHZ_STAGE, t + RESET_1KHZ_BOTH)
    assert expect_watchdog(m, t + RESET_1KHZ_BOTH, action) is not None


def test_scenario_14_poweroff_ends_everything(make_machine):
    # §4.2 "poweroff | WATCHDOG, then stop at once ... the operation ends | – | `poweroff`";
    # API.md: finished machine drops writes, reads as unclaimed
    m = make_machine(action="poweroff")
    pci, drv = _mainline_running(m)
    assert m.advance_to(T0 + 100 * S) == 1
    assert m.events == [wd("poweroff", T0 + LINUX_30S_BOTH)]
    assert m.status == "poweroff"
    assert m.now == T0 + LINUX_30S_BOTH
    assert m.io_read(CONFIG_DATA, 4) == 0xFFFFFFFF
    # the flag is set on the device, but memory reads as unclaimed (0, §5.3) now
    assert pci.mr16(0x0C) == 0x0000
    pci.cw8(0x68, 0x02)
    assert m.next_deadline is None
    assert m.advance(RESET_1KHZ_BOTH) == 0
    assert len(m.events) == 1


# =============================================================================================
# 5. Finding the function: esb_slot and scan orders
# =============================================================================================

def test_esb_slot_5(make_machine):
    # API.md: "the i6300ESB at bus 0, device esb_slot, function 0 ...; an empty config slot
    # reads all-ones"; §5.2 rule 3
    m = make_machine(esb_slot=5)
    assert scan(m) == 5
    m.io_write(CONFIG_ADDRESS, 4, 0x80000000 | 2 << 11)
    assert m.io_read(CONFIG_DATA, 4) == 0xFFFFFFFF
    assert m.io_read(CONFIG_DATA, 2) == 0xFFFF
    assert m.io_read(CONFIG_DATA + 3, 1) == 0xFF
    for dev in range(32):
        if dev != 5:
            m.io_write(CONFIG_ADDRESS, 4, 0x80000000 | dev << 11)
            assert m.io_read(CONFIG_DATA, 4) == 0xFFFFFFFF, dev
    pci = bring_up(m)
    assert pci.dev == 5
    # writes to the old slot 2 reach nothing: the lock register at 5 stays 0
    Pci(m, 2).cw8(0x68, 0x02)
    assert pci.cr8(0x68) == 0x00
    assert m.next_deadline is None
    drv = LinuxMainline(pci)
    drv.probe()
    m.advance_to(T0)
    drv.start()
    expect_stage1_end(m, T0 + LINUX_30S_STAGE, T0 + LINUX_30S_BOTH)
    expect_watchdog(m, T0 + LINUX_30S_BOTH)


@pytest.mark.parametrize("slot", [0, 2, 31])
def test_linux_style_function_scan(make_machine, slot):
    # A PCI-core style scan: every device, every function, vendor word at offset 0 (empty =
    # 0xFFFF), header type at 0x0E bit 7 decides whether functions 1..7 exist.  Empty slots
    # and functions read all-ones (§5.2 rule 3: "00:02.1 ... all read all-ones").
    m = make_machine(esb_slot=slot)
    found = []
    empties = 0
    for dev in range(32):
        for fn in range(8):
            p = Pci(m, dev, fn=fn)
            vendor = p.cr16(0x00)
            if vendor == 0xFFFF:
                assert p.cr32(0x00) == 0xFFFFFFFF
                assert p.cr8(0x0E) == 0xFF
                empties += 1
                if fn == 0:
                    break
                continue
            found.append((dev, fn, vendor, p.cr16(0x02), p.cr8(0x0E)))
            if fn == 0 and not p.cr8(0x0E) & 0x80:
                break                         # single-function device (§3.1 header type 0)
    assert found == [(slot, 0, 0x8086, 0x25AB, 0x00)]
    assert empties == 31
    # functions 1..7 of the slot are empty too
    for fn in range(1, 8):
        assert Pci(m, slot, fn=fn).cr32(0x00) == 0xFFFFFFFF
    pci = bring_up(m, order=range(31, -1, -1))   # reverse scan hits the empty ones first
    assert pci.dev == slot
    drv = FreeBSD(pci)
    drv.attach()
    m.advance_to(T0)
    drv.event(30)
    expect_watchdog(m, T0 + FREEBSD_2_30_BOTH)


def test_scan_with_byte_reads_of_the_id(make_machine):
    # a scan reading the ID a byte at a time through 0xCFC..0xCFF (offset 0 selected: §5.2
    # rule 2, offset = 0 | k)
    m = make_machine(esb_slot=9)
    hit = None
    for dev in range(32):
        m.io_write(CONFIG_ADDRESS, 4, 0x80000000 | dev << 11)
        ident = sum(m.io_read(CONFIG_DATA + k, 1) << (8 * k) for k in range(4))
        if ident == ESB_ID:
            hit = dev
            break
        assert ident == 0xFFFFFFFF
    assert hit == 9
    pci = bring_up(m, base=OTHER_BASE)
    drv = LinuxMainline(pci, heartbeat=1)
    drv.probe()
    m.advance_to(T0)
    drv.start()
    expect_stage1_end(m, T0 + LINUX_1S_STAGE, T0 + LINUX_1S_BOTH)
    expect_watchdog(m, T0 + LINUX_1S_BOTH)


def test_no_i6300esb_scan_finds_nothing(make_machine):
    # API.md: CONFIG_DATA is "present even without an i6300ESB" (§5.2) and reads all-ones
    m = make_machine(devices=("ib700",))
    assert scan(m) is None
