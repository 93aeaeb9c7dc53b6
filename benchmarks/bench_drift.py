"""Benchmark the drift computation at full Kaggle scale: evidently on seeded samples against evidently on every row.

Builds float32 frames of 307,511 reference and 48,744 current clients (realistic distributions, named like the
model's features, with missing values and a mild planted shift of EXT_SOURCE and age in the current clients)
plus a calibrated-looking score, writes them as Parquet, then runs `creditscore.monitoring.drift.drift_summary` (what the
drift stage calls: score PSI on every row, evidently on `--sample` rows of each side, the HTML report) in its
own process, `--repeats` times, against the obvious alternative, evidently on all rows (`--full-repeats` runs;
`--full-cap` rows per side if it must be capped). Wall time and peak RSS per process (benchmarks.common), the
import/compute split measured inside the process, and whether the two verdicts agree column by column.
Writes `benchmarks/results/drift.json`.

    python -m benchmarks.bench_drift                       # full scale, 3 + 3 runs
    python -m benchmarks.bench_drift --reference 20000 --current 5000 --repeats 1

It also measures the inference log the API appends to: one-row appends on a log at its 100,000-row bound
(pruning included), and four processes appending at once.
"""
from __future__ import annotations

import argparse
import json
import platform
import shutil
import sys
import warnings

import numpy as np
import polars as pl

from benchmarks.common import WORK, measure, median_run, python, write_results
from creditscore.config import ROOT

RESULTS = ROOT / "benchmarks" / "results" / "drift.json"
HERE = WORK / "drift"
FEATURES = ["CREDIT_TERM_YEARS", "PAYMENT_RATE", "EXT_SOURCE_MEAN", "EXT_SOURCE_3", "EXT_SOURCE_2", "DAYS_BIRTH",
            "AGE_YEARS", "DAYS_EMPLOYED", "EXT_SOURCE_MIN", "EXT_SOURCE_MAX", "DAYS_ID_PUBLISH", "INCOME_PER_PERSON",
            "DAYS_REGISTRATION", "NAME_EDUCATION_TYPE_Higher_education", "DAYS_LAST_PHONE_CHANGE"]
RUN = """
import json, sys, time
start = time.perf_counter()
import polars as pl
from pathlib import Path
from creditscore.monitoring.drift import drift_summary
import evidently, evidently.presets  # imported here so that its cost is measured apart
imported = time.perf_counter()
here, sample, seed = Path(sys.argv[1]), int(sys.argv[2]), 42
reference, current = pl.read_parquet(here / "reference.parquet"), pl.read_parquet(here / "current.parquet")
features = [c for c in reference.columns if c != "score"]
loaded = time.perf_counter()
summary = drift_summary(reference, current, features, here / sys.argv[3], reference_sample=sample,
                        current_sample=sample, seed=seed)
done = time.perf_counter()
summary["timing"] = {"import_s": round(imported - start, 2), "load_s": round(loaded - imported, 2),
                     "compute_s": round(done - loaded, 2)}
(here / sys.argv[4]).write_text(json.dumps(summary))
"""


def population(n: int, rng: np.random.Generator, shift: float) -> pl.DataFrame:
    """Clients with Home Credit-like marginals; `shift` lowers EXT_SOURCE and lowers age (riskier, younger)."""
    age_days = rng.uniform(20.5, 69.0, n) * 365.25 - shift * 2.0 * 365.25
    shapes = {"EXT_SOURCE_1": (3.0, 3.0), "EXT_SOURCE_2": (4.0, 2.5), "EXT_SOURCE_3": (3.5, 2.5)}
    ext = {k: np.clip(rng.beta(a, b, n) - shift * 0.05, 0.0, 1.0) for k, (a, b) in shapes.items()}
    ext["EXT_SOURCE_1"][rng.uniform(size=n) < 0.56] = np.nan
    ext["EXT_SOURCE_3"][rng.uniform(size=n) < 0.20] = np.nan
    ext["EXT_SOURCE_2"][rng.uniform(size=n) < 0.002] = np.nan
    stacked = np.column_stack(list(ext.values()))
    rate = rng.uniform(0.022, 0.125, n)
    income = np.exp(rng.normal(11.9, 0.5, n))
    family = rng.choice([1, 2, 3, 4, 5], size=n, p=[0.22, 0.51, 0.17, 0.08, 0.02])
    employed = -rng.gamma(1.3, 1700.0, n)
    employed[rng.uniform(size=n) < 0.18] = np.nan      # the 365243 sentinel of pensioners, made missing
    phone = -rng.exponential(960.0, n)
    phone[rng.uniform(size=n) < 0.12] = 0.0
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # clients with no EXT_SOURCE at all: missing, as in Kaggle
        mean = np.nanmean(stacked, axis=1)
        frame = {"CREDIT_TERM_YEARS": 1.0 / rate, "PAYMENT_RATE": rate, "EXT_SOURCE_MEAN": mean,
                 "EXT_SOURCE_3": ext["EXT_SOURCE_3"], "EXT_SOURCE_2": ext["EXT_SOURCE_2"], "DAYS_BIRTH": -age_days,
                 "AGE_YEARS": age_days / 365.25, "DAYS_EMPLOYED": employed,
                 "EXT_SOURCE_MIN": np.nanmin(stacked, axis=1), "EXT_SOURCE_MAX": np.nanmax(stacked, axis=1),
                 "DAYS_ID_PUBLISH": -rng.uniform(0, 7200, n), "INCOME_PER_PERSON": income / family,
                 "DAYS_REGISTRATION": -rng.gamma(2.0, 2500.0, n),
                 "NAME_EDUCATION_TYPE_Higher_education": (rng.uniform(size=n) < 0.24).astype(float),
                 "DAYS_LAST_PHONE_CHANGE": phone}
    logit = -2.4 - 3.0 * (np.nan_to_num(mean, nan=0.5) - 0.5) - 0.02 * (age_days / 365.25 - 43) + 8 * (rate - 0.05)
    proba = 1 / (1 + np.exp(-(logit + rng.normal(0, 0.3, n))))
    score = np.round(proba, 3)  # isotonic calibration gives a step function: many tied scores
    return pl.DataFrame({k: np.asarray(v, dtype=np.float32) for k, v in frame.items()}).with_columns(
        pl.Series("score", score, dtype=pl.Float64))


def _append_rows(path, n: int, offset: int, names: list[str]) -> None:
    from creditscore.monitoring.inference_log import InferenceLog
    log, rng = InferenceLog(path), np.random.default_rng(offset)
    for i in range(n):
        log.append([{"sk_id_curr": offset + i, "model_version": "1", "score": 0.1, "decision": "granted",
                     "features": dict(zip(names, rng.normal(size=len(names)).tolist()))}])


def bench_log(path, max_rows: int = 100_000, appends: int = 5000, n_features: int = 38) -> dict:
    """Per-request cost of InferenceLog.append (one row per call, as the API does) on a log already at its bound,
    amortised pruning included; then 4 processes appending at once."""
    import multiprocessing
    import time

    from creditscore.monitoring.inference_log import InferenceLog

    names = [f"FEATURE_{i}" for i in range(n_features)]
    rng = np.random.default_rng(0)
    log = InferenceLog(path, max_rows=max_rows)
    for start in range(0, max_rows, 10_000):  # fill to the bound in batches
        log.append([{"sk_id_curr": start + i, "model_version": "1", "score": 0.1, "decision": "granted",
                     "features": dict(zip(names, row))} for i, row in enumerate(rng.normal(size=(10_000, n_features)).tolist())])
    records = [{"sk_id_curr": i, "model_version": "1", "score": 0.2, "decision": "refused",
                "features": dict(zip(names, row))} for i, row in enumerate(rng.normal(size=(appends, n_features)).tolist())]
    latencies = []
    for record in records:
        start = time.perf_counter()
        log.append([record])
        latencies.append(time.perf_counter() - start)
    latencies = np.array(latencies) * 1000
    ctx, per_process = multiprocessing.get_context("fork"), 1000
    workers = [ctx.Process(target=_append_rows, args=(path, per_process, 10_000_000 * (w + 1), names)) for w in range(4)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    wall = time.perf_counter() - start
    return {"features_per_row": n_features, "max_rows": max_rows, "rows_after": log.count(),
            "file_mib": round(path.stat().st_size / 2**20, 1),
            "single_row_append_ms": {"mean": round(float(latencies.mean()), 3),
                                     "median": round(float(np.median(latencies)), 3),
                                     "p99": round(float(np.quantile(latencies, 0.99)), 3),
                                     "max": round(float(latencies.max()), 1), "appends": appends},
            "four_processes": {"rows": 4 * per_process, "seconds": round(wall, 2),
                               "rows_per_second": round(4 * per_process / wall),
                               "all_exit_0": all(w.exitcode == 0 for w in workers)}}


def agreement(sampled: dict, full: dict) -> dict:
    """Do the sampled and the all-rows verdicts agree, column by column?"""
    columns = {**sampled["features"], "score": sampled["score"]}
    other = {**full["features"], "score": full["score"]}
    differ = [c for c in columns if columns[c]["drifted"] != other[c]["drifted"]]
    gap = max(abs(columns[c]["drift_score"] - other[c]["drift_score"]) for c in columns)
    return {"same_drifted_flags": not differ, "columns_that_differ": differ, "max_abs_drift_score_gap": round(gap, 4),
            "n_drifted": {"sampled": sampled["n_drifted"], "full": full["n_drifted"]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=int, default=307_511)
    parser.add_argument("--current", type=int, default=48_744)
    parser.add_argument("--sample", type=int, default=5000, help="rows per side for the sampled run (drift params)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--full-repeats", type=int, default=3)
    parser.add_argument("--full-cap", type=int, default=0, help="rows per side for the all-rows run (0 = no cap)")
    parser.add_argument("--shift", type=float, default=0.5, help="planted shift of the current clients")
    args = parser.parse_args()
    shutil.rmtree(HERE, ignore_errors=True)
    HERE.mkdir(parents=True)
    rng = np.random.default_rng(42)
    population(args.reference, rng, 0.0).write_parquet(HERE / "reference.parquet")
    population(args.current, rng, args.shift).write_parquet(HERE / "current.parquet")

    full_rows = args.full_cap or max(args.reference, args.current)
    sampled_runs, full_runs = [], []
    for i in range(max(args.repeats, args.full_repeats)):
        if i < args.repeats:
            sampled_runs.append(measure(python(RUN, HERE, args.sample, "sampled.html", f"sampled{i}.json")))
            sampled_runs[-1]["timing"] = json.loads((HERE / f"sampled{i}.json").read_text())["timing"]
        if i < args.full_repeats:
            full_runs.append(measure(python(RUN, HERE, full_rows, "full.html", f"full{i}.json")))
            full_runs[-1]["timing"] = json.loads((HERE / f"full{i}.json").read_text())["timing"]
    sampled = json.loads((HERE / "sampled0.json").read_text())
    full = json.loads((HERE / "full0.json").read_text())
    same_metrics = all(json.loads((HERE / f"sampled{i}.json").read_text()) | {"timing": None}
                       == sampled | {"timing": None} for i in range(args.repeats))
    ours, theirs = median_run(sampled_runs), median_run(full_runs)
    compute = {name: float(np.median([r["timing"]["compute_s"] for r in runs]))
               for name, runs in (("sampled", sampled_runs), ("full", full_runs))}
    result = {
        "rows": {"reference": args.reference, "current": args.current}, "features": len(FEATURES) + 1,
        "sample_per_side": args.sample, "full_rows_per_side_cap": args.full_cap or None, "shift": args.shift,
        "repeats": {"sampled": args.repeats, "full": args.full_repeats},
        "sampled_drift_summary": {**ours, "compute_seconds": compute["sampled"], "runs": sampled_runs},
        "evidently_all_rows": {**theirs, "compute_seconds": compute["full"], "runs": full_runs},
        "speedup_wall": round(theirs["seconds"] / ours["seconds"], 2),
        "speedup_compute": round(compute["full"] / compute["sampled"], 2),
        "memory_ratio_full_vs_sampled": round(theirs["peak_mib"] / ours["peak_mib"], 2),
        "html_mib": {"sampled": round((HERE / "sampled.html").stat().st_size / 2**20, 1),
                     "full": round((HERE / "full.html").stat().st_size / 2**20, 1)},
        "agreement": agreement(sampled, full), "sampled_runs_identical_metrics": same_metrics,
        "score_psi": sampled["score_psi"], "score_psi_band": sampled["score_psi_band"],
        "inference_log": bench_log(HERE / "inference.db"),
        "machine": {"cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "goal": {"seconds": 120}}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS, result)
    print(json.dumps({k: v for k, v in result.items() if k not in ("sampled_drift_summary", "evidently_all_rows")}
                     | {"sampled_seconds": ours, "full_seconds": theirs}, indent=2))
    shutil.rmtree(HERE, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
