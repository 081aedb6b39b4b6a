"""The snapshot format, shared by the compiled core and the Python twins.

Both implementations hand their fields to the same packer, so identical states give
byte-identical snapshots, and either implementation restores the other's.

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

from wdcore._core_py import TIME_MAX_NS, check_bytes

MAGIC = b"WDCS"
FORMAT_VERSION = 1
KIND_IB700 = 1
KIND_I6300ESB = 2
KIND_MACHINE = 3
_KIND_NAMES = {KIND_IB700: "ib700", KIND_I6300ESB: "i6300esb", KIND_MACHINE: "machine"}

_HEADER = struct.Struct("<4sHBI")
_CRC = struct.Struct("<I")
N_ACTIONS = 7
IB700_MAX_TIMEOUT_NS = 30_000_000_000


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


# --- IB700 -------------------------------------------------------------------------

_IB700 = struct.Struct("<QBBQQQ")  # now, action, armed, deadline, seq, counter


def pack_ib700(now: int, action: int, armed: int, deadline: int, seq: int, counter: int) -> bytes:
    if not armed:
        deadline = seq = 0  # canonical: a disarmed timer has no deadline to remember
    return wrap(KIND_IB700, _IB700.pack(now, action, 1 if armed else 0, deadline, seq, counter))


def unpack_ib700(data: object) -> tuple[int, int, int, int, int, int]:
    """Validated fields ``(now, action, armed, deadline, seq, counter)``."""
    payload = unwrap(data, KIND_IB700)
    if len(payload) != _IB700.size:
        raise ValueError("data has the wrong payload size for an ib700 snapshot")
    now, action, armed, deadline, seq, counter = _IB700.unpack(payload)
    check_time_field(now, "now")
    if action >= N_ACTIONS:
        raise ValueError(f"data holds an unknown action code {action}")
    if armed > 1:
        raise ValueError(f"data holds an invalid armed flag {armed}")
    if armed:
        # an arm happens at or before now and lasts at most 30 s
        if deadline > now + IB700_MAX_TIMEOUT_NS:
            raise ValueError("data holds a deadline further away than any IB700 timeout")
        if seq >= counter:
            raise ValueError("data holds an arming sequence number from the future")
    elif deadline or seq:
        raise ValueError("data holds a deadline for a disarmed timer")
    return now, action, armed, deadline, seq, counter


def check_time_field(t: int, what: str) -> None:
    if t > TIME_MAX_NS:
        raise ValueError(f"data holds {what} beyond 2**63-1 ns")


# --- i6300ESB ------------------------------------------------------------------------

# now, action, armed, deadline, seq, counter | profile, stage1_interrupt, enabled, locked,
# free_run, reboot_disabled, one_mhz, int_type | preload1, preload2 | stage, unlock_state,
# previous-reboot flag, GINTSR | the 256 configuration bytes
_ESB = struct.Struct("<QBBQQQ BBBBBBBB II BBBB 256s")


def pack_i6300esb(now, action, armed, deadline, seq, counter, profile, s1i, enabled, locked,
                  free_run, reboot_disabled, one_mhz, int_type, preload1, preload2, stage,
                  unlock, prev_reboot, gintsr, cfg) -> bytes:
    if not armed:
        deadline = seq = 0
    b = [1 if x else 0 for x in (armed, s1i, enabled, locked, free_run, reboot_disabled,
                                 one_mhz, prev_reboot, gintsr)]
    return wrap(KIND_I6300ESB, _ESB.pack(now, action, b[0], deadline, seq, counter, profile,
                                         b[1], b[2], b[3], b[4], b[5], b[6], int_type,
                                         preload1, preload2, stage, unlock, b[7], b[8],
                                         bytes(cfg)))


def unpack_i6300esb(data: object) -> tuple:
    """Validated fields in pack_i6300esb's order."""
    from wdcore.regs import INITIAL_CONFIG, INT_TYPE_MASK, MAX_STAGE_NS, PRELOAD_MASK, WMASK

    payload = unwrap(data, KIND_I6300ESB)
    if len(payload) != _ESB.size:
        raise ValueError("data has the wrong payload size for an i6300esb snapshot")
    f = _ESB.unpack(payload)
    (now, action, armed, deadline, seq, counter, profile, s1i, enabled, locked, free_run,
     reboot_disabled, one_mhz, int_type, p1, p2, stage, unlock, prev, gintsr, cfg) = f
    check_time_field(now, "now")
    if action >= N_ACTIONS:
        raise ValueError(f"data holds an unknown action code {action}")
    for name, flag in (("armed", armed), ("stage1_interrupt", s1i), ("enabled", enabled),
                       ("locked", locked), ("free_run", free_run),
                       ("reboot_disabled", reboot_disabled), ("one_mhz", one_mhz),
                       ("previous-reboot", prev), ("GINTSR", gintsr)):
        if flag > 1:
            raise ValueError(f"data holds an invalid {name} flag {flag}")
    if profile >= len(INT_TYPE_MASK):
        raise ValueError(f"data holds an unknown profile code {profile}")
    if int_type & ~INT_TYPE_MASK[profile]:
        raise ValueError(f"data holds an INT_TYPE {int_type:#x} the profile cannot store")
    if p1 > PRELOAD_MASK or p2 > PRELOAD_MASK:
        raise ValueError("data holds a preload wider than 20 bits")
    if stage not in (1, 2):
        raise ValueError(f"data holds stage {stage}")
    if unlock > 2:
        raise ValueError(f"data holds unlock state {unlock}")
    if gintsr and not s1i:
        raise ValueError("data holds GINTSR set without the stage-1 interrupt extension")
    if armed:
        if not enabled:
            raise ValueError("data holds a deadline for a disabled watchdog")
        if deadline > now + MAX_STAGE_NS:
            raise ValueError("data holds a deadline further away than any stage")
        if seq >= counter:
            raise ValueError("data holds an arming sequence number from the future")
    elif deadline or seq:
        raise ValueError("data holds a deadline for a disarmed timer")
    for o in range(len(cfg)):
        if (cfg[o] ^ INITIAL_CONFIG[o]) & ~WMASK[o]:
            raise ValueError(f"data changes read-only configuration byte {o:#04x}")
    return f
