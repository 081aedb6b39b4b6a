"""The fuzzers' seed corpus and every saved finding, replayed through the harness logic
(fuzz/harness.py) on both implementations, without atheris."""
from __future__ import annotations

from pathlib import Path

import pytest

from fuzz.harness import check_ops, check_restore
from wdcore import _select

FUZZ = Path(__file__).resolve().parent.parent / "fuzz"
OPS = sorted((FUZZ / "corpus" / "ops").iterdir())
RESTORE = sorted((FUZZ / "corpus" / "restore").iterdir())
CRASHES = sorted(p for p in (FUZZ / "crashes").iterdir() if p.suffix != ".md")
# a finding's file name says which harness it came from: restore-* or ops-*
IMPLS = ("compiled", "python") if _select.HAS_EXTENSIONS else ("python",)


def test_the_corpus_is_there():
    # make_corpus.py writes 31 op streams and 6 snapshots; an empty glob must not pass
    assert len(OPS) >= 31 and len(RESTORE) >= 6


@pytest.mark.parametrize("path", OPS, ids=[p.name for p in OPS])
def test_ops_seed(path):
    result = check_ops(path.read_bytes(), IMPLS)
    executed = result[0]
    assert executed >= 5  # every seed is a real scenario, not a stub


@pytest.mark.parametrize("path", RESTORE, ids=[p.name for p in RESTORE])
def test_restore_seed(path):
    # the seeds are valid snapshots (raw, or a payload the harness wraps): accepted
    assert check_restore(path.read_bytes()) == "accepted"


@pytest.mark.parametrize("path", CRASHES, ids=[p.name for p in CRASHES] or None)
def test_saved_finding(path):
    harness = check_restore if path.name.startswith("restore-") else check_ops
    assert harness(path.read_bytes()) is not None


def test_scenario_seeds_do_what_they_say():
    # the Linux mainline seed with a 1 s heartbeat ends in a WATCHDOG reset, and the
    # i6300ESB's stage-1 interrupt seed shows GINTSR set and cleared
    _, _, events, _, _ = check_ops((FUZZ / "corpus" / "ops" / "linux_mainline_expire").read_bytes(), IMPLS)
    assert [e["event"] for e in events][-2:] == ["WATCHDOG", "RESET"]
    _, reads, _, _, _ = check_ops((FUZZ / "corpus" / "ops" / "stage1_interrupt").read_bytes(), IMPLS)
    assert reads[-2:] == [1, 0]


def test_regression_machine_restore_device_counter_must_match():
    """fuzz_restore finding (fuzz/crashes/restore-machine-device-counter-mismatch): a
    Machine snapshot whose devices' arming counters differ from the machine's own was
    accepted, but the devices share one counter, so the state read back differently.
    Such data is now refused with ValueError, and the Machine is left unchanged."""
    from wdcore import Machine, _snapshot

    data = (FUZZ / "crashes" / "restore-machine-device-counter-mismatch").read_bytes()
    assert data[0] & 0x80 and (data[0] & 0x7F) % 3 == 2  # a wrapped Machine payload
    m = Machine()
    m.io_write(0x443, 1, 0x0D)
    before = m.snapshot()
    with pytest.raises(ValueError, match="arming counter"):
        m.restore(_snapshot.wrap(_snapshot.KIND_MACHINE, data[1:]))
    assert m.snapshot() == before
    assert check_restore(data) == "refused"
