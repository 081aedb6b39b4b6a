"""The packaging itself: implementation switches, the compiled module table, and
that an sdist carries the Cython sources (and no generated C) and builds a wheel."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

import wdcore
from wdcore import _select

ROOT = Path(__file__).resolve().parent.parent


def run_py(code: str, **env) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WDCORE_")}
    full_env.update(env)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=full_env, cwd=str(ROOT / "tests"), timeout=120)


def test_setup_py_builds_every_compiled_module():
    tree = ast.parse((ROOT / "setup.py").read_text())
    listed = next(ast.literal_eval(node.value) for node in ast.walk(tree)
                  if isinstance(node, ast.Assign)
                  and getattr(node.targets[0], "id", "") == "CORE_MODULES")
    assert sorted(listed) == sorted(_select.COMPILED_MODULES)


@pytest.mark.skipif(not _select.HAS_EXTENSIONS, reason="compiled core not built")
def test_compiled_modules_are_extension_modules():
    import importlib
    import importlib.machinery

    for name in _select.COMPILED_MODULES:
        mod = importlib.import_module(name)
        assert mod.__file__.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES)), mod.__file__
    assert wdcore.HAS_EXTENSIONS is True
    assert wdcore.IB700.__module__ == "wdcore._ib700"


def test_no_extensions_selects_the_twin():
    r = run_py("import wdcore; print(wdcore.HAS_EXTENSIONS, wdcore.IB700.__module__)",
               WDCORE_NO_EXTENSIONS="1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "wdcore._ib700_py"]


BLOCK_CORE = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name in ("wdcore._core", "wdcore._ib700", "wdcore._i6300esb"):
            raise ImportError("blocked for the test: " + name)
sys.meta_path.insert(0, Block())
"""


def test_missing_core_falls_back_silently_by_default():
    r = run_py(BLOCK_CORE + "import wdcore; print(wdcore.HAS_EXTENSIONS, wdcore.IB700.__module__)")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["False", "wdcore._ib700_py"]


def test_require_extensions_turns_a_missing_core_into_an_import_error():
    r = run_py(BLOCK_CORE + "import wdcore", WDCORE_REQUIRE_EXTENSIONS="1")
    assert r.returncode != 0
    assert "ImportError" in r.stderr and "WDCORE_REQUIRE_EXTENSIONS" in r.stderr


def test_both_switches_at_once_is_an_error():
    r = run_py("import wdcore", WDCORE_REQUIRE_EXTENSIONS="1", WDCORE_NO_EXTENSIONS="1")
    assert r.returncode != 0 and "both set" in r.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """An sdist of the tree and the wheel built from that sdist alone (once per module):
    (sdist member names, wheel member names)."""
    if not (ROOT / "setup.py").exists():
        pytest.skip("needs the source tree")
    pytest.importorskip("build")
    pytest.importorskip("Cython")
    tmp_path = tmp_path_factory.mktemp("dist")
    out = tmp_path / "dist"
    env = {k: v for k, v in os.environ.items() if not k.startswith("WDCORE_")}
    r = subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation",
                        "--outdir", str(out), str(ROOT)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (sdist,) = out.glob("wdcore-*.tar.gz")
    with tarfile.open(sdist) as tf:
        names = tf.getnames()
    # the wheel is built from the sdist alone, so the sdist is complete
    unpacked = tmp_path / "unpacked"
    with tarfile.open(sdist) as tf:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 (Debian 12 has 3.11.2)
            tf.extractall(unpacked, filter="data")
        else:
            tf.extractall(unpacked)
    (srcdir,) = unpacked.iterdir()
    r = subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation",
                        "--outdir", str(out), str(srcdir)], capture_output=True, text=True,
                       env=env, timeout=600)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
    (wheel,) = out.glob("wdcore-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        wheel_names = zf.namelist()
    return names, wheel_names


def test_sdist_has_sources_and_builds_a_wheel(built):
    names, wheel_names = built
    sources = [m.split(".")[1] + ext for m in _select.COMPILED_MODULES for ext in (".pyx", ".pxd")]
    sources += [twin.split(".")[1] + ".py" for twin in _select.COMPILED_MODULES.values() if twin]
    for src in sources:
        assert any(n.endswith(f"src/wdcore/{src}") for n in names), src
    assert not [n for n in names if n.endswith(".c") or n.endswith(".so")]
    for mod in _select.COMPILED_MODULES:
        stem = mod.replace(".", "/")
        assert any(n.startswith(stem + ".") and n.endswith((".so", ".pyd")) for n in wheel_names), mod


def test_wheel_ships_the_cython_contract(built):
    # `cimport wdcore` (tests/test_cimport.py) needs __init__.pxd and every .pxd it
    # cimports inside the installed package
    names, wheel_names = built
    pxds = sorted(p.name for p in (ROOT / "src" / "wdcore").glob("*.pxd"))
    assert "__init__.pxd" in pxds and "_regs.pxd" in pxds
    assert {m.split(".")[1] + ".pxd" for m in _select.COMPILED_MODULES} <= set(pxds)
    for pxd in pxds:
        assert f"wdcore/{pxd}" in wheel_names, pxd
        assert any(n.endswith(f"src/wdcore/{pxd}") for n in names), pxd
