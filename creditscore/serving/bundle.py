"""The three model artifacts, each defined once, saved and loaded in one place.

- `TrainedModel` (`models/model.joblib`, train stage): the served pipeline (a cross-fitted
  ensemble) and what it was trained on.
- `Bundle` (`models/bundle.joblib`, threshold stage): the trained model with its calibration, threshold,
  cost, feature spec and manifest: everything the API needs to score.
- `Reference` (`models/reference.joblib`, reference stage): what the API and the dashboard show beside a
  score (typical values of granted clients, labels, the global ranking, aggregates of similar clients). It
  holds no row of any client.
- `KnownClients` (`models/clients.joblib`, reference stage): the application_test clients the dashboard opens
  by id. A deployment may leave it out; the API then serves no known clients.

Each carries `format_version`. `load` refuses a file of another kind or version, and, for the served files,
one that does not match the `.sha256` checksum written beside it by `save`, with a message saying what to
do. Every stage, the app and the tests go through `save` and `load`.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar

import joblib

from creditscore.errors import ArtifactError
from creditscore.io import atomic_file
from creditscore.serving.artifacts import FIX, verify, write_checksum

# 3: the bundle serves a cross-fitted ensemble, its calibration has a floor and a ceiling; 4: the reference holds
# aggregates only, and the known clients are a file of their own; 5: the known clients' application rows are Arrow
# IPC bytes of the fields the API reads, so that the file loads without Polars (in the gunicorn master)
FORMAT_VERSION = 5
QUANTILES = [round(0.05 * k, 2) for k in range(1, 20)]  # the reference's distribution grid: 0.05 ... 0.95
T = TypeVar("T")


@dataclass(frozen=True)
class TrainedModel:
    pipeline: Any                  # the fitted pipeline (its last step: the model, or a CrossFitEnsemble)
    features: list[str]            # its input columns, in order
    model: str                     # the served model's name, as in metrics/train.json
    params: dict                   # the winner's settings
    versions: dict                 # python and package versions it was fitted with
    format_version: int = FORMAT_VERSION


@dataclass(frozen=True)
class Bundle:
    pipeline: Any
    features: list[str]
    model: str
    params: dict
    versions: dict
    calibration: dict              # creditscore.decision.calibration: method and fitted numbers
    threshold: float               # refuse when the calibrated probability is at least this
    cost: dict                     # fn_cost, fp_cost
    spec: dict                     # the engineer stage's feature spec (the serving plan is built from it)
    manifest: list                 # name and meaning of every feature
    metrics: dict                  # the threshold stage's metrics
    points: dict                   # base_points, base_odds, pdo: the API's score in points (creditscore.decision.points)
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_trained(cls, trained: TrainedModel, **decision) -> Bundle:
        """The trained model with the decision parts added by the threshold stage."""
        kept = {f.name: getattr(trained, f.name) for f in fields(TrainedModel) if f.name != "format_version"}
        return cls(**kept, **decision)


@dataclass(frozen=True)
class Reference:
    typical: Any                   # median of each feature over granted clients (NaN where unknown)
    typical_fields: dict           # median of each numeric source field of the reasons over granted clients
    labels: dict                   # feature -> plain-language meaning
    ranking: list                  # global mean |contribution| ranking (explain metrics' "global", complete)
    drivers: list                  # the same by source field (as the reasons are grouped), complete
    population: dict               # similar clients: aggregates per combination of filters (groups.summarise)
    key_fields: list[str]          # the fields the dashboard compares against granted and refused clients
    distributions: dict            # their quantiles among granted and refused training clients
    format_version: int = FORMAT_VERSION


@dataclass(frozen=True)
class KnownClients:
    ids: Any                       # SK_ID_CURR of each application_test client
    features: Any                  # their model features (float32 as the feature files hold them; the bundle's order)
    key_values: Any                # their key fields (float64, the reference's key_fields order)
    proba: Any                     # their calibrated probability of default
    application: list              # their prepared application rows, only the fields the API reads (CLIENT_FIELDS
                                   # and those of the serving plan and the reasons): Arrow IPC bytes of each block of
                                   # CLIENT_BLOCK consecutive clients. The what-if starts from them
    format_version: int = FORMAT_VERSION


CLIENT_BLOCK = 512  # known clients per block of application rows: a request reads one block, never the whole file


# A known client's fields that `GET /clients/<id>` shows beside the score
CLIENT_FIELDS = ("SK_ID_CURR", "NAME_CONTRACT_TYPE", "CODE_GENDER", "NAME_INCOME_TYPE", "NAME_EDUCATION_TYPE",
                 "NAME_FAMILY_STATUS", "OCCUPATION_TYPE", "AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY",
                 "AMT_GOODS_PRICE", "DAYS_BIRTH", "DAYS_EMPLOYED", "CNT_CHILDREN", "CNT_FAM_MEMBERS", "OWN_CAR_AGE")


def save(artifact, path: Path, checksum: bool = True, checksum_at: Path | None = None) -> None:
    """Write the artifact atomically (a temporary file renamed into place), then its checksum beside it (or at
    `checksum_at`, a stage's scratch path for it).

    zlib level 3: the LightGBM model strings and the reference's count grids shrink several times, what a host
    stores and pulls; loading decompresses in a fraction of a second."""
    with atomic_file(path) as tmp:
        joblib.dump(artifact, tmp, compress=3)
    if checksum:
        write_checksum(path, to=checksum_at)


def load(path: Path, kind: type[T], checksum: bool = True) -> T:
    """The artifact at `path`, verified against its checksum (when `checksum`), its kind and its format version."""
    if checksum:
        verify(path)
    elif not path.exists():
        raise ArtifactError(f"{path} is missing: {FIX}")
    artifact = joblib.load(path)
    if not isinstance(artifact, kind):
        raise ArtifactError(f"{path} holds a {type(artifact).__name__}, not a {kind.__name__}: it was written by "
                            f"another version of this repository; {FIX}")
    if artifact.format_version != FORMAT_VERSION:
        raise ArtifactError(f"{path} has format version {artifact.format_version}, this code reads "
                            f"{FORMAT_VERSION}; {FIX}")
    return artifact


# Served files loaded by the gunicorn master before it forks its workers (`preload`): each worker then shares their
# memory copy-on-write instead of loading its own copy. Keyed by path; only files that load without Polars.
_PRELOADED: dict[str, tuple[Any, str]] = {}


def preload(path: Path, kind: type) -> None:
    """Verify and load a served file once, in the process that forks the workers (see `verified_load`)."""
    digest = verify(path)
    _PRELOADED[str(path)] = (load(path, kind, checksum=False), digest)


def verified_load(path: Path, kind: type[T]) -> tuple[T, str]:
    """The artifact, checked against the .sha256 the pipeline wrote beside it, its kind and format; and its digest.

    A file the master preloaded from the same path is the one it verified: a worker takes it as it is."""
    if str(path) in _PRELOADED:
        artifact, digest = _PRELOADED[str(path)]
        if isinstance(artifact, kind):
            return artifact, digest
    digest = verify(path)
    return load(path, kind, checksum=False), digest
