#!/usr/bin/env python3
"""libFuzzer target (OSS-Fuzz Python conventions): restore() fed arbitrary bytes must
raise only ValueError and leave the object unchanged (fuzz/harness.py, check_restore).
The snapshot checks are Python shared by both implementations, so they are the code
instrumented here."""
import sys

import atheris

with atheris.instrument_imports(include=["fuzz.harness", "wdcore._snapshot", "wdcore.machine"]):
    from fuzz.harness import check_restore


def TestOneInput(data: bytes) -> None:
    check_restore(data)


def main():
    atheris.Setup(sys.argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
