"""Running wdcore.clients op lists in the tests: through the Machine's per-access methods
(``io_*``, ``mem_*``, ``advance*``), one call per op, as a guest's accesses arrive.
``Machine.run`` would stop at a finished Machine; these calls keep answering as the bus
does (writes dropped, unclaimed reads), which several tests look at."""
from __future__ import annotations

_WIDTH = {"b": 1, "w": 2, "l": 4}


def do(m, ops) -> list[int]:
    """Apply ``ops`` to Machine ``m``; the values read, in order."""
    reads = []
    for op in ops:
        name = op[0]
        if name == "clock_step":
            if len(op) == 2:
                m.advance(op[1])
            elif m.next_deadline is not None:
                m.advance_to(m.next_deadline)
            continue
        if name == "clock_set":
            if op[1] > m.now:
                m.advance_to(op[1])
            continue
        size = _WIDTH[name[-1]]
        if name.startswith("out"):
            m.io_write(op[1], size, op[2])
        elif name.startswith("in"):
            reads.append(m.io_read(op[1], size))
        elif name.startswith("write"):
            m.mem_write(op[1], size, op[2])
        else:
            reads.append(m.mem_read(op[1], size))
    return reads
