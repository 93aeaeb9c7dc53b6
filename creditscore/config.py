"""Repository paths and params.yaml, anchored at the repository root (never the working directory)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from creditscore.params import Params

ROOT = Path(__file__).resolve().parents[1]


PARAMS_ENV = "CREDITSCORE_PARAMS"  # another parameters file for a run outside DVC (tests, benchmarks)


def params_path() -> Path:
    """The parameters file: $CREDITSCORE_PARAMS when set, else params.yaml at the repository root."""
    return Path(os.environ.get(PARAMS_ENV) or ROOT / "params.yaml")


def load_params(path: Path | None = None) -> Params:
    """The parameters file as the typed, read-only `Params` (`creditscore.params`; ParamsError names the key)."""
    from creditscore.params import validate

    with open(path or params_path(), encoding="utf-8") as handle:
        return validate(yaml.safe_load(handle))


def resolve(path: str | Path) -> Path:
    """A path from params or the command line: absolute as given, else relative to the repository root."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else ROOT / path
