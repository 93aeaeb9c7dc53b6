"""How the pipeline's cost grows with the number of clients: every stage timed and measured at several sizes.

For each size, the repository's tracked files are copied to a scratch folder, `data.n_clients` is set (the
synthetic generator keeps the Kaggle ratios: history rows, application_test), and every stage of dvc.yaml runs
in its own process, as `bench_pipeline` does. Sizes already in the results file are kept, so a long size can be
run on its own. Results: `benchmarks/results/scale.json` and the figure `benchmarks/results/scale.png`.

    python -m benchmarks.bench_scale                         # 20,000, 80,000, 307,511 and 1,000,000 clients
    python -m benchmarks.bench_scale --sizes 20000 80000     # some of them (merged into the results)
    python -m benchmarks.bench_scale --sizes 307511 --keep /tmp/full --logs /tmp/full-logs
                                # keep the run's models/ and metrics/ (for bench_footprint, bench_api) and its logs
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import yaml

from benchmarks.bench_pipeline import copy_repository, run_stages
from benchmarks.common import WORK, commit, write_results
from creditscore.config import ROOT

RESULTS = ROOT / "benchmarks" / "results" / "scale.json"
FIGURE = ROOT / "benchmarks" / "results" / "scale.png"
SIZES = (20_000, 80_000, 307_511, 1_000_000)


def run_size(clients: int, keep=None, logs=None) -> dict:
    """Every stage at one size: seconds and peak MiB per stage, the total, and the run's headline metrics.

    `keep`: a folder that receives the run's models/ and metrics/; `logs`: a folder for each stage's log.
    """
    repo = WORK / f"scale-{clients}"
    shutil.rmtree(repo, ignore_errors=True)
    copy_repository(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["n_clients"] = clients
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    try:
        stages, metrics = run_stages(repo, logs=logs)
    finally:  # kept even when a stage fails: what the stages before it made
        for folder in ("models", "metrics") if keep is not None else ():
            shutil.rmtree(keep / folder, ignore_errors=True)
            if (repo / folder).is_dir():
                shutil.copytree(repo / folder, keep / folder)
        shutil.rmtree(repo, ignore_errors=True)
    train = metrics.get("train", {})
    return {"labelled_clients": clients, "commit": commit(), "stages": stages,
            "total_seconds": round(sum(s["seconds"] for s in stages.values()), 1),
            "peak_mib": max(s["peak_mib"] for s in stages.values()),
            "holdout_auc": train.get("holdout_auc"), "model": train.get("model"),
            "n_features": train.get("n_features")}


def plot(runs: list[dict], path) -> None:
    """Seconds per stage (stacked) and peak memory per stage against the number of labelled clients."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = sorted(runs, key=lambda r: r["labelled_clients"])
    sizes = [r["labelled_clients"] for r in runs]
    stages = list(dict.fromkeys(s for r in runs for s in r["stages"]))
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    bottom = [0.0] * len(runs)
    for stage in stages:
        minutes = [r["stages"].get(stage, {}).get("seconds", 0.0) / 60 for r in runs]
        left.bar(range(len(runs)), minutes, bottom=bottom, label=stage)
        bottom = [b + m for b, m in zip(bottom, minutes)]
        right.plot(sizes, [r["stages"].get(stage, {}).get("peak_mib", float("nan")) / 1024 for r in runs],
                   marker="o", label=stage)
    left.set_xticks(range(len(runs)), [f"{s:,}" for s in sizes])
    left.set_xlabel("labelled clients")
    left.set_ylabel("minutes (2 cores)")
    left.set_title("Wall time per stage")
    left.legend(fontsize=8)
    right.set_xscale("log")
    right.set_xlabel("labelled clients")
    right.set_ylabel("peak resident memory (GiB)")
    right.set_title("Peak memory per stage")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    parser.add_argument("--keep", type=Path, help="keep the last size's models/ and metrics/ in this folder")
    parser.add_argument("--logs", type=Path, help="keep each stage's log, one subfolder per size")
    args = parser.parse_args()
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {"runs": []}
    stamp = previous.get("recorded_in_commit") or previous.get("commit")  # a size kept from an earlier file
    runs = {r["labelled_clients"]: {"commit": stamp, **r} for r in previous["runs"]}
    for clients in args.sizes:
        print(f"{clients} clients", file=sys.stderr, flush=True)
        logs = args.logs / str(clients) if args.logs else None
        if logs:
            logs.mkdir(parents=True, exist_ok=True)
        runs[clients] = run_size(clients, keep=args.keep, logs=logs)
        ordered = [runs[k] for k in sorted(runs)]
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        write_results(RESULTS, {"runs": ordered, "cores": os.cpu_count()})  # after every size
        plot(ordered, FIGURE)
        print(json.dumps({k: runs[clients][k] for k in ("labelled_clients", "total_seconds", "peak_mib")}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
