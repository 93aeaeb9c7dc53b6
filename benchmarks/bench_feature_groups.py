"""Cross-validated AUC effect of each feature group (not a speed benchmark).

Reads the engineer stage's training matrix and manifest, then scores LightGBM with stratified 5-fold
CV (out-of-fold AUC) on: the application features alone, application + each history group, everything, and everything
but each group. Writes `benchmarks/results/feature_groups.json`.

    dvc repro engineer && python -m benchmarks.bench_feature_groups [--features data/features]
"""
from __future__ import annotations

import argparse
import json
import sys

import numpy as np
import polars as pl

from benchmarks.common import write_results
from creditscore.config import ROOT, resolve
from creditscore.modelling.models import make_pipeline
from creditscore.modelling.training import out_of_fold

RESULTS = ROOT / "benchmarks" / "results" / "feature_groups.json"
MODEL = dict(n_estimators=250, learning_rate=0.05, num_leaves=31, min_child_samples=50, colsample_bytree=0.5,
             subsample=0.8, subsample_freq=1, reg_lambda=1.0, n_jobs=2)


def cv_auc(x: np.ndarray, y: np.ndarray, folds: int, seed: int, params: dict) -> float:
    """Out-of-fold AUC of LightGBM (the train stage's own pipeline and folds)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, out_of_fold(make_pipeline("lightgbm", "none", seed, params), x, y, folds, seed)[0]))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", default="data/features")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    folder = resolve(args.features)
    manifest = json.loads((folder / "manifest.json").read_text())
    train = pl.read_parquet(folder / "train.parquet")
    y = train["TARGET"].to_numpy()
    groups = {}
    for entry in manifest:
        groups.setdefault(entry["group"], []).append(entry["name"])
    history = [g for g in groups if g != "application"]
    configs = {"application": ["application"], **{f"application + {g}": ["application", g] for g in history},
               "all": list(groups), **{f"all - {g}": [h for h in groups if h != g] for g in history}}
    results = {}
    for name, chosen in configs.items():
        cols = [c for g in chosen for c in groups[g]]
        auc = cv_auc(train.select(cols).to_numpy().astype(np.float32), y, 5, args.seed, MODEL)
        results[name] = {"cv_auc": round(auc, 4), "n_features": len(cols)}
        print(f"{name:40s} out-of-fold AUC {auc:.4f} ({len(cols)} features)", file=sys.stderr)
    base, full = results["application"]["cv_auc"], results["all"]["cv_auc"]
    for name, r in results.items():
        r["gain_vs_application"] = round(r["cv_auc"] - base, 4)
        if name.startswith("all - "):
            r["loss_vs_all"] = round(full - r["cv_auc"], 4)
    out = {"clients": int(train.height), "positives": int(y.sum()), "folds": 5, "seed": args.seed, "model": MODEL,
           "data": json.loads((ROOT / "metrics" / "prepare.json").read_text()).get("source"), "results": results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
