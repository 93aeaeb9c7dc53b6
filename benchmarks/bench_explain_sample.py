"""How many hold-out rows the global ranking needs: the explain stage's ranking on a sample against every row.

The explain stage ranks the features by mean |contribution| over `explain.global_sample` hold-out rows, and the
drift stage compares the first `drift.top_features` of that ranking. The contributions cost time in proportion to
the rows and to the ensemble's trees. This benchmark computes the contributions once on every hold-out row of a
finished run (at most `--rows`), then draws seeded samples of each size and compares the sample's ranking with
the ranking on every row: the share of the top-k kept (k = `drift.top_features`), the Spearman correlation of the
first 2k features' ranks, and whether the first 5 come in the same order. It also times the contributions per
1,000 rows. Results: `benchmarks/results/explain_sample.json`.

    python -m benchmarks.bench_explain_sample --run /tmp/full          # models/ and data/features/ of a run
    python -m benchmarks.bench_explain_sample --sizes 1000 2000 5000 --draws 20
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from benchmarks.common import write_results
from creditscore.config import ROOT, load_params
from creditscore.explanation.contributions import contributions
from creditscore.explanation.reference import load_matrix
from creditscore.serving.bundle import Bundle, load

RESULTS = ROOT / "benchmarks" / "results" / "explain_sample.json"


def ranking(values: np.ndarray) -> np.ndarray:
    """Feature indices by decreasing mean |contribution| (ties in index order, as the explain stage ranks)."""
    return np.argsort(-np.abs(values).mean(axis=0), kind="stable")


def agreement(sample_order: np.ndarray, full_order: np.ndarray, k: int) -> dict:
    """How a sample's ranking agrees with every row's: top-k share kept, Spearman over the first 2k, top 5 order."""
    head = full_order[: 2 * k]
    position = np.empty(len(sample_order), dtype=int)
    position[sample_order] = np.arange(len(sample_order))
    return {"top_k_kept": len(set(sample_order[:k]) & set(full_order[:k])) / k,
            "spearman_top_2k": float(spearmanr(np.arange(len(head)), position[head]).statistic),
            "top_5_same_order": bool(np.array_equal(sample_order[:5], full_order[:5]))}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT, help="a folder with models/bundle.joblib and data/features")
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 2000, 5000, 10000])
    parser.add_argument("--draws", type=int, default=20, help="seeded samples per size")
    parser.add_argument("--rows", type=int, default=40000, help="at most this many hold-out rows as every row")
    args = parser.parse_args()
    params = load_params()
    k = params.drift.top_features
    bundle = load(args.run / "models" / "bundle.joblib", Bundle)
    _, x_hold = load_matrix(args.run / "data" / "features", "holdout", bundle.features)
    rng = np.random.default_rng(params.seed)
    if len(x_hold) > args.rows:
        x_hold = x_hold[np.sort(rng.choice(len(x_hold), size=args.rows, replace=False))]
    started = time.perf_counter()
    values = contributions(bundle.pipeline, x_hold).values
    seconds = time.perf_counter() - started
    full_order = ranking(values)
    sizes = {}
    for size in (s for s in args.sizes if s < len(x_hold)):
        draws = [agreement(ranking(values[np.random.default_rng(seed).choice(len(values), size, replace=False)]),
                           full_order, k) for seed in range(args.draws)]
        sizes[str(size)] = {
            "top_k_kept_mean": round(float(np.mean([d["top_k_kept"] for d in draws])), 4),
            "top_k_kept_min": round(float(np.min([d["top_k_kept"] for d in draws])), 4),
            "spearman_top_2k_median": round(float(np.median([d["spearman_top_2k"] for d in draws])), 4),
            "top_5_same_order_share": round(float(np.mean([d["top_5_same_order"] for d in draws])), 4)}
        print(size, json.dumps(sizes[str(size)]), file=sys.stderr, flush=True)
    write_results(RESULTS, {
        "benchmark": "the global ranking on a sample of hold-out rows against the ranking on every row",
        "command": "python -m benchmarks.bench_explain_sample " + " ".join(sys.argv[1:]),
        "run": {"holdout_rows": len(x_hold), "features": len(bundle.features), "top_k": k,
                "fold_models": len(getattr(bundle.pipeline[-1], "members_", [])) or None, "model": bundle.model},
        "contribution_seconds": round(seconds, 1),
        "contribution_seconds_per_1000_rows": round(1000 * seconds / len(x_hold), 2),
        "draws": args.draws, "sizes": sizes})
    return 0


if __name__ == "__main__":
    sys.exit(main())
