# cython: language_level=3
"""Shared pieces of the compiled core (see _core.pxd)."""
from wdcore import _args


cdef class ArmCounter:
    def __init__(self, uint64_t value=0):
        self.value = value


cdef object as_index(object v, str name):
    return _args.as_int(v, name)


# Each raise_* is reached only for an argument the fast check rejected; the twin's
# check then raises the exact same error.  The trailing raise guards against the
# two checks ever disagreeing.
cdef int raise_port(object port) except -1:
    _args.check_port(port)
    raise AssertionError(f"port {port!r} rejected by the compiled check only")


cdef int raise_size(object size) except -1:
    _args.check_size(size)
    raise AssertionError(f"size {size!r} rejected by the compiled check only")


cdef int raise_value(object value, int size) except -1:
    _args.check_value(value, size)
    raise AssertionError(f"value {value!r} rejected by the compiled check only")


cdef int raise_delta(uint64_t now, object delta_ns) except -1:
    _args.check_delta(now, delta_ns)
    raise AssertionError(f"delta_ns {delta_ns!r} rejected by the compiled check only")


cdef int raise_time(uint64_t now, object t_ns) except -1:
    _args.check_time(now, t_ns)
    raise AssertionError(f"t_ns {t_ns!r} rejected by the compiled check only")
