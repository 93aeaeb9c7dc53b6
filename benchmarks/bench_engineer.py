"""Benchmark the engineer stage at full scale against a straightforward pandas implementation.

Generates the full Kaggle volume (307,511 + 48,744 clients, ~58 M history rows), prepares it, then
runs the Polars `engineer` stage and `benchmarks/pandas_reference.py` side by side, alternating,
`--repeats` times, each in its own process (wall time, peak RSS). Checks that both give the same
values for every feature, and writes `benchmarks/results/engineer.json`.

    python -m benchmarks.bench_engineer                  # full scale
    python -m benchmarks.bench_engineer --clients 20000 --repeats 1
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys

import numpy as np
import polars as pl

from benchmarks.common import GENERATE, PREPARE, WORK, measure, median_run, python, write_results
from creditscore.config import ROOT

RESULTS = ROOT / "benchmarks" / "results" / "engineer.json"
POLARS = ("import sys, json; from pathlib import Path; from creditscore.config import load_params; "
          "from stages.engineer import engineer; out = Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True); "
          "engineer(Path(sys.argv[1]), out, load_params().engineer, 42, load_params().protected)")
PANDAS = """
import sys, json, pandas as pd
from pathlib import Path
from benchmarks.pandas_reference import build
from creditscore.features.build import HISTORY, numeric_columns
prepared, out, spec = Path(sys.argv[1]), Path(sys.argv[2]), json.loads(Path(sys.argv[3]).read_text())
app = pd.concat([pd.read_parquet(prepared / f"application_{s}.parquet") for s in ("train", "holdout", "test")],
                ignore_index=True)
tables = {name: pd.read_parquet(prepared / f"{name}.parquet") for name in HISTORY}
frame = build(app, tables, spec, numeric_columns("application_train"), numeric_columns("credit_card_balance"))
frame.reset_index().to_parquet(out)
"""


def compare(features_dir, pandas_file) -> dict:
    """Feature-by-feature agreement of the two implementations (float32 tolerance)."""
    ours = pl.concat([pl.read_parquet(features_dir / f"{s}.parquet").drop("TARGET", strict=False)
                      for s in ("train", "holdout", "test")]).sort("SK_ID_CURR")
    ref = pl.read_parquet(pandas_file).sort("SK_ID_CURR")
    assert ours["SK_ID_CURR"].to_list() == ref["SK_ID_CURR"].to_list(), "different clients"
    names = [c for c in ours.columns if c != "SK_ID_CURR"]
    missing = [c for c in names if c not in ref.columns]
    mismatched = {}
    for c in (n for n in names if n in ref.columns):
        a = ours[c].to_numpy().astype(np.float64)
        b = ref[c].cast(pl.Float64).to_numpy().astype(np.float32).astype(np.float64)
        bad = ~np.isclose(a, b, rtol=1e-5, atol=1e-6, equal_nan=True)
        if bad.any():
            mismatched[c] = int(bad.sum())
    return {"features": len(names), "compared": len(names) - len(missing), "not_in_reference": missing,
            "mismatched_features": mismatched, "equal": not missing and not mismatched}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=307_511)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    raw, prepared, feats, ref = WORK / "raw", WORK / "prepared", WORK / "features", WORK / "pandas.parquet"
    measure(python(GENERATE, raw, args.clients))
    measure(python(PREPARE, raw, prepared, WORK / "prepare.json"))
    shutil.rmtree(raw)
    polars_runs, pandas_runs = [], []
    for _ in range(args.repeats):
        shutil.rmtree(feats, ignore_errors=True)
        polars_runs.append(measure(python(POLARS, prepared, feats)))
        pandas_runs.append(measure(python(PANDAS, prepared, ref, feats / "spec.json")))
    ours, theirs = median_run(polars_runs), median_run(pandas_runs)
    rows = sum(pl.scan_parquet(f).select(pl.len()).collect().item() for f in prepared.glob("*.parquet"))
    result = {"clients": args.clients, "prepared_rows": rows, "repeats": args.repeats,
              "n_features": len(json.loads((feats / "spec.json").read_text())["features"]),
              "polars_engineer": {**ours, "runs": polars_runs}, "pandas_reference": {**theirs, "runs": pandas_runs},
              "speedup": round(theirs["seconds"] / ours["seconds"], 2),
              "memory_ratio_pandas_vs_polars": round(theirs["peak_mib"] / ours["peak_mib"], 2),
              "same_values": compare(feats, ref), "goal": {"seconds": 60, "peak_gib": 4, "speedup": 4}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS, result)
    print(json.dumps({k: v for k, v in result.items() if "runs" not in str(k)}, indent=2))
    shutil.rmtree(WORK, ignore_errors=True)
    return 0 if result["same_values"]["equal"] else 1


if __name__ == "__main__":
    sys.exit(main())
