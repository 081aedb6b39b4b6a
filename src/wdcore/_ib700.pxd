# The compiled IB700 (SPEC.md 2).  The c_* methods are the C-level interface a
# compiled Machine or a downstream Cython emulator can call without Python objects.
from libc.stdint cimport uint64_t
from wdcore._core cimport ArmCounter

cdef class IB700:
    cdef uint64_t now_ns          # current virtual time, ns
    cdef uint64_t deadline_ns     # absolute expiry time; meaningful only while armed
    cdef uint64_t seq             # arming sequence number of deadline_ns (0 when disarmed)
    cdef bint armed               # a start write has set a deadline that has not passed
    cdef int action_code          # index into actions.ACTIONS, carried by expiry events
    cdef ArmCounter counter       # arming sequence source (shared within a Machine)
    cdef list _events             # WatchdogEvent log
    cdef uint64_t expiries        # WatchdogEvents produced so far (advance's return value)
    cdef public bint _timers_on   # False while the owning Machine is stopped
    cdef public object on_expire  # None or callable(WatchdogEvent)
    cdef public object _sink      # the owning Machine's expiry hook, or None

    # One guest write (any in-range port/size/value); returns 1 when a deadline is
    # due at the end of the access (the caller then calls c_expire with the GIL).
    cdef int c_write(self, unsigned int port, int size, unsigned int value) noexcept nogil
    cdef void c_write_byte(self, unsigned int port, unsigned int byte) noexcept nogil
    # Handle the current deadline: log, callbacks.  Needs the GIL.
    cdef int c_expire(self) except -1
    # Handle every deadline <= t in order, then now = t; returns the expiries handled.
    cdef int c_run_until(self, uint64_t t) except -1
