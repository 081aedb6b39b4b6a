# The compiled Machine core (SPEC.md 4, 5): the PC bus, the timer list, run state, QEMU's
# requests, expiry delivery and the event log.  Twin: _machine_py.py.
#
# It reaches a device only through the Watchdog contract (_core.pxd) for time and
# expiries, and through the device's own c_* access methods for the bus.
#
# C-level contract (conventions: _core.pxd's header).  The object is a MachineCore: a
# `wdcore.Machine(implementation="compiled")` (or any compiled-core Machine) is an
# instance of a subclass, so `cdef MachineCore m = machine` types it.
#
# The protocol a downstream caller follows (what Machine's own Python methods do):
#   1. Validate host input first; the c_* methods take a guest's range and check
#      nothing: port <= 0xFFFF, size in {1, 2, 4}, value < 2**(8*size),
#      addr + size <= 2**64, now_ns <= t <= WD_TIME_MAX_NS (_core.pxd's arg_* checks do,
#      with the GIL).  Outside that, the C level is undefined.
#   2. One operation is one call of c_io_write, c_io_read, c_mem_write, c_mem_read or
#      c_run_until, followed by c_end_operation().  QEMU's requests (reset, shutdown,
#      powerdown, stop) raised by expiries during the operation act there, in QEMU's
#      order: until then the status and the devices are as the expiry left them.
#      c_run_until ends the operation itself (calling c_end_operation again is harmless);
#      after a read c_end_operation has nothing to do today, call it anyway.
#   3. Check the result: -1 means a Python callback (on_expire, on_irq, on_event) raised;
#      its exception is set and propagates from a `with nogil:` block like any other.
#      What was logged stays logged; requests still pending act at the next
#      c_end_operation.
#   4. Call nothing marked internal: c_access_done (the bus's step after one device
#      access), c_fire_due, c_expire_one, c_deliver, c_set_now, c_set_status, c_log,
#      c_request_reset, c_process_requests, c_config_target.  They assume the invariants
#      the public methods keep (time only moves forward, one delivery per expiry,
#      requests only at the end of an operation).
#   5. Do not drive the Machine's devices (ib, esb) through their own access methods,
#      c_run_until or c_end_access: that bypasses the bus and the Machine's delivery.
#      Reading their fields is fine.
#   6. One thread at a time, holding a reference to the Machine, and no Machine call from
#      inside its callbacks: the Python methods enforce this with `guard` (docs/design.md
#      "Threads, callbacks, re-entry"); C-level callers keep it themselves, or enter the
#      guard (_core.pxd's guard_enter / guard_leave) around their calls.
cimport cython
from cpython.ref cimport PyObject
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from wdcore._core cimport ArmCounter, Guard, Timer, Watchdog
from wdcore._ib700 cimport IB700
from wdcore._i6300esb cimport I6300ESB

cdef enum:
    MAX_DEVICES = 4               # capacity of the timer list

cdef enum:  # run states (status_no): positions in actions.RUN_STATES (tests/test_structure.py)
    RUNNING = 0                   # time runs, accesses reach the devices
    WATCHDOG = 1                  # stopped by a watchdog action (pause); resume() continues
    PAUSED = 2                    # stopped by pause() (QMP stop)
    PRELAUNCH = 3                 # reset while stopped
    SHUTDOWN = 4                  # finished: accesses are dropped (reads all-ones / 0)
    POWEROFF = 5                  # finished at once (poweroff): accesses dropped, time stays

cdef enum:  # why a run stopped (RunProgress.stop): positions in ops.RUN_STOPS
    RUN_END = 0                   # the stream's end (a trailing partial op is not consumed)
    RUN_FINISHED = 1              # status_no >= SHUTDOWN
    RUN_MAX_OPS = 2               # the ops bound was reached
    RUN_MAX_EVENTS = 3            # the events bound was reached (after the op that reached it)
    RUN_ERROR = 4                 # an exception: a callback's, Ctrl-C, MemoryError

cdef struct RunProgress:          # where a run stands; the caller initialises {0, 0, RUN_ERROR}
    Py_ssize_t pos                # bytes consumed: every op executed, whole
    Py_ssize_t executed           # ops executed (one that raised at its end included)
    int stop                      # RUN_*: set when the run returns normally

cdef struct ReadBuffer:           # values read by Machine.run, grown with realloc
    uint32_t* values              # NULL until the first read; the caller frees it (libc free)
    Py_ssize_t count              # values stored
    Py_ssize_t capacity           # values room was allocated for

cdef class MachineCore:
    # Fields: downstream code reads them (C fields without the GIL, objects with it) and
    # writes none; the methods below and the Python API keep them consistent.
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
    cdef uint64_t now_ns          # the Machine's virtual time, ns (every device's timer.now)
    cdef int status_no            # index into actions.RUN_STATES: RUNNING .. POWEROFF above
    cdef int action_no            # the action in force (also set on every device)
    cdef bint reboot_shutdown     # QEMU's -no-reboot: a reset request becomes a shutdown
    cdef int requests             # actions.Request bits pending for the end of the operation
    cdef object reset_data        # data of the pending reset or shutdown request
    cdef uint64_t expiries        # WATCHDOG events so far (a count)
    # --- the event log ----------------------------------------------------------------------
    cdef list log                 # QMP-shaped event dicts (the ``events`` property)
    cdef list capture             # the events of the run in progress, or None
    cdef object _on_event         # None or callable(dict) (the on_event property)
    cdef list errors              # callbacks' exceptions (its own and its devices'), held until
                                  # the end of the operation; GIL
    cdef bint has_errors          # errors is not empty (readable without the GIL)
    cdef uint64_t logged          # events logged so far (a count; a run's events bound)
    cdef Guard guard              # the public call in progress, and its thread
    cdef ArmCounter counter       # the arming counter its devices share
    cdef bytes checked            # the last snapshot _restore_bytes accepted (bytes do not
                                  # change: restoring the same object again skips its checks)
    cdef bytes checked_config     # the configuration it was checked against

    # Every method is final: Python's Machine derives from this class, but nothing
    # overrides its C level, so the calls are direct.
    # --- the bus ---------------------------------------------------------------------------
    # A guest OUT of `size` bytes at I/O `port`, split as QEMU's bus does; a zero timeout
    # it starts fires inside (with the GIL).  Dropped once status_no >= SHUTDOWN.
    # nogil (takes the GIL for expiries and line changes).  Returns 0, or -1 with a
    # callback's exception set.  The caller ensures port <= 0xFFFF, size in {1, 2, 4},
    # value < 2**(8*size); then c_end_operation().
    @cython.final
    cdef int c_io_write(self, uint32_t port, int size, uint32_t value) except -1 nogil
    # A guest IN of `size` bytes at I/O `port`: returns the value (unclaimed lanes and
    # the IB700 read all-ones; all-ones once status_no >= SHUTDOWN).  nogil, never fails,
    # no side effect.  The caller ensures port <= 0xFFFF, size in {1, 2, 4}; then
    # c_end_operation().
    @cython.final
    cdef uint32_t c_io_read(self, uint32_t port, int size) noexcept nogil
    # internal.  The i6300ESB's configuration offset (0..0xff) for CONFIG_DATA lane k
    # (0..3) under the current CONFIG_ADDRESS, or -1 when it addresses nothing of ours.
    # nogil, never fails.
    @cython.final
    cdef int c_config_target(self, uint32_t k) noexcept nogil
    # A guest store of `size` bytes at physical address `addr` (bytes): BAR0 pieces reach
    # the i6300ESB, the rest is dropped; dropped once status_no >= SHUTDOWN.  nogil (takes
    # the GIL for expiries and line changes).  Returns 0, or -1 with a callback's
    # exception set.  The caller ensures size in {1, 2, 4}, addr + size <= 2**64,
    # value < 2**(8*size); then c_end_operation().
    @cython.final
    cdef int c_mem_write(self, uint64_t addr, int size, uint32_t value) except -1 nogil
    # A guest load of `size` bytes at physical `addr`: returns the value (unassigned lanes
    # read 0; 0 once status_no >= SHUTDOWN).  nogil, never fails, no side effect.  The
    # caller ensures size in {1, 2, 4}, addr + size <= 2**64; then c_end_operation().
    @cython.final
    cdef uint32_t c_mem_read(self, uint64_t addr, int size) noexcept nogil
    # internal: the bus's step after one device access that returned `flags` (the line
    # change, then what is due at now).  Returns 0, or -1 with a callback's exception.
    @cython.final
    cdef int c_access_done(self, Watchdog dev, int flags) except -1 nogil
    # --- time: the earliest deadline while running; run every deadline <= t, then now = t
    # The earliest armed deadline (virtual ns) while status_no == RUNNING: returns 1 and
    # stores it in *out (out not NULL), else 0 with *out untouched.  nogil, never fails.
    # It may lie past WD_TIME_MAX_NS (never reached; the next_deadline property says None).
    @cython.final
    cdef bint c_next_deadline(self, uint64_t* out) noexcept nogil
    # Move time to t (virtual ns; advance_to(t) without the argument check): while
    # RUNNING, every deadline <= t in (deadline, arming) order, each expiry delivered
    # (device log, on_expire, WATCHDOG, the action's effect); then now_ns = t (unless a
    # poweroff stopped time at its expiry) and the operation ends (c_end_operation).
    # nogil (takes the GIL for each expiry and for requests).  Returns the expiries
    # handled (>= 0), or -1 with a callback's exception set (time stays at the expiry
    # that raised).  The caller ensures now_ns <= t <= WD_TIME_MAX_NS (arg_time,
    # arg_delta).  To see each request act at its expiry, step to c_next_deadline.
    @cython.final
    cdef int c_run_until(self, uint64_t t) except -1 nogil
    # internal: c_run_until's loop, without moving time to t or ending the operation.
    @cython.final
    cdef int c_fire_due(self, uint64_t t) except -1 nogil
    # internal, GIL: handle timer i's deadline (its skip, its expiry, its delivery).
    @cython.final
    cdef int c_expire_one(self, int i, uint64_t t) except -1
    # internal, GIL: the one place an expiry becomes its effect.
    @cython.final
    cdef int c_deliver(self, Watchdog dev) except -1
    # internal, nogil: now_ns and every device's timer.now = t (no deadline handled).
    @cython.final
    cdef void c_set_now(self, uint64_t t) noexcept nogil
    # --- run state and requests ---------------------------------------------------------
    # internal, nogil: status_no = status, and every timer's `running` to match.
    @cython.final
    cdef void c_set_status(self, int status) noexcept nogil
    # internal, GIL: append an event at time_ns (to log, capture) and call on_event.
    @cython.final
    cdef int c_log(self, str name, dict data, uint64_t time_ns) except -1
    # internal, GIL: raise a reset request (a shutdown one under -no-reboot).
    @cython.final
    cdef int c_request_reset(self, dict data) except -1
    # The end of an operation: the pending requests act in QEMU's order (shutdown, reset
    # of every device, powerdown, stop), each logged.  nogil (takes the GIL only when a
    # request is pending).  Returns 0, or -1 with a callback's exception set (on_event;
    # on_irq from a device's reset).  Call it after every c_io_write, c_io_read,
    # c_mem_write, c_mem_read and c_run_until.
    # internal, GIL: raise the first held callback exception (at the end of an operation).
    @cython.final
    cdef int c_raise_errors(self) except -1
    @cython.final
    cdef int c_end_operation(self) except -1 nogil
    # internal, GIL: c_end_operation's work.
    @cython.final
    cdef int c_process_requests(self) except -1
    # internal (_restore_bytes): take a checked snapshot's payload.  GIL; returns 1.
    @cython.final
    cdef int c_apply_snapshot(self, const uint8_t* p) noexcept
    # --- op streams ---------------------------------------------------------------------------
    # Execute the binary op stream buf[0:n] (docs/ops.md; any bytes are valid), each op
    # ended as above, until its end, status_no >= SHUTDOWN, max_ops ops executed or
    # max_events events logged (a bound < 0 is none; both are checked between ops):
    # what run_stream does, minus the event capture and the guard.  Values read are
    # appended to *reads, which the caller initialises to {NULL, 0, 0} and frees
    # (free(reads.values)) on success and error; *progress (initialised {0, 0,
    # RUN_ERROR}) says where it stands after every op, and why it stopped.  Every 1024
    # ops it takes the GIL to run Python's signal handlers, so Ctrl-C stops it between
    # two ops.  nogil (takes the GIL for expiries, requests and signals).  Returns 0, or
    # -1 with a callback's exception, a signal handler's (KeyboardInterrupt) or
    # MemoryError set.  The caller keeps buf alive and unchanged during the call.
    @cython.final
    cdef int c_run(self, const uint8_t* buf, Py_ssize_t n, Py_ssize_t max_ops,
                   Py_ssize_t max_events, ReadBuffer* reads,
                   RunProgress* progress) except -1 nogil
