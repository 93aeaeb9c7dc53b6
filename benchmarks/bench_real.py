"""Model quality on real rows: the pipeline in kaggle mode against a kernel-style LightGBM and a logistic regression.

Reads the real rows in ../shared (never copied into the repository; the benchmark skips when they are
absent) and, for each data set and seeded split:

- `applications`: home-credit-real-applications/application_train.csv (30,752 labelled clients, no
  history). A stratified 80/20 split: the 80% become the kaggle `application_train.csv`, the 20%, without
  TARGET, the kaggle `application_test.csv`.
- `sample`: home-credit-sample (1,000 labelled clients with partial history in the six other tables),
  split the same way, with every history file given as it is; the pipeline also runs on the same split
  without the history files, to measure what they add. (On 800 clients the kernel's `min_child_weight`
  of 39 leaves LightGBM no split to make: its AUC is 0.5 there. The same kernel with the pipeline's leaf
  floor, which can split, is reported beside it as `kernel_lightgbm_floored`.)

The pipeline runs every stage of dvc.yaml, each in its own process, in a copy of the repository with
`data.source: kaggle`; its `data/submission.csv` is scored against the held-out labels. The references
(`benchmarks/kernel_reference.py`) are fitted on the same 80% and score the same 20%. One run reports
everything in `benchmarks/results/real.json`.

    python -m benchmarks.bench_real                          # both data sets, splits 0, 1 and 2
    python -m benchmarks.bench_real --datasets applications --seeds 3 4
    python -m benchmarks.bench_real --datasets applications --clients 20000   # 16,000 to train on, 4,000 to score

`--clients N` first draws a seeded, stratified N of the labelled clients (then 80/20 as above): at 20,000,
about 16,000 to train on and 4,000 to score, the size a lender's first pilot starts from; its results are
kept under `applications-N`. Splits accumulate: a run of some seeds replaces those seeds'
results, keeps the others', and each split records the commit it ran on; the medians and means are over
every split kept.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl
import yaml
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split

from benchmarks.bench_pipeline import copy_repository, run_stages
from benchmarks.common import WORK, commit
from benchmarks.kernel_reference import KERNEL_LIGHTGBM, kernel_lightgbm, kernel_matrices, logistic_regression
from creditscore.config import ROOT
from creditscore.decision.uncertainty import paired_auc_difference
from creditscore.modelling.leaves import leaf_floor
from creditscore.synthetic.realism import read_applications

SHARED = ROOT.parent / "shared"
DATASETS = {"applications": SHARED / "home-credit-real-applications", "sample": SHARED / "home-credit-sample"}
RESULTS = ROOT / "benchmarks" / "results" / "real.json"
GOAL = 0.01  # the pipeline's submission at least this much AUC above the kernel-style reference


def split_raw(source: Path, raw: Path, seed: int, clients: int | None = None) -> pd.DataFrame:
    """Write a kaggle raw folder from a labelled file: 80% labelled, 20% unlabelled; return the 20% with labels.

    `clients`: first keep a seeded, stratified sample of that many labelled clients (and their history)."""
    labelled = pd.read_csv(source / "application_train.csv", encoding="utf-8-sig")
    if clients is not None and clients < len(labelled):
        labelled, _ = train_test_split(labelled, train_size=clients, stratify=labelled["TARGET"],
                                       random_state=1000 + seed)
    fit, held = train_test_split(labelled, test_size=0.2, stratify=labelled["TARGET"], random_state=seed)
    raw.mkdir(parents=True)
    fit.sort_values("SK_ID_CURR").to_csv(raw / "application_train.csv", index=False)
    held.sort_values("SK_ID_CURR").drop(columns="TARGET").to_csv(raw / "application_test.csv", index=False)
    for path in source.glob("*.csv"):
        if not path.name.startswith("application_"):
            shutil.copy2(path, raw / path.name)  # history of every client, as a lender would have it
    return held[["SK_ID_CURR", "TARGET"]]


def set_params(repo: Path, overrides: dict) -> None:
    """Write `overrides` (dotted keys: `train.folds`) into the copy's params.yaml."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for key, value in overrides.items():
        *path, last = key.split(".")
        target = params
        for part in path:
            target = target[part]
        target[last] = value
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def run_pipeline(repo: Path, raw: Path, overrides: dict | None = None, through: str | None = None,
                 logs: Path | None = None) -> dict:
    """Every stage of dvc.yaml in kaggle mode on `raw` (with `overrides` of params.yaml, dotted keys), or those up to
    `through`; wall time and peak memory per stage, and the metrics."""
    set_params(repo, {"data.source": "kaggle", "data.raw_dir": str(raw), **(overrides or {})})
    timings, metrics = run_stages(repo, logs, through=through)
    out = {"stages": timings, "probe": metrics["probe"],
           "train": {k: v for k, v in metrics["train"].items() if k != "candidates"},
           "served": metrics["train"]["model"],
           "least_cost_candidate": metrics["train"]["least_cost_candidate"]["name"],
           "candidates_auc": {k: v["auc"] for k, v in metrics["train"]["candidates"].items()}}
    if "threshold" in metrics:
        out["calibration"] = calibration(metrics["threshold"])
    return out


def calibration(threshold: dict) -> dict:
    """Calibration figures on the pipeline's own hold-out (a share of the split's training clients)."""
    keys = ("calibration", "holdout_ece_raw", "holdout_ece_calibrated", "holdout_brier_raw", "holdout_brier_calibrated")
    return {k: threshold.get(k) for k in keys} | {"holdout_auc_calibrated": threshold["validation"]["holdout"]["auc"]}


def submission(repo: Path, held: pd.DataFrame) -> np.ndarray:
    """The run's data/submission.csv probabilities for the held-out clients, in their order (every one scored)."""
    scores = pd.read_csv(repo / "data" / "submission.csv").rename(columns={"TARGET": "proba"})
    scored = held.merge(scores, on="SK_ID_CURR", how="left")
    assert scored["proba"].notna().all(), "the submission misses held-out clients"
    return scored["proba"].to_numpy()


def one_split(name: str, seed: int, clients: int | None = None, versus: dict | None = None) -> dict:
    """The pipeline and both references on one seeded split of one data set; with `versus` (dotted params.yaml
    keys), the pipeline again with those settings, and the paired interval of the default minus that arm."""
    work = WORK / "real" / f"{name}-{seed}"
    shutil.rmtree(work, ignore_errors=True)
    held = split_raw(DATASETS[name], work / "raw", seed, clients)
    print(f"{name}, split {seed}: {len(held):,} held-out clients", file=sys.stderr, flush=True)
    copy_repository(work / "repo")
    pipeline = run_pipeline(work / "repo", work / "raw")
    y = held["TARGET"].to_numpy()

    fit = read_applications(work / "raw" / "application_train.csv")
    test = pl.DataFrame({"SK_ID_CURR": held["SK_ID_CURR"].to_numpy()}).join(
        read_applications(work / "raw" / "application_test.csv"), on="SK_ID_CURR", how="left", maintain_order="left")
    x_fit, x_test = kernel_matrices(fit, test)
    kernel = kernel_lightgbm(x_fit, fit["TARGET"].to_numpy(), seed).predict_proba(x_test)[:, 1]
    linear = logistic_regression(x_fit, fit["TARGET"].to_numpy()).predict_proba(x_test)[:, 1]
    served = submission(work / "repo", held)
    result = {"commit": commit(), "labelled": len(fit), "held_out": len(held), "held_out_defaults": int(y.sum()),
              "auc": {"pipeline": round(float(roc_auc_score(y, served)), 5),
                      "kernel_lightgbm": round(float(roc_auc_score(y, kernel)), 5),
                      "logistic_regression": round(float(roc_auc_score(y, linear)), 5)},
              "served": pipeline["served"], "least_cost_candidate": pipeline["least_cost_candidate"],
              "pipeline": pipeline}
    result["pipeline_minus_kernel"] = round(result["auc"]["pipeline"] - result["auc"]["kernel_lightgbm"], 5)
    # the paired DeLong interval of the difference: the same held-out clients score both
    result["pipeline_minus_kernel_interval"] = paired_auc_difference(y, served, kernel)
    if leaf_floor(KERNEL_LIGHTGBM, fit["TARGET"].to_numpy(), 1.0) != KERNEL_LIGHTGBM:
        # too few clients for the kernel's leaves: the same kernel with the pipeline's leaf floor, which can learn
        floored = kernel_lightgbm(x_fit, fit["TARGET"].to_numpy(), seed, floored=True).predict_proba(x_test)[:, 1]
        result["auc"]["kernel_lightgbm_floored"] = round(float(roc_auc_score(y, floored)), 5)
        result["pipeline_minus_kernel_floored"] = round(
            result["auc"]["pipeline"] - result["auc"]["kernel_lightgbm_floored"], 5)
    if any(not p.name.startswith("application_") for p in (work / "raw").glob("*.csv")):
        # the same split without the history files: what the history tables add on real rows
        (work / "raw_application").mkdir()
        for path in (work / "raw").glob("application_*.csv"):
            shutil.copy2(path, work / "raw_application" / path.name)
        copy_repository(work / "repo_application")
        result["pipeline_application_only"] = run_pipeline(work / "repo_application", work / "raw_application")
        alone = submission(work / "repo_application", held)
        result["auc"]["pipeline_application_only"] = round(float(roc_auc_score(y, alone)), 5)
        result["history_minus_application_only_interval"] = paired_auc_difference(y, served, alone)
    if versus:
        copy_repository(work / "repo_versus")
        other = run_pipeline(work / "repo_versus", work / "raw", versus)
        scores = submission(work / "repo_versus", held)
        result["versus"] = {"settings": versus, "served": other["served"],
                            "auc": round(float(roc_auc_score(y, scores)), 5),
                            "default_minus_versus_interval": paired_auc_difference(y, served, scores)}
    print(f"  AUC {result['auc']}" + (f", versus {result['versus']['auc']}" if versus else ""), file=sys.stderr,
          flush=True)
    shutil.rmtree(work, ignore_errors=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--clients", type=int, help="a stratified sample of this many labelled clients first")
    parser.add_argument("--versus", nargs="+", default=[], metavar="KEY=YAML",
                        help="also run the pipeline with these params.yaml settings (e.g. protected=[]) and report the "
                             "paired AUC difference of the default against them")
    args = parser.parse_args()
    versus = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in args.versus)}
    missing = [n for n in args.datasets if not (DATASETS[n] / "application_train.csv").is_file()]
    if missing:
        print(f"bench_real: skipped: {', '.join(str(DATASETS[n]) for n in missing)} absent", file=sys.stderr)
        return 0
    out = {"goal_auc_above_kernel": GOAL, "datasets": {}}
    if RESULTS.is_file():  # a run of some data sets or seeds keeps the others' last results
        out["datasets"] = json.loads(RESULTS.read_text())["datasets"]
    keys = {name: name if args.clients is None else f"{name}-{args.clients}" for name in args.datasets}
    for name, key in keys.items():
        splits = out["datasets"].get(key, {}).get("splits", {})
        for seed in args.seeds:
            splits[str(seed)] = one_split(name, seed, args.clients, versus)
        splits = dict(sorted(splits.items(), key=lambda item: int(item[0])))
        gaps = [s["pipeline_minus_kernel"] for s in splits.values()]
        out["datasets"][key] = {
            "splits": splits,
            "median_auc": {k: round(statistics.median(s["auc"][k] for s in splits.values()), 5)
                           for k in ("pipeline", "kernel_lightgbm", "kernel_lightgbm_floored", "logistic_regression")
                           if all(k in s["auc"] for s in splits.values())},
            "median_pipeline_minus_kernel": round(statistics.median(gaps), 5),
            "mean_pipeline_minus_kernel": round(float(np.mean(gaps)), 5),
            "splits_above_kernel": sum(g > 0 for g in gaps),
            "splits_above_kernel_beyond_noise": sum(s["pipeline_minus_kernel_interval"]["low"] > 0
                                                    for s in splits.values() if "pipeline_minus_kernel_interval" in s),
            "served": {seed: s.get("served") for seed, s in splits.items()},
            "goal_met": bool(statistics.median(gaps) >= GOAL)}
        compared = [s["versus"] for s in splits.values() if s.get("versus", {}).get("settings") == versus and versus]
        if compared:  # the default against another setting, paired on each split's scored clients
            out["datasets"][key]["versus"] = {
                "settings": versus, "splits": len(compared),
                "mean_default_minus_versus": round(float(np.mean(
                    [c["default_minus_versus_interval"]["difference"] for c in compared])), 5),
                "differences": [c["default_minus_versus_interval"] for c in compared]}
        RESULTS.parent.mkdir(parents=True, exist_ok=True)  # after each data set: a later failure loses nothing
        RESULTS.write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    for key in keys.values():
        summary = out["datasets"][key]
        print(f"{key}: {len(summary['splits'])} splits, median AUC {summary['median_auc']}, pipeline - kernel {summary['median_pipeline_minus_kernel']:+.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
