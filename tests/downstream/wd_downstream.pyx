# cython: language_level=3
"""A downstream Cython extension of wdcore, as a host would write one: it drives the
compiled devices and a Machine core through the C-level contract (src/wdcore/*.pxd)
from `with nogil:` loops.  tests/test_cimport.py builds it against the installed
package and compares every result with the same operations through the Python API.

Ops come in as (code, a, size, value) tuples, are copied into a C array, and run
without the GIL; what each op left behind is recorded into C arrays and handed back.
"""
cimport wdcore
from wdcore cimport (ArmCounter, CALL_RUN, I6300ESB, IB700, MachineCore, ReadBuffer, RUN_ERROR,
                     RunProgress, Timer, Watchdog, guard_enter, guard_leave,
                     WD_DUE, WD_SIGNAL, WD_TIME_MAX_NS, arg_port, arg_size, arg_time,
                     arg_value, arg_window_offset, piece_size, timer_before, timer_due)
from wdcore cimport ESB_SIZE, IB700_PORT_FIRST, IB700_PORT_LAST, RUNNING, SHUTDOWN
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE

# op codes of this module (not wdcore's)
cdef enum:
    OP_WRITE = 0      # devices: a register write; Machine: OUT
    OP_READ = 1       # devices: a register read;  Machine: IN
    OP_MEM_WRITE = 2  # i6300ESB: a BAR0 write;    Machine: a store
    OP_MEM_READ = 3   # i6300ESB: a BAR0 read;     Machine: a load
    OP_STEP = 4       # time forward by a ns
    OP_NEXT = 5       # time to the next deadline (or now when there is none)

cdef struct Op:
    int code
    uint64_t a
    int size
    uint32_t value

cdef struct Seen:      # what one op left behind
    uint64_t value     # the value read, the flags of a write, or the expiries of a step
    uint64_t now
    bint armed         # a deadline exists (Machine: c_next_deadline found one)
    uint64_t deadline
    uint64_t seq       # devices: the arming number; Machine: its status_no
    uint64_t expiries  # devices: Watchdog.expiries; Machine: MachineCore.expiries


cdef Op* to_ops(list ops) except NULL:
    cdef Op* out = <Op*>malloc((len(ops) + 1) * sizeof(Op))
    cdef Py_ssize_t i
    if out == NULL:
        raise MemoryError()
    for i in range(len(ops)):
        code, a, size, value = ops[i]
        out[i].code = code
        out[i].a = a
        out[i].size = size
        out[i].value = value
    return out


cdef list seen_list(Seen* seen, Py_ssize_t n):
    return [(seen[i].value, seen[i].now, bool(seen[i].armed), seen[i].deadline, seen[i].seq,
             seen[i].expiries) for i in range(n)]


# --- a standalone device: time moves as Timer's comment in _core.pxd says -----------------
cdef int advance_to(Watchdog dev, uint64_t t) except -1 nogil:
    """Move a standalone device's time to t: without the GIL when nothing is due."""
    cdef Timer* timer = dev.c_timer()
    if timer_due(timer, t):
        with gil:
            dev.c_run_until(t)
    else:
        timer.now = t
    return 0


cdef int device_step(Watchdog dev, Op* op, Seen* s) except -1 nogil:
    cdef uint64_t t
    cdef Timer* timer = dev.c_timer()
    cdef uint64_t before = dev.expiries
    if op.code == OP_STEP:
        advance_to(dev, timer.now + op.a)
        s.value = dev.expiries - before
    elif op.code == OP_NEXT:
        t = timer.deadline if timer.armed else timer.now
        advance_to(dev, t)
        s.value = dev.expiries - before
    s.now = timer.now
    s.armed = timer.armed
    s.deadline = timer.deadline
    s.seq = timer.seq
    s.expiries = dev.expiries
    return 0


def drive_ib700(IB700 dev, list ops):
    """OP_WRITE (port a, size, value), OP_READ (port a: all-ones of the width, there is
    no c_read), OP_STEP, OP_NEXT."""
    cdef Py_ssize_t n = len(ops), i
    cdef Op* c_ops = to_ops(ops)
    cdef Seen* seen = <Seen*>malloc((n + 1) * sizeof(Seen))
    cdef int flags
    try:
        with nogil:
            for i in range(n):
                seen[i].value = 0
                if c_ops[i].code == OP_WRITE:
                    flags = dev.c_write(<unsigned int>c_ops[i].a, c_ops[i].size, c_ops[i].value)
                    seen[i].value = flags
                    if flags:
                        with gil:
                            dev.c_end_access(flags)
                elif c_ops[i].code == OP_READ:
                    seen[i].value = ((<uint64_t>1) << (8 * c_ops[i].size)) - 1
                device_step(dev, &c_ops[i], &seen[i])
        return seen_list(seen, n)
    finally:
        free(c_ops)
        free(seen)


def drive_i6300esb(I6300ESB dev, list ops):
    """OP_WRITE / OP_READ: configuration space at offset a; OP_MEM_WRITE / OP_MEM_READ:
    BAR0 at offset a; OP_STEP, OP_NEXT."""
    cdef Py_ssize_t n = len(ops), i
    cdef Op* c_ops = to_ops(ops)
    cdef Seen* seen = <Seen*>malloc((n + 1) * sizeof(Seen))
    cdef int flags
    cdef int code
    try:
        with nogil:
            for i in range(n):
                seen[i].value = 0
                code = c_ops[i].code
                if code == OP_WRITE or code == OP_MEM_WRITE:
                    if code == OP_WRITE:
                        flags = dev.c_config_write(<unsigned int>c_ops[i].a, c_ops[i].size,
                                                   c_ops[i].value)
                    else:
                        flags = dev.c_mmio_write(<unsigned int>c_ops[i].a, c_ops[i].size,
                                                 c_ops[i].value)
                    seen[i].value = flags
                    if flags:
                        with gil:
                            dev.c_end_access(flags)
                elif code == OP_READ:
                    seen[i].value = dev.c_config_read(<unsigned int>c_ops[i].a, c_ops[i].size)
                elif code == OP_MEM_READ:
                    seen[i].value = dev.c_mmio_read(<unsigned int>c_ops[i].a, c_ops[i].size)
                device_step(dev, &c_ops[i], &seen[i])
        return seen_list(seen, n)
    finally:
        free(c_ops)
        free(seen)


def esb_state(I6300ESB dev):
    """Fields a host reads straight from the declaration."""
    return (dev.enabled, dev.locked, dev.stage_no, dev.preload[0], dev.preload[1],
            dev.gintsr, dev.c_bar0(), dev.c_action_code())


# --- a Machine, by _machine.pxd's protocol ------------------------------------------------
cdef int machine_op(MachineCore m, Op* op, Seen* s) except -1 nogil:
    cdef uint64_t t
    s.value = 0
    if op.code == OP_WRITE:
        m.c_io_write(<uint32_t>op.a, op.size, op.value)
    elif op.code == OP_READ:
        s.value = m.c_io_read(<uint32_t>op.a, op.size)
    elif op.code == OP_MEM_WRITE:
        m.c_mem_write(op.a, op.size, op.value)
    elif op.code == OP_MEM_READ:
        s.value = m.c_mem_read(op.a, op.size)
    else:
        if op.code == OP_STEP:
            t = m.now_ns + op.a
        elif not m.c_next_deadline(&t):
            t = m.now_ns
        s.value = m.c_run_until(t)
    m.c_end_operation()  # after every operation (c_run_until has ended its own already)
    s.now = m.now_ns
    s.armed = m.c_next_deadline(&s.deadline)
    if not s.armed:
        s.deadline = 0
    s.seq = m.status_no
    s.expiries = m.expiries
    return 0


def drive_machine(MachineCore m, list ops):
    """OP_WRITE (OUT port a), OP_READ (IN), OP_MEM_WRITE (store at a), OP_MEM_READ (load),
    OP_STEP, OP_NEXT; each one operation."""
    cdef Py_ssize_t n = len(ops), i
    cdef Op* c_ops = to_ops(ops)
    cdef Seen* seen = <Seen*>malloc((n + 1) * sizeof(Seen))
    try:
        with nogil:
            for i in range(n):
                machine_op(m, &c_ops[i], &seen[i])
        return seen_list(seen, n)
    finally:
        free(c_ops)
        free(seen)


def run_stream(MachineCore m, bytes data not None, Py_ssize_t max_ops=-1):
    """MachineCore.c_run on a binary op stream, inside the Machine's guard:
    (ops executed, values read, bytes consumed, why it stopped: a RUN_* code)."""
    cdef const uint8_t* buf = <const uint8_t*>PyBytes_AS_STRING(data)
    cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
    cdef ReadBuffer reads
    cdef RunProgress progress
    reads.values = NULL
    reads.count = 0
    reads.capacity = 0
    progress.pos = 0
    progress.executed = 0
    progress.stop = RUN_ERROR
    guard_enter(&m.guard, m, CALL_RUN)
    try:
        with nogil:
            m.c_run(buf, n, max_ops, -1, &reads, &progress)
        return (progress.executed, [reads.values[i] for i in range(reads.count)],
                progress.pos, progress.stop)
    finally:
        guard_leave(&m.guard)
        free(reads.values)


def machine_state(MachineCore m):
    cdef bint running = m.status_no == RUNNING
    cdef bint finished = m.status_no >= SHUTDOWN
    return (m.now_ns, m.status_no, running, finished, m.action_no, m.cfg_addr, m.expiries,
            m.ib is not None, m.esb is not None)


# --- the rest of the contract: checks, helpers, constants ---------------------------------
def check_access(port, size, value):
    """The host-argument checks, as a host validates before the C level."""
    cdef int s = arg_size(size)
    return arg_port(port), s, arg_value(value, s)


def check_bar0(offset, size):
    cdef int s = arg_size(size)
    return arg_window_offset(offset, s, ESB_SIZE, "BAR0")


def check_time(uint64_t now, t):
    return arg_time(now, t)


def pieces(uint64_t offset, uint64_t left):
    cdef list out = []
    cdef int n
    while left:
        n = piece_size(offset, left)
        out.append(n)
        offset += n
        left -= n
    return out


def timer_order(uint64_t d1, uint64_t s1, uint64_t d2, uint64_t s2, uint64_t when):
    cdef Timer a, b
    a.now = b.now = 0
    a.armed = b.armed = True
    a.running = b.running = True
    a.deadline = d1
    a.seq = s1
    b.deadline = d2
    b.seq = s2
    return timer_due(&a, when), timer_due(&b, when), timer_before(&a, &b)


def constants():
    return {"WD_DUE": WD_DUE, "WD_SIGNAL": wdcore.WD_SIGNAL, "WD_TIME_MAX_NS": WD_TIME_MAX_NS,
            "IB700_PORT_FIRST": IB700_PORT_FIRST, "IB700_PORT_LAST": IB700_PORT_LAST,
            "ESB_SIZE": ESB_SIZE, "IB700_WDT_START": wdcore.IB700_WDT_START,
            "RUNNING": RUNNING, "WATCHDOG": wdcore.WATCHDOG, "SHUTDOWN": SHUTDOWN,
            "POWEROFF": wdcore.POWEROFF, "MAX_DEVICES": wdcore.MAX_DEVICES}


def counter_value(ArmCounter c):
    return c.value
