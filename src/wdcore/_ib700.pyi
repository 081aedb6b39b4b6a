# Stub for the compiled IB700 (same API as the twin in _ib700_py.py).
from wdcore._core import Watchdog
from wdcore._snapshot import IB700State

class IB700(Watchdog):
    STATE: type[IB700State]
    def io_write(self, port: int, size: int, value: int) -> None: ...
    def io_read(self, port: int, size: int) -> int: ...
