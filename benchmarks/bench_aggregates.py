"""Two aggregate loops of the reference and threshold stages against the obvious way, on the same data, in one run.

- **Similar clients' quantiles** (reference stage, `groups.summarise`): every group of filter levels (at least
  `MIN_GROUP` clients) needs five quantiles of each compared feature's present values. `group_quantiles` makes
  one `np.quantile` call per group, count of present values and chunk of 32 columns; the obvious way gathers each
  feature of the group on its own and makes one call per group and feature. `every_group_quantiles` runs the
  groups on one thread per core (`threads`), against one after the other on one thread (`counts_at_once`).
  The matrix is the training split of an engineer stage's output (`--features`, its first `--columns` columns, so
  its missing values are the pipeline's); the age and income bands come from its DAYS_BIRTH and AMT_INCOME_TOTAL,
  the contract type, gender and family status are drawn at the Kaggle marginals (gender is never a feature).
- **Gini and KS intervals** (threshold stage): 1,000 stratified bootstrap draws. `gini_ks_intervals` counts each
  draw on the scores sorted once; the obvious way is `bootstrap_intervals` with scikit-learn's `roc_auc_score` and
  `roc_curve` on each draw. Scores of `--holdout` clients, 8% defaulters, drawn binormal (AUC about 0.83).

Both arms must give the same bytes (quantiles) and the same rounded intervals; the run fails otherwise. Reports
each arm's median seconds over `--repeats` (arms alternate) and their ratio; writes
`benchmarks/results/aggregates.json`.

    python -m benchmarks.bench_aggregates --features /path/to/full-scale/data/features   # how the results were made
    python -m benchmarks.bench_aggregates --repeats 1                                      # the default run's features
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.common import write_results
from creditscore.config import ROOT
from creditscore.decision.uncertainty import bootstrap_intervals, gini_ks_intervals
from creditscore.decision.validation import gini, ks
from creditscore.explanation import groups

RESULTS = ROOT / "benchmarks" / "results" / "aggregates.json"
MARGINALS = {"NAME_CONTRACT_TYPE": (["Cash loans", "Revolving loans"], [0.905, 0.095]),
             "CODE_GENDER": (["F", "M", "XNA"], [0.6583, 0.3417 - 1e-5, 1e-5]),
             "NAME_FAMILY_STATUS": (["Married", "Single / not married", "Civil marriage", "Separated", "Widow"],
                                    [0.639, 0.148, 0.097, 0.064, 0.052])}


def group_rows(features: Path, columns: int, seed: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """The values (clients x features, human units) and the rows of every group the reference stage would
    summarise."""
    schema = pl.read_parquet_schema(features / "train.parquet")
    names = [c for c in schema if c not in ("SK_ID_CURR", "TARGET")][:columns]
    frame = pl.read_parquet(features / "train.parquet", columns=list(dict.fromkeys(
        [*names, "DAYS_BIRTH", "AMT_INCOME_TOTAL"])))
    rng = np.random.default_rng(seed)
    n = len(frame)
    drawn = {f: rng.choice(levels, n, p=np.array(p) / sum(p)).tolist() for f, (levels, p) in MARGINALS.items()}
    attributes = groups.attributes({**drawn, "DAYS_BIRTH": frame["DAYS_BIRTH"].to_numpy(),
                                    "AMT_INCOME_TOTAL": frame["AMT_INCOME_TOTAL"].to_numpy()}, [30, 40, 50, 60])
    values = np.empty((n, len(names)))
    for i, c in enumerate(names):
        values[:, i] = groups.human(c, frame[c].to_numpy().astype(np.float32))[0]
    del frame
    codes = np.column_stack([np.unique(attributes[f], return_inverse=True)[1].ravel() for f in groups.FILTERS])
    dims = codes.max(axis=0) + 1
    rows = []
    for combo in np.ndindex(*(dims + 1)):  # a code equal to the filter's level count: any level
        mask = np.all((codes == combo) | (np.asarray(combo) == dims), axis=1)
        if mask.sum() >= groups.MIN_GROUP:
            rows.append(np.flatnonzero(mask))
    return values, rows


def per_column(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One `np.quantile` call per feature, each column of the group gathered on its own: the obvious way."""
    present = np.zeros(values.shape[1], dtype=np.int32)
    out = np.full((values.shape[1], len(groups.QUANTILES)), np.nan)
    for i in range(values.shape[1]):
        column = values[rows, i]
        column = column[~np.isnan(column)]
        present[i] = len(column)
        if len(column) >= groups.MIN_GROUP:
            out[i] = np.quantile(column, groups.QUANTILES)
    return present, out


def timed(f, *args):
    start = time.perf_counter()
    out = f(*args)
    return time.perf_counter() - start, out


def compare(arms: dict, repeats: int, same) -> dict:
    """Each arm's median seconds over the repeats (arms alternate within a repeat) and the ratio to the first."""
    seconds = {name: [] for name in arms}
    outputs = {}
    for _ in range(repeats):
        for name, f in arms.items():
            s, outputs[name] = timed(f)
            seconds[name].append(round(s, 3))
    first, *others = arms
    for name in others:
        if not same(outputs[first], outputs[name]):
            raise SystemExit(f"bench_aggregates: {name} does not give what {first} gives")
    medians = {name: statistics.median(v) for name, v in seconds.items()}
    return {"seconds": seconds, "median_seconds": medians,
            "ratio_to_" + first: {n: round(medians[n] / medians[first], 2) for n in others}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", type=Path, default=ROOT / "data" / "features")
    parser.add_argument("--columns", type=int, default=201, help="compared features (201 at full scale)")
    parser.add_argument("--holdout", type=int, default=61_503, help="hold-out clients (61,503 at full scale)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    values, rows = group_rows(args.features, args.columns, args.seed)
    (clients, columns), blocks = values.shape, len(rows)
    print(f"{blocks} groups of {clients:,} clients x {columns} features", file=sys.stderr, flush=True)

    def quantiles_same(a, b):
        return all(pa.tobytes() == pb.tobytes() and qa.tobytes() == qb.tobytes() for (pa, qa), (pb, qb) in zip(a, b))

    quantiles = compare({"threads": lambda: groups.every_group_quantiles(values, rows),
                         "counts_at_once": lambda: [groups.group_quantiles(values, r) for r in rows],
                         "per_column": lambda: [per_column(values, r) for r in rows]}, args.repeats, quantiles_same)
    rng = np.random.default_rng(args.seed)
    y = (rng.random(args.holdout) < 0.08).astype(np.int64)
    score = rng.normal(size=args.holdout) + 1.35 * y
    statistics_ = {"gini": gini, "ks": lambda t, p: ks(t, p)[0]}
    bootstrap = compare({"counted": lambda: gini_ks_intervals(y, score, seed=args.seed),
                         "sklearn_per_draw": lambda: bootstrap_intervals(y, score, statistics_, seed=args.seed)},
                        args.repeats, lambda a, b: a == b)
    result = {"features": str(args.features), "threads": len(os.sched_getaffinity(0)),
              "group_quantiles": {"groups": blocks, "clients": clients, "features": columns, **quantiles},
              "gini_ks_bootstrap": {"holdout_clients": args.holdout, "draws": 1000,
                                    "intervals": gini_ks_intervals(y, score, seed=args.seed), **bootstrap}}
    write_results(RESULTS, result)
    print(RESULTS.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
