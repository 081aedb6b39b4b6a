# cython: language_level=3
"""The Machine's core, compiled: bus routing, time across devices, run state and QEMU's
request handling (SPEC.md 4, 5).  Twin: _machine_py.py, which this mirrors line for
line in behaviour.

Everything on the access path is ``nogil``; the GIL is taken only where Python must
run: an expiry (events, callbacks), a change of the stage-1 interrupt line, and the
requests processed at the end of an operation.  ``run`` executes a binary op stream
(docs/ops.md) with the GIL released for the whole loop, taking it back only there.
"""
cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, realloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from wdcore._core cimport (ArmCounter, WD_TIME_MAX_NS, arg_delta, arg_port, arg_size,
                           arg_time, arg_value, piece_size, wd_small_int)
from wdcore._ib700 cimport IB700
from wdcore._i6300esb cimport I6300ESB

from wdcore._machine_py import GUEST_RESET, HOST_RESET, check_addr
from wdcore.actions import ACTIONS, effect_of

cdef enum:
    RUNNING = 0
    WATCHDOG = 1
    PAUSED = 2
    PRELAUNCH = 3
    SHUTDOWN = 4
    POWEROFF = 5

cdef enum:
    REQ_SHUTDOWN = 1
    REQ_RESET = 2
    REQ_POWERDOWN = 4
    REQ_STOP = 8

cdef enum:
    IB700_FIRST = 0x441
    IB700_END = 0x445
    PCI_CONFIG_ADDRESS = 0xCF8
    PCI_CONFIG_DATA = 0xCFC
    PCI_CONFIG_END = 0xD00
    BAR0_SIZE = 16

cdef enum:  # op stream opcodes (docs/ops.md)
    OP_OUTB = 0
    OP_INB = 3
    OP_WRITEB = 6
    OP_READB = 9
    OP_STEP = 12
    OP_STEP_BARE = 13
    OP_SET = 14
    OP_STEP32 = 15


cdef inline uint32_t io_region_base(uint32_t addr) noexcept nogil:
    """First port of the region holding ``addr`` for the split (SPEC.md 5.1):
    CONFIG_ADDRESS, CONFIG_DATA, or the unclaimed space counted from port 0."""
    if PCI_CONFIG_ADDRESS <= addr < PCI_CONFIG_DATA:
        return PCI_CONFIG_ADDRESS
    if PCI_CONFIG_DATA <= addr < PCI_CONFIG_END:
        return PCI_CONFIG_DATA
    return 0


cdef inline uint32_t ones(int n) noexcept nogil:
    return 0xFFFFFFFFU >> (32 - 8 * n)


cdef inline uint64_t load_le(const uint8_t* p, int n) noexcept nogil:
    cdef uint64_t v = 0
    cdef int i
    for i in range(n):
        v |= (<uint64_t>p[i]) << (8 * i)
    return v


cdef inline uint64_t arg_addr(object addr, int size) except? 0xFFFFFFFFFFFFFFFF:
    cdef long long v
    if wd_small_int(addr, &v) and v >= 0:
        return <uint64_t>v
    return <uint64_t>check_addr(addr, size)  # big or bad: the twin's check decides


@cython.final
cdef class MachineCore:
    def __init__(self, ib700, i6300esb, ArmCounter counter not None, int esb_slot,
                 bint reboot_shutdown, int action_code, log):
        self.ib = ib700
        self.esb = i6300esb
        self.counter = counter
        self.esb_slot = esb_slot
        self.reboot_shutdown = reboot_shutdown
        self.action_code = action_code
        self.log = log
        for dev in (ib700, i6300esb):
            if dev is not None:
                dev._share_counter(counter)
                dev._sink = self._on_expiry

    # --- port I/O ---------------------------------------------------------------------------
    def io_write(self, port, size, value):
        cdef unsigned int p = arg_port(port)
        cdef int s = arg_size(size)
        cdef unsigned int v = arg_value(value, s)
        self.c_io_write(p, s, v)
        self.c_end_operation()

    def io_read(self, port, size):
        cdef unsigned int p = arg_port(port)
        cdef int s = arg_size(size)
        cdef uint32_t v = self.c_io_read(p, s)
        self.c_end_operation()
        return v

    cdef int c_io_write(self, uint32_t port, int size, uint32_t value) except -1 nogil:
        cdef int off = 0, n, flags, offset
        cdef uint32_t addr, base, piece
        if self.status_code >= SHUTDOWN:
            return 0
        while off < size:
            addr = port + off
            if self.ib is not None and IB700_FIRST <= addr < IB700_END:
                n = size - off  # the IB700 block takes all remaining bytes as one access
                piece = (value >> (8 * off)) & ones(n)
                if self.ib.c_write(addr, n, piece):
                    with gil:
                        self.ib.c_expire()  # a zero timeout fires at the end of its access
            else:
                base = io_region_base(addr)
                n = piece_size(addr - base, size - off)
                piece = (value >> (8 * off)) & ones(n)
                if base == PCI_CONFIG_ADDRESS:
                    if addr == PCI_CONFIG_ADDRESS and n == 4:
                        self.cfg_addr = piece
                elif base == PCI_CONFIG_DATA:
                    offset = self.c_config_target(addr - PCI_CONFIG_DATA)
                    if offset >= 0:
                        flags = self.esb.c_config_write(offset, n, piece)
                        if flags:
                            with gil:
                                self.esb.c_end_access(flags)
            off += n
        return 0

    cdef uint32_t c_io_read(self, uint32_t port, int size) noexcept nogil:
        cdef int off = 0, n, offset
        cdef uint32_t addr, base, piece, result = 0
        if self.status_code >= SHUTDOWN:
            return ones(size)
        while off < size:
            addr = port + off
            if self.ib is not None and IB700_FIRST <= addr < IB700_END:
                n = size - off
                piece = ones(n)  # the IB700 reads all-ones
            else:
                base = io_region_base(addr)
                n = piece_size(addr - base, size - off)
                if base == PCI_CONFIG_ADDRESS:
                    piece = self.cfg_addr & ones(n)
                elif base == PCI_CONFIG_DATA:
                    offset = self.c_config_target(addr - PCI_CONFIG_DATA)
                    piece = (ones(n) if offset < 0
                             else <uint32_t>self.esb.c_config_read(offset, n) & ones(n))
                else:
                    piece = ones(n)  # unclaimed
            result |= piece << (8 * off)
            off += n
        return result

    cdef int c_config_target(self, uint32_t k) noexcept nogil:
        """The i6300ESB register offset for CONFIG_DATA offset k, or -1 (SPEC.md 5.2)."""
        cdef uint32_t ca = self.cfg_addr
        if not ca & 0x80000000U or self.esb is None:
            return -1
        if (ca >> 16) & 0xFF or ((ca >> 11) & 0x1F) != <uint32_t>self.esb_slot or (ca >> 8) & 0x07:
            return -1
        return <int>((ca & 0xFF) | k)  # bits 1:0 are OR-ed, not added

    # --- memory -------------------------------------------------------------------------------
    def mem_write(self, addr, size, value):
        cdef int s = arg_size(size)
        cdef uint64_t a = arg_addr(addr, s)
        cdef unsigned int v = arg_value(value, s)
        self.c_mem_write(a, s, v)
        self.c_end_operation()

    def mem_read(self, addr, size):
        cdef int s = arg_size(size)
        cdef uint64_t a = arg_addr(addr, s)
        cdef uint32_t v = self.c_mem_read(a, s)
        self.c_end_operation()
        return v

    cdef int c_mem_write(self, uint64_t addr, int size, uint32_t value) except -1 nogil:
        cdef uint64_t bar, a
        cdef int off = 0, n, flags
        cdef bint inside
        if self.status_code >= SHUTDOWN:
            return 0
        bar = self.esb.c_bar0() if self.esb is not None else 0
        while off < size:
            a = addr + off
            inside = bar != 0 and bar <= a < bar + BAR0_SIZE
            n = piece_size(a - bar if inside else a, size - off)
            if inside:
                flags = self.esb.c_mmio_write(<unsigned int>(a - bar), n,
                                              (value >> (8 * off)) & ones(n))
                if flags:
                    with gil:
                        self.esb.c_end_access(flags)
            off += n
        return 0

    cdef uint32_t c_mem_read(self, uint64_t addr, int size) noexcept nogil:
        cdef uint64_t bar, a
        cdef int off = 0, n
        cdef uint32_t result = 0
        cdef bint inside
        if self.status_code >= SHUTDOWN:
            return 0
        bar = self.esb.c_bar0() if self.esb is not None else 0
        while off < size:
            a = addr + off
            inside = bar != 0 and bar <= a < bar + BAR0_SIZE
            n = piece_size(a - bar if inside else a, size - off)
            if inside:
                result |= self.esb.c_mmio_read(<unsigned int>(a - bar), n) << (8 * off)
            off += n
        return result

    # --- time -----------------------------------------------------------------------------------
    @property
    def now(self):
        return self.now_ns

    @property
    def status(self):
        return self.status_code

    @property
    def next_deadline(self):
        cdef uint64_t d
        if self.c_next_deadline(&d):
            return d
        return None

    cdef bint c_next_deadline(self, uint64_t* out) noexcept nogil:
        cdef bint found = False
        if self.status_code != RUNNING:
            return False
        if self.ib is not None and self.ib.armed:
            out[0] = self.ib.deadline_ns
            found = True
        if self.esb is not None and self.esb.armed and (not found or self.esb.deadline_ns < out[0]):
            out[0] = self.esb.deadline_ns
            found = True
        return found

    def advance(self, delta_ns):
        return self.c_run_until(arg_delta(self.now_ns, delta_ns))

    def advance_to(self, t_ns):
        return self.c_run_until(arg_time(self.now_ns, t_ns))

    cdef int c_run_until(self, uint64_t t) except -1 nogil:
        cdef uint64_t before = self.expiries  # counts expiries caused by callbacks too
        if self.status_code == RUNNING:
            self.c_fire_due(t)
            if self.status_code == POWEROFF:  # QEMU exited inside the expiry
                return <int>(self.expiries - before)
        self.c_set_now(t)
        self.c_end_operation()
        return <int>(self.expiries - before)

    cdef int c_fire_due(self, uint64_t t) except -1 nogil:
        """Handle every device deadline <= t, one at a time, in (deadline, arming) order."""
        cdef bint ib_due, esb_due, esb_first
        cdef uint64_t limit, when
        while self.status_code == RUNNING:
            ib_due = self.ib is not None and self.ib.armed and self.ib._timers_on and self.ib.deadline_ns <= t
            esb_due = self.esb is not None and self.esb.c_due(t)
            if not ib_due and not esb_due:
                break
            esb_first = esb_due and (not ib_due or self.esb.deadline_ns < self.ib.deadline_ns
                                     or (self.esb.deadline_ns == self.ib.deadline_ns
                                         and self.esb.seq < self.ib.seq))
            if esb_first:
                # whole free-running cycles ending before anything else is due are
                # unobservable: jump them in O(1) (SPEC.md 3.6)
                limit = t + 1
                if ib_due and self.ib.deadline_ns < limit:
                    limit = self.ib.deadline_ns
                self.esb.c_skip_cycles(limit)
                when = self.esb.deadline_ns
            else:
                when = self.ib.deadline_ns
            if when > self.now_ns:
                self.c_set_now(when)  # overdue deadlines fire at the current now
            with gil:
                if esb_first:
                    self.esb.c_expire()
                else:
                    self.ib.c_expire()
        return 0

    cdef void c_set_now(self, uint64_t t) noexcept nogil:
        self.now_ns = t
        if self.ib is not None:
            self.ib.now_ns = t
        if self.esb is not None:
            self.esb.now_ns = t

    # --- run state ----------------------------------------------------------------------------
    def pause(self):
        if self.status_code == RUNNING:
            self.c_set_status(PAUSED)
            self.log("STOP", {}, self.now_ns)
        self.c_end_operation()

    def resume(self):
        if self.status_code in (WATCHDOG, PAUSED, PRELAUNCH):
            self.c_set_status(RUNNING)
            self.log("RESUME", {}, self.now_ns)
            self.c_fire_due(self.now_ns)
        self.c_end_operation()

    def system_reset(self):
        if self.status_code < SHUTDOWN:
            self.request_reset(HOST_RESET)
        self.c_end_operation()

    def set_action(self, int code):
        self.action_code = code
        for dev in (self.ib, self.esb):
            if dev is not None:
                dev.action = ACTIONS[code]

    cdef void c_set_status(self, int status) noexcept nogil:
        self.status_code = status
        if self.ib is not None:
            self.ib._timers_on = status == RUNNING
        if self.esb is not None:
            self.esb._timers_on = status == RUNNING

    cdef request_reset(self, dict data):
        cdef int kind = REQ_SHUTDOWN if self.reboot_shutdown else REQ_RESET  # -no-reboot
        if not self.requests & kind:
            self.requests |= kind
            self.reset_data = data

    def _on_expiry(self, event):
        """The one place an expiry becomes its effect (SPEC.md 4.2)."""
        self.expiries += 1
        self.log("WATCHDOG", {"action": event.action.value}, event.time_ns)
        effect = effect_of(event.action)
        if effect.immediate_event is not None:
            self.log(effect.immediate_event, {}, event.time_ns)
        if effect.power_off:
            self.requests = 0
            self.c_set_status(POWEROFF)
        elif effect.request == "reset":
            self.request_reset(GUEST_RESET)
        elif effect.request == "powerdown":
            self.requests |= REQ_POWERDOWN
        elif effect.request == "stop":
            self.requests |= REQ_STOP

    cdef int c_end_operation(self) except -1 nogil:
        """QEMU's main loop after a command: shutdown, reset, powerdown, stop."""
        if self.requests:
            with gil:
                self.process_requests()
        return 0

    cdef int process_requests(self) except -1:
        cdef int requests = self.requests
        self.requests = 0
        if self.status_code >= SHUTDOWN:
            return 0
        if requests & REQ_SHUTDOWN:
            self.log("SHUTDOWN", dict(self.reset_data), self.now_ns)
            self.c_set_status(SHUTDOWN)
            return 0
        if requests & REQ_RESET:
            for dev in (self.ib, self.esb):
                if dev is not None:
                    dev.reset()
            self.log("RESET", dict(self.reset_data), self.now_ns)
            if self.status_code != RUNNING:
                self.c_set_status(PRELAUNCH)
        if requests & REQ_POWERDOWN:
            self.log("POWERDOWN", {}, self.now_ns)
        if requests & REQ_STOP and self.status_code == RUNNING:
            self.c_set_status(WATCHDOG)
            self.log("STOP", {}, self.now_ns)
        return 0

    # --- op streams -------------------------------------------------------------------------------
    def run(self, bytes data not None):
        """Execute a binary op stream (docs/ops.md) with the GIL released; returns
        (ops executed, values read)."""
        cdef const uint8_t* buf = <const uint8_t*>PyBytes_AS_STRING(data)
        cdef Py_ssize_t n = PyBytes_GET_SIZE(data)
        cdef ReadBuffer reads
        cdef Py_ssize_t executed = 0
        reads.values = NULL
        reads.count = 0
        reads.capacity = 0
        try:
            with nogil:
                self.c_run(buf, n, &reads, &executed)
            return executed, [reads.values[i] for i in range(reads.count)]
        finally:
            free(reads.values)

    cdef int c_run(self, const uint8_t* buf, Py_ssize_t n, ReadBuffer* reads,
                   Py_ssize_t* executed) except -1 nogil:
        cdef Py_ssize_t pos = 0, need
        cdef int code, size, kind
        cdef uint64_t arg, target
        cdef uint32_t value
        while pos < n:
            if self.status_code >= SHUTDOWN:
                break
            code = buf[pos] & 0x0F
            if code == OP_STEP_BARE:
                pos += 1
                if not self.c_next_deadline(&target):
                    target = self.now_ns
                if target > WD_TIME_MAX_NS:
                    target = WD_TIME_MAX_NS
                self.c_run_until(target)
            elif code == OP_STEP or code == OP_SET or code == OP_STEP32:
                need = 5 if code == OP_STEP32 else 9
                if pos + need > n:
                    break
                arg = load_le(buf + pos + 1, need - 1)
                pos += need
                if code == OP_SET:
                    arg &= WD_TIME_MAX_NS
                    self.c_run_until(arg if arg > self.now_ns else self.now_ns)
                else:
                    if code == OP_STEP:
                        arg &= WD_TIME_MAX_NS
                    target = self.now_ns + arg  # both < 2**63: no wrap
                    self.c_run_until(target if target < WD_TIME_MAX_NS else WD_TIME_MAX_NS)
            else:
                kind = code // 3          # 0 out, 1 in, 2 write, 3 read
                size = 1 << (code % 3)
                need = 1 + (2 if kind < 2 else 8) + (size if kind == 0 or kind == 2 else 0)
                if pos + need > n:
                    break
                if kind < 2:
                    arg = load_le(buf + pos + 1, 2)
                else:
                    arg = load_le(buf + pos + 1, 8)
                    if arg > 0xFFFFFFFFFFFFFFFFULL - <uint64_t>(size - 1):
                        arg = 0xFFFFFFFFFFFFFFFFULL - <uint64_t>(size - 1)  # end within 2**64
                if kind == 0 or kind == 2:
                    value = <uint32_t>load_le(buf + pos + need - size, size)
                pos += need
                if kind == 0:
                    self.c_io_write(<uint32_t>arg, size, value)
                elif kind == 1:
                    push_read(reads, self.c_io_read(<uint32_t>arg, size))
                elif kind == 2:
                    self.c_mem_write(arg, size, value)
                else:
                    push_read(reads, self.c_mem_read(arg, size))
                self.c_end_operation()
            executed[0] += 1
        return 0

    # --- state for snapshots --------------------------------------------------------------------
    def get_state(self):
        return self.now_ns, self.status_code, self.action_code, self.cfg_addr

    def set_state(self, uint64_t now, int status, int action_code, uint32_t config_address):
        self.now_ns = now
        self.action_code = action_code
        self.cfg_addr = config_address
        self.requests = 0
        self.c_set_status(status)



cdef int push_read(ReadBuffer* r, uint32_t value) except -1 nogil:
    cdef Py_ssize_t cap
    cdef uint32_t* grown
    if r.count == r.capacity:
        cap = r.capacity * 2 if r.capacity else 64
        grown = <uint32_t*>realloc(r.values, cap * sizeof(uint32_t))
        if grown == NULL:
            with gil:
                raise MemoryError("Machine.run: no memory for the values read")
        r.values = grown
        r.capacity = cap
    r.values[r.count] = value
    r.count += 1
    return 0


@cython.final
cdef class CallFloor:
    """Empty methods with the Machine's per-access signatures: the cost of the Python
    call alone, the floor any per-access API pays (bench/bench_run.py)."""

    def io_write(self, port, size, value):
        pass

    def io_read(self, port, size):
        pass

    def mem_write(self, addr, size, value):
        pass

    def mem_read(self, addr, size):
        pass

    def advance(self, delta_ns):
        pass
