"""A tiny pipeline run, in process and without DVC: real stages on a small synthetic population, fast settings.

It gives the quick test loop (`python -m pytest -m "not slow"`) a served bundle and reference that the real
stages built, in a minute or less, with no `dvc repro` outputs needed. The figures it gives mean nothing (a few
hundred clients, a few trees); the shapes, names and code paths are the served model's.

    from harness.tiny import build
    run = build(tmp_path)          # run.bundle, run.reference, run.clients, run.params, run.folder
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import yaml

from creditscore.config import PARAMS_ENV, ROOT

N_CLIENTS = 600

# Overrides of params.yaml: every stage runs, each with the least work that still takes its code paths.
FAST = {
    "data": {"n_clients": N_CLIENTS},
    "engineer": {"chunk_clients": 100000},
    "probe": {"probes_per_kind": 2, "seeds": [1], "folds": 2, "validation_folds": 2,
              "model": {"n_estimators": 30, "min_child_samples": 20}},
    "train": {"folds": 3, "models": ["logistic_regression", "lightgbm", "scorecard"], "strategies": ["none"],
              "search_budget": 0, "early_stopping_rounds": 10,
              "lightgbm": {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 7}},
    "explain": {"clients": {"highest": 1, "lowest": 1, "closest": 1}, "lime_samples": 200, "sample": 100,
                "global_sample": 150},
}


@dataclass(frozen=True)
class TinyRun:
    folder: Path
    params: Path
    bundle: Path
    reference: Path
    clients: Path


def merged(base: dict, override: dict) -> dict:
    """`base` with `override` laid over it, nested dicts merged key by key."""
    out = dict(base)
    for key, value in override.items():
        out[key] = merged(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


@contextmanager
def environment(**values: str):
    """Environment variables set for the block, then restored."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def build(folder: Path, overrides: dict | None = None) -> TinyRun:
    """Run generate, prepare, engineer, probe, train, threshold, explain and reference into `folder`; return the
    paths."""
    from stages import engineer, explain, generate, prepare, probe_feature_selection, reference, threshold, train

    folder.mkdir(parents=True, exist_ok=True)
    params = folder / "params.yaml"
    base = yaml.safe_load((ROOT / "params.yaml").read_text())
    params.write_text(yaml.safe_dump(merged(merged(base, FAST), overrides or {}), sort_keys=False))
    d = {name: str(folder / name) for name in (
        "synthetic", "prepared", "features", "selection.json", "probe.png", "model.joblib", "predictions",
        "submission.csv", "plots", "scorecard", "bundle.joblib", "figures", "importance.json", "reference.joblib",
        "clients.joblib", "metrics")}
    m = f"{folder}/metrics"
    steps = [
        (generate, ["--out", d["synthetic"]]),
        (prepare, ["--synthetic", d["synthetic"], "--out", d["prepared"], "--metrics", f"{m}/prepare.json"]),
        (engineer, ["--prepared", d["prepared"], "--out", d["features"], "--metrics", f"{m}/engineer.json"]),
        (probe_feature_selection, ["--features", d["features"], "--out", d["selection.json"], "--plot", d["probe.png"],
                                   "--metrics", f"{m}/probe.json"]),
        (train, ["--features", d["features"], "--selection", d["selection.json"], "--model", d["model.joblib"],
                 "--predictions", d["predictions"], "--submission", d["submission.csv"], "--plots",
                 f"{d['plots']}/train", "--scorecard", d["scorecard"], "--metrics", f"{m}/train.json"]),
        (threshold, ["--predictions", d["predictions"], "--model", d["model.joblib"], "--features", d["features"],
                     "--bundle", d["bundle.joblib"], "--plots", f"{d['plots']}/threshold",
                     "--metrics", f"{m}/threshold.json"]),
        (explain, ["--features", d["features"], "--predictions", d["predictions"], "--prepared", d["prepared"],
                   "--bundle", d["bundle.joblib"], "--figures", d["figures"], "--importance", d["importance.json"],
                   "--metrics", f"{m}/explain.json"]),
        (reference, ["--features", d["features"], "--predictions", d["predictions"], "--prepared", d["prepared"],
                     "--bundle", d["bundle.joblib"], "--importance", d["importance.json"],
                     "--reference", d["reference.joblib"], "--clients", d["clients.joblib"]]),
    ]
    tracking = (folder / "mlflow.db").as_posix()
    with environment(**{PARAMS_ENV: str(params), "MLFLOW_TRACKING_URI": f"sqlite:///{tracking}",
                        "MLFLOW_ARTIFACT_LOCATION": (folder / "mlartifacts").as_uri()}):
        for module, argv in steps:
            code = module.main(argv)
            if code:
                raise RuntimeError(f"tiny pipeline: stage {module.__name__} exited {code} (its error is above)")
    return TinyRun(folder, params, Path(d["bundle.joblib"]), Path(d["reference.joblib"]), Path(d["clients.joblib"]))
