"""Two runs' served models on the same hold-out, paired: what a change did at a size the speed harness does not run.

`bench_scale --keep DIR` keeps a run's models and feature files. Given two such folders of runs on the same data (the
same size and seed, so the same hold-out clients), this scores each run's `models/model.joblib` on its own hold-out
feature file, checks that both hold-outs are the same clients with the same labels, and reports both AUCs and the
paired DeLong difference (second minus first) with its 95% interval, as `bench_speed` does on its seeds.

    python -m benchmarks.bench_pair_runs --before /work/full --after /work/full2 --name restack-min-weight-full-scale

Results: `benchmarks/results/pairs.json`, one entry per `--name`, stamped with the commit.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import joblib
import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

from benchmarks.common import commit
from creditscore.config import ROOT
from creditscore.decision.uncertainty import paired_auc_difference
from creditscore.serving.bundle import TrainedModel

RESULTS = ROOT / "benchmarks" / "results" / "pairs.json"


def holdout_scores(run: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """A kept run's hold-out clients, labels and its served model's scores (the trained pipeline's probability)."""
    trained = joblib.load(run / "models" / "model.joblib")  # an earlier format version too: the pipeline is read
    if not isinstance(trained, TrainedModel):
        raise SystemExit(f"{run}/models/model.joblib holds a {type(trained).__name__}, not a trained model")
    frame = pl.read_parquet(run / "data" / "features" / "holdout.parquet",
                            columns=["SK_ID_CURR", "TARGET", *trained.features])
    x = frame.select(trained.features).to_numpy().astype(np.float64)
    return (frame["SK_ID_CURR"].to_numpy(), frame["TARGET"].to_numpy(), trained.pipeline.predict_proba(x)[:, 1],
            trained.model)


def pair(before: Path, after: Path) -> dict:
    ids_a, y_a, p_a, model_a = holdout_scores(before)
    ids_b, y_b, p_b, model_b = holdout_scores(after)
    if not (np.array_equal(ids_a, ids_b) and np.array_equal(y_a, y_b)):
        raise SystemExit(f"{before} and {after} hold out different clients: pair runs of the same size and seed")
    return {"clients": int(len(y_a)), "defaults": int(y_a.sum()),
            "before": {"run": str(before), "model": model_a, "auc": round(float(roc_auc_score(y_a, p_a)), 5)},
            "after": {"run": str(after), "model": model_b, "auc": round(float(roc_auc_score(y_b, p_b)), 5)},
            "after_minus_before": paired_auc_difference(y_a, p_b, p_a)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, required=True, help="a run folder kept by bench_scale --keep")
    parser.add_argument("--after", type=Path, required=True)
    parser.add_argument("--name", required=True, help="the key of this pair in pairs.json")
    args = parser.parse_args()
    result = {"commit": commit(), **pair(args.before, args.after)}
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"pairs": {}}
    results["pairs"][args.name] = result
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
