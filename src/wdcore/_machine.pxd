# The compiled Machine core (SPEC.md 4, 5); twin: _machine_py.py.
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from wdcore._core cimport ArmCounter
from wdcore._ib700 cimport IB700
from wdcore._i6300esb cimport I6300ESB

cdef struct ReadBuffer:           # values read by Machine.run, grown with realloc
    uint32_t* values
    Py_ssize_t count
    Py_ssize_t capacity

cdef class MachineCore:
    cdef IB700 ib                 # the devices (None when absent)
    cdef I6300ESB esb
    cdef ArmCounter counter       # arming sequence numbers, shared by the devices
    cdef int esb_slot             # PCI device number of the i6300ESB on bus 0
    cdef bint reboot_shutdown     # QEMU's -no-reboot: a reset request becomes a shutdown
    cdef public int action_code   # the action in force (also set on every device)
    cdef object log               # log(name, data, time_ns): the wrapper's event log
    cdef uint64_t now_ns
    cdef int status_code          # RUNNING .. POWEROFF
    cdef uint32_t cfg_addr        # PCI CONFIG_ADDRESS
    cdef int requests             # REQ_* pending for the end of the operation
    cdef object reset_data        # data of the pending reset or shutdown request
    cdef uint64_t expiries        # WATCHDOG events so far


    cdef int c_io_write(self, uint32_t port, int size, uint32_t value) except -1 nogil
    cdef uint32_t c_io_read(self, uint32_t port, int size) noexcept nogil
    cdef int c_config_target(self, uint32_t k) noexcept nogil
    cdef int c_mem_write(self, uint64_t addr, int size, uint32_t value) except -1 nogil
    cdef uint32_t c_mem_read(self, uint64_t addr, int size) noexcept nogil
    cdef bint c_next_deadline(self, uint64_t* out) noexcept nogil
    cdef int c_run_until(self, uint64_t t) except -1 nogil
    cdef int c_fire_due(self, uint64_t t) except -1 nogil
    cdef void c_set_now(self, uint64_t t) noexcept nogil
    cdef void c_set_status(self, int status) noexcept nogil
    cdef request_reset(self, dict data)
    cdef int c_end_operation(self) except -1 nogil
    cdef int process_requests(self) except -1
    cdef int c_run(self, const uint8_t* buf, Py_ssize_t n, ReadBuffer* reads,
                   Py_ssize_t* executed) except -1 nogil
