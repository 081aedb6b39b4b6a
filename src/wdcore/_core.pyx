# cython: language_level=3
"""The shared compiled core (see _core.pxd); twin: _core_py.py."""
cimport cython
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from libc.stdint cimport uint8_t, uint64_t
from wdcore._regs cimport PCI_CONFIG_SPACE_SIZE

from wdcore import _core_py, _snapshot
from wdcore._core_py import check_config_offset, check_window_offset
from wdcore.actions import ACTION_CODE, ACTIONS, WatchdogAction, WatchdogEvent, coerce_action

cdef tuple _ACTIONS = ACTIONS
cdef object _TUPLE_NEW = tuple.__new__

cdef extern from "zlib.h":
    unsigned long crc32(unsigned long crc, const unsigned char* buf, unsigned int length) nogil

# --- snapshots in C: the envelope and the timer fields (offsets from _snapshot) -----------
cdef unsigned int N_ACTIONS = len(ACTIONS)
cdef uint64_t SNAP_MAGIC = <uint64_t>int.from_bytes(_snapshot.MAGIC, "little")
cdef unsigned int SNAP_VERSION = _snapshot.FORMAT_VERSION
_T = _snapshot.IB700_LAYOUT.offsets  # every device payload starts with these (checked below)
cdef Py_ssize_t T_NOW = _T["now"], T_ACTION = _T["action"], T_ARMED = _T["armed"]
cdef Py_ssize_t T_DEADLINE = _T["deadline"], T_SEQ = _T["seq"], T_COUNTER = _T["counter"]
assert all(_snapshot.I6300ESB_LAYOUT.offsets[k] == v for k, v in _T.items())
assert _snapshot._HEADER.size == SNAP_HEADER and _snapshot._CRC.size == SNAP_CRC


cdef Py_ssize_t snap_open(const uint8_t* p, Py_ssize_t n, int kind) noexcept nogil:
    cdef Py_ssize_t length
    if n < SNAP_HEADER + SNAP_CRC or snap_ld(p, 4) != SNAP_MAGIC:
        return -1
    if snap_ld(p + 4, 2) != SNAP_VERSION or p[6] != kind:
        return -1
    length = <Py_ssize_t>snap_ld(p + 7, 4)
    if n != SNAP_HEADER + length + SNAP_CRC:
        return -1
    if crc32(0, p, <unsigned int>(n - SNAP_CRC)) != snap_ld(p + n - SNAP_CRC, 4):
        return -1
    return length


cdef void snap_seal(uint8_t* out, int kind, Py_ssize_t length) noexcept nogil:
    snap_st(out, SNAP_MAGIC, 4)
    snap_st(out + 4, SNAP_VERSION, 2)
    out[6] = <uint8_t>kind
    snap_st(out + 7, <uint64_t>length, 4)
    snap_st(out + SNAP_HEADER + length,
            crc32(0, out, <unsigned int>(SNAP_HEADER + length)), 4)


cdef bint snap_timer_agrees(const uint8_t* p, uint64_t now, unsigned int action,
                            uint64_t counter) noexcept nogil:
    return (snap_ld(p + T_NOW, 8) == now and p[T_ACTION] == action
            and snap_ld(p + T_COUNTER, 8) == counter)


cdef bint snap_read_timer(const uint8_t* p, TimerRecord* r, uint64_t max_deadline_ns) noexcept nogil:
    r.now = snap_ld(p + T_NOW, 8)
    r.action = p[T_ACTION]
    r.armed = p[T_ARMED]
    r.deadline = snap_ld(p + T_DEADLINE, 8)
    r.seq = snap_ld(p + T_SEQ, 8)
    r.counter = snap_ld(p + T_COUNTER, 8)
    if r.now > WD_TIME_MAX_NS or r.action >= N_ACTIONS or r.armed > 1 or r.counter > WD_COUNTER_MAX:
        return False
    if r.armed:
        return r.deadline <= r.now + max_deadline_ns and r.seq < r.counter
    return r.deadline == 0 and r.seq == 0


cdef class ArmCounter:
    def __init__(self, uint64_t value=0):
        self.value = value


cdef class Watchdog:
    """What every watchdog device has (API.md "Devices"); devices add their registers."""

    KIND = "watchdog"  # the device name carried by its events

    def __init__(self, *, action=WatchdogAction.RESET, on_expire=None):
        self.action_code = ACTION_CODE[coerce_action(action)]
        self.log = []
        self.errors = []
        self.on_expire = on_expire
        self.counter = ArmCounter()
        self.timer.running = True

    # --- the C-level contract -------------------------------------------------------
    @cython.final
    cdef Timer* c_timer(self) noexcept nogil:
        return &self.timer

    @cython.final
    cdef int c_join(self, ArmCounter counter, list errors) except -1:
        if self.guard.thread != 0:
            raise RuntimeError("a device joins a Machine while one of its calls is in progress")
        self.guard.thread = WD_GUARD_OWNED
        self.counter = counter
        self.errors = errors
        return 0

    @cython.final
    cdef int c_expire(self) except -1:
        if self.timer.deadline > self.timer.now:
            self.timer.now = self.timer.deadline  # an overdue deadline fires at the current now
        if self.c_fire():
            self.expiries += 1
            return 1
        return 0

    @cython.final
    cdef int c_notify(self) except -1:
        # tuple.__new__ builds the NamedTuple without its Python-level __new__ (a frame)
        event = _TUPLE_NEW(WatchdogEvent, (self.timer.now, self.KIND, _ACTIONS[self.action_code]))
        self.log.append(event)
        if self._on_expire is not None:
            self.c_call(self._on_expire, event)
        return 0

    @cython.final
    cdef int c_call(self, object fn, object arg) except -1:
        try:
            fn(arg)
        except BaseException as exc:  # held, not lost: it propagates at the end of the call
            self.errors.append(exc)
        return 0

    @cython.final
    cdef int c_raise_errors(self) except -1:
        return raise_held(self.errors)

    @cython.final
    cdef int c_run_until(self, uint64_t t) except -1:
        cdef uint64_t before = self.expiries  # callbacks may cause more expiries: count them all
        while self.c_due(t):
            self.c_skip(t + 1)
            if self.c_expire():
                self.c_notify()
        self.timer.now = t
        return <int>(self.expiries - before)

    @cython.final
    cdef void c_store_timer(self, uint8_t* out) noexcept nogil:
        snap_st(out + T_NOW, self.timer.now, 8)
        out[T_ACTION] = <uint8_t>self.action_code
        out[T_ARMED] = 1 if self.timer.armed else 0
        snap_st(out + T_DEADLINE, self.timer.deadline if self.timer.armed else 0, 8)
        snap_st(out + T_SEQ, self.timer.seq if self.timer.armed else 0, 8)
        snap_st(out + T_COUNTER, self.counter.value, 8)

    @cython.final
    cdef void c_load_timer(self, const TimerRecord* r) noexcept nogil:
        self.timer.now = r.now
        self.action_code = <int>r.action
        self.timer.armed = r.armed != 0
        self.timer.deadline = r.deadline
        self.timer.seq = r.seq
        self.counter.value = r.counter

    @cython.final
    cdef int c_end_access(self, int flags) except -1:
        if flags & WD_SIGNAL:
            self.c_signal()
        while self.c_due(self.timer.now):  # a zero-length timeout fires at the end of its access
            if self.c_expire():
                self.c_notify()
        return 0

    # --- device hooks ---------------------------------------------------------------------
    cdef int c_fire(self) except -1:
        raise NotImplementedError

    cdef void c_skip(self, uint64_t limit) noexcept nogil:
        pass

    cdef int c_signal(self) except -1:
        return 0

    cdef int c_reset(self) except -1:
        raise NotImplementedError

    cdef int c_snap_kind(self) noexcept nogil:
        return 0  # no C codec: the twin's (the Python-level snapshot/restore fall back to it)

    cdef Py_ssize_t c_store(self, uint8_t* out) noexcept nogil:
        return 0

    cdef bint c_load(self, const uint8_t* p, Py_ssize_t n, bint apply) noexcept nogil:
        return False

    # --- the shared public surface ------------------------------------------------------------
    @property
    def now(self):
        """Current virtual time, ns."""
        return self.timer.now

    @property
    def next_deadline(self):
        """Absolute time of the next timer event in ns, or None when idle or when it lies
        past the end of virtual time (2**63-1 ns), where it is never reached."""
        if self.timer.armed and self.timer.deadline <= WD_TIME_MAX_NS:
            return self.timer.deadline
        return None

    def advance(self, delta_ns):
        """Move time forward by ``delta_ns`` ns; returns the expiries handled."""
        cdef int n
        guard_enter(&self.guard, self, CALL_ADVANCE)  # acting calls never nest: 0 or raised
        try:
            n = self.c_run_until(arg_delta(self.timer.now, delta_ns))
            self.c_raise_errors()
        finally:
            guard_leave(&self.guard)
        return n

    def advance_to(self, t_ns):
        """Move time to ``t_ns`` ns (>= now); returns the expiries handled."""
        cdef int n
        guard_enter(&self.guard, self, CALL_ADVANCE_TO)
        try:
            n = self.c_run_until(arg_time(self.timer.now, t_ns))
            self.c_raise_errors()
        finally:
            guard_leave(&self.guard)
        return n

    @property
    def on_expire(self):
        """None or a callable taking the WatchdogEvent, called at each expiry."""
        return self._on_expire

    @on_expire.setter
    def on_expire(self, fn):
        _core_py.check_callback(fn, "on_expire")
        self._on_expire = fn

    @property
    def action(self):
        return _ACTIONS[self.action_code]

    @action.setter
    def action(self, action):
        cdef int nested = guard_enter(&self.guard, self, CALL_ACTION)  # 1: from a callback
        try:
            self.action_code = ACTION_CODE[coerce_action(action)]
        finally:
            if not nested:
                guard_leave(&self.guard)

    @property
    def events(self):
        return self.log

    def clear_events(self):
        self.log.clear()

    def reset(self):
        """The device's power-on/system reset (SPEC.md)."""
        guard_enter(&self.guard, self, CALL_RESET)
        try:
            self.c_reset()
            self.c_raise_errors()
        finally:
            guard_leave(&self.guard)

    def snapshot(self):
        """The device's state as versioned, checksummed bytes (docs/snapshot.md)."""
        cdef int kind = self.c_snap_kind()
        cdef Py_ssize_t n
        cdef bytes out
        if kind == 0:
            return self._state().pack()
        n = self.c_store(NULL)
        out = PyBytes_FromStringAndSize(NULL, SNAP_HEADER + n + SNAP_CRC)
        self.c_store(<uint8_t*>PyBytes_AS_STRING(out) + SNAP_HEADER)
        snap_seal(<uint8_t*>PyBytes_AS_STRING(out), kind, n)
        return out

    def _timer_fields(self):
        """The fields every device record starts with (_snapshot.IB700State's)."""
        return {"now": self.timer.now, "action": self.action_code, "armed": self.timer.armed,
                "deadline": self.timer.deadline, "seq": self.timer.seq,
                "counter": self.counter.value}

    def _apply_timer(self, state):
        self.timer.now = state.now
        self.action_code = state.action
        self.timer.armed = state.armed
        self.timer.deadline = state.deadline
        self.timer.seq = state.seq
        self.counter.value = state.counter

    def restore(self, data):
        """Take back a snapshot; bad data is a ValueError and changes nothing."""
        cdef int done
        guard_enter(&self.guard, self, CALL_RESTORE)
        try:
            done = c_restore_device(self, data)
            if done != 1:  # refused in C (0), or not bytes (-1): the twin's codec words it
                state = self.STATE.unpack(_core_py.check_bytes(data))
                state.check_configuration(self)  # what the device was built with stays
                if done == 0:
                    raise AssertionError("a snapshot refused by the compiled checks only")
                self._apply(state)
        finally:
            guard_leave(&self.guard)

    def __reduce__(self):
        # the kind, not the class: the pickle loads in the implementation selected there
        return (_core_py.rebuild, (self.KIND, self.snapshot()))

    def __deepcopy__(self, memo):
        return _core_py.restored(type(self), self.snapshot())  # a copy keeps its implementation


cdef int c_restore_device(Watchdog dev, object data) except -2:
    """The compiled restore: 1 when ``data`` (exact bytes) was accepted and applied, 0
    when the C checks refuse it, -1 when it is not bytes or the device has no C codec."""
    cdef const uint8_t* p
    cdef Py_ssize_t n, length
    cdef int kind = dev.c_snap_kind()
    if type(data) is not bytes or kind == 0:
        return -1
    p = <const uint8_t*>PyBytes_AS_STRING(data)
    n = PyBytes_GET_SIZE(data)
    length = snap_open(p, n, kind)
    if length < 0 or not dev.c_load(p + SNAP_HEADER, length, False):
        return 0
    dev.c_load(p + SNAP_HEADER, length, True)
    return 1


cdef int guard_conflict(Guard* g, object owner, int call) except -1:
    cdef unsigned long holder = g.thread
    _core_py.guard_conflict(owner, call, g.call, holder == WD_GUARD_OWNED,
                            holder == PyThread_get_thread_ident())
    return 1  # the twin's check returned: the call nests


def c_calls():
    """The CALL_* enum, for tests/test_structure.py to compare with _core_py.CALLS."""
    return {"IO_WRITE": CALL_IO_WRITE, "IO_READ": CALL_IO_READ, "MEM_WRITE": CALL_MEM_WRITE,
            "MEM_READ": CALL_MEM_READ, "CONFIG_WRITE": CALL_CONFIG_WRITE,
            "MMIO_WRITE": CALL_MMIO_WRITE, "ADVANCE": CALL_ADVANCE, "ADVANCE_TO": CALL_ADVANCE_TO,
            "PAUSE": CALL_PAUSE, "RESUME": CALL_RESUME, "SYSTEM_RESET": CALL_SYSTEM_RESET,
            "RESET": CALL_RESET, "CLEAR_EVENTS": CALL_CLEAR_EVENTS, "ACTION": CALL_ACTION,
            "RUN": CALL_RUN, "SNAPSHOT": CALL_SNAPSHOT, "RESTORE": CALL_RESTORE}


cdef int raise_held(list errors) except -1:
    cdef object first
    if errors:
        first = errors[0]
        del errors[:]
        raise first
    return 0


cdef object as_index(object v, str name):
    return _core_py.as_int(v, name)


# Each raise_* is reached only for an argument the fast check rejected; the twin's
# check then raises the exact same error.  The trailing raise guards against the
# two checks ever disagreeing.
cdef int raise_port(object port) except -1:
    _core_py.check_port(port)
    raise AssertionError(f"port {port!r} rejected by the compiled check only")


cdef int raise_size(object size) except -1:
    _core_py.check_size(size)
    raise AssertionError(f"size {size!r} rejected by the compiled check only")


cdef int raise_value(object value, int size) except -1:
    _core_py.check_value(value, size)
    raise AssertionError(f"value {value!r} rejected by the compiled check only")


cdef int raise_delta(uint64_t now, object delta_ns) except -1:
    _core_py.check_delta(now, delta_ns)
    raise AssertionError(f"delta_ns {delta_ns!r} rejected by the compiled check only")


cdef int raise_time(uint64_t now, object t_ns) except -1:
    _core_py.check_time(now, t_ns)
    raise AssertionError(f"t_ns {t_ns!r} rejected by the compiled check only")


cdef unsigned int arg_config_offset(object offset) except? 0xFFFFFFFF:
    cdef int ovf = 0
    cdef long long o = as_ll(offset, "offset", &ovf)
    if ovf or o < 0 or o >= PCI_CONFIG_SPACE_SIZE:
        check_config_offset(offset)
        raise AssertionError(f"offset {offset!r} rejected by the compiled check only")
    return <unsigned int>o


cdef unsigned int arg_window_offset(object offset, int size, unsigned int window,
                                    str name) except? 0xFFFFFFFF:
    cdef int ovf = 0
    cdef long long o = as_ll(offset, "offset", &ovf)
    if ovf or o < 0 or o > <long long>window - size:
        check_window_offset(offset, size, window, name)
        raise AssertionError(f"offset {offset!r} rejected by the compiled check only")
    return <unsigned int>o
