# cython: language_level=3
"""The IB700, compiled (SPEC.md 2).  Twin: _ib700_py.py."""
cimport cython
from libc.stdint cimport uint64_t
from wdcore._core cimport (ArmCounter, arg_delta, arg_port, arg_size, arg_time, arg_value)

from wdcore import _snapshot
from wdcore._args import check_bytes
from wdcore.actions import ACTION_CODE, ACTIONS, WatchdogEvent, coerce_action, deliver
from wdcore.actions import WatchdogAction

cdef enum:
    IB700_PORT_FIRST = 0x441   # 0x441/0x442: stop
    IB700_STOP_LAST = 0x442
    IB700_START = 0x443        # 0x443/0x444: (re)start with the timeout index
    IB700_PORT_LAST = 0x444

# Timeout per index (low nibble of the start write): 30 - 2*index seconds.
cdef uint64_t TIMEOUT_NS[16]
for _i in range(16):
    TIMEOUT_NS[_i] = (30 - 2 * _i) * 1000000000ULL

cdef tuple _ACTIONS = ACTIONS


@cython.final
cdef class IB700:
    """iBase IB700 watchdog (QEMU ``ib700``)."""

    def __init__(self, *, action=WatchdogAction.RESET, on_expire=None):
        self.action_code = ACTION_CODE[coerce_action(action)]
        self.on_expire = on_expire
        self._events = []
        self.counter = ArmCounter()
        self._timers_on = True
        self._sink = None

    # --- guest side -----------------------------------------------------------------
    def io_write(self, port, size, value):
        cdef unsigned int p = arg_port(port)
        cdef int s = arg_size(size)
        cdef unsigned int v = arg_value(value, s)
        if self.c_write(p, s, v):
            self.c_expire()  # a zero timeout fires at the end of the access

    def io_read(self, port, size):
        arg_port(port)
        cdef int s = arg_size(size)
        return (<uint64_t>1 << (8 * s)) - 1  # all-ones of the width, no side effect

    cdef int c_write(self, unsigned int port, int size, unsigned int value) noexcept nogil:
        if size == 4 or port < IB700_PORT_FIRST or port > IB700_PORT_LAST:
            return 0  # dwords reach no handler; other ports are not ours
        self.c_write_byte(port, value & 0xFF)
        if size == 2 and (port == IB700_PORT_FIRST or port == IB700_START):
            self.c_write_byte(port + 1, value >> 8)  # 0x442/0x444 words: high byte dropped
        return self.armed and self.deadline_ns <= self.now_ns and self._timers_on

    cdef void c_write_byte(self, unsigned int port, unsigned int byte) noexcept nogil:
        if port <= IB700_STOP_LAST:
            self.armed = False
            self.deadline_ns = 0
            self.seq = 0
        else:
            self.armed = True
            self.deadline_ns = self.now_ns + TIMEOUT_NS[byte & 0x0F]
            self.seq = self.counter.value
            self.counter.value += 1

    # --- time -----------------------------------------------------------------------
    @property
    def now(self):
        return self.now_ns

    @property
    def next_deadline(self):
        return self.deadline_ns if self.armed else None

    def advance(self, delta_ns):
        return self.c_run_until(arg_delta(self.now_ns, delta_ns))

    def advance_to(self, t_ns):
        return self.c_run_until(arg_time(self.now_ns, t_ns))

    cdef int c_run_until(self, uint64_t t) except -1:
        cdef uint64_t before = self.expiries  # callbacks may cause more expiries: count them all
        while self._timers_on and self.armed and self.deadline_ns <= t:
            self.c_expire()
        self.now_ns = t
        return <int>(self.expiries - before)

    cdef int c_expire(self) except -1:
        if self.deadline_ns > self.now_ns:
            self.now_ns = self.deadline_ns  # an overdue deadline fires at the current now
        self.armed = False
        self.deadline_ns = 0
        self.seq = 0
        self.expiries += 1
        deliver(WatchdogEvent(self.now_ns, "ib700", _ACTIONS[self.action_code]), self._events, self.on_expire, self._sink)
        return 1

    # --- Machine hook (not public API; the compiled Machine core uses the c_* level) ---
    def _share_counter(self, ArmCounter counter not None):
        self.counter = counter

    # --- configuration, events ----------------------------------------------------------
    @property
    def action(self):
        return _ACTIONS[self.action_code]

    @action.setter
    def action(self, action):
        self.action_code = ACTION_CODE[coerce_action(action)]

    @property
    def events(self):
        return self._events

    def clear_events(self):
        self._events.clear()

    # --- reset, snapshot ------------------------------------------------------------------
    def reset(self):
        self.armed = False
        self.deadline_ns = 0
        self.seq = 0

    def snapshot(self):
        return _snapshot.pack_ib700(self.now_ns, self.action_code, self.armed,
                                    self.deadline_ns, self.seq, self.counter.value)

    def restore(self, data):
        self._apply(_snapshot.unpack_ib700(check_bytes(data)))

    def _apply(self, fields):
        now, action, armed, deadline, seq, counter = fields
        self.now_ns = now
        self.action_code = action
        self.armed = armed
        self.deadline_ns = deadline
        self.seq = seq
        self.counter.value = counter

    def __reduce__(self):
        return (_from_snapshot, (self.snapshot(),))

    def __repr__(self):
        armed = f"deadline={self.deadline_ns}" if self.armed else "disarmed"
        return f"<IB700 (compiled) now={self.now_ns} {armed} action={_ACTIONS[self.action_code].value}>"


def _from_snapshot(data):
    dev = IB700()
    dev.restore(data)
    return dev


@cython.final
cdef class CallFloor:
    """Empty methods with the devices' signatures: the cost of a Python-to-C call,
    the floor the benchmarks in bench/ compare the real methods against."""

    def io_write(self, port, size, value):
        pass

    def advance(self, delta_ns):
        pass
