# The compiled IB700 (SPEC.md 2): register logic only; time, the deadline, the action and
# the event log are the Watchdog base's (_core.pxd).  Twin: _ib700_py.py.
cimport cython
from wdcore._core cimport Watchdog

#
# C-level contract (conventions: _core.pxd's header).  The IB700 has no register state
# beyond its Timer: a start write arms it (30 - 2*index s), a stop write disarms it.
# A read of any port and size is all-ones of the width, (1 << 8*size) - 1, with no side
# effect: there is no c_read.  A standalone IB700 driven from nogil code:
#   - a write: flags = dev.c_write(port, size, value); a non-zero flags goes to
#     dev.c_end_access(flags) inside `with gil:` (the due deadline fires);
#   - time to t: if dev.c_due(t), dev.c_run_until(t) inside `with gil:` (expiries log
#     and call on_expire); else dev.timer.now = t, without the GIL.
# A Machine's IB700 is driven through the Machine (MachineCore.c_io_write), never here.

@cython.final
cdef class IB700(Watchdog):
    # One guest write as it reaches the device: `port` an absolute I/O port (not an
    # offset), `size` bytes, `value` its little-endian lanes.  Ports outside
    # 0x441..0x444 and dword writes are ignored (QEMU's portio list).  nogil, never
    # fails.  Returns WD_DUE when a deadline is due at the end of the access (only a
    # zero timeout can be: the caller then fires it with the GIL, c_end_access), else 0;
    # never WD_SIGNAL.
    # The caller ensures size in {1, 2, 4} and value < 2**(8*size) (arg_size,
    # arg_value); any port is a guest's.  Outside that the result is undefined.
    cdef int c_write(self, unsigned int port, int size, unsigned int value) noexcept nogil
    # internal (c_write's step).  One byte to one port of 0x441..0x444 (the caller
    # ensures it): below 0x443 disarms, else arms with the timeout of byte & 0xF.
    # nogil, never fails, returns nothing: c_write reports what is due.
    cdef void c_write_byte(self, unsigned int port, unsigned int byte) noexcept nogil
