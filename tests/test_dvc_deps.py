"""dvc.yaml declares every repository module a stage runs, so DVC never misjudges what a change invalidates."""
from __future__ import annotations

import ast
import shlex
from pathlib import Path

import yaml

from creditscore.config import ROOT

LOCAL = ("creditscore", "stages")


def _module_file(name: str) -> Path | None:
    """The file of a module of this repository (a package's __init__.py when it has code), or None."""
    base = ROOT.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    init = base / "__init__.py"
    return init if init.is_file() and init.read_text().strip() else None  # a room's docstring counts: it is read


def _imported(path: Path) -> set[Path]:
    """Repository files imported by a file, at module level or inside functions."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    files = set()
    for name in names:
        if name.split(".")[0] in LOCAL:
            parts = name.split(".")
            files.update(f for f in (_module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1)) if f)
    return files


def closure(start: Path) -> set[Path]:
    """Every repository file a module runs, transitively."""
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(_imported(path) - seen)
    return seen


def undeclared(stages: dict) -> dict[str, list[str]]:
    """Per stage, the repository files its command runs that no `deps:` entry covers."""
    gaps = {}
    for name, stage in stages.items():
        module = shlex.split(stage["cmd"])[2]  # python -m stages.<name> ...
        deps = [ROOT / d for d in stage.get("deps", []) if "${" not in d]
        missing = sorted(str(f.relative_to(ROOT)) for f in closure(_module_file(module))
                         if not any(f == d or d in f.parents for d in deps))
        if missing:
            gaps[name] = missing
    return gaps


def test_every_stage_declares_the_code_it_runs():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    assert undeclared(stages) == {}


def test_the_check_sees_a_missing_dependency():
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    stage = dict(stages["threshold"])
    stage["deps"] = [d for d in stage["deps"] if d != "creditscore/decision/calibration.py"]
    assert "creditscore/decision/calibration.py" in undeclared({"threshold": stage})["threshold"]
