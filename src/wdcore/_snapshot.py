"""The snapshot format, shared by the compiled core and the Python twins.

Both implementations describe their state as the same record (``IB700State``,
``I6300ESBState``; the Machine's is ``MachineState``) and the record packs itself, so
identical states give byte-identical snapshots, and either implementation restores the
other's.  Each payload layout is declared once, as a table of ``Row``s (field name,
struct code, the rule that docs/snapshot.md states); the struct format is derived from
the table, and tests/test_snapshot_format.py holds the docs to the tables.

Layout (little-endian), see docs/snapshot.md:

    magic   4s   b"WDCS"
    version u16  FORMAT_VERSION; any other version is refused, never guessed at
    kind    u8   KIND_IB700 | KIND_I6300ESB | KIND_MACHINE
    length  u32  payload length in bytes
    payload      kind-specific, fixed layout per version
    crc32   u32  zlib.crc32 of everything before it
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from wdcore._core_py import COUNTER_MAX, TIME_MAX_NS, check_bytes
from wdcore.actions import ACTIONS, RUN_STATES
from wdcore.regs import (IB700_MAX_TIMEOUT_NS, INITIAL_CONFIG, INT_TYPE_MASK, MAX_STAGE_NS,
                         PRELOAD_MASK, PROFILES, WMASK)

if TYPE_CHECKING:
    from dataclasses import Field
    from typing import TypeVar

    from typing_extensions import Self

    _C = TypeVar("_C", bound=type)

MAGIC = b"WDCS"
FORMAT_VERSION = 1
KIND_IB700 = 1
KIND_I6300ESB = 2
KIND_MACHINE = 3
_KIND_NAMES = {KIND_IB700: "ib700", KIND_I6300ESB: "i6300esb", KIND_MACHINE: "machine"}

_HEADER = struct.Struct("<4sHBI")
_CRC = struct.Struct("<I")
N_ACTIONS = len(ACTIONS)      # action codes: QEMU's enum order
N_STATUSES = len(RUN_STATES)  # the Machine's run states


def wrap(kind: int, payload: bytes) -> bytes:
    body = _HEADER.pack(MAGIC, FORMAT_VERSION, kind, len(payload)) + payload
    return body + _CRC.pack(zlib.crc32(body))


def unwrap(data: object, kind: int) -> bytes:
    """Check envelope and checksum; return the payload.  ``ValueError`` on anything off."""
    raw = check_bytes(data)
    if len(raw) < _HEADER.size + _CRC.size:
        raise ValueError(f"data is not a wdcore snapshot: {len(raw)} bytes is too short")
    magic, version, got_kind, length = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise ValueError("data is not a wdcore snapshot: bad magic")
    if version != FORMAT_VERSION:
        raise ValueError(f"data is snapshot format version {version}; "
                         f"this wdcore reads version {FORMAT_VERSION}")
    if got_kind != kind:
        raise ValueError(f"data is a {_KIND_NAMES.get(got_kind, got_kind)} snapshot, "
                         f"not a {_KIND_NAMES[kind]} one")
    if len(raw) != _HEADER.size + length + _CRC.size:
        raise ValueError("data has the wrong length for its header")
    (crc,) = _CRC.unpack_from(raw, len(raw) - _CRC.size)
    if zlib.crc32(raw[:-_CRC.size]) != crc:
        raise ValueError("data is corrupt: checksum mismatch")
    return raw[_HEADER.size:-_CRC.size]


def check_time_field(t: int, what: str) -> None:
    if t > TIME_MAX_NS:
        raise ValueError(f"data holds {what} beyond 2**63-1 ns")


# COUNTER_MAX (_core_py's), the largest arming counter a snapshot may hold, is the
# counter's ceiling.  Arming from 0 never gets there (it takes 2**63 armings: a
# billion a second for 292 years; a free-running i6300ESB arms at most once per 480 ns,
# under 2**55 times in all of virtual time); a device restored at it stays there
# however much it arms, so every snapshot restore accepts can be used and snapshotted
# again.


def check_counter_field(counter: int) -> None:
    if counter > COUNTER_MAX:
        raise ValueError(f"data holds an arming counter {counter} beyond 2**63, "
                         "which arming never reaches")


# --- layouts -------------------------------------------------------------------------

@dataclass(frozen=True)
class Row:
    """One payload field: the record attribute it fills, its struct code, and the rule
    that ``unpack`` enforces, in the words docs/snapshot.md uses.

    Code ``"?"`` marks a flag: it packs as 0 or 1 from any truthy value, is read back as
    the stored byte (so a value other than 0 or 1 can be refused) and comes out of
    ``unpack`` as a bool."""

    name: str
    code: str
    rule: str


class Layout:
    """A payload's fixed layout: its rows in order and the struct derived from them."""

    def __init__(self, *rows: Row) -> None:
        self.rows = rows
        self.names = tuple(r.name for r in rows)
        self.flags = frozenset(r.name for r in rows if r.code == "?")
        self.struct = struct.Struct("<" + "".join(r.code for r in rows))
        self._raw = struct.Struct("<" + "".join("B" if r.code == "?" else r.code for r in rows))
        self.size = self.struct.size
        #: each row's byte offset in the payload (the compiled codec reads and writes there)
        self.offsets = {r.name: struct.calcsize("<" + "".join(x.code for x in rows[:i]))
                        for i, r in enumerate(rows)}

    def pack(self, values: dict[str, object]) -> bytes:
        """The payload bytes of ``values`` (a value per row name)."""
        return self.struct.pack(*(values[n] for n in self.names))

    def unpack_from(self, payload: bytes, offset: int = 0) -> SimpleNamespace:
        """The stored values, by row name, as stored (flags as the byte's int value)."""
        return SimpleNamespace(**dict(zip(self.names, self._raw.unpack_from(payload, offset))))

    def typed(self, raw: SimpleNamespace) -> dict[str, Any]:
        """``raw`` as record arguments: flags become bools (the values are struct's)."""
        return {n: bool(v) if n in self.flags else v for n, v in vars(raw).items()}


def _laid_out(layout: Layout, extra: tuple[str, ...] = ()) -> Callable[[_C], _C]:
    """Class decorator: the record's fields are the layout's rows (then ``extra``), in order."""
    def bind(cls: _C) -> _C:
        names = tuple(f.name for f in fields(cls))
        if names != layout.names + extra:
            raise TypeError(f"{cls.__name__} fields {names} do not match its layout")
        return cls
    return bind


def _timer_values(record: DeviceState) -> dict[str, object]:
    values = {f.name: getattr(record, f.name) for f in fields(record)}
    if not record.armed:
        values["deadline"] = values["seq"] = 0  # canonical: a disarmed timer has no deadline
    return values


class DeviceState:
    """What every device record shares: it starts with the timer fields (now, action,
    armed, deadline, seq, counter), packs a disarmed timer canonically, and unpacks
    through one sequence of checks; a device's record adds its own in ``_check_fields``
    (after the flags, before the timer) and ``_check_rest`` (last)."""

    KIND: ClassVar[int]
    NAME: ClassVar[str]            #: "an ib700": as the size error names the payload
    MAX_DEADLINE_NS: ClassVar[int]  #: the longest a deadline can lie ahead of now
    TOO_FAR: ClassVar[str]         #: the error for a deadline further away than that
    FLAG_LABELS: ClassVar[dict[str, str]] = {}  #: flag names as errors spell them, where they differ
    LAYOUT: ClassVar[Layout]       #: the payload's rows

    if TYPE_CHECKING:  # every record is a dataclass starting with the timer fields
        __dataclass_fields__: ClassVar[dict[str, Field[Any]]]
        now: int
        action: int
        armed: bool
        deadline: int
        seq: int
        counter: int

    def pack(self) -> bytes:
        return wrap(self.KIND, self.LAYOUT.pack(_timer_values(self)))

    @classmethod
    def unpack(cls, data: object) -> Self:
        """The validated record of a snapshot of this kind; ``ValueError`` on anything off."""
        payload = unwrap(data, cls.KIND)
        if len(payload) != cls.LAYOUT.size:
            raise ValueError(f"data has the wrong payload size for {cls.NAME} snapshot")
        f = cls.LAYOUT.unpack_from(payload)
        check_time_field(f.now, "now")
        if f.action >= N_ACTIONS:
            raise ValueError(f"data holds an unknown action code {f.action}")
        for row in cls.LAYOUT.rows:
            if row.code == "?" and getattr(f, row.name) > 1:
                label = cls.FLAG_LABELS.get(row.name, row.name)
                raise ValueError(f"data holds an invalid {label} flag {getattr(f, row.name)}")
        check_counter_field(f.counter)
        cls._check_fields(f)
        if f.armed:
            cls._check_armed(f)
            # an arm happens at or before now and lasts at most MAX_DEADLINE_NS
            if f.deadline > f.now + cls.MAX_DEADLINE_NS:
                raise ValueError(cls.TOO_FAR)
            if f.seq >= f.counter:
                raise ValueError("data holds an arming sequence number from the future")
        elif f.deadline or f.seq:
            raise ValueError("data holds a deadline for a disarmed timer")
        cls._check_rest(f)
        return cls(**cls.LAYOUT.typed(f))

    def configuration(self) -> dict[str, object]:
        """The constructor keywords of the device this record is the state of: what a
        device is built with and ``restore`` never changes.  Each is also the name of the
        device's attribute that reads it back.  None by default; a device record with
        configuration fields overrides this."""
        return {}

    def check_configuration(self, device: object) -> None:
        """A standalone device's restore: refuse (ValueError) the record of a device
        built otherwise (a Machine checks its own configuration instead)."""
        for name, value in self.configuration().items():
            own = getattr(device, name)
            if own != value:
                raise ValueError(f"data holds {self.NAME} whose {name} differs from this "
                                 f"device's ({value!r}, not {own!r})")

    @classmethod
    def _check_fields(cls, f: SimpleNamespace) -> None:
        pass

    @classmethod
    def _check_armed(cls, f: SimpleNamespace) -> None:
        pass

    @classmethod
    def _check_rest(cls, f: SimpleNamespace) -> None:
        pass


# --- IB700 ---------------------------------------------------------------------------

IB700_LAYOUT = Layout(
    Row("now", "Q", "the device's time, ns; ≤ 2^63−1"),
    Row("action", "B", "action code in QEMU's enum order: 0 `reset`, 1 `shutdown`, "
                       "2 `poweroff`, 3 `pause`, 4 `debug`, 5 `none`, 6 `inject-nmi`"),
    Row("armed", "?", "a timeout is pending; 0 or 1"),
    Row("deadline", "Q", "when it expires, ns; 0 when disarmed; ≤ now + 30 s when armed "
                         "(it may be < now while a Machine is stopped)"),
    Row("seq", "Q", "arming sequence number; 0 when disarmed; < counter when armed"),
    Row("counter", "Q", "the next arming sequence number; ≤ 2^63 (arming from 0 never gets "
                        "there; at 2^63 it stays, each arming taking 2^63−1)"),
)


@_laid_out(IB700_LAYOUT)
@dataclass(frozen=True)
class IB700State(DeviceState):
    """An IB700's whole state, as a snapshot holds it.

    ``IB700State(...).pack()`` is the snapshot (envelope included);
    ``IB700State.unpack(data)`` validates one and returns the record.  ``action`` is the
    code of a ``wdcore.actions.ACTIONS`` member; ``deadline`` and ``seq`` mean nothing
    while not ``armed`` and pack as 0."""

    now: int
    action: int
    armed: bool
    deadline: int
    seq: int
    counter: int

    LAYOUT: ClassVar[Layout] = IB700_LAYOUT

    KIND = KIND_IB700
    NAME = "an ib700"
    MAX_DEADLINE_NS = IB700_MAX_TIMEOUT_NS
    TOO_FAR = "data holds a deadline further away than any IB700 timeout"


# --- i6300ESB ------------------------------------------------------------------------

I6300ESB_LAYOUT = Layout(
    Row("now", "Q", "as for the IB700"),
    Row("action", "B", "as for the IB700"),
    Row("armed", "?", "a stage is timing; 0 or 1; 1 only while enabled"),
    Row("deadline", "Q", "when the stage ends, ns; 0 when disarmed; "
                         "≤ now + 1 030 791 168 000 ns (the longest stage) when armed"),
    Row("seq", "Q", "as for the IB700"),
    Row("counter", "Q", "as for the IB700"),
    Row("profile", "B", "0 `qemu`, 1 `qemu-7.2`; must match the restoring device's"),
    Row("stage1_interrupt", "?", "the stage-1 interrupt extension; 0 or 1; must match the "
                                 "restoring device's"),
    Row("enabled", "?", "WDT Lock bit 1 (WDT_ENABLE); 0 or 1"),
    Row("locked", "?", "WDT Lock bit 0 (WDT_LOCK); 0 or 1"),
    Row("free_run", "?", "WDT Lock bit 2 (WDT_FREE_RUN); 0 or 1"),
    Row("reboot_disabled", "?", "WDT Configuration bit 5 (WDT_REBOOT_DISABLE); 0 or 1"),
    Row("one_mhz", "?", "WDT Configuration bit 2 (1 MHz scale); 0 or 1"),
    Row("int_type", "B", "WDT Configuration INT_TYPE bits; within the profile's mask "
                         "(0x03 `qemu`, 0x11 `qemu-7.2`)"),
    Row("preload1", "I", "Preload Value 1; ≤ 0xFFFFF"),
    Row("preload2", "I", "Preload Value 2; ≤ 0xFFFFF"),
    Row("stage", "B", "the current stage; 1 or 2"),
    Row("unlock_state", "B", "progress of the 0x80, 0x86 unlock sequence; 0, 1 or 2"),
    Row("prev_reboot", "?", "the previous-reboot flag; 0 or 1"),
    Row("gintsr", "?", "GINTSR bit 0; 0 or 1; 1 only with stage1_interrupt"),
    Row("config", "256s", "the PCI configuration bytes; every read-only bit holds its "
                          "value at construction"),
)


@_laid_out(I6300ESB_LAYOUT)
@dataclass(frozen=True)
class I6300ESBState(DeviceState):
    """An i6300ESB's whole state, as a snapshot holds it.

    ``I6300ESBState(...).pack()`` is the snapshot (envelope included);
    ``I6300ESBState.unpack(data)`` validates one and returns the record.  ``profile``
    indexes ``wdcore.regs.PROFILES``; ``config`` is the 256-byte configuration space;
    ``deadline`` and ``seq`` mean nothing while not ``armed`` and pack as 0."""

    now: int
    action: int
    armed: bool
    deadline: int
    seq: int
    counter: int
    profile: int
    stage1_interrupt: bool
    enabled: bool
    locked: bool
    free_run: bool
    reboot_disabled: bool
    one_mhz: bool
    int_type: int
    preload1: int
    preload2: int
    stage: int
    unlock_state: int
    prev_reboot: bool
    gintsr: bool
    config: bytes

    LAYOUT: ClassVar[Layout] = I6300ESB_LAYOUT

    KIND = KIND_I6300ESB
    NAME = "an i6300esb"
    MAX_DEADLINE_NS = MAX_STAGE_NS
    TOO_FAR = "data holds a deadline further away than any stage"
    FLAG_LABELS = {"prev_reboot": "previous-reboot", "gintsr": "GINTSR"}

    def configuration(self) -> dict[str, object]:
        return {"profile": PROFILES[self.profile], "stage1_interrupt": self.stage1_interrupt}

    @classmethod
    def _check_fields(cls, f: SimpleNamespace) -> None:
        if f.profile >= len(INT_TYPE_MASK):
            raise ValueError(f"data holds an unknown profile code {f.profile}")
        if f.int_type & ~INT_TYPE_MASK[f.profile]:
            raise ValueError(f"data holds an INT_TYPE {f.int_type:#x} the profile cannot store")
        if f.preload1 > PRELOAD_MASK or f.preload2 > PRELOAD_MASK:
            raise ValueError("data holds a preload wider than 20 bits")
        if f.stage not in (1, 2):
            raise ValueError(f"data holds stage {f.stage}")
        if f.unlock_state > 2:
            raise ValueError(f"data holds unlock state {f.unlock_state}")
        if f.gintsr and not f.stage1_interrupt:
            raise ValueError("data holds GINTSR set without the stage-1 interrupt extension")

    @classmethod
    def _check_armed(cls, f: SimpleNamespace) -> None:
        if not f.enabled:
            raise ValueError("data holds a deadline for a disabled watchdog")

    @classmethod
    def _check_rest(cls, f: SimpleNamespace) -> None:
        for o, (byte, initial, writable) in enumerate(zip(f.config, INITIAL_CONFIG, WMASK)):
            if (byte ^ initial) & ~writable:
                raise ValueError(f"data changes read-only configuration byte {o:#04x}")


# --- Machine -------------------------------------------------------------------------

MACHINE_LAYOUT = Layout(
    Row("device_mask", "B", "bit 0 IB700, bit 1 i6300ESB; must match the Machine's devices"),
    Row("esb_slot", "B", "must match the Machine's esb_slot"),
    Row("profile", "B", "0 `qemu`, 1 `qemu-7.2`; must match the Machine's"),
    Row("reboot_action", "B", "0 `reset`, 1 `shutdown`; must match the Machine's"),
    Row("stage1_interrupt", "B", "0 or 1; must match the Machine's"),
    Row("now", "Q", "the Machine's time, ns; ≤ 2^63−1"),
    Row("status", "B", "0 `running`, 1 `watchdog`, 2 `paused`, 3 `prelaunch`, "
                       "4 `shutdown`, 5 `poweroff`"),
    Row("action", "B", "action code, as for the IB700"),
    Row("config_address", "I", "the PCI CONFIG_ADDRESS register (port 0xCF8); any value"),
    Row("counter", "Q", "the arming counter the devices share; ≤ 2^63, as for the IB700"),
)
#: the device mask's bits, in snapshot order: the IB700's, then the i6300ESB's
DEVICE_BITS = (0x01, 0x02)
_DEVICE_LENGTH = struct.Struct("<I")


@_laid_out(MACHINE_LAYOUT, extra=("devices",))
@dataclass(frozen=True)
class MachineState:
    """A Machine's snapshot: its header fields and its devices' own snapshots.

    The first five fields are the Machine's configuration, as codes (``profile`` indexes
    ``wdcore.regs.PROFILES``, ``reboot_action`` and ``status`` the Machine's tables,
    ``stage1_interrupt`` is 0 or 1).  ``devices`` holds one whole device snapshot per bit
    set in ``device_mask``, in ``DEVICE_BITS`` order; in the payload each is preceded by
    its length as a u32.

    ``unpack`` checks the envelope, the framing and the ranges of ``now``, ``status`` and
    ``action``.  Whether the configuration fits the restoring Machine, and whether the
    devices' snapshots are valid and agree with the header, is the Machine's to check."""

    device_mask: int
    esb_slot: int
    profile: int
    reboot_action: int
    stage1_interrupt: int
    now: int
    status: int
    action: int
    config_address: int
    counter: int
    devices: tuple[bytes, ...]

    LAYOUT: ClassVar[Layout] = MACHINE_LAYOUT

    def pack(self) -> bytes:
        values = {n: getattr(self, n) for n in self.LAYOUT.names}
        body = b"".join(_DEVICE_LENGTH.pack(len(d)) + d for d in self.devices)
        return wrap(KIND_MACHINE, self.LAYOUT.pack(values) + body)

    @classmethod
    def unpack(cls, data: object, config: dict[str, int] | None = None,
               check_device: Callable[[int, bytes, SimpleNamespace], None] | None = None
               ) -> MachineState:
        """The record of a Machine snapshot, its header ranges and framing checked;
        ``ValueError`` on anything off.  ``config`` (the five configuration fields of the
        restoring Machine) is checked first, so that a snapshot of another configuration
        is refused as such; ``check_device(i, blob, header)`` is called on each device's
        snapshot as soon as it is framed, so the first fault in the data is the one
        reported."""
        payload = unwrap(data, KIND_MACHINE)
        if len(payload) < cls.LAYOUT.size:
            raise ValueError("data has the wrong payload size for a machine snapshot")
        f = cls.LAYOUT.unpack_from(payload)
        if config is not None and any(getattr(f, k) != v for k, v in config.items()):
            raise ValueError("data is a snapshot of a differently configured Machine "
                             "(devices, esb_slot, profile, reboot_action or stage1_interrupt)")
        check_time_field(f.now, "now")
        if f.status >= N_STATUSES:
            raise ValueError(f"data holds an unknown status code {f.status}")
        if f.action >= N_ACTIONS:
            raise ValueError(f"data holds an unknown action code {f.action}")
        check_counter_field(f.counter)
        devices: list[bytes] = []
        pos = cls.LAYOUT.size
        for bit in DEVICE_BITS:
            if not f.device_mask & bit:
                continue
            if pos + _DEVICE_LENGTH.size > len(payload):
                raise ValueError("data is truncated")
            (n,) = _DEVICE_LENGTH.unpack_from(payload, pos)
            pos += _DEVICE_LENGTH.size
            blob = payload[pos:pos + n]
            if len(blob) != n:
                raise ValueError("data is truncated")
            if check_device is not None:
                check_device(len(devices), blob, f)
            devices.append(blob)
            pos += n
        if pos != len(payload):
            raise ValueError("data has trailing bytes")
        return cls(**cls.LAYOUT.typed(f), devices=tuple(devices))
