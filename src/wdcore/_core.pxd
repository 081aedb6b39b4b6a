# Shared C-level pieces of the compiled core: the arming counter and the fast
# host-argument checks.  The slow paths (building the error) call the Python
# twin's checks in wdcore._args, so both implementations raise the same errors.
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


cdef class ArmCounter:
    # Source of arming sequence numbers; shared by the devices of one Machine so
    # that equal deadlines fire in the order they were armed (SPEC.md 1.4).
    cdef public uint64_t value


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


cdef inline int piece_size(uint64_t offset, uint64_t left) noexcept nogil:
    """QEMU's access split (SPEC.md 3.5, 5.1): the largest power of two <= left (at most
    4) that divides offset (0 divides all).  Twin: regs.piece_size."""
    cdef int n = 4
    while <uint64_t>n > left or (offset & <uint64_t>(n - 1)):
        n >>= 1
    return n
