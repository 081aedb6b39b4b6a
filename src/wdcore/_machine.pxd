# The compiled Machine core (SPEC.md 4, 5): the PC bus, the timer list, run state, QEMU's
# requests, expiry delivery and the event log.  Twin: _machine_py.py.
#
# It reaches a device only through the Watchdog contract (_core.pxd) for time and
# expiries, and through the device's own c_* access methods for the bus.
cimport cython
from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from wdcore._core cimport ArmCounter, Timer, Watchdog
from wdcore._ib700 cimport IB700
from wdcore._i6300esb cimport I6300ESB

cdef enum:
    MAX_DEVICES = 4

cdef struct ReadBuffer:           # values read by Machine.run, grown with realloc
    uint32_t* values
    Py_ssize_t count
    Py_ssize_t capacity

cdef class MachineCore:
    # --- the bus: who answers where (routing is the bus's, per device kind) ---------
    cdef IB700 ib                 # ports 0x441..0x444, or None
    cdef I6300ESB esb             # PCI 00:<esb_slot>.0 and its BAR0, or None
    cdef int esb_slot             # PCI device number of the i6300ESB on bus 0
    cdef uint32_t cfg_addr        # PCI CONFIG_ADDRESS
    # --- the timer list: every device, in construction order -----------------------------
    cdef tuple devices            # the Watchdog objects (keeps owners[] alive)
    cdef int n_devices
    cdef Timer* timers[MAX_DEVICES]    # each device's Timer (Watchdog.c_timer)
    cdef PyObject* owners[MAX_DEVICES] # borrowed from `devices`
    # --- run state and requests ---------------------------------------------------------
    cdef uint64_t now_ns
    cdef int status_no            # index into actions.RUN_STATES
    cdef int action_no            # the action in force (also set on every device)
    cdef bint reboot_shutdown     # QEMU's -no-reboot: a reset request becomes a shutdown
    cdef int requests             # actions.Request bits pending for the end of the operation
    cdef object reset_data        # data of the pending reset or shutdown request
    cdef uint64_t expiries        # WATCHDOG events so far
    # --- the event log ----------------------------------------------------------------------
    cdef list log                 # QMP-shaped event dicts (the ``events`` property)
    cdef list capture             # the events of the run in progress, or None
    cdef public object on_event   # None or callable(dict)

    # Every method is final: Python's Machine derives from this class, but nothing
    # overrides its C level, so the calls are direct.
    # bus accesses: any in-range port/address/size/value; never fail but for callbacks
    @cython.final
    cdef int c_io_write(self, uint32_t port, int size, uint32_t value) except -1 nogil
    @cython.final
    cdef uint32_t c_io_read(self, uint32_t port, int size) noexcept nogil
    @cython.final
    cdef int c_config_target(self, uint32_t k) noexcept nogil
    @cython.final
    cdef int c_mem_write(self, uint64_t addr, int size, uint32_t value) except -1 nogil
    @cython.final
    cdef uint32_t c_mem_read(self, uint64_t addr, int size) noexcept nogil
    @cython.final
    cdef int c_access_done(self, Watchdog dev, int flags) except -1 nogil
    # time: the earliest deadline while running; run every deadline <= t, then now = t
    @cython.final
    cdef bint c_next_deadline(self, uint64_t* out) noexcept nogil
    @cython.final
    cdef int c_run_until(self, uint64_t t) except -1 nogil
    @cython.final
    cdef int c_fire_due(self, uint64_t t) except -1 nogil
    @cython.final
    cdef int c_expire_one(self, int i, uint64_t t) except -1
    @cython.final
    cdef int c_deliver(self, Watchdog dev) except -1
    @cython.final
    cdef void c_set_now(self, uint64_t t) noexcept nogil
    @cython.final
    cdef void c_set_status(self, int status) noexcept nogil
    @cython.final
    cdef int c_log(self, str name, dict data, uint64_t time_ns) except -1
    @cython.final
    cdef int c_request_reset(self, dict data) except -1
    @cython.final
    cdef int c_end_operation(self) except -1 nogil
    @cython.final
    cdef int c_process_requests(self) except -1
    @cython.final
    cdef int c_run(self, const uint8_t* buf, Py_ssize_t n, ReadBuffer* reads,
                   Py_ssize_t* executed) except -1 nogil
