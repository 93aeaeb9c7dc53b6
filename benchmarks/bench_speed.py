"""What a speed setting costs in quality: the fast settings (params.yaml) against the slow ones, paired.

A speed change that is a setting lives in params.yaml; `benchmarks/speed_slow.yaml` holds the values that give
back the settings before any speed change (dotted keys, `train.benchmark_sample: 50000`). Both arms run the same
code, every stage up to `train`, each in its own process, in a copy of the repository:

- **synthetic**: `--clients` labelled clients (80,000 by default) of the generator at each `--seeds` (1, 2, 3;
  the run's `seed`), scored on the run's own hold-out;
- **real**: the real applications in ../shared, a stratified `--real-clients` (20,000) drawn and split 80/20 at
  each `--splits` (0, 1, 2) as `bench_real` does, scored on the 20% the run never saw (skipped when absent).

On each seed or split both arms score the same clients: the paired DeLong difference (fast minus slow) and its
95% interval. A change is accepted when the mean difference is at least -0.001 on the synthetic seeds and
-0.002 on the real splits (a difference inside that margin is not a cost).

The slow arm's scores are computed once per seed or split and kept in `benchmarks/.cache/speed/` (outside git):
a later change costs only its fast arm. `--refresh-slow` computes them again. `--logs FOLDER` keeps every stage's
log of every arm (`FOLDER/<data>-<seed>-<arm>/<stage>.log`). Results, with the stage seconds
and peak memory of both arms, go to `benchmarks/results/speed.json` under `--name`.

    python -m benchmarks.bench_speed --name probe-sample                   # both data sets, both arms
    python -m benchmarks.bench_speed --name baseline --arms slow           # only fill the slow arm's cache
    python -m benchmarks.bench_speed --name x --data synthetic --seeds 1 --clients 20000
    python -m benchmarks.bench_speed --name lr-kept --data synthetic --fast train.ensemble.refit_logistic_regression=false
    python -m benchmarks.bench_speed --name rate-real --data real --both train.benchmark_sample=6400 \
        --fast train.ensemble.sample_learning_rate=0.06          # a setting that acts above a size, on real rows
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import numpy as np
import polars as pl
import yaml
from sklearn.metrics import roc_auc_score

from benchmarks.bench_pipeline import copy_repository, run_stages
from benchmarks.bench_real import DATASETS, run_pipeline, set_params, split_raw, submission
from benchmarks.common import WORK, commit
from creditscore.config import ROOT
from creditscore.decision.uncertainty import paired_auc_difference

SLOW = ROOT / "benchmarks" / "speed_slow.yaml"
CACHE = ROOT / "benchmarks" / ".cache" / "speed"
RESULTS = ROOT / "benchmarks" / "results" / "speed.json"
MARGIN = {"synthetic": -0.001, "real": -0.002}


def slow_settings() -> dict:
    """The dotted params.yaml keys that give back the settings before any speed change."""
    return (yaml.safe_load(SLOW.read_text()) or {}) if SLOW.is_file() else {}


LOGS: Path | None = None


def logs_for(name: str) -> Path | None:
    """Where an arm's stage logs go (`--logs`), created."""
    if LOGS is None:
        return None
    (LOGS / name).mkdir(parents=True, exist_ok=True)
    return LOGS / name


def synthetic_arm(clients: int, seed: int, overrides: dict, label: str) -> dict:
    """Every stage up to train on the generator's population at `seed`: the hold-out's ids, labels and scores."""
    repo = WORK / "speed" / f"synthetic-{clients}-{seed}-{label}"
    shutil.rmtree(repo, ignore_errors=True)
    copy_repository(repo)
    set_params(repo, {"seed": seed, "data.n_clients": clients, **overrides})
    try:
        stages, metrics = run_stages(repo, logs_for(f"synthetic-{seed}-{label}"), through="train")
        held = pl.read_parquet(repo / "data" / "predictions" / "holdout.parquet")
    finally:
        shutil.rmtree(repo, ignore_errors=True)
    return {"ids": held["SK_ID_CURR"].to_list(), "y": held["TARGET"].to_list(), "proba": held["proba"].to_list(),
            "stages": stages, "model": metrics["train"]["model"], "n_features": metrics["train"]["n_features"]}


def real_arm(clients: int, split: int, overrides: dict, label: str) -> dict:
    """Every stage up to train in kaggle mode on one split of the real applications: the scores of the 20%."""
    work = WORK / "speed" / f"real-{clients}-{split}-{label}"
    shutil.rmtree(work, ignore_errors=True)
    try:
        held = split_raw(DATASETS["applications"], work / "raw", split, clients)
        copy_repository(work / "repo")
        pipeline = run_pipeline(work / "repo", work / "raw", overrides, through="train",
                                logs=logs_for(f"real-{split}-{label}"))
        proba = submission(work / "repo", held)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return {"ids": held["SK_ID_CURR"].tolist(), "y": held["TARGET"].tolist(), "proba": proba.tolist(),
            "stages": pipeline["stages"], "model": pipeline["served"], "n_features": pipeline["train"]["n_features"]}


def slow_arm(data: str, clients: int, seed: int, refresh: bool, both: dict | None = None) -> dict:
    """The slow arm's scores on one seed or split: from the cache, else computed and cached.

    A cached arm stays valid when a later change adds its key to speed_slow.yaml: that key's slow value gives back
    what the cached run did. Settings given to both arms (`--both`) are part of the cache's name. The cache is not
    named by the code: after a change to code the slow arm runs (with `--both`, that may be code a sample reaches),
    `--refresh-slow` computes it again."""
    both = both or {}
    tag = "".join(f"-{k}={v}" for k, v in sorted(both.items()))
    path = CACHE / f"{data}-{clients}-{seed}{tag}.json"
    settings = {**slow_settings(), **both}
    if path.is_file() and not refresh:
        return json.loads(path.read_text())
    arm = (synthetic_arm if data == "synthetic" else real_arm)(clients, seed, settings, "slow")
    cached = {"commit": commit(), "settings": settings, **arm}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(cached))
    return cached


def compare(data: str, clients: int, seed: int, refresh: bool, fast_too: bool, fast_overrides: dict | None = None,
            both: dict | None = None) -> dict:
    """One seed or split: both arms' AUC, the paired difference, and both arms' stage figures. The fast arm runs
    params.yaml with `fast_overrides` (dotted keys); `both` is given to both arms."""
    slow = slow_arm(data, clients, seed, refresh, both)
    out = {"slow": summary(slow)}
    if fast_too:
        settings = {**(fast_overrides or {}), **(both or {})}
        fast = (synthetic_arm if data == "synthetic" else real_arm)(clients, seed, settings, "fast")
        if fast["ids"] != slow["ids"] or fast["y"] != slow["y"]:
            raise RuntimeError(f"{data} {seed}: the arms scored different clients; refresh the slow arm")
        y = np.asarray(fast["y"])
        out["fast"] = summary(fast)
        out["fast_minus_slow"] = paired_auc_difference(y, np.asarray(fast["proba"]), np.asarray(slow["proba"]))
    print(f"  {data} {seed}: {json.dumps({k: v.get('auc', v) for k, v in out.items()})}", file=sys.stderr, flush=True)
    return out


def summary(arm: dict) -> dict:
    """An arm's AUC on its scored clients, what it served, and its time and memory up to train."""
    stages = arm["stages"]
    return {"auc": round(float(roc_auc_score(arm["y"], arm["proba"])), 5), "model": arm["model"],
            "n_features": arm["n_features"], "commit": arm.get("commit", commit()), "stages": stages,
            "seconds_through_train": round(sum(s["seconds"] for s in stages.values()), 1),
            "peak_mib": max(s["peak_mib"] for s in stages.values())}


def verdict(runs: dict, data: str) -> dict:
    """The mean paired difference over the seeds or splits, and whether it is within the margin."""
    differences = [r["fast_minus_slow"]["difference"] for r in runs.values() if "fast_minus_slow" in r]
    if not differences:
        return {}
    mean = round(float(np.mean(differences)), 5)
    speedup = [r["slow"]["seconds_through_train"] / r["fast"]["seconds_through_train"] for r in runs.values()
               if "fast" in r]
    return {"mean_fast_minus_slow": mean, "margin": MARGIN[data], "accepted": bool(mean >= MARGIN[data]),
            "median_speedup_through_train": round(float(np.median(speedup)), 2)}


def fast_overrides(pairs: list[str]) -> dict:
    """`key=value` pairs as dotted params.yaml keys and their YAML values (`probe.guard_sample=20000`)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise SystemExit(f"bench_speed: --fast {pair!r}: expected KEY=VALUE, as probe.guard_sample=20000")
        out[key] = yaml.safe_load(value)
    return out


def fast_value(key: str, fast: dict):
    """The fast arm's value of a dotted params.yaml key: its `--fast` override, else params.yaml's."""
    if key in fast:
        return fast[key]
    value = yaml.safe_load((ROOT / "params.yaml").read_text())
    for part in key.split("."):
        value = value[part]
    return value


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True, help="the change measured (a key of speed.json)")
    parser.add_argument("--data", nargs="+", default=["synthetic", "real"], choices=["synthetic", "real"])
    parser.add_argument("--arms", choices=["both", "slow"], default="both")
    parser.add_argument("--clients", type=int, default=80_000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--real-clients", type=int, default=20_000)
    parser.add_argument("--splits", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--refresh-slow", action="store_true", help="compute the slow arm again")
    parser.add_argument("--logs", type=Path, help="keep every stage's log of every arm in this folder")
    parser.add_argument("--fast", nargs="+", default=[], metavar="KEY=VALUE",
                        help="the fast arm's settings over params.yaml (dotted keys, YAML values): a setting that acts "
                             "only above the harness's sizes, scaled down to act on them")
    parser.add_argument("--both", nargs="+", default=[], metavar="KEY=VALUE",
                        help="settings given to both arms (dotted keys, YAML values): a size a setting acts above, "
                             "lowered so that it acts at the harness's sizes (train.benchmark_sample=6400)")
    args = parser.parse_args()
    fast = fast_overrides(args.fast)
    both = fast_overrides(args.both)
    global LOGS
    LOGS = args.logs
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"changes": {}}
    # the slow arm's values where the fast arm's differ (both arms share the `--both` keys)
    differ = {k: v for k, v in slow_settings().items() if k not in both and fast_value(k, fast) != v}
    entry = {"commit": commit(), "fast_settings_differ_in": differ, "margin": MARGIN,
             **({"fast_overrides": fast} if fast else {}), **({"both_arms": both} if both else {})}
    for data in args.data:
        if data == "real" and not (DATASETS["applications"] / "application_train.csv").is_file():
            print("bench_speed: real rows absent, skipped", file=sys.stderr)
            continue
        clients, seeds = (args.clients, args.seeds) if data == "synthetic" else (args.real_clients, args.splits)
        runs = {}
        for seed in seeds:
            runs[str(seed)] = compare(data, clients, seed, args.refresh_slow, args.arms == "both", fast, both)
            entry[data] = {"clients": clients, "runs": runs, **verdict(runs, data)}
            if args.arms == "both":  # after every seed: a later failure loses nothing
                results["changes"][args.name] = entry
                RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
        print(f"{data}: {json.dumps(verdict(runs, data))}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
