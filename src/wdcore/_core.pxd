# The shared compiled core: what every watchdog has, written once (twin: _core_py.py).
#
#   - fast host-argument checks (the slow path raises through the twin's checks, so both
#     implementations give the same messages);
#   - ArmCounter, the arming numbers a Machine's devices share (SPEC.md 1.4);
#   - piece_size, QEMU's split of an access into aligned pieces (SPEC.md 3.5, 5.1);
#   - Timer, one device's deadline, with the functions a Machine's timer list uses;
#   - Watchdog, the base class of every device.
#
# Units: every time is virtual ns in a uint64_t, at most WD_TIME_MAX_NS (2**63-1).
cimport cython
from libc.stdint cimport uint64_t

cdef extern from "Python.h":
    bint PyLong_Check(object)
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1

cdef extern from *:
    """
    #define WD_TIME_MAX_NS 0x7FFFFFFFFFFFFFFFULL

    /* Fast read of an exact int small enough for a port, size or 32-bit value:
       returns 1 and stores it, or 0 when the general path must decide. */
    static inline int wd_small_int(PyObject *o, long long *out) {
        if (!PyLong_CheckExact(o)) return 0;
    #if PY_VERSION_HEX >= 0x030C0000
        if (!PyUnstable_Long_IsCompact((PyLongObject *)o)) return 0;
        *out = (long long)PyUnstable_Long_CompactValue((PyLongObject *)o);
        return 1;
    #else
        const digit *d = ((PyLongObject *)o)->ob_digit;
        switch (Py_SIZE(o)) {
        case 0: *out = 0; return 1;
        case 1: *out = (long long)d[0]; return 1;
        case 2: *out = (long long)d[0] | ((long long)d[1] << PyLong_SHIFT); return 1;
        case -1: *out = -(long long)d[0]; return 1;
        default: return 0;
        }
    #endif
    }
    """
    unsigned long long WD_TIME_MAX_NS   # largest virtual time, 2**63-1 ns
    bint wd_small_int(object o, long long* out)

# Flags returned by a device's access methods (c_*_write); 0 means nothing to do.
cdef enum:
    WD_DUE = 1           # a deadline is due at the end of the access: fire it at now
    WD_SIGNAL = 2        # the device has a line change to report: call c_signal (GIL)


cdef class ArmCounter:
    # Source of arming sequence numbers; shared by the devices of one Machine so
    # that equal deadlines fire in the order they were armed (SPEC.md 1.4).
    cdef public uint64_t value


cdef struct Timer:
    uint64_t now          # current virtual time, ns
    uint64_t deadline     # absolute ns; meaningful only while armed
    uint64_t seq          # arming number of deadline; 0 when disarmed
    bint armed            # a deadline is set
    bint running          # timers run; False while the owning Machine is stopped


cdef inline bint timer_due(const Timer* t, uint64_t when) noexcept nogil:
    """Whether the timer fires by ``when``."""
    return t.running and t.armed and t.deadline <= when


cdef inline bint timer_before(const Timer* a, const Timer* b) noexcept nogil:
    """Whether ``a`` fires before ``b`` when both are due: QEMU's FIFO order of equal
    deadlines, by arming number."""
    return a.deadline < b.deadline or (a.deadline == b.deadline and a.seq < b.seq)


cdef class Watchdog:
    # The base of every device.  A device adds its registers and overrides the hooks
    # c_fire, c_skip, c_reset and c_signal; everything else is here, once.
    cdef Timer timer              # the device's deadline and its view of time
    cdef ArmCounter counter       # arming sequence source (a Machine's, when in one)
    cdef int action_code          # index into actions.ACTIONS, carried by expiry events
    cdef list log                 # WatchdogEvent log (the ``events`` property)
    cdef uint64_t expiries        # WatchdogEvents produced so far (advance's return value)
    cdef public object on_expire  # None or callable(WatchdogEvent)

    # --- the C-level contract; none of these fails on any input -------------------------
    # Set the deadline duration_ns from now with the next arming number.
    # (inline: compiled into each device module, no call)
    @cython.final
    cdef inline void c_arm(self, uint64_t duration_ns) noexcept nogil:
        self.timer.armed = True
        self.timer.deadline = self.timer.now + duration_ns
        self.timer.seq = self.counter.value
        self.counter.value += 1
    @cython.final
    cdef inline void c_disarm(self) noexcept nogil:
        self.timer.armed = False
        self.timer.deadline = 0
        self.timer.seq = 0
    # Whether the deadline fires by `when` (armed, running, deadline <= when).
    @cython.final
    cdef inline bint c_due(self, uint64_t when) noexcept nogil:
        return timer_due(&self.timer, when)
    # The device's Timer, for a Machine's timer list: the Machine reads `armed` and
    # `deadline` (and uses timer_due, timer_before) and writes only `now` (its clock) and
    # `running` (its run state).  Valid while the device lives.
    @cython.final
    cdef Timer* c_timer(self) noexcept nogil
    # The action code in force (an index into actions.ACTIONS), for a Machine's delivery.
    @cython.final
    cdef inline int c_action_code(self) noexcept nogil:
        return self.action_code
    # Take a Machine's arming counter.  Needs the GIL (a reference changes).
    @cython.final
    cdef void c_share_counter(self, ArmCounter counter)
    # Reach the current deadline: now moves to it unless overdue, c_fire acts.  Returns
    # 1 for an expiry event (then the caller reports it: c_notify, and a Machine's
    # effect), 0 when the deadline was internal (a stage change).  Needs the GIL: a
    # device hook may call back into Python (an interrupt line).
    @cython.final
    cdef int c_expire(self) except -1
    # Report the expiry just handled: append the WatchdogEvent, call on_expire (whose
    # exception propagates).  Needs the GIL.
    @cython.final
    cdef int c_notify(self) except -1
    # A standalone device's advance: every deadline <= t in order, then now = t.
    # Returns the expiries handled.  Needs the GIL.
    @cython.final
    cdef int c_run_until(self, uint64_t t) except -1
    # A standalone device after an access that returned `flags`.  Needs the GIL.
    @cython.final
    cdef int c_end_access(self, int flags) except -1

    # --- device hooks -------------------------------------------------------------------
    # What reaching the deadline does to the device's registers; 1 = an expiry event.
    cdef int c_fire(self) except -1
    # Jump whole cycles that end before `limit` and nobody can observe (O(1)).
    cdef void c_skip(self, uint64_t limit) noexcept nogil
    # Report the line change an access flagged with WD_SIGNAL.
    cdef int c_signal(self) except -1
    # The device's system reset.
    cdef int c_reset(self) except -1


cdef object as_index(object v, str name)          # operator.index or a TypeError naming `name`
cdef int raise_port(object port) except -1
cdef int raise_size(object size) except -1
cdef int raise_value(object value, int size) except -1
cdef int raise_delta(uint64_t now, object delta_ns) except -1
cdef int raise_time(uint64_t now, object t_ns) except -1


cdef inline long long as_ll(object v, str name, int* ovf) except? -1:
    """v as a C long long; *ovf != 0 when it does not fit.  Non-ints: TypeError."""
    cdef long long r
    if wd_small_int(v, &r):
        return r
    if not PyLong_Check(v):
        v = as_index(v, name)
    return PyLong_AsLongLongAndOverflow(v, ovf)


cdef inline unsigned int arg_port(object port) except? 0xFFFFFFFF:
    cdef int ovf = 0
    cdef long long p = as_ll(port, "port", &ovf)
    if ovf or p < 0 or p > 0xFFFF:
        raise_port(port)
    return <unsigned int>p


cdef inline int arg_size(object size) except -1:
    cdef int ovf = 0
    cdef long long s = as_ll(size, "size", &ovf)
    if ovf or (s != 1 and s != 2 and s != 4):
        raise_size(size)
    return <int>s


cdef inline unsigned int arg_value(object value, int size) except? 0xFFFFFFFF:
    cdef int ovf = 0
    cdef long long v = as_ll(value, "value", &ovf)
    if ovf or v < 0 or (v >> (8 * size)) != 0:
        raise_value(value, size)
    return <unsigned int>v


cdef inline uint64_t arg_delta(uint64_t now, object delta_ns) except? 0xFFFFFFFFFFFFFFFF:
    """The absolute target time now + delta_ns, validated."""
    cdef int ovf = 0
    cdef long long d = as_ll(delta_ns, "delta_ns", &ovf)
    if ovf or d < 0 or <uint64_t>d > WD_TIME_MAX_NS - now:
        raise_delta(now, delta_ns)
    return now + <uint64_t>d


cdef inline uint64_t arg_time(uint64_t now, object t_ns) except? 0xFFFFFFFFFFFFFFFF:
    cdef int ovf = 0
    cdef long long t = as_ll(t_ns, "t_ns", &ovf)
    if ovf or t < 0 or <uint64_t>t < now:
        raise_time(now, t_ns)
    return <uint64_t>t


cdef unsigned int arg_config_offset(object offset) except? 0xFFFFFFFF   # 0..0xff
# offset of a size-byte access inside a window-byte register block called `name`
cdef unsigned int arg_window_offset(object offset, int size, unsigned int window,
                                    str name) except? 0xFFFFFFFF


cdef inline int piece_size(uint64_t offset, uint64_t left) noexcept nogil:
    """QEMU's access split (SPEC.md 3.5, 5.1): the largest power of two <= left (at most
    4) that divides offset (0 divides all).  Twin: _core_py.piece_size."""
    cdef int n = 4
    while <uint64_t>n > left or (offset & <uint64_t>(n - 1)):
        n >>= 1
    return n
