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


def test_imported_finds_nested_and_from_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("import os.path\nfrom stages.train import x\n\ndef f():\n    import tests.server\n")
    assert imported(source) == {"os", "stages", "tests"}


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package):
    wrong = {f"{path.relative_to(ROOT)} imports {top}" for path in sorted((ROOT / package).rglob("*.py"))
             for top in imported(path) & FORBIDDEN[package]}
    assert not wrong, sorted(wrong)
