# cython: language_level=3
"""The floor the benchmarks compare against: empty compiled methods with the real
methods' signatures, i.e. the cost of the Python-to-C call alone.  Compiled by
bench/conftest.py (pyximport) when a benchmark first asks for it; never shipped."""
cimport cython


@cython.final
cdef class CallFloor:
    def io_write(self, port, size, value):
        pass

    def io_read(self, port, size):
        pass

    def mem_write(self, addr, size, value):
        pass

    def mem_read(self, addr, size):
        pass

    def config_write(self, offset, size, value):
        pass

    def mmio_write(self, offset, size, value):
        pass

    def advance(self, delta_ns):
        pass


from libc.stdint cimport uint8_t, uint64_t


def decode_only(bytes data not None):
    """The batch path's floor: one compiled pass over an op stream that reads each op's
    code, length and arguments (docs/ops.md) as Machine.run does, and does nothing with
    them.  Returns (ops decoded, bytes consumed) so that nothing is optimised away."""
    cdef const uint8_t* buf = data
    cdef Py_ssize_t n = len(data), pos = 0, need, ops = 0
    cdef int code, kind, size, i
    cdef uint64_t sink = 0
    with nogil:
        while pos < n:
            code = buf[pos] & 0x0F
            if code == 13:                     # bare clock_step
                need = 1
            elif code == 12 or code == 14:     # clock_step / clock_set, 8-byte ns
                need = 9
            elif code == 15:                   # clock_step, 4-byte ns
                need = 5
            else:                              # an access: port (2) or address (8), value
                kind = code // 3
                size = 1 << (code % 3)
                need = 1 + (2 if kind < 2 else 8) + (size if kind == 0 or kind == 2 else 0)
            if pos + need > n:
                break
            for i in range(1, need):           # the arguments, little-endian
                sink += (<uint64_t>buf[pos + i]) << (8 * ((i - 1) & 7))
            pos += need
            ops += 1
    return ops, pos + <Py_ssize_t>(sink & 0)
