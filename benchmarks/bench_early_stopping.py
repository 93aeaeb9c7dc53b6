"""LightGBM's cross-fitted early stopping: the folds keep every tree they grew, against fitting the short ones again.

`training.early_stopping_out_of_fold` lets each fold grow trees until its validation AUC stops improving, then
serves every fold at the count of best mean AUC. LightGBM trims a booster stopped early to its own best count, so
a fold whose best count is below the common one would have to be fitted again from the start at that count (the
reference below). The folds now keep every tree they grew and are cut to the common count. Both give the same
trees; this benchmark checks that the out-of-fold predictions are equal to the bit, and times both on the same
matrix, alternating the arms, with the median over repeats. Results: `benchmarks/results/early_stopping.json`, one
run per matrix size.

    python -m benchmarks.bench_early_stopping                       # the default run's training clients
    python -m benchmarks.bench_early_stopping --features /tmp/full/data/features \\
        --selection /tmp/full/data/selection/features.json --rows 50000   # a stratified sample of a larger run
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl
from sklearn.base import clone
from sklearn.model_selection import StratifiedKFold

from benchmarks.common import commit, write_results
from creditscore.config import ROOT, load_params
from creditscore.modelling.leaves import leaf_floor
from creditscore.modelling.models import make_pipeline
from creditscore.modelling.sampling import stratified_sample
from creditscore.modelling.training import _fit_transform, _transform, early_stopping_out_of_fold, model_settings

RESULTS = ROOT / "benchmarks" / "results" / "early_stopping.json"


def refit_short_folds(pipeline, x, y, folds: int, seed: int, max_rounds: int, patience: int):
    """The reference: `lgb.early_stopping` trims each fold to its own best count; a fold below the common count
    is fitted again from the start with that count. Returns the predictions, the count and the folds fitted again."""
    fitted, curves = [], []
    for fit, val in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = clone(pipeline)
        model.steps[-1][1].set_params(n_estimators=max_rounds, metric="auc")
        x_fit, y_fit = _fit_transform(model.steps[:-1], x[fit], y[fit])
        x_val = _transform(model.steps[:-1], x[val])
        record: dict = {}
        model.steps[-1][1].fit(x_fit, y_fit, eval_X=x_val, eval_y=y[val],
                               callbacks=[lgb.early_stopping(patience, verbose=False), lgb.record_evaluation(record)])
        fitted.append((model, fit, val))
        curves.append(record["valid_0"]["auc"])
    reached = min(len(c) for c in curves)
    rounds = int(np.argmax(np.mean([c[:reached] for c in curves], axis=0))) + 1
    oof, again = np.zeros(len(y)), 0
    for model, fit, val in fitted:
        if model.steps[-1][1].booster_.num_trees() < rounds:
            model = clone(pipeline)
            model.steps[-1][1].set_params(n_estimators=rounds)
            model.fit(x[fit], y[fit])
            again += 1
        model.steps[-1][1].booster_.best_iteration = rounds
        oof[val] = model.predict_proba(x[val])[:, 1]
    return oof, rounds, again


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, default=ROOT / "data" / "features")
    parser.add_argument("--selection", type=Path, default=ROOT / "data" / "selection" / "features.json")
    parser.add_argument("--rows", type=int, help="a stratified sample of this many training clients (default: all)")
    parser.add_argument("--strategies", nargs="+", default=["none", "undersample"])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    params = load_params()
    train = params.train
    names = json.loads(args.selection.read_text())["features"]
    frame = pl.read_parquet(args.features / "train.parquet", columns=["TARGET", *names])
    x, y = frame.select(names).to_numpy().astype(np.float32), frame["TARGET"].to_numpy()
    if args.rows:
        rows = stratified_sample(len(y), y, args.rows, params.seed)
        x, y = x[rows], y[rows]
    settings = leaf_floor(model_settings(train, names)["lightgbm"], y, 1.0 - 1.0 / train.folds)
    cases = []
    for strategy in args.strategies:
        pipeline = make_pipeline("lightgbm", strategy, params.seed, settings)
        fit_args = (pipeline, x, y, train.folds, params.seed, int(settings["n_estimators"]), train.early_stopping_rounds)
        times = {"kept": [], "refit": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            kept, rounds, _, models = early_stopping_out_of_fold(*fit_args)
            times["kept"].append(time.perf_counter() - start)
            start = time.perf_counter()
            reference, reference_rounds, again = refit_short_folds(*fit_args)
            times["refit"].append(time.perf_counter() - start)
        case = {"strategy": strategy, "rounds": rounds, "folds_fitted_again": again,
                "fold_trees": [m.steps[-1][1].booster_.num_trees() for m in models],
                "same_count": rounds == reference_rounds, "same_predictions": bool(np.array_equal(kept, reference)),
                "seconds": {k: [round(t, 2) for t in v] for k, v in times.items()},
                "median_seconds": {k: round(statistics.median(v), 2) for k, v in times.items()}}
        case["ratio_refit_to_kept"] = round(case["median_seconds"]["refit"] / case["median_seconds"]["kept"], 3)
        print(json.dumps(case), flush=True)
        cases.append(case)
    run = {"commit": commit(), "clients": len(y), "features": len(names), "folds": train.folds,
           "patience": train.early_stopping_rounds, "repeats": args.repeats, "cases": cases}
    previous = json.loads(RESULTS.read_text())["runs"] if RESULTS.exists() else []
    runs = sorted([r for r in previous if r["clients"] != len(y)] + [run], key=lambda r: r["clients"])
    write_results(RESULTS, {"runs": runs})  # one run per matrix size, each with its own commit
    return 0


if __name__ == "__main__":
    sys.exit(main())
