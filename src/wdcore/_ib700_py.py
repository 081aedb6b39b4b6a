"""The IB700 in plain Python: the fallback, and the oracle for the compiled core.

Same API and behaviour as ``_ib700.pyx``, bit for bit (SPEC.md §2): register logic only,
on the shared :class:`~wdcore._core_py.Watchdog` base.  No cleverness here on purpose.
"""
from __future__ import annotations

from wdcore import _snapshot
from wdcore._core_py import (CALL_IO_WRITE, WD_DUE, Watchdog, check_port, check_size, check_value,
                             guarded, rebuild)
from wdcore.regs import IB700_INDEX, IB700_PORT_FIRST, IB700_PORT_LAST, IB700_START
from wdcore.regs import IB700_TIMEOUT_NS as TIMEOUT_NS  # per index: 30 - 2*index seconds


class IB700(Watchdog):
    """iBase IB700 watchdog (QEMU ``ib700``): ports 0x441/0x442 stop, 0x443/0x444 start."""

    KIND = "ib700"

    # --- guest side -----------------------------------------------------------
    @guarded(CALL_IO_WRITE)
    def io_write(self, port: int, size: int, value: int) -> None:
        """A guest write of ``size`` bytes to I/O ``port``."""
        port = check_port(port)
        size = check_size(size)
        value = check_value(value, size)
        flags = self.c_write(port, size, value)
        if flags:
            self.c_end_access(flags)
            if not self._guard.nested:  # nested: held for the operation in progress
                self.c_raise_errors()

    def io_read(self, port: int, size: int) -> int:
        """A guest read: the IB700 reads all-ones of the width, with no side effect."""
        check_port(port)
        size = check_size(size)
        return (1 << (8 * size)) - 1

    def c_write(self, port: int, size: int, value: int) -> int:
        if size == 4 or port < IB700_PORT_FIRST or port > IB700_PORT_LAST:
            return 0  # dwords reach no handler; other ports are not ours
        self.c_write_byte(port, value & 0xFF)
        if size == 2 and (port == IB700_PORT_FIRST or port == IB700_START):
            self.c_write_byte(port + 1, value >> 8)  # 0x442/0x444 words: high byte dropped
        return WD_DUE if self.c_due(self._timer.now) else 0

    def c_write_byte(self, port: int, byte: int) -> None:
        if port < IB700_START:
            self.c_disarm()
        else:
            self.c_arm(TIMEOUT_NS[byte & IB700_INDEX])

    # --- Watchdog hooks ---------------------------------------------------------
    def c_fire(self) -> int:
        self.c_disarm()
        return 1  # every IB700 deadline is an expiry

    def c_reset(self) -> None:
        self.c_disarm()

    # --- snapshot (the record: _snapshot.IB700State) ------------------------------------
    STATE = _snapshot.IB700State

    def _state(self) -> _snapshot.IB700State:
        return _snapshot.IB700State(**self._timer_fields())

    def _apply(self, state: _snapshot.IB700State) -> None:
        """Take a validated IB700State."""
        self._apply_timer(state)

    def __repr__(self) -> str:
        armed = f"deadline={self._timer.deadline}" if self._timer.armed else "disarmed"
        return f"<IB700 (python) now={self._timer.now} {armed} action={self.action.value}>"


def _from_snapshot(data: bytes) -> object:
    """Unpickle what this module's IB700 pickled as before the Watchdog base (wdcore
    0.1's first releases): like new pickles (_core_py.rebuild), in the implementation
    selected where it is loaded."""
    return rebuild(IB700.KIND, data)
