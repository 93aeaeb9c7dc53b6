"""The served files and their checksums: verified once, then served from a private snapshot.

The API's gunicorn master calls `snapshot` before it forks any worker: it checks the bundle, the
reference and the known clients (when served) against the `.sha256` files the pipeline wrote, copies them into a private folder and points
the workers at the copies. A worker that boots later (a crash, routine recycling) loads exactly the
files the master verified, whatever happened on disk since; `/health` reports a changed file.
This module imports nothing heavy (no joblib, no Polars): it runs in the gunicorn master.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from creditscore.errors import ArtifactError

FIX = "run `dvc repro` to build it, or `dvc pull` to fetch it from the DVC remote (docs/deploying.md)"
ENV = {"bundle": "MODEL_BUNDLE", "reference": "MODEL_REFERENCE", "clients": "MODEL_CLIENTS"}
NO_CLIENTS = ("this deployment serves no known clients (MODEL_CLIENTS is off, or models/clients.joblib was left out "
              "of it); score an application with POST /predict")


def served_paths(env, models: Path) -> dict[str, Path]:
    """The files the API serves: the bundle and the reference (`MODEL_BUNDLE`, `MODEL_REFERENCE`, default in
    `models`), and the known clients when there are any to serve: `MODEL_CLIENTS` names the file (it must then
    exist), `off` serves none, and unset serves `models/clients.joblib` when the deployment has it."""
    paths = {"bundle": Path(env.get("MODEL_BUNDLE") or models / "bundle.joblib"),
             "reference": Path(env.get("MODEL_REFERENCE") or models / "reference.joblib")}
    clients = env.get("MODEL_CLIENTS") or ""
    if clients.lower() != "off" and (clients or (models / "clients.joblib").exists()):
        paths["clients"] = Path(clients or models / "clients.joblib")
    return paths


def file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def checksum_path(path: Path) -> Path:
    """Where a served file's sha256 is recorded: beside it, `<name>.sha256`."""
    return path.with_name(path.name + ".sha256")


def write_checksum(path: Path, to: Path | None = None) -> str:
    """Record a file's sha256 beside it, as the pipeline does for every served file; or at `to` (a stage's
    scratch path for it, renamed beside the file with the stage's other outputs)."""
    digest = file_digest(path)
    (to or checksum_path(path)).write_text(digest + "\n")
    return digest


def verify(path: Path) -> str:
    """The file's sha256 when it matches the `.sha256` recorded beside it; else an ArtifactError saying what to do."""
    checksum = checksum_path(path)
    if not path.exists():
        raise ArtifactError(f"{path} is missing: {FIX}")
    if not checksum.exists():
        raise ArtifactError(f"{checksum} is missing, so {path.name} cannot be verified: {FIX}")
    digest, expected = file_digest(path), checksum.read_text().strip()
    if digest != expected:
        raise ArtifactError(f"{path} does not match its recorded checksum ({digest[:12]} != {expected[:12]}): "
                            f"the file is corrupt or from another run; {FIX}")
    return digest


def snapshot(paths: dict[str, Path]) -> Path:
    """Verify each file, copy it with its checksum into a private folder, and point the environment at the copies.

    `MODEL_BUNDLE` / `MODEL_REFERENCE` / `MODEL_CLIENTS` then name the copies; `<VAR>_SOURCE` the original files and
    `<VAR>_DIGEST` the digest verified at start, for `/health`.
    """
    folder = Path(tempfile.mkdtemp(prefix="credit-api-models-"))  # mode 0700
    for name, path in paths.items():
        digest = verify(path)
        copy = folder / path.name
        shutil.copy2(path, copy)  # with its modification time: GET /model reports it as the training time
        if file_digest(copy) != digest:  # the file changed while it was copied
            raise ArtifactError(f"{path} changed while it was being copied; start again")
        checksum_path(copy).write_text(digest + "\n")
        os.environ[ENV[name]] = str(copy)
        os.environ[f"{ENV[name]}_SOURCE"] = str(path)
        os.environ[f"{ENV[name]}_DIGEST"] = digest
    return folder


class SourceWatch:
    """Whether the original of a served file still holds the verified bytes (hashed again only when it changes)."""

    def __init__(self, source: Path, digest: str):
        self.source, self.digest, self._seen = source, digest, None

    def changed(self) -> str | None:
        """None while the source holds the served bytes; else what is different."""
        try:
            stat = self.source.stat()
        except FileNotFoundError:
            return f"{self.source} is gone"
        key = (stat.st_size, stat.st_mtime_ns)
        if self._seen is None or self._seen[0] != key:
            self._seen = (key, file_digest(self.source) != self.digest)
        return f"{self.source} no longer matches the served file" if self._seen[1] else None
