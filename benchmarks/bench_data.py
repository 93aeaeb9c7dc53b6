"""Benchmark the data foundation at full Kaggle scale: generate, then prepare, against a pandas baseline.

Each step runs in its own process, so its wall time and peak resident memory (ru_maxrss of that
process, from wait4) are its own. The `prepare` stage (Polars) and the obvious alternative
(pandas.read_csv + DataFrame.to_parquet of the same eight files, no validation) run side by side on
the same CSV files, alternating, `--repeats` times; medians are reported with their ratio.

    python -m benchmarks.bench_data                 # full scale: 307,511 labelled clients
    python -m benchmarks.bench_data --clients 20000 --repeats 1
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys

from benchmarks.common import GENERATE, PREPARE, WORK, measure, median_run, python, write_results
from creditscore.config import ROOT

RESULTS = ROOT / "benchmarks" / "results" / "data.json"
PANDAS_BASELINE = """
import sys, pandas as pd
from pathlib import Path
from creditscore.data.schema import TABLES
src, out = Path(sys.argv[1]), Path(sys.argv[2]); out.mkdir(parents=True, exist_ok=True)
for t in TABLES.values():
    dtypes = {c: ("str" if k == "str" else "float64") for c, k in t.columns}
    pd.read_csv(src / t.file, dtype=dtypes, encoding="utf-8-sig").to_parquet(out / f"{t.name}.parquet")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=307_511, help="labelled clients (full scale: 307,511)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    raw, out = WORK / "raw", WORK / "prepared"
    shutil.rmtree(WORK, ignore_errors=True)
    gen = measure(python(GENERATE, raw, args.clients))
    rows = {}
    for f in raw.glob("*.csv"):
        with open(f, "rb") as handle:
            rows[f.stem] = sum(buf.count(b"\n") for buf in iter(lambda: handle.read(1 << 24), b"")) - 1
    csv_gb = sum(f.stat().st_size for f in raw.glob("*.csv")) / 1e9
    polars_runs, pandas_runs = [], []
    for _ in range(args.repeats):
        polars_runs.append(measure(python(PREPARE, raw, out, WORK / "prepare.json")))
        pandas_runs.append(measure(python(PANDAS_BASELINE, raw, WORK / "pandas")))
    prepare, baseline = median_run(polars_runs), median_run(pandas_runs)
    result = {
        "clients": {"labelled": args.clients, "total": rows["application_train"] + rows["application_test"]},
        "rows": rows, "history_rows": sum(v for k, v in rows.items() if not k.startswith("application")),
        "csv_gb": round(csv_gb, 2), "repeats": args.repeats,
        "generate": gen, "prepare_polars": {**prepare, "runs": polars_runs},
        "pandas_read_write_baseline": {**baseline, "runs": pandas_runs},
        "generate_plus_prepare_seconds": round(gen["seconds"] + prepare["seconds"], 1),
        "speedup_prepare_vs_pandas": round(baseline["seconds"] / prepare["seconds"], 2),
        "memory_ratio_pandas_vs_prepare": round(baseline["peak_mib"] / prepare["peak_mib"], 2),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("rows",)}, indent=2))
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
