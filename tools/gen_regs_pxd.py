#!/usr/bin/env python3
"""Write src/wdcore/_regs.pxd from the register rows in src/wdcore/regs.py.

Loads regs.py by path (it imports nothing of wdcore), so it needs no build or install:
    python3 tools/gen_regs_pxd.py
tests/test_structure.py fails while the file and the rows disagree."""
import importlib.util
import pathlib
import sys

SRC = pathlib.Path(__file__).resolve().parent.parent / "src" / "wdcore"
spec = importlib.util.spec_from_file_location("wdcore_regs_rows", SRC / "regs.py")
regs = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = regs  # dataclasses look the module up
spec.loader.exec_module(regs)
(SRC / "_regs.pxd").write_text(regs.pxd_text())
print(f"wrote {SRC / '_regs.pxd'}")
