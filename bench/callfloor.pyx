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
