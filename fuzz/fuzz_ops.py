#!/usr/bin/env python3
"""libFuzzer target (OSS-Fuzz Python conventions): an op stream on a Machine.

Logic and invariants: fuzz/harness.py (check_ops).  Coverage comes from the compiled
core's C edges when it is built with WDCORE_SANITIZE=fuzzer (./run fuzz).  The Python
twin is compared on every short input and on a sample of the rest: it is ~100x slower.
"""
import sys
import zlib

import atheris

with atheris.instrument_imports(include=["fuzz.harness"]):
    from fuzz.harness import check_ops

from wdcore import _select  # noqa: E402

TWIN_ALWAYS_BELOW = 24   # bytes
TWIN_SAMPLE = 64         # one longer input in this many


def TestOneInput(data: bytes) -> None:
    if not _select.HAS_EXTENSIONS:
        check_ops(data, ("python",))
    elif len(data) < TWIN_ALWAYS_BELOW or zlib.crc32(data) % TWIN_SAMPLE == 0:
        check_ops(data, ("compiled", "python"))
    else:
        check_ops(data, ("compiled",))


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
