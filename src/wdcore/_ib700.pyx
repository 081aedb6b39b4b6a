# cython: language_level=3
"""The IB700, compiled (SPEC.md 2).  Twin: _ib700_py.py."""
cimport cython
from libc.stdint cimport uint8_t, uint64_t
from wdcore._core cimport (CALL_IO_WRITE, TimerRecord, Watchdog, WD_DUE, arg_port, arg_size,
                          arg_value, guard_enter, guard_leave, snap_read_timer)
from wdcore._regs cimport (IB700_PORT_FIRST, IB700_PORT_LAST, IB700_WDT_START,
                           IB700_WDT_START_INDEX)

from wdcore._core_py import rebuild
from wdcore import _snapshot, regs

# Timeout per index (the low nibble of the start write), from regs.IB700_TIMEOUT_NS
cdef uint64_t TIMEOUT_NS[IB700_WDT_START_INDEX + 1]
for _i, _t in enumerate(regs.IB700_TIMEOUT_NS):
    TIMEOUT_NS[_i] = _t


# the snapshot's kind and payload (_snapshot.IB700State: the timer fields alone)
cdef int SNAP_KIND = _snapshot.KIND_IB700
cdef Py_ssize_t SNAP_SIZE = _snapshot.IB700_LAYOUT.size
cdef uint64_t MAX_TIMEOUT_NS = _snapshot.IB700State.MAX_DEADLINE_NS


@cython.final
cdef class IB700(Watchdog):
    """iBase IB700 watchdog (QEMU ``ib700``): ports 0x441/0x442 stop, 0x443/0x444 start."""

    KIND = "ib700"

    # --- guest side -----------------------------------------------------------------
    def io_write(self, port, size, value):
        """A guest write of ``size`` bytes to I/O ``port``."""
        cdef unsigned int p, v
        cdef int s, flags
        cdef int nested = guard_enter(&self.guard, self, CALL_IO_WRITE)  # 1: from a callback
        try:
            p = arg_port(port)
            s = arg_size(size)
            v = arg_value(value, s)
            flags = self.c_write(p, s, v)
            if flags:
                self.c_end_access(flags)
                if not nested:  # nested: held for the call in progress
                    self.c_raise_errors()
        finally:
            if not nested:
                guard_leave(&self.guard)

    def io_read(self, port, size):
        """A guest read: the IB700 reads all-ones of the width, with no side effect."""
        arg_port(port)
        cdef int s = arg_size(size)
        return (<uint64_t>1 << (8 * s)) - 1

    cdef int c_write(self, unsigned int port, int size, unsigned int value) noexcept nogil:
        if size == 4 or port < IB700_PORT_FIRST or port > IB700_PORT_LAST:
            return 0  # dwords reach no handler; other ports are not ours
        self.c_write_byte(port, value & 0xFF)
        if size == 2 and (port == IB700_PORT_FIRST or port == IB700_WDT_START):
            self.c_write_byte(port + 1, value >> 8)  # 0x442/0x444 words: high byte dropped
        return WD_DUE if self.c_due(self.timer.now) else 0

    cdef void c_write_byte(self, unsigned int port, unsigned int byte) noexcept nogil:
        if port < IB700_WDT_START:
            self.c_disarm()
        else:
            self.c_arm(TIMEOUT_NS[byte & IB700_WDT_START_INDEX])

    # --- Watchdog hooks ---------------------------------------------------------------
    cdef int c_fire(self) except -1:
        self.c_disarm()
        return 1  # every IB700 deadline is an expiry

    cdef int c_reset(self) except -1:
        self.c_disarm()
        return 0

    # --- snapshot (the record: _snapshot.IB700State) ------------------------------------
    STATE = _snapshot.IB700State

    cdef int c_snap_kind(self) noexcept nogil:
        return SNAP_KIND

    cdef Py_ssize_t c_store(self, uint8_t* out) noexcept nogil:
        if out != NULL:
            self.c_store_timer(out)  # the payload is the timer fields
        return SNAP_SIZE

    cdef bint c_load(self, const uint8_t* p, Py_ssize_t n, bint apply) noexcept nogil:
        cdef TimerRecord r
        if apply:  # checked before: only the decoding counts
            snap_read_timer(p, &r, MAX_TIMEOUT_NS)
            self.c_load_timer(&r)
            return True
        return n == SNAP_SIZE and snap_read_timer(p, &r, MAX_TIMEOUT_NS)

    def _state(self):
        return _snapshot.IB700State(**self._timer_fields())

    def _apply(self, state):
        """Take a validated IB700State."""
        self._apply_timer(state)

    def __repr__(self):
        armed = f"deadline={self.timer.deadline}" if self.timer.armed else "disarmed"
        return f"<IB700 (compiled) now={self.timer.now} {armed} action={self.action.value}>"


def _from_snapshot(data):
    """Unpickle what this module's IB700 pickled as before the Watchdog base (wdcore
    0.1's first releases): like new pickles (_core_py.rebuild), in the implementation
    selected where it is loaded."""
    return rebuild(IB700.KIND, data)
