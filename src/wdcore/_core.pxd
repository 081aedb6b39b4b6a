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
#
# The C-level contract (re-exported by __init__.pxd for `cimport wdcore`).  Each
# declaration below says:
#   GIL      `noexcept nogil`: callable without the GIL, cannot fail;
#            `except -1 nogil` (_machine.pxd): callable without the GIL, takes it itself
#            when Python must run, -1 with the exception set when that raised;
#            `except -1` / `except? ...` without nogil: needs the GIL (it runs Python:
#            events, callbacks, error messages), -1 (or the marked value with an
#            exception set) when something raised; from nogil code, call it inside
#            `with gil:`;
#   returns  what the value means;
#   input    what it does with bad input.  Only the arg_* checks validate (with the GIL,
#            raising the Python-level methods' exact errors); every other function
#            trusts its arguments, and what it says a caller must ensure is undefined
#            at the C level when broken.
# "internal" marks what only the core itself calls; downstream code reads it, never
# calls it.
cimport cython
from libc.stdint cimport uint8_t, uint64_t

cdef extern from "Python.h":
    bint PyLong_Check(object)
    long long PyLong_AsLongLongAndOverflow(object, int*) except? -1

cdef extern from *:
    """
    #define WD_TIME_MAX_NS 0x7FFFFFFFFFFFFFFFULL
    #define WD_COUNTER_MAX 0x8000000000000000ULL

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
    unsigned long long WD_TIME_MAX_NS   # largest virtual time, 2**63-1 ns (a constant)
    # the arming counter's ceiling, 2**63 (_snapshot.COUNTER_MAX): arming from 0 never
    # gets there; at it, the counter stays and every arming takes number 2**63-1
    unsigned long long WD_COUNTER_MAX
    # internal (the arg_* fast path).  GIL (it reads an object); never fails: 1 and *out
    # set for an exact int stored compactly (|o| < 2**30; 2**60 before Python 3.12),
    # else 0 (*out untouched).
    bint wd_small_int(object o, long long* out)

# Flags returned by a device's access methods (c_*_write); 0 means nothing to do.  A
# standalone device's caller hands a non-zero result to c_end_access (GIL); a Machine's
# bus handles them itself (MachineCore.c_access_done).
cdef enum:
    WD_DUE = 1           # a deadline is due at the end of the access: fire it at now
    WD_SIGNAL = 2        # the device has a line change to report: call c_signal (GIL)


# --- the busy guard ----------------------------------------------------------------------
# One call at a time per object (docs/design.md "Threads, callbacks, re-entry").  Every
# public call that acts enters its object's Guard first and leaves it at its end; a call
# that finds the guard taken either nests (a read, clear_events or the action, from a
# callback on the thread inside) or raises RuntimeError naming both calls.  The compiled
# check-and-set is atomic because it runs under the GIL with no Python code between.
cdef extern from "pythread.h":
    unsigned long PyThread_get_thread_ident() nogil

cdef enum:  # the public calls: positions in _core_py.CALLS (tests/test_structure.py)
    CALL_IO_WRITE, CALL_IO_READ, CALL_MEM_WRITE, CALL_MEM_READ, CALL_CONFIG_WRITE
    CALL_MMIO_WRITE, CALL_ADVANCE, CALL_ADVANCE_TO, CALL_PAUSE, CALL_RESUME
    CALL_SYSTEM_RESET, CALL_RESET, CALL_CLEAR_EVENTS, CALL_ACTION, CALL_RUN, CALL_SNAPSHOT
    CALL_RESTORE

cdef extern from *:
    """
    #define WD_GUARD_OWNED ((unsigned long)-1)
    """
    # Guard.thread of a Machine's device: its own acting calls are refused for good.
    unsigned long WD_GUARD_OWNED

cdef struct Guard:
    unsigned long thread  # ident of the thread inside a call; 0 when idle; GUARD_OWNED
    int call              # the CALL_* code of that call

# internal (guard_enter's slow path).  GIL.  Returns 1 when `call` may nest, else -1 with
# the RuntimeError set (the twin's _core_py.guard_conflict decides and words it).
cdef int guard_conflict(Guard* g, object owner, int call) except -1

# Enter `owner`'s guard `g` for public call `call` (a CALL_* code).  GIL.  Returns 0:
# entered, call guard_leave(g) at the end (also on error); 1: the call nests, do not
# leave; -1 with RuntimeError set: refused, nothing done.
cdef inline int guard_enter(Guard* g, object owner, int call) except -1:
    if g.thread != 0:
        return guard_conflict(g, owner, call)
    g.thread = PyThread_get_thread_ident()
    g.call = call
    return 0

# Leave a guard entered with guard_enter's 0.  nogil, never fails.
cdef inline void guard_leave(Guard* g) noexcept nogil:
    g.thread = 0


# --- snapshots in C (docs/snapshot.md) ------------------------------------------------
# The compiled core reads and writes snapshots itself; the twin's codec (_snapshot.py)
# is the oracle, and the one that words every refusal: when the C checks refuse bytes,
# the Python-level restore runs the twin's codec on them, which raises its ValueError.
# Field offsets come from _snapshot's layouts at import (Layout.offsets), never spelled.
cdef enum:
    SNAP_HEADER = 11    # magic (4), version (u16), kind (u8), payload length (u32)
    SNAP_CRC = 4        # zlib's crc32 of everything before it (u32)

# The timer fields every device payload starts with (_snapshot.DeviceState), as stored.
cdef struct TimerRecord:
    uint64_t now
    uint64_t deadline
    uint64_t seq
    uint64_t counter
    unsigned int action
    unsigned int armed   # the stored byte: 0 or 1 when valid

# The payload length of snapshot p[0:n] of `kind` when its envelope is valid (magic,
# version, kind, length, checksum), else -1; the payload is at p + SNAP_HEADER.  nogil,
# never fails (p holds n bytes).
cdef Py_ssize_t snap_open(const uint8_t* p, Py_ssize_t n, int kind) noexcept nogil
# Write the envelope around a payload of `length` bytes already at out + SNAP_HEADER
# (out holds SNAP_HEADER + length + SNAP_CRC bytes).  nogil, never fails.
cdef void snap_seal(uint8_t* out, int kind, Py_ssize_t length) noexcept nogil
# Read the timer fields at the start of a device payload p (>= the timer fields' size)
# into *r; returns 1 when they pass the shared checks (time, action, flag, counter bound,
# an armed deadline at most max_deadline_ns ahead with an earlier arming number, a
# disarmed one all zero), else 0.  nogil, never fails.
cdef bint snap_read_timer(const uint8_t* p, TimerRecord* r, uint64_t max_deadline_ns) noexcept nogil
# Whether device payload p's timer fields hold this time, action and arming counter (a
# Machine's header and its devices agree).  nogil, never fails.
cdef bint snap_timer_agrees(const uint8_t* p, uint64_t now, unsigned int action,
                            uint64_t counter) noexcept nogil
# Little-endian loads and stores of n <= 8 bytes (any alignment).  nogil, never fail.
cdef extern from *:
    """
    #include <string.h>
    static inline uint64_t wd_snap_ld(const uint8_t *p, int n) {
        uint64_t v = 0;
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(&v, p, (size_t)n);
    #else
        for (int i = 0; i < n; i++) v |= (uint64_t)p[i] << (8 * i);
    #endif
        return v;
    }
    static inline void wd_snap_st(uint8_t *p, uint64_t v, int n) {
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
        memcpy(p, &v, (size_t)n);
    #else
        for (int i = 0; i < n; i++) p[i] = (uint8_t)(v >> (8 * i));
    #endif
    }
    """
    uint64_t snap_ld "wd_snap_ld"(const uint8_t* p, int n) noexcept nogil
    void snap_st "wd_snap_st"(uint8_t* p, uint64_t v, int n) noexcept nogil


cdef class ArmCounter:
    # Source of arming sequence numbers; shared by the devices of one Machine so
    # that equal deadlines fire in the order they were armed (SPEC.md 1.4).
    # The next arming number (a count, not a time); every arming takes it and adds 1.
    # Read it freely (nogil); a host never writes it (restore() does).
    cdef public uint64_t value


# One device's deadline and its view of time; plain C data, read without the GIL.
# Who writes it: the device's register logic (deadline, seq, armed, through c_arm and
# c_disarm); the clock's owner (`now`, and `running`).  The clock's owner is the
# device's own c_run_until when it stands alone, its MachineCore when it is in one.
# A standalone device's host may also move `now` forward itself, without the GIL,
# when nothing is due by the new time: `if not timer_due(t, when): t.now = when` is
# exactly what c_run_until(when) does then (when >= now, when <= WD_TIME_MAX_NS).
cdef struct Timer:
    uint64_t now          # current virtual time, ns
    uint64_t deadline     # absolute ns; meaningful only while armed
    uint64_t seq          # arming number of deadline; 0 when disarmed
    bint armed            # a deadline is set
    bint running          # timers run; False while the owning Machine is stopped


# nogil, never fails (t must point to a live Timer).  Returns 1 when the timer fires by
# `when` (virtual ns): running, armed and deadline <= when; else 0.
cdef inline bint timer_due(const Timer* t, uint64_t when) noexcept nogil:
    """Whether the timer fires by ``when``."""
    return t.running and t.armed and t.deadline <= when


# nogil, never fails (a, b live Timers, both due).  Returns 1 when `a` fires before `b`:
# the earlier deadline, or on equal deadlines the lower arming number; else 0.
cdef inline bint timer_before(const Timer* a, const Timer* b) noexcept nogil:
    """Whether ``a`` fires before ``b`` when both are due: QEMU's FIFO order of equal
    deadlines, by arming number."""
    return a.deadline < b.deadline or (a.deadline == b.deadline and a.seq < b.seq)


cdef class Watchdog:
    # The base of every device.  A device adds its registers and overrides the hooks
    # c_fire, c_skip, c_reset and c_signal; everything else is here, once.
    # Fields: read them freely (the C ones without the GIL).  A host writes none of them
    # at the C level but a standalone device's timer.now (as Timer says); the Python API
    # sets the rest (action, on_expire, restore).
    cdef Timer timer              # the device's deadline and its view of time
    cdef ArmCounter counter       # arming sequence source (a Machine's, when in one)
    cdef int action_code          # index into actions.ACTIONS, carried by expiry events
    cdef list log                 # WatchdogEvent log (the ``events`` property); GIL
    cdef uint64_t expiries        # WatchdogEvents produced so far (a count; advance's return value)
    cdef object _on_expire        # None or callable(WatchdogEvent) (the on_expire property); GIL
    cdef Guard guard              # its public calls in progress (owned once in a Machine)
    cdef list errors              # exceptions from this device's callbacks, held until the end
                                  # of the host call that ran them (a Machine's list, when in
                                  # one): a failing callback never cuts an expiry short; GIL

    # --- the C-level contract -------------------------------------------------------------
    # The device's own primitives (its register logic calls them; a host changes a
    # deadline only through the access methods).  nogil, never fail.
    # c_arm: set the deadline duration_ns (virtual ns) from now with the next arming
    # number.  now + duration_ns must fit in a uint64_t: a register value gives at most
    # about 2**40 ns, and a deadline past WD_TIME_MAX_NS is never reached.
    # (inline: compiled into each device module, no call)
    @cython.final
    cdef inline void c_arm(self, uint64_t duration_ns) noexcept nogil:
        self.timer.armed = True
        self.timer.deadline = self.timer.now + duration_ns
        if self.counter.value < WD_COUNTER_MAX:
            self.timer.seq = self.counter.value
            self.counter.value += 1
        else:  # saturated (only a made-up snapshot gets here): the order becomes the devices'
            self.timer.seq = WD_COUNTER_MAX - 1
    # c_disarm: no deadline (deadline and seq back to 0).
    @cython.final
    cdef inline void c_disarm(self) noexcept nogil:
        self.timer.armed = False
        self.timer.deadline = 0
        self.timer.seq = 0
    # nogil, never fails.  Returns 1 when the deadline fires by `when` (virtual ns; any
    # value): armed, running, deadline <= when; else 0.  Same as timer_due(c_timer(), when).
    @cython.final
    cdef inline bint c_due(self, uint64_t when) noexcept nogil:
        return timer_due(&self.timer, when)
    # The device's Timer, for a Machine's timer list: the Machine reads `armed` and
    # `deadline` (and uses timer_due, timer_before) and writes only `now` (its clock) and
    # `running` (its run state).  nogil, never fails; the pointer (never NULL) is valid
    # while the device lives, so the caller holds a reference to the device.
    @cython.final
    cdef Timer* c_timer(self) noexcept nogil
    # The action code in force (an index into actions.ACTIONS), for a Machine's delivery.
    # nogil, never fails.
    @cython.final
    cdef inline int c_action_code(self) noexcept nogil:
        return self.action_code
    # internal (a Machine's action).  Set the action in force by code (an index into
    # actions.ACTIONS; the caller ensures it is one).  nogil, never fails.
    @cython.final
    cdef inline void c_set_action_code(self, int code) noexcept nogil:
        self.action_code = code
    # Call a host callback fn(arg); an exception it raises is kept in `errors` (the first
    # propagates at the end of the host call, after the operation completed).  GIL.
    @cython.final
    cdef int c_call(self, object fn, object arg) except -1
    # A standalone device's end of a host call: raise the first kept exception, if any.
    @cython.final
    cdef int c_raise_errors(self) except -1
    # internal (MachineCore's constructor).  The device becomes a Machine's: it takes the
    # Machine's arming counter (not None) and error list, and its guard is owned for good
    # (its own acting calls raise RuntimeError).  GIL; -1 with RuntimeError when one of
    # its calls is in progress.
    @cython.final
    cdef int c_join(self, ArmCounter counter, list errors) except -1
    # internal (c_run_until, c_end_access, a Machine's timer list).  Reach the current
    # deadline: now moves to it unless overdue, c_fire acts.  Returns 1 for an expiry
    # event (then the caller reports it: c_notify, and a Machine's effect), 0 when the
    # deadline was internal (a stage change), -1 when on_irq raised.  Needs the GIL: a
    # device hook may call back into Python (an interrupt line).  The caller ensures
    # the deadline is due (c_due of the time being reached), after c_skip.
    @cython.final
    cdef int c_expire(self) except -1
    # internal (after c_expire returned 1).  Report the expiry just handled: append the
    # WatchdogEvent at now, call on_expire.  Needs the GIL; returns 0, or -1 with
    # on_expire's exception set (the event is already in the log).
    @cython.final
    cdef int c_notify(self) except -1
    # A standalone device's advance (advance_to(t) without the argument check): every
    # deadline <= t (virtual ns) in order, each expiry logged and passed to on_expire,
    # then now = t.  Returns the expiries handled (>= 0), or -1 with on_expire's or
    # on_irq's exception set (time stays at that expiry).  Needs the GIL.  The caller
    # ensures now <= t <= WD_TIME_MAX_NS (arg_time / arg_delta check it).  Not for a
    # device in a Machine: the Machine owns its time (MachineCore.c_run_until).
    @cython.final
    cdef int c_run_until(self, uint64_t t) except -1
    # Snapshots in C (the Python-level snapshot/restore use them; see "snapshots in C").
    # The timer fields: write them at out (a payload's start; a disarmed timer as zeros)
    # / take a record snap_read_timer accepted.  nogil, never fail.
    @cython.final
    cdef void c_store_timer(self, uint8_t* out) noexcept nogil
    @cython.final
    cdef void c_load_timer(self, const TimerRecord* r) noexcept nogil
    # A standalone device after an access that returned non-zero `flags` (WD_DUE,
    # WD_SIGNAL): the line change (on_irq), then what is due at now (a zero-length
    # timeout fires at the end of its access).  Returns 0, or -1 with a callback's
    # exception set.  Needs the GIL.  Any flags value is safe; 0 does nothing.  Not for a
    # device in a Machine: its bus does this (MachineCore.c_access_done).
    @cython.final
    cdef int c_end_access(self, int flags) except -1

    # --- device hooks -------------------------------------------------------------------
    # What each device overrides.  A host calls c_reset; the others are internal.
    # internal (c_expire).  What reaching the deadline does to the device's registers:
    # returns 1 = an expiry event, 0 = internal; -1 when on_irq raised.  Needs the GIL.
    cdef int c_fire(self) except -1
    # internal (before c_expire).  Jump whole cycles that end before `limit` (virtual ns)
    # and nobody can observe (O(1)); nothing when there are none.  nogil, never fails.
    cdef void c_skip(self, uint64_t limit) noexcept nogil
    # Report the line change an access flagged with WD_SIGNAL: call on_irq with the
    # line's level.  Returns 0, or -1 with on_irq's exception set.  Needs the GIL.
    # c_end_access does it for a standalone device, the bus for a Machine's.
    cdef int c_signal(self) except -1
    # The device's snapshot kind (_snapshot.KIND_*), 0 when it has no C codec.  nogil.
    cdef int c_snap_kind(self) noexcept nogil
    # Write the device's payload at out (None: only count); returns its length in bytes.
    # nogil, never fails (out holds that many bytes).
    cdef Py_ssize_t c_store(self, uint8_t* out) noexcept nogil
    # Without `apply`: check the payload p[0:n] of a snapshot of this kind: 1 when restore
    # accepts it (for this device: a standalone one's configuration included), else 0.
    # With `apply`: take a payload that check accepted (the caller ensures it; nothing is
    # checked again), returning 1.  nogil, never fails.
    cdef bint c_load(self, const uint8_t* p, Py_ssize_t n, bint apply) noexcept nogil
    # The device's system reset (the Python-level reset()).  Returns 0, or -1 with
    # on_irq's exception set (the line falling).  Needs the GIL.  On a Machine's device,
    # use the Machine's system_reset instead: it resets every device at the end of the
    # operation and logs RESET.
    cdef int c_reset(self) except -1


# --- host-argument checks --------------------------------------------------------------
# They turn Python objects into the C arguments above, raising the Python-level methods'
# exact TypeError / ValueError for anything else.  All need the GIL.
# operator.index(v) (the object), or NULL with a TypeError naming `name`.
# GIL: raise the first exception held in `errors` (a callback's), emptying the list;
# 0 when it is empty.  The end of a host call, for a device and for a Machine.
cdef int raise_held(list errors) except -1

cdef object as_index(object v, str name)
# internal (the arg_* slow path): raise the twin's error for a rejected argument;
# always return -1 with an exception set.
cdef int raise_port(object port) except -1
cdef int raise_size(object size) except -1
cdef int raise_value(object value, int size) except -1
cdef int raise_delta(uint64_t now, object delta_ns) except -1
cdef int raise_time(uint64_t now, object t_ns) except -1


# internal.  GIL.  v as a C long long; *ovf != 0 (result meaningless) when it does not
# fit; TypeError (-1) when v is not an int.
cdef inline long long as_ll(object v, str name, int* ovf) except? -1:
    """v as a C long long; *ovf != 0 when it does not fit.  Non-ints: TypeError."""
    cdef long long r
    if wd_small_int(v, &r):
        return r
    if not PyLong_Check(v):
        v = as_index(v, name)
    return PyLong_AsLongLongAndOverflow(v, ovf)


# An I/O port: returns 0..0xFFFF, else 0xFFFFFFFF with TypeError/ValueError.  GIL.
cdef inline unsigned int arg_port(object port) except? 0xFFFFFFFF:
    cdef int ovf = 0
    cdef long long p = as_ll(port, "port", &ovf)
    if ovf or p < 0 or p > 0xFFFF:
        raise_port(port)
    return <unsigned int>p


# An access size in bytes: returns 1, 2 or 4, else -1 with TypeError/ValueError.  GIL.
cdef inline int arg_size(object size) except -1:
    cdef int ovf = 0
    cdef long long s = as_ll(size, "size", &ovf)
    if ovf or (s != 1 and s != 2 and s != 4):
        raise_size(size)
    return <int>s


# A value for a `size`-byte access (size in {1, 2, 4}, checked first): returns
# 0..2**(8*size)-1, else 0xFFFFFFFF with TypeError/ValueError.  GIL.
cdef inline unsigned int arg_value(object value, int size) except? 0xFFFFFFFF:
    cdef int ovf = 0
    cdef long long v = as_ll(value, "value", &ovf)
    if ovf or v < 0 or (v >> (8 * size)) != 0:
        raise_value(value, size)
    return <unsigned int>v


# A step of time: returns now + delta_ns (virtual ns, <= WD_TIME_MAX_NS), a valid
# c_run_until target; else 2**64-1 with TypeError/ValueError.  GIL.
cdef inline uint64_t arg_delta(uint64_t now, object delta_ns) except? 0xFFFFFFFFFFFFFFFF:
    """The absolute target time now + delta_ns, validated."""
    cdef int ovf = 0
    cdef long long d = as_ll(delta_ns, "delta_ns", &ovf)
    if ovf or d < 0 or <uint64_t>d > WD_TIME_MAX_NS - now:
        raise_delta(now, delta_ns)
    return now + <uint64_t>d


# An absolute time: returns t_ns (virtual ns) when now <= t_ns <= WD_TIME_MAX_NS, a
# valid c_run_until target; else 2**64-1 with TypeError/ValueError.  GIL.
cdef inline uint64_t arg_time(uint64_t now, object t_ns) except? 0xFFFFFFFFFFFFFFFF:
    cdef int ovf = 0
    cdef long long t = as_ll(t_ns, "t_ns", &ovf)
    if ovf or t < 0 or <uint64_t>t < now:
        raise_time(now, t_ns)
    return <uint64_t>t


# A PCI configuration offset: returns 0..0xff, else 0xFFFFFFFF with
# TypeError/ValueError.  GIL.
cdef unsigned int arg_config_offset(object offset) except? 0xFFFFFFFF
# The offset of a `size`-byte access (size checked first) inside a `window`-byte register
# block called `name` (for the message; ESB_SIZE and "BAR0" for the i6300ESB): returns
# 0..window-size, else 0xFFFFFFFF with TypeError/ValueError.  GIL.
cdef unsigned int arg_window_offset(object offset, int size, unsigned int window,
                                    str name) except? 0xFFFFFFFF


# nogil, never fails.  Returns 1, 2 or 4: the size in bytes of the next piece of an
# access at `offset` (bytes into its region) with `left` bytes to go.  The caller
# ensures left >= 1 (left == 0 is undefined: it may not return).
cdef inline int piece_size(uint64_t offset, uint64_t left) noexcept nogil:
    """QEMU's access split (SPEC.md 3.5, 5.1): the largest power of two <= left (at most
    4) that divides offset (0 divides all).  Twin: _core_py.piece_size."""
    cdef int n = 4
    while <uint64_t>n > left or (offset & <uint64_t>(n - 1)):
        n >>= 1
    return n
