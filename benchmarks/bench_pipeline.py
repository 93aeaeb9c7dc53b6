"""Benchmark the whole pipeline at full scale: every stage of dvc.yaml, in order, timed and measured.

Copies the repository's tracked files to a scratch folder, sets `data.n_clients` (full scale: 307,511
labelled clients, the real row counts of every table), and runs each stage's command from dvc.yaml in
its own process (wall time, peak resident memory). Results: `benchmarks/results/pipeline.json`.

    python -m benchmarks.bench_pipeline                    # full scale (goal: <= 5 min, <= 6 GiB)
    python -m benchmarks.bench_pipeline --clients 20000    # the default size
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from benchmarks.common import WORK, measure, write_results
from creditscore.config import ROOT

RESULTS = ROOT / "benchmarks" / "results" / "pipeline.json"


def copy_repository(dst) -> None:
    """The tracked and unignored files of the repository."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=ROOT, capture_output=True,
                            text=True, check=True).stdout.split("\n")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dst / name)


def _outputs(stage: dict) -> list[str]:
    listed = [*stage.get("outs", []), *stage.get("metrics", []), *stage.get("plots", [])]
    return [next(iter(o)) if isinstance(o, dict) else o for o in listed]


def in_order(stages: dict) -> list[tuple[str, dict]]:
    """The stages in an order `dvc repro` could run them: each after every stage whose outputs it reads (the
    file's order where the dependencies leave a choice)."""
    made = {out: name for name, stage in stages.items() for out in _outputs(stage)}

    def after(name: str) -> set[str]:
        return {made[out] for dep in stages[name].get("deps", []) for out in made
                if made[out] != name and (dep == out or dep.startswith(out.rstrip("/") + "/"))}

    done, order = set(), []
    while len(order) < len(stages):
        name = next((n for n in stages if n not in done and after(n) <= done), None)
        if name is None:
            raise ValueError(f"dvc.yaml: the stages {sorted(set(stages) - done)} depend on each other in a cycle")
        done.add(name)
        order.append((name, stages[name]))
    return order


def run_stages(repo, logs=None, through: str | None = None) -> tuple[dict, dict]:
    """Every stage of the copy's dvc.yaml in order, each in its own process (MLflow inside the copy).

    Returns the wall time and peak memory per stage, and the metrics files the run wrote. `logs`: a folder that
    keeps each stage's log (`<stage>.log`); `through`: the last stage to run.
    """
    for stale in (repo / "metrics").glob("*.json"):  # the copied repository's: only this run's are read back
        stale.unlink()
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{repo / 'mlflow.db'}"
    os.environ["MLFLOW_ARTIFACT_LOCATION"] = (repo / "mlartifacts").as_uri()
    results = {}
    for name, stage in in_order(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]):
        command = shlex.split(stage["cmd"])
        command[0] = sys.executable if command[0] == "python" else command[0]
        results[name] = measure(command, cwd=repo, keep_log=logs / f"{name}.log" if logs else None)
        print(f"  {name}: {results[name]}", file=sys.stderr, flush=True)
        if name == through:
            break
    return results, {p.stem: json.loads(p.read_text()) for p in (repo / "metrics").glob("*.json")}


def api_memory(models) -> dict:
    """The API (gunicorn, 2 workers) serving this run's artifacts: proportional set size once it answers."""
    from harness.servers import Server, serving

    server = Server(serving(models)).start(timeout=300)
    try:
        master, workers = server.pss_mib()
        return {"workers": len(workers), "pss_mib_per_worker": workers, "pss_mib_total": round(master + sum(workers), 1),
                "reference_mib": round((models / "reference.joblib").stat().st_size / 2**20, 1),
                "clients_mib": round((models / "clients.joblib").stat().st_size / 2**20, 1),
                "bundle_mib": round((models / "bundle.joblib").stat().st_size / 2**20, 2)}
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=307_511)
    parser.add_argument("--logs", type=Path, help="keep each stage's log in this folder")
    args = parser.parse_args()
    if args.logs:
        args.logs.mkdir(parents=True, exist_ok=True)
    repo = WORK / "pipeline"
    shutil.rmtree(WORK, ignore_errors=True)
    copy_repository(repo)
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"]["n_clients"] = args.clients
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    results, metrics = run_stages(repo, args.logs)
    out = {"labelled_clients": args.clients, "stages": results,
           "total_seconds": round(sum(r["seconds"] for r in results.values()), 1),
           "peak_mib": max(r["peak_mib"] for r in results.values()), "goal": {"minutes": 5, "peak_gib": 6},
           "metrics": {"train": {k: v for k, v in metrics.get("train", {}).items() if k != "candidates"},
                       "threshold": metrics.get("threshold"), "probe": metrics.get("probe"),
                       "explain": {k: v for k, v in metrics.get("explain", {}).items() if k not in ("global", "local")},
                       "drift": {k: v for k, v in metrics.get("drift", {}).items() if k != "features"}},
           "api": api_memory(repo / "models")}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS, out)
    print(json.dumps({k: out[k] for k in ("stages", "total_seconds", "peak_mib")}, indent=2))
    shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
