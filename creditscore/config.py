"""Repository paths and params.yaml, anchored at the repository root (never the working directory)."""
from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def load_params(path: Path | None = None) -> dict:
    """params.yaml as a dict, checked against its declaration (`creditscore.params`; ParamsError names the key)."""
    from creditscore.params import validate

    with open(path or ROOT / "params.yaml", encoding="utf-8") as handle:
        return validate(yaml.safe_load(handle))


def resolve(path: str | Path) -> Path:
    """A path from params or the command line: absolute as given, else relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path
