"""The type stubs match the built module (mypy.stubtest), and the examples pass mypy --strict."""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path

import allowly._native as native

HERE = Path(__file__).resolve().parent
EXAMPLES = HERE.parent / "examples"


def stub_names() -> set[str]:
    import ast

    stub = Path(native.__file__).with_name("_native.pyi")
    tree = ast.parse(stub.read_text())
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    names.discard("__all__")
    return names


def test_stub_is_shipped_and_names_match() -> None:
    runtime = {name for name in dir(native) if not name.startswith("_")} | {"__version__"}
    assert stub_names() == runtime


def test_stubtest() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy.stubtest", "allowly._native"],
        capture_output=True, text=True, cwd=str(HERE.parent.parent),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_examples_pass_mypy_strict() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", *map(str, sorted(EXAMPLES.glob("*.py")))],
        capture_output=True, text=True, cwd=str(HERE.parent.parent),
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_engine_methods_have_stubs() -> None:
    import ast

    stub = Path(native.__file__).with_name("_native.pyi")
    tree = ast.parse(stub.read_text())
    engine = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Engine")
    stubbed = {n.name for n in engine.body if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")}
    runtime = {name for name, _ in inspect.getmembers(native.Engine) if not name.startswith("__")}
    assert stubbed == runtime
