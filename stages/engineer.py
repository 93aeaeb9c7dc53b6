"""DVC stage `engineer`: feature matrices for the training, hold-out and test clients, a spec and a manifest."""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.config import load_params, resolve
from creditscore.features.build import (HISTORY, add_target_encoding, build_features, feature_groups, finalize,
                                        fit_vocabulary, link_column)
from creditscore.data.schema import KEY
from creditscore.features.encoding import encode_out_of_fold, target_encoded_name
from creditscore.features.extras import MEANINGS
from creditscore.features.manifest import build_manifest
from creditscore.io import atomic_dir, write_json
from creditscore.params import check_groups
from creditscore.stage import run as run_stage

SPLITS = ("train", "holdout", "test")


def _log(message: str, start: float) -> None:
    print(f"engineer: {message} ({time.perf_counter() - start:.1f}s)", file=sys.stderr, flush=True)


def _scan_sorted(prepared: Path, name: str) -> pl.LazyFrame:
    """A prepared history table, checked to be sorted by its link column as build_features requires."""
    path, key = prepared / f"{name}.parquet", link_column(name)
    if not pl.read_parquet(path, columns=[key])[key].is_sorted():
        raise ValueError(f"{path}: not sorted by {key}; re-run the prepare stage (dvc repro prepare)")
    return pl.scan_parquet(path)


def fit_spec(prepared: Path, params: dict) -> dict:
    """Vocabulary, groups and settings that define the features (no label is used)."""
    tables = {name: pl.scan_parquet(prepared / f"{name}.parquet") for name in HISTORY}
    vocab = fit_vocabulary(pl.scan_parquet(prepared / "application_train.parquet"), tables,
                           int(params["max_levels"]), int(params["min_count"]))
    return {"vocab": vocab, "groups": check_groups(params["groups"]), "poly": dict(params["poly"]), "target_encoding": {}}


def _target_encode(frames: dict, apps: dict, spec: dict, params: dict, seed: int) -> dict:
    """Out-of-fold encoding on the training clients; the full-train mapping for hold-out and test."""
    settings = params["target_encoding"]
    if not settings["enabled"]:
        return frames
    y = apps["train"]["TARGET"].to_numpy()
    for column in settings["columns"]:
        encoded, mapping, prior = encode_out_of_fold(apps["train"][column], y, int(settings["folds"]),
                                                     float(settings["smoothing"]), seed)
        frames["train"] = frames["train"].with_columns(pl.Series(target_encoded_name(column), encoded))
        spec["target_encoding"][column] = {"mapping": mapping, "prior": prior}
    for split in ("holdout", "test"):
        frames[split] = add_target_encoding(frames[split], apps[split], spec)
    return frames


def engineer(prepared: Path, out: Path, params: dict, seed: int) -> dict:
    """Build and write the three feature matrices, spec.json and manifest.json; return a report."""
    start = time.perf_counter()
    spec = fit_spec(prepared, params)
    _log("vocabulary fitted", start)
    apps = {s: pl.read_parquet(prepared / f"application_{s}.parquet") for s in SPLITS}
    tables = {name: _scan_sorted(prepared, name) for name in HISTORY}
    stacked = pl.concat([apps[s].drop("TARGET", strict=False) for s in SPLITS], how="vertical")
    features = build_features(stacked.lazy(), tables, spec)
    _log(f"{features.width - 1} features for {features.height:,} clients", start)
    bounds = np.cumsum([0] + [apps[s].height for s in SPLITS])
    frames = {s: features.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i])) for i, s in enumerate(SPLITS)}
    frames = _target_encode(frames, apps, spec, params, seed)
    groups = feature_groups(spec)
    groups.update({target_encoded_name(c): "target_encoding" for c in spec["target_encoding"]})
    spec["features"] = [n for n in frames["train"].columns if n != KEY]
    for s in SPLITS:
        matrix = finalize(frames[s], spec["features"])
        if s != "test":
            matrix = matrix.insert_column(1, apps[s]["TARGET"])
        matrix.write_parquet(out / f"{s}.parquet", compression="lz4")
    (out / "spec.json").write_text(json.dumps(spec, indent=1) + "\n")
    manifest = build_manifest(spec["features"], groups, MEANINGS)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    _log("written", start)
    per_group = {g: sum(1 for n in spec["features"] if groups.get(n) == g) for g in set(groups.values())}
    return {"n_features": len(spec["features"]), "features_per_group": per_group,
            "clients": {s: apps[s].height for s in SPLITS}, "seconds": round(time.perf_counter() - start, 1)}


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prepared", required=True, help="folder of Parquet tables written by prepare")
    parser.add_argument("--out", required=True, help="folder for the feature matrices, spec and manifest")
    parser.add_argument("--metrics", required=True, help="JSON file of feature counts")
    args = parser.parse_args(argv)
    params = load_params()  # engineer.groups is checked there (creditscore.params)
    with atomic_dir(resolve(args.out)) as scratch:
        report = engineer(resolve(args.prepared), scratch, params["engineer"], int(params["seed"]))
    report.pop("seconds")  # timings belong to benchmarks, not to metrics compared across runs
    write_json(resolve(args.metrics), report)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("engineer", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
