"""Keep dvc.yaml's code dependencies equal to what each stage imports: no hand-kept file lists.

For every stage, the repository modules its command runs (`python -m stages.<name>`), followed through every
import of `creditscore` and `stages` modules (nested imports included), become its code `deps:`, sorted. Data
dependencies (anything that is not a repository .py file or package folder) are kept as they are. A package's
empty `__init__.py` is not listed: editing a file that is never read must not re-run a stage.

    python tools/dvc_deps.py           # rewrite dvc.yaml's code deps
    python tools/dvc_deps.py --check   # exit 1, naming the stage, when dvc.yaml differs from the imports
"""
from __future__ import annotations

import argparse
import ast
import re
import shlex
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
LOCAL = ("creditscore", "stages")


def module_file(name: str) -> Path | None:
    """The file of a repository module (a package's __init__.py when it has code, a docstring included), or None."""
    base = ROOT.joinpath(*name.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    init = base / "__init__.py"
    return init if init.is_file() and init.read_text().strip() else None


def imported(path: Path) -> set[Path]:
    """Repository files a file imports, at module level or inside functions (parent packages included)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{a.name}" for a in node.names)
    files = set()
    for name in names:
        parts = name.split(".")
        if parts[0] in LOCAL:
            files.update(f for f in (module_file(".".join(parts[:i])) for i in range(1, len(parts) + 1)) if f)
    return files


def closure(start: Path) -> set[Path]:
    """Every repository file a module runs, transitively."""
    seen, todo = set(), [start]
    while todo:
        path = todo.pop()
        if path not in seen:
            seen.add(path)
            todo.extend(imported(path) - seen)
    return seen


def is_code(dep: str) -> bool:
    """A repository code dependency (a .py file or a folder of the code packages), as opposed to data."""
    return dep.split("/")[0] in LOCAL and "${" not in dep


def code_deps(stage: dict) -> list[str]:
    module = shlex.split(stage["cmd"])[2]  # python -m stages.<name> ...
    return sorted(str(f.relative_to(ROOT)) for f in closure(module_file(module)))


def expected(stages: dict) -> dict[str, list[str]]:
    """Per stage, its deps as they should be: the code it imports, then its data deps in their order."""
    return {name: code_deps(stage) + [d for d in stage.get("deps", []) if not is_code(d)]
            for name, stage in stages.items()}


def rewrite(text: str, deps: dict[str, list[str]]) -> str:
    """dvc.yaml's text with each stage's `deps:` list replaced (every other line, comments included, kept)."""
    out, stage, skipping = [], None, False
    for line in text.splitlines(keepends=True):
        header = re.match(r"^  ([A-Za-z0-9_-]+):\s*$", line)
        if header:
            stage = header.group(1)
        if skipping:
            if re.match(r"^      - ", line):
                continue
            skipping = False
        out.append(line)
        if stage in deps and re.match(r"^    deps:\s*$", line):
            out.extend(f"      - {d}\n" for d in deps[stage])
            skipping = True
    return "".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="report a stale dvc.yaml instead of rewriting it")
    args = parser.parse_args()
    path = ROOT / "dvc.yaml"
    text = path.read_text()
    stages = yaml.safe_load(text)["stages"]
    new = rewrite(text, expected(stages))
    if args.check:
        stale = [n for n, d in expected(stages).items() if d != stages[n].get("deps", [])]
        if stale:
            print(f"dvc.yaml: the code deps of {', '.join(stale)} differ from their imports: "
                  "run python tools/dvc_deps.py", file=sys.stderr)
            return 1
        return 0
    path.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
