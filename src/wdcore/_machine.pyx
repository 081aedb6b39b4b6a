# cython: language_level=3
"""The Machine's core, compiled: the PC bus, the timer list, run state, QEMU's requests,
expiry delivery and the event log (SPEC.md 4, 5).  Twin: _machine_py.py, which this
mirrors in behaviour, line for line.

Everything on the access path is ``nogil``; the GIL is taken only where Python must
run: an expiry (events, callbacks), a device's line change, and the requests processed
at the end of an operation.  ``run_stream`` executes a binary op stream (docs/ops.md)
with the GIL released for the whole loop, taking it back only there.
"""
cimport cython
from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, realloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from wdcore._core cimport (SNAP_CRC, SNAP_HEADER, WD_COUNTER_MAX, snap_ld, snap_open, snap_seal, snap_st,
                           snap_timer_agrees)
from wdcore._core cimport (ArmCounter, CALL_ACTION, CALL_ADVANCE, CALL_ADVANCE_TO,
                           CALL_CLEAR_EVENTS, CALL_IO_READ, CALL_IO_WRITE, CALL_MEM_READ,
                           CALL_MEM_WRITE, CALL_PAUSE, CALL_RESUME, CALL_RUN, CALL_SYSTEM_RESET,
                           Timer, Watchdog, WD_DUE, WD_SIGNAL, WD_TIME_MAX_NS, arg_delta, arg_port,
                           arg_size, arg_time, arg_value, guard_enter, guard_leave, piece_size,
                           raise_held, timer_before, timer_due, wd_small_int)
from wdcore._ib700 cimport IB700
from wdcore._i6300esb cimport I6300ESB
from wdcore._regs cimport (ESB_SIZE, IB700_PORT_FIRST, IB700_PORT_LAST, PCI_CONFIG_ADDRESS,
                           PCI_CONFIG_ADDRESS_BUS, PCI_CONFIG_ADDRESS_DEVICE,
                           PCI_CONFIG_ADDRESS_ENABLE, PCI_CONFIG_ADDRESS_FUNCTION,
                           PCI_CONFIG_ADDRESS_OFFSET, PCI_CONFIG_DATA, PCI_CONFIG_DEVICE_SHIFT,
                           PCI_CONFIG_END)

from wdcore._core_py import check_addr, check_callback
from wdcore.actions import ACTION_CODE, ACTIONS, EFFECTS, GUEST_RESET, HOST_RESET, coerce_action
from wdcore.ops import RUN_STOPS
from wdcore import _snapshot

cdef extern from "Python.h":
    int PyErr_CheckSignals() except -1

# the run states (RUNNING .. POWEROFF) are declared in _machine.pxd, for cimporting code

cdef enum:  # the bits of actions.Request, in QEMU's handling order
    REQ_SHUTDOWN = 1
    REQ_RESET = 2
    REQ_POWERDOWN = 4
    REQ_STOP = 8

cdef enum:  # op stream opcodes (docs/ops.md)
    OP_OUTB = 0
    OP_INB = 3
    OP_WRITEB = 6
    OP_READB = 9
    OP_STEP = 12
    OP_STEP_BARE = 13
    OP_SET = 14
    OP_STEP32 = 15

# actions.EFFECTS as C data, by action code: requests raised, power off, immediate event
cdef enum:
    MAX_ACTIONS = 16
cdef int N_ACTIONS = len(ACTIONS)
assert N_ACTIONS <= MAX_ACTIONS and len(EFFECTS) == N_ACTIONS
cdef int EFFECT_REQUESTS[MAX_ACTIONS]
cdef bint EFFECT_POWER_OFF[MAX_ACTIONS]
cdef tuple EFFECT_EVENT = tuple(e.immediate_event for e in EFFECTS)
cdef tuple ACTION_NAMES = tuple(a.value for a in ACTIONS)  # QEMU's names, for WATCHDOG's data
cdef tuple _ACTIONS = ACTIONS
cdef tuple _RUN_STOPS = RUN_STOPS
cdef enum:
    SIGNAL_EVERY = 1024  # ops between two runs of Python's signal handlers in c_run
    NOGIL_FROM = 4096    # run_stream releases the GIL for streams longer than this (bytes)

# the snapshot (_snapshot.MachineState): its header fields by offset, then per device a
# u32 length and the device's own snapshot
cdef int SNAP_KIND = _snapshot.KIND_MACHINE
_M = _snapshot.MACHINE_LAYOUT.offsets
cdef Py_ssize_t M_CONFIG = _M["device_mask"], M_NOW = _M["now"], M_STATUS = _M["status"]
cdef Py_ssize_t M_ACTION = _M["action"], M_CONFIG_ADDRESS = _M["config_address"]
cdef Py_ssize_t M_COUNTER = _M["counter"], M_SIZE = _snapshot.MACHINE_LAYOUT.size
cdef Py_ssize_t N_CONFIG = 5  # device_mask, esb_slot, profile, reboot_action, stage1_interrupt
assert _snapshot.MACHINE_LAYOUT.names[:N_CONFIG + 1] == (
    "device_mask", "esb_slot", "profile", "reboot_action", "stage1_interrupt", "now")
cdef unsigned int N_STATUSES = _snapshot.N_STATUSES
for _i, _e in enumerate(EFFECTS):
    EFFECT_REQUESTS[_i] = int(_e.request)
    EFFECT_POWER_OFF[_i] = _e.power_off


def effect_table():
    """The C copy of actions.EFFECTS, as (request bits, power_off, immediate event) per
    action code, for tests/test_structure.py to compare with the Python table."""
    return tuple((EFFECT_REQUESTS[i], bool(EFFECT_POWER_OFF[i]), EFFECT_EVENT[i])
                 for i in range(N_ACTIONS))


def c_constants():
    """The C enums of this module, for the tests to compare with the Python tables."""
    return {"run_states": {"RUNNING": RUNNING, "WATCHDOG": WATCHDOG, "PAUSED": PAUSED,
                           "PRELAUNCH": PRELAUNCH, "SHUTDOWN": SHUTDOWN, "POWEROFF": POWEROFF},
            "requests": {"SHUTDOWN": REQ_SHUTDOWN, "RESET": REQ_RESET,
                         "POWERDOWN": REQ_POWERDOWN, "STOP": REQ_STOP},
            "run_stops": {"END": RUN_END, "FINISHED": RUN_FINISHED, "MAX_OPS": RUN_MAX_OPS,
                          "MAX_EVENTS": RUN_MAX_EVENTS, "ERROR": RUN_ERROR},
            "opcodes": {"OUTB": OP_OUTB, "INB": OP_INB, "WRITEB": OP_WRITEB, "READB": OP_READB,
                        "STEP": OP_STEP, "STEP_BARE": OP_STEP_BARE, "SET": OP_SET,
                        "STEP32": OP_STEP32}}


cdef inline uint32_t io_region_base(uint32_t addr) noexcept nogil:
    """First port of the region holding ``addr`` for the split (SPEC.md 5.1):
    CONFIG_ADDRESS, CONFIG_DATA, or the unclaimed space counted from port 0."""
    if PCI_CONFIG_ADDRESS <= addr < PCI_CONFIG_DATA:
        return PCI_CONFIG_ADDRESS
    if PCI_CONFIG_DATA <= addr < PCI_CONFIG_END:
        return PCI_CONFIG_DATA
    return 0


cdef inline uint32_t ones(int n) noexcept nogil:
    return 0xFFFFFFFFU >> (32 - 8 * n)


cdef inline uint64_t load_le(const uint8_t* p, int n) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(n):
        v |= (<uint64_t>p[i]) << (8 * i)
    return v


cdef inline uint64_t arg_addr(object addr, int size) except? 0xFFFFFFFFFFFFFFFF:
    cdef long long v
    if wd_small_int(addr, &v) and v >= 0:  # at most 2**60: no overflow with size
        return <uint64_t>v
    return <uint64_t>check_addr(addr, size)  # big or bad: the twin's check decides


cdef class MachineCore:
    """Routing, time, run state, requests and the event log of one Machine."""

    def __init__(self, ib700, i6300esb, ArmCounter counter not None, int esb_slot,
                 bint reboot_shutdown, int action_code):
        cdef Watchdog dev
        self.errors = []
        self.ib = ib700
        self.esb = i6300esb
        self.devices = tuple(d for d in (ib700, i6300esb) if d is not None)
        self.n_devices = len(self.devices)
        for i, d in enumerate(self.devices):
            dev = <Watchdog?>d
            dev.c_join(counter, self.errors)
            self.timers[i] = dev.c_timer()
            self.owners[i] = <PyObject*>dev
        self.counter = counter
        self.esb_slot = esb_slot
        self.reboot_shutdown = reboot_shutdown
        self.action_no = action_code
        self.log = []
        self.capture = None
        self._on_event = None

    # --- port I/O ---------------------------------------------------------------------------
    def io_write(self, port, size, value):
        """A guest OUT of ``size`` bytes to ``port``."""
        cdef unsigned int p, v
        cdef int s
        cdef int nested = guard_enter(&self.guard, self, CALL_IO_WRITE)  # 1: from a callback
        try:
            p = arg_port(port)
            s = arg_size(size)
            v = arg_value(value, s)
            self.c_io_write(p, s, v)
            if not nested:  # nested: part of the operation in progress, which ends it
                self.c_end_operation()
        finally:
            if not nested:
                guard_leave(&self.guard)

    def io_read(self, port, size):
        """A guest IN of ``size`` bytes from ``port`` (from a callback: the value at that
        instant, inside the operation in progress)."""
        cdef unsigned int p
        cdef int s
        cdef int nested = guard_enter(&self.guard, self, CALL_IO_READ)
        try:
            p = arg_port(port)
            s = arg_size(size)
            return self.c_io_read(p, s)  # a read ends no operation: it raises no request
        finally:
            if not nested:
                guard_leave(&self.guard)

    @cython.final
    cdef int c_io_write(self, uint32_t port, int size, uint32_t value) except -1 nogil:
        cdef int off = 0, n, offset, flags
        cdef uint32_t addr, base, piece
        if self.status_no >= SHUTDOWN:
            return 0
        while off < size:
            addr = port + off
            if self.ib is not None and IB700_PORT_FIRST <= addr <= IB700_PORT_LAST:
                n = size - off  # the IB700 block takes all remaining bytes as one access
                piece = (value >> (8 * off)) & ones(n)
                flags = self.ib.c_write(addr, n, piece)
                if flags:
                    self.c_access_done(self.ib, flags)
            else:
                base = io_region_base(addr)
                n = piece_size(addr - base, size - off)
                piece = (value >> (8 * off)) & ones(n)
                if base == PCI_CONFIG_ADDRESS:
                    if addr == PCI_CONFIG_ADDRESS and n == 4:
                        self.cfg_addr = piece
                elif base == PCI_CONFIG_DATA:
                    offset = self.c_config_target(addr - PCI_CONFIG_DATA)
                    if offset >= 0:
                        flags = self.esb.c_config_write(offset, n, piece)
                        if flags:
                            self.c_access_done(self.esb, flags)
            off += n
        return 0

    @cython.final
    cdef uint32_t c_io_read(self, uint32_t port, int size) noexcept nogil:
        cdef int off = 0, n, offset
        cdef uint32_t addr, base, piece, result = 0
        if self.status_no >= SHUTDOWN:
            return ones(size)
        while off < size:
            addr = port + off
            if self.ib is not None and IB700_PORT_FIRST <= addr <= IB700_PORT_LAST:
                n = size - off
                piece = ones(n)  # the IB700 reads all-ones
            else:
                base = io_region_base(addr)
                n = piece_size(addr - base, size - off)
                if base == PCI_CONFIG_ADDRESS:
                    piece = self.cfg_addr & ones(n)
                elif base == PCI_CONFIG_DATA:
                    offset = self.c_config_target(addr - PCI_CONFIG_DATA)
                    piece = (ones(n) if offset < 0 else self.esb.c_config_read(offset, n) & ones(n))
                else:
                    piece = ones(n)  # unclaimed
            result |= piece << (8 * off)
            off += n
        return result

    @cython.final
    cdef int c_config_target(self, uint32_t k) noexcept nogil:
        """Configuration mechanism #1: the i6300ESB's register offset for data port
        offset k, or -1 (bit 31 clear, another function, or no i6300ESB; SPEC.md 5.2)."""
        cdef uint32_t ca = self.cfg_addr
        if not ca & PCI_CONFIG_ADDRESS_ENABLE or self.esb is None:
            return -1
        if (ca & PCI_CONFIG_ADDRESS_BUS
                or (ca & PCI_CONFIG_ADDRESS_DEVICE) >> PCI_CONFIG_DEVICE_SHIFT != <uint32_t>self.esb_slot
                or ca & PCI_CONFIG_ADDRESS_FUNCTION):
            return -1
        return <int>((ca & PCI_CONFIG_ADDRESS_OFFSET) | k)  # bits 1:0 are OR-ed, not added

    # --- memory -------------------------------------------------------------------------------
    def mem_write(self, addr, size, value):
        """A guest store of ``size`` bytes at physical ``addr``."""
        cdef int s
        cdef uint64_t a
        cdef unsigned int v
        cdef int nested = guard_enter(&self.guard, self, CALL_MEM_WRITE)
        try:
            s = arg_size(size)
            a = arg_addr(addr, s)
            v = arg_value(value, s)
            self.c_mem_write(a, s, v)
            if not nested:
                self.c_end_operation()
        finally:
            if not nested:
                guard_leave(&self.guard)

    def mem_read(self, addr, size):
        """A guest load of ``size`` bytes at physical ``addr`` (from a callback: the value
        at that instant)."""
        cdef int s
        cdef uint64_t a
        cdef int nested = guard_enter(&self.guard, self, CALL_MEM_READ)
        try:
            s = arg_size(size)
            a = arg_addr(addr, s)
            return self.c_mem_read(a, s)
        finally:
            if not nested:
                guard_leave(&self.guard)

    @cython.final
    cdef int c_mem_write(self, uint64_t addr, int size, uint32_t value) except -1 nogil:
        cdef uint64_t bar, a
        cdef int off = 0, n, flags
        cdef bint inside
        if self.status_no >= SHUTDOWN:
            return 0
        bar = self.esb.c_bar0() if self.esb is not None else 0  # re-read per access, never cached
        while off < size:
            a = addr + off
            inside = bar != 0 and bar <= a < bar + ESB_SIZE
            n = piece_size(a - bar if inside else a, size - off)
            if inside:  # elsewhere: unassigned, the write is dropped
                flags = self.esb.c_mmio_write(<unsigned int>(a - bar), n, (value >> (8 * off)) & ones(n))
                if flags:
                    self.c_access_done(self.esb, flags)
            off += n
        return 0

    @cython.final
    cdef uint32_t c_mem_read(self, uint64_t addr, int size) noexcept nogil:
        cdef uint64_t bar, a
        cdef int off = 0, n
        cdef uint32_t result = 0
        cdef bint inside
        if self.status_no >= SHUTDOWN:
            return 0
        bar = self.esb.c_bar0() if self.esb is not None else 0
        while off < size:
            a = addr + off
            inside = bar != 0 and bar <= a < bar + ESB_SIZE
            n = piece_size(a - bar if inside else a, size - off)
            if inside:  # unassigned memory reads 0 per lane
                result |= self.esb.c_mmio_read(<unsigned int>(a - bar), n) << (8 * off)
            off += n
        return result

    @cython.final
    cdef int c_access_done(self, Watchdog dev, int flags) except -1 nogil:
        """After one device access: its line change, then what it made due at now (a
        zero-length timeout fires at the end of its access)."""
        if flags & WD_SIGNAL:
            with gil:
                dev.c_signal()
                self.has_errors = len(self.errors) > 0
        if flags & WD_DUE:
            self.c_fire_due(self.now_ns)
        return 0

    # --- time -----------------------------------------------------------------------------------
    @property
    def now(self):
        """Current virtual time, ns."""
        return self.now_ns

    @property
    def next_deadline(self):
        """The earliest device deadline in ns while running, else None; None too when it
        lies past the end of virtual time (2**63-1 ns), where it is never reached."""
        cdef uint64_t d
        if self.c_next_deadline(&d) and d <= WD_TIME_MAX_NS:
            return d
        return None

    @cython.final
    cdef bint c_next_deadline(self, uint64_t* out) noexcept nogil:
        cdef bint found = False
        cdef int i
        if self.status_no != RUNNING:
            return False
        for i in range(self.n_devices):
            if self.timers[i].armed and (not found or self.timers[i].deadline < out[0]):
                out[0] = self.timers[i].deadline
                found = True
        return found

    def advance(self, delta_ns):
        """Move time forward by ``delta_ns`` ns; returns the expiries handled."""
        guard_enter(&self.guard, self, CALL_ADVANCE)
        try:
            return self.c_run_until(arg_delta(self.now_ns, delta_ns))
        finally:
            guard_leave(&self.guard)

    def advance_to(self, t_ns):
        """Move time to ``t_ns`` ns (>= now); returns the expiries handled."""
        guard_enter(&self.guard, self, CALL_ADVANCE_TO)
        try:
            return self.c_run_until(arg_time(self.now_ns, t_ns))
        finally:
            guard_leave(&self.guard)

    @cython.final
    cdef int c_run_until(self, uint64_t t) except -1 nogil:
        cdef uint64_t before = self.expiries  # counts expiries caused by callbacks too
        if self.status_no == RUNNING:
            self.c_fire_due(t)
            if self.status_no == POWEROFF:  # QEMU exited inside the expiry: time stays there
                self.c_end_operation()
                return <int>(self.expiries - before)
        self.c_set_now(t)
        self.c_end_operation()
        return <int>(self.expiries - before)

    @cython.final
    cdef int c_fire_due(self, uint64_t t) except -1 nogil:
        """Handle every device deadline <= t, one at a time, in (deadline, arming) order."""
        cdef int i, best
        while self.status_no == RUNNING:
            best = -1
            for i in range(self.n_devices):
                if timer_due(self.timers[i], t) and (best < 0 or timer_before(self.timers[i], self.timers[best])):
                    best = i
            if best < 0:
                break
            with gil:
                self.c_expire_one(best, t)
        return 0

    @cython.final
    cdef int c_expire_one(self, int i, uint64_t t) except -1:
        cdef Watchdog dev = <Watchdog>self.owners[i]
        cdef uint64_t limit = t + 1
        cdef int j
        # whole unobservable cycles that end before anything else is due are jumped
        # in O(1) (SPEC.md 3.6)
        for j in range(self.n_devices):
            if j != i and timer_due(self.timers[j], t) and self.timers[j].deadline < limit:
                limit = self.timers[j].deadline
        dev.c_skip(limit)
        if self.timers[i].deadline > self.now_ns:
            self.c_set_now(self.timers[i].deadline)  # overdue deadlines fire at the current now
        if dev.c_expire():
            self.c_deliver(dev)
        self.has_errors = len(self.errors) > 0  # a device callback may have failed
        return 0

    @cython.final
    cdef int c_deliver(self, Watchdog dev) except -1:
        """The one place an expiry becomes its effect (SPEC.md 4.2, 4.5): the device's log
        and on_expire, then, even if that raised, WATCHDOG and the action's effect."""
        cdef int code = dev.c_action_code()
        cdef uint64_t when = self.now_ns
        cdef int req
        try:
            dev.c_notify()
        finally:
            self.expiries += 1
            self.c_log("WATCHDOG", {"action": ACTION_NAMES[code]}, when)
            if EFFECT_EVENT[code] is not None:
                self.c_log(EFFECT_EVENT[code], {}, when)
            if EFFECT_POWER_OFF[code]:
                self.requests = 0
                self.c_set_status(POWEROFF)
            else:
                req = EFFECT_REQUESTS[code]
                if req & REQ_RESET:
                    self.c_request_reset(GUEST_RESET)
                self.requests |= req & ~REQ_RESET
        return 0

    @cython.final
    cdef void c_set_now(self, uint64_t t) noexcept nogil:
        cdef int i
        self.now_ns = t
        for i in range(self.n_devices):
            self.timers[i].now = t

    # --- run state ----------------------------------------------------------------------------
    @property
    def status_code(self):
        return self.status_no

    @property
    def action(self):
        """The action in force; settable at any time, like QMP watchdog-set-action."""
        return _ACTIONS[self.action_no]

    @action.setter
    def action(self, action):
        cdef int code, i
        cdef int nested = guard_enter(&self.guard, self, CALL_ACTION)  # 1: from a callback
        try:
            code = ACTION_CODE[coerce_action(action)]
            self.action_no = code
            for i in range(self.n_devices):
                (<Watchdog>self.owners[i]).c_set_action_code(code)
        finally:
            if not nested:
                guard_leave(&self.guard)

    def pause(self):
        """Like QMP stop."""
        guard_enter(&self.guard, self, CALL_PAUSE)
        try:
            if self.status_no == RUNNING:
                self.c_set_status(PAUSED)
                self.c_log("STOP", {}, self.now_ns)
            self.c_end_operation()
        finally:
            guard_leave(&self.guard)

    def resume(self):
        """Like QMP cont."""
        guard_enter(&self.guard, self, CALL_RESUME)
        try:
            if self.status_no in (WATCHDOG, PAUSED, PRELAUNCH):
                self.c_set_status(RUNNING)
                self.c_log("RESUME", {}, self.now_ns)
                self.c_fire_due(self.now_ns)
            self.c_end_operation()
        finally:
            guard_leave(&self.guard)

    def system_reset(self):
        """Like QMP system_reset: every device's reset, at the end of the call."""
        guard_enter(&self.guard, self, CALL_SYSTEM_RESET)
        try:
            if self.status_no < SHUTDOWN:
                self.c_request_reset(HOST_RESET)
            self.c_end_operation()
        finally:
            guard_leave(&self.guard)

    @cython.final
    cdef void c_set_status(self, int status) noexcept nogil:
        cdef int i
        self.status_no = status
        for i in range(self.n_devices):
            self.timers[i].running = status == RUNNING

    @cython.final
    cdef int c_request_reset(self, dict data) except -1:
        cdef int kind = REQ_SHUTDOWN if self.reboot_shutdown else REQ_RESET  # -no-reboot
        if not self.requests & kind:
            self.requests |= kind
            self.reset_data = data
        return 0

    @cython.final
    cdef int c_end_operation(self) except -1 nogil:
        """QEMU's main loop after a command: shutdown, reset, powerdown, stop; then the
        first exception a callback raised during the operation propagates."""
        while self.requests:  # a callback's access during the processing may raise more
            with gil:
                self.c_process_requests()
        if self.has_errors:
            with gil:
                self.c_raise_errors()
        return 0

    @cython.final
    cdef int c_raise_errors(self) except -1:
        self.has_errors = False
        return raise_held(self.errors)

    @cython.final
    cdef int c_process_requests(self) except -1:
        cdef int requests = self.requests
        self.requests = 0
        if self.status_no >= SHUTDOWN:
            return 0
        if requests & REQ_SHUTDOWN:
            self.c_log("SHUTDOWN", dict(self.reset_data), self.now_ns)
            self.c_set_status(SHUTDOWN)
            return 0
        if requests & REQ_RESET:
            for dev in self.devices:
                (<Watchdog>dev).c_reset()
            self.c_log("RESET", dict(self.reset_data), self.now_ns)
            if self.status_no != RUNNING:
                self.c_set_status(PRELAUNCH)
        if requests & REQ_POWERDOWN:
            self.c_log("POWERDOWN", {}, self.now_ns)
        if requests & REQ_STOP and self.status_no == RUNNING:
            self.c_set_status(WATCHDOG)
            self.c_log("STOP", {}, self.now_ns)
        self.has_errors = len(self.errors) > 0  # a device's reset may have called on_irq
        return 0

    # --- the event log ------------------------------------------------------------------------
    @cython.final
    cdef int c_log(self, str name, dict data, uint64_t time_ns) except -1:
        entry = {"event": name, "data": data, "time_ns": time_ns}
        self.logged += 1
        self.log.append(entry)
        if self.capture is not None:
            self.capture.append(entry)
        if self._on_event is not None:
            try:
                self._on_event(entry)
            except BaseException as exc:  # held, not lost: raised at the end of the operation
                self.errors.append(exc)
                self.has_errors = True
        return 0

    @property
    def on_event(self):
        """None or a callable taking each event dict as it is logged."""
        return self._on_event

    @on_event.setter
    def on_event(self, fn):
        check_callback(fn, "on_event")
        self._on_event = fn

    @property
    def events(self):
        """The QMP-shaped event log (API.md)."""
        return self.log

    def clear_events(self):
        """Empty the event log, and the devices' own logs of WatchdogEvents."""
        cdef int nested = guard_enter(&self.guard, self, CALL_CLEAR_EVENTS)
        try:
            self.log.clear()
            for dev in self.devices:
                dev.clear_events()
        finally:
            if not nested:
                guard_leave(&self.guard)

    # --- the guard, for the front's calls (machine.py: snapshot, restore) --------------------
    def _guard_enter(self, int call):
        """Enter the guard for public call ``call`` (a _core_py.CALL_* code): True when
        entered (then _guard_leave), False when it nests; RuntimeError when refused."""
        return guard_enter(&self.guard, self, call) == 0

    def _guard_leave(self):
        guard_leave(&self.guard)

    # --- op streams -------------------------------------------------------------------------------
    def run_stream(self, bytes data not None, Py_ssize_t max_ops, Py_ssize_t max_events,
                   result):
        """Execute a binary op stream (docs/ops.md) with the GIL released, within the
        bounds (< 0: none); fills ``result`` (a machine.RunResult: ops_executed, reads,
        events, bytes_consumed, stopped) also when an exception ends the run."""
        cdef const uint8_t* buf = <const uint8_t*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef ReadBuffer reads
        cdef RunProgress progress
        reads.values = NULL
        reads.count = 0
        reads.capacity = 0
        progress.pos = 0
        progress.executed = 0
        progress.stop = RUN_ERROR
        guard_enter(&self.guard, self, CALL_RUN)
        self.capture = []
        try:
            if n > NOGIL_FROM:
                with nogil:
                    self.c_run(buf, n, max_ops, max_events, &reads, &progress)
            else:  # a short stream: releasing the GIL costs more than the run
                self.c_run(buf, n, max_ops, max_events, &reads, &progress)
        finally:
            try:
                result.ops_executed = progress.executed
                result.reads = [reads.values[i] for i in range(reads.count)]
                result.events = self.capture
                result.bytes_consumed = progress.pos
                result.stopped = _RUN_STOPS[progress.stop]
            finally:
                self.capture = None
                free(reads.values)
                guard_leave(&self.guard)

    @cython.final
    cdef int c_run(self, const uint8_t* buf, Py_ssize_t n, Py_ssize_t max_ops,
                   Py_ssize_t max_events, ReadBuffer* reads,
                   RunProgress* progress) except -1 nogil:
        cdef Py_ssize_t pos = progress.pos, need
        cdef int code, size, kind
        cdef uint64_t arg, target
        cdef uint64_t events_before = self.logged
        cdef uint32_t value
        cdef unsigned int tick = 0
        while True:
            # between two ops: every bound, and Python's signal handlers now and then
            if self.status_no >= SHUTDOWN:
                progress.stop = RUN_FINISHED
                return 0
            if pos >= n:
                break
            if max_ops >= 0 and progress.executed >= max_ops:
                progress.stop = RUN_MAX_OPS
                return 0
            if max_events >= 0 and self.logged - events_before >= <uint64_t>max_events:
                progress.stop = RUN_MAX_EVENTS
                return 0
            tick += 1
            if tick == SIGNAL_EVERY:
                tick = 0
                with gil:
                    PyErr_CheckSignals()  # Ctrl-C: KeyboardInterrupt here, between two ops
            code = buf[pos] & 0x0F
            if code == OP_STEP_BARE:
                need = 1
            elif code == OP_STEP or code == OP_SET:
                need = 9
            elif code == OP_STEP32:
                need = 5
            else:
                kind = code // 3          # 0 out, 1 in, 2 write, 3 read
                size = 1 << (code % 3)
                need = 1 + (2 if kind < 2 else 8) + (size if kind == 0 or kind == 2 else 0)
            if pos + need > n:
                break                     # a trailing partial op: not consumed
            # the op is consumed and counted before it runs: one that raises at its end
            # has still happened
            progress.pos = pos + need
            progress.executed += 1
            if code == OP_STEP_BARE:
                if not self.c_next_deadline(&target):
                    target = self.now_ns
                if target > WD_TIME_MAX_NS:
                    target = WD_TIME_MAX_NS
                self.c_run_until(target)
            elif code == OP_STEP or code == OP_SET or code == OP_STEP32:
                arg = load_le(buf + pos + 1, need - 1)
                if code == OP_SET:
                    arg &= WD_TIME_MAX_NS
                    self.c_run_until(arg if arg > self.now_ns else self.now_ns)
                else:
                    if code == OP_STEP:
                        arg &= WD_TIME_MAX_NS
                    target = self.now_ns + arg  # both < 2**63: no wrap
                    self.c_run_until(target if target < WD_TIME_MAX_NS else WD_TIME_MAX_NS)
            else:
                if kind < 2:
                    arg = load_le(buf + pos + 1, 2)
                else:
                    arg = load_le(buf + pos + 1, 8)
                    if arg > 0xFFFFFFFFFFFFFFFFULL - <uint64_t>(size - 1):
                        arg = 0xFFFFFFFFFFFFFFFFULL - <uint64_t>(size - 1)  # end within 2**64
                if kind == 0 or kind == 2:
                    value = <uint32_t>load_le(buf + pos + need - size, size)
                if kind == 0:
                    self.c_io_write(<uint32_t>arg, size, value)
                elif kind == 1:
                    push_read(reads, self.c_io_read(<uint32_t>arg, size))
                elif kind == 2:
                    self.c_mem_write(arg, size, value)
                else:
                    push_read(reads, self.c_mem_read(arg, size))
                self.c_end_operation()
            pos += need
        progress.stop = RUN_END
        return 0

    # --- snapshots in C (the front's snapshot and restore; the twin's codec is the oracle) ---
    def _snapshot_bytes(self, bytes config not None):
        """The Machine's snapshot, with the front's five configuration codes."""
        cdef Py_ssize_t size = M_SIZE, pos, n
        cdef int i
        cdef Watchdog dev
        cdef bytes out
        cdef uint8_t* p
        for i in range(self.n_devices):
            size += 4 + SNAP_HEADER + (<Watchdog>self.owners[i]).c_store(NULL) + SNAP_CRC
        out = PyBytes_FromStringAndSize(NULL, SNAP_HEADER + size + SNAP_CRC)
        p = <uint8_t*>PyBytes_AS_STRING(out) + SNAP_HEADER
        for i in range(N_CONFIG):
            p[M_CONFIG + i] = <uint8_t>config[i]
        snap_st(p + M_NOW, self.now_ns, 8)
        p[M_STATUS] = <uint8_t>self.status_no
        p[M_ACTION] = <uint8_t>self.action_no
        snap_st(p + M_CONFIG_ADDRESS, self.cfg_addr, 4)
        snap_st(p + M_COUNTER, self.counter.value, 8)
        pos = M_SIZE
        for i in range(self.n_devices):
            dev = <Watchdog>self.owners[i]
            n = dev.c_store(p + pos + 4 + SNAP_HEADER)
            snap_st(p + pos, SNAP_HEADER + n + SNAP_CRC, 4)
            snap_seal(p + pos + 4, dev.c_snap_kind(), n)
            pos += 4 + SNAP_HEADER + n + SNAP_CRC
        snap_seal(p - SNAP_HEADER, SNAP_KIND, size)
        return out

    def _restore_bytes(self, data, bytes config not None):
        """The compiled restore: 1 when ``data`` (exact bytes) was accepted and applied, 0
        when the C checks refuse it, -1 when it is not bytes (the front then runs the
        twin's codec, which words the refusal)."""
        cdef const uint8_t* p
        cdef Py_ssize_t n, length, pos, blob
        cdef int i
        cdef uint64_t now, counter
        cdef unsigned int status, action
        cdef Watchdog dev
        if type(data) is not bytes:
            return -1
        p = <const uint8_t*>PyBytes_AS_STRING(data)
        n = PyBytes_GET_SIZE(data)
        if data is self.checked and config is self.checked_config:
            return self.c_apply_snapshot(p + SNAP_HEADER)  # a fuzz loop's reset: checked before
        length = snap_open(p, n, SNAP_KIND)
        if length < M_SIZE:
            return 0
        p += SNAP_HEADER
        for i in range(N_CONFIG):
            if p[M_CONFIG + i] != <uint8_t>config[i]:
                return 0
        now = snap_ld(p + M_NOW, 8)
        status = p[M_STATUS]
        action = p[M_ACTION]
        counter = snap_ld(p + M_COUNTER, 8)
        if (now > WD_TIME_MAX_NS or status >= N_STATUSES or action >= <unsigned int>N_ACTIONS
                or counter > WD_COUNTER_MAX):
            return 0
        # the devices, in order, each framed, valid for its device and agreeing with the header
        pos = M_SIZE
        for i in range(self.n_devices):
            dev = <Watchdog>self.owners[i]
            if pos + 4 > length:
                return 0
            blob = <Py_ssize_t>snap_ld(p + pos, 4)
            pos += 4
            if blob > length - pos or snap_open(p + pos, blob, dev.c_snap_kind()) < 0:
                return 0
            if not (dev.c_load(p + pos + SNAP_HEADER, blob - SNAP_HEADER - SNAP_CRC, False)
                    and snap_timer_agrees(p + pos + SNAP_HEADER, now, action, counter)):
                return 0
            pos += blob
        if pos != length:
            return 0
        self.checked = data
        self.checked_config = config
        return self.c_apply_snapshot(p)

    @cython.final
    cdef int c_apply_snapshot(self, const uint8_t* p) noexcept:
        """Take the payload p of a snapshot _restore_bytes checked; returns 1."""
        cdef Py_ssize_t pos = M_SIZE, blob
        cdef int i
        for i in range(self.n_devices):
            blob = <Py_ssize_t>snap_ld(p + pos, 4)
            (<Watchdog>self.owners[i]).c_load(p + pos + 4 + SNAP_HEADER,
                                              blob - SNAP_HEADER - SNAP_CRC, True)
            pos += 4 + blob
        self.counter.value = snap_ld(p + M_COUNTER, 8)
        self.now_ns = snap_ld(p + M_NOW, 8)
        self.action_no = p[M_ACTION]
        self.cfg_addr = <uint32_t>snap_ld(p + M_CONFIG_ADDRESS, 4)
        self.requests = 0
        self.c_set_status(p[M_STATUS])
        return 1

    # --- state for snapshots --------------------------------------------------------------------
    def get_state(self):
        """(now, status code, action code, PCI CONFIG_ADDRESS)."""
        return self.now_ns, self.status_no, self.action_no, self.cfg_addr

    def set_state(self, uint64_t now, int status, int action_code, uint32_t config_address):
        self.now_ns = now
        self.action_no = action_code
        self.cfg_addr = config_address
        self.requests = 0
        self.c_set_status(status)


cdef int push_read(ReadBuffer* r, uint32_t value) except -1 nogil:
    cdef Py_ssize_t cap
    cdef uint32_t* grown
    if r.count == r.capacity:
        cap = r.capacity * 2 if r.capacity else 64
        grown = <uint32_t*>realloc(r.values, cap * sizeof(uint32_t))
        if grown == NULL:
            with gil:
                raise MemoryError("Machine.run: no memory for the values read")
        r.values = grown
        r.capacity = cap
    r.values[r.count] = value
    r.count += 1
    return 0
