"""Atomic outputs: a stage either writes all of its outputs or leaves none behind."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield a scratch folder beside `final`; it replaces `final` only if the block succeeds."""
    with atomic_outputs(final) as (scratch,):
        scratch.mkdir()
        yield scratch


@contextmanager
def atomic_file(final: Path, mode: int = 0o644) -> Iterator[Path]:
    """Yield a temporary path beside `final` (creating the folder); it replaces `final` only if the block succeeds."""
    final.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{final.name}.", dir=final.parent)
    os.close(handle)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, mode)  # mkstemp creates 0600; outputs are meant to be read
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_outputs(*finals: Path) -> Iterator[tuple[Path, ...]]:
    """Yield one scratch path beside each of a stage's outputs (file or folder, the block makes it); only if the
    block succeeds do they all replace the outputs, so that a failing run keeps every previous output as it was.

    The block must create every scratch path. The replacing itself is a rename per output, done once the whole
    stage's work is finished.
    """
    scratch = []
    for final in finals:
        final.parent.mkdir(parents=True, exist_ok=True)
        scratch.append(Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=final.parent)) / final.name)
    try:
        yield tuple(scratch)
        missing = [str(final) for final, tmp in zip(finals, scratch) if not tmp.exists()]
        if missing:
            raise RuntimeError(f"the stage wrote no {missing[0]}")
    except BaseException:
        for tmp in scratch:
            shutil.rmtree(tmp.parent, ignore_errors=True)
        raise
    for final, tmp in zip(finals, scratch):
        if tmp.is_file():
            os.chmod(tmp, 0o644)
        if final.is_dir() and not final.is_symlink():
            shutil.rmtree(final)
        elif tmp.is_dir() and final.exists():
            final.unlink()
        os.replace(tmp, final)
        tmp.parent.rmdir()


def write_json(path: Path, data: dict) -> None:
    """Write JSON atomically, keys in a stable order."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def write_rows(path: Path, rows: list[dict]) -> None:
    """Write plot rows (a JSON list) for `dvc plots`, atomically."""
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(rows) + "\n", encoding="utf-8")
