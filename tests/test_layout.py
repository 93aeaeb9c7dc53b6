"""Imports point one way: the product package never reads the stage scripts, the tests or the benchmarks."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from creditscore.config import ROOT

# package -> the top-level packages it must never import
FORBIDDEN = {"creditscore": {"stages", "tests", "benchmarks", "tools", "app"},
             "app": {"stages", "tests", "benchmarks", "tools"},
             "stages": {"tests", "benchmarks", "tools"},
             "harness": {"tests", "benchmarks"},
             "benchmarks": {"tests"}}


def imported(path: Path) -> set[str]:
    """The top-level package of every import in a file, nested (function-level) imports included."""
    tops = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            tops |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            tops.add(node.module.split(".")[0])
    return tops


def sources(folder: Path) -> list[Path]:
    """The Python files of a folder, without the benchmarks' ignored working copies (.work, .cache)."""
    return [p for p in sorted(folder.rglob("*.py")) if not {".work", ".cache"} & set(p.relative_to(ROOT).parts)]


def test_imported_finds_nested_and_from_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os.path\nfrom stages.train import x\n\ndef f():\n    import tests.server\n")
    assert imported(source) == {"os", "stages", "tests"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package):
    wrong = {f"{path.relative_to(ROOT)} imports {top}" for path in sources(ROOT / package)
             for top in imported(path) & FORBIDDEN[package]}
    assert not wrong, sorted(wrong)


def imported_modules(path: Path) -> set[str]:
    """The full dotted name of every module a file imports (`from a.b import c` is a.b), nested imports included."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_no_code_builds_on_gunicorns_internals():
    """The service runs a worker class gunicorn ships, with documented settings: nothing here subclasses or patches
    gunicorn's workers, HTTP parser or sockets (an upgrade of gunicorn could break it silently)."""
    internal = ("gunicorn.workers", "gunicorn.http", "gunicorn.sock")
    files = [p for folder in ("app", "creditscore", "harness", "stages", "benchmarks", "tools", "tests")
             for p in sources(ROOT / folder)]
    wrong = sorted(f"{p.relative_to(ROOT)} imports {m}" for p in files for m in imported_modules(p)
                   if m.startswith(internal))
    assert not wrong, wrong
    assert len(files) > 100
