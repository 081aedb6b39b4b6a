"""The types are checked, not trusted: the compiled modules' stubs against the built
extensions (mypy's stubtest), the Python layer under ``mypy --strict``, and the
declarations ``wdcore.Machine`` repeats for what it inherits against the stub of the
core it inherits them from."""
from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wdcore import _select

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "wdcore"
ALLOWLIST = Path(__file__).resolve().parent / "stubtest_allowlist.txt"
COMPILED = ["wdcore._core", "wdcore._ib700", "wdcore._i6300esb", "wdcore._machine"]

pytest.importorskip("mypy", reason="mypy is in the test extra")


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MYPYPATH")}
    return subprocess.run([sys.executable, "-m", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def test_stubs_match_the_compiled_modules(tmp_path):
    if not _select.HAS_EXTENSIONS:
        if os.environ.get("WDCORE_REQUIRE_EXTENSIONS", "") not in ("", "0"):
            pytest.fail("compiled core required but missing")
        pytest.skip("compiled core not built")
    # from a directory outside the checkout: the installed package, its .so and .pyi
    r = _run(["mypy.stubtest", "--allowlist", str(ALLOWLIST),
              "--mypy-config-file", str(ROOT / "pyproject.toml"), *COMPILED], tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_python_layer_passes_mypy_strict():
    r = _run(["mypy", "--strict", "src/wdcore"], ROOT)
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout + r.stderr


# --- Machine's TYPE_CHECKING block is the core's stub, declaration for declaration -----
def _normal(node: ast.AST | None) -> str:
    """An annotation spelled one way: List[x] -> list[x], Optional[x] -> x | None, ..."""
    if node is None:
        return ""
    text = ast.unparse(node)
    for old, new in (("List[", "list["), ("Tuple[", "tuple["), ("Dict[", "dict["),
                     ("Type[", "type[")):
        text = text.replace(old, new)
    tree = ast.parse(text, mode="eval").body

    class Rewrite(ast.NodeTransformer):
        def visit_Subscript(self, n: ast.Subscript) -> ast.AST:
            self.generic_visit(n)
            name = ast.unparse(n.value)
            args = n.slice.elts if isinstance(n.slice, ast.Tuple) else [n.slice]
            if name == "Optional":
                return ast.BinOp(args[0], ast.BitOr(), ast.Constant(None))
            if name == "Union":
                out = args[0]
                for a in args[1:]:
                    out = ast.BinOp(out, ast.BitOr(), a)
                return out
            return n

    return ast.unparse(Rewrite().visit(tree))


def _declarations(body: list[ast.stmt]) -> dict[str, str]:
    out = {}
    for item in body:
        if isinstance(item, ast.AnnAssign) and isinstance(item.target, ast.Name):
            out[item.target.id] = _normal(item.annotation)
        elif isinstance(item, ast.FunctionDef):
            a = item.args
            params = [(p.arg, _normal(p.annotation)) for p in a.posonlyargs + a.args + a.kwonlyargs]
            kind = ",".join(ast.unparse(d) for d in item.decorator_list)
            key = item.name + ("" if kind in ("", "property") else f"@{kind}")
            out[key] = f"{kind} {params} -> {_normal(item.returns)}"
    return out


def _class(path: Path, name: str) -> ast.ClassDef:
    return next(n for n in ast.parse(path.read_text()).body
                if isinstance(n, ast.ClassDef) and n.name == name)


def test_machine_declares_exactly_what_the_core_provides():
    stub = _declarations(_class(SRC / "_machine.pyi", "MachineCore").body)
    stub.pop("__init__")  # Machine's own constructor
    machine = _class(SRC / "machine.py", "Machine")
    block = next(n for n in machine.body if isinstance(n, ast.If)
                 and ast.unparse(n.test) == "TYPE_CHECKING")
    declared = _declarations(block.body)
    for private in ("_impl", "_front"):  # set by _machine_class, not the core's
        declared.pop(private)
    assert declared == stub
