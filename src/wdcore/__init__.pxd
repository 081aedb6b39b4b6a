# wdcore's C-level contract for downstream Cython (README.md "Cython: cimport wdcore").
#
#     cimport wdcore                              # wdcore.IB700, wdcore.timer_due, ...
#     from wdcore cimport IB700, MachineCore, WD_DUE, timer_due
#
# Every name here is declared, with its contract, in the module it comes from:
#   _core.pxd      Timer, ArmCounter, Watchdog, WD_DUE/WD_SIGNAL, timer_due/timer_before,
#                  piece_size, the host-argument checks arg_*, the busy Guard
#                  (guard_enter / guard_leave and the CALL_* codes a caller names)
#   _ib700.pxd     IB700
#   _i6300esb.pxd  I6300ESB
#   _machine.pxd   MachineCore (and the protocol a caller of it follows), its run
#                  states RUNNING .. POWEROFF, ReadBuffer, RunProgress and RUN_*
#   _regs.pxd      every register, port and bit as a C enum (generated from regs.py)
#
# Conventions of the whole contract:
#   - time is virtual ns in a uint64_t, never above WD_TIME_MAX_NS (2**63-1);
#     sizes are bytes, in {1, 2, 4}; values are the access's little-endian lanes;
#   - `noexcept nogil` runs without the GIL and cannot fail;
#     `except -1 nogil` runs without the GIL and takes it itself when Python must run
#     (an expiry's events and callbacks, a line change, a request); -1 means a callback
#     raised and the Python exception is set;
#     `except -1` (no nogil) needs the GIL: call it inside `with gil:` from nogil code;
#   - the c_* access methods take what a guest can produce (any port, address, offset and
#     value within the access size) and never fail; what no guest can produce (a size
#     outside {1, 2, 4}, a value wider than its size, an offset past its window, time
#     moving backwards) is the caller's to rule out -- the C level does not check it, and
#     the arg_* checks or the Python-level methods do;
#   - an object is used from one thread at a time, and the caller keeps a reference to
#     it for as long as it calls it (a typed local or attribute does); the Python
#     methods check the first with the object's Guard, a C-level caller that may share
#     the object with Python code enters it too (guard_enter, guard_leave);
#
# The compiled core must be installed: cimporting modules import wdcore._core,
# _ib700, _i6300esb and _machine when they load (the twin has no C level).

from wdcore._core cimport (WD_DUE, WD_SIGNAL, WD_TIME_MAX_NS, ArmCounter, Timer, Watchdog,
                           Guard, guard_enter, guard_leave, CALL_IO_WRITE, CALL_IO_READ,
                           CALL_MEM_WRITE, CALL_MEM_READ, CALL_ADVANCE, CALL_ADVANCE_TO,
                           CALL_RUN, arg_config_offset, arg_delta, arg_port, arg_size, arg_time,
                           arg_value, arg_window_offset, piece_size, timer_before, timer_due)
from wdcore._ib700 cimport IB700
from wdcore._i6300esb cimport I6300ESB
from wdcore._machine cimport (MAX_DEVICES, PAUSED, POWEROFF, PRELAUNCH, RUNNING, SHUTDOWN,
                              WATCHDOG, MachineCore, ReadBuffer, RunProgress, RUN_END,
                              RUN_FINISHED, RUN_MAX_OPS, RUN_MAX_EVENTS, RUN_ERROR)
from wdcore._regs cimport *
