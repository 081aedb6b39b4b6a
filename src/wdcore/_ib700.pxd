# The compiled IB700 (SPEC.md 2): register logic only; time, the deadline, the action and
# the event log are the Watchdog base's (_core.pxd).  Twin: _ib700_py.py.
cimport cython
from wdcore._core cimport Watchdog

@cython.final
cdef class IB700(Watchdog):
    # One guest write (any in-range port/size/value; ports outside 0x441..0x444 and
    # dword writes are ignored).  Returns WD_DUE when a zero timeout is due at the end of
    # the access (the caller then fires it with the GIL), else 0.
    cdef int c_write(self, unsigned int port, int size, unsigned int value) noexcept nogil
    cdef void c_write_byte(self, unsigned int port, unsigned int byte) noexcept nogil
