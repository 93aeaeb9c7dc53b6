"""What the hosted service costs: served file sizes, cold start, and memory (PSS) after warm-up.

Starts the service as the Procfile does (gunicorn with app/gunicorn.conf.py, 2 workers) on a pipeline's models,
times its cold start (the process started until `/health` answers), then warms it up the way a relationship
manager's session does: scores applications (`POST /predict`), lists and opens known clients, explains one,
reads `/reference`, compares with similar clients (a feature, then a grid of two key fields) and loads the
dashboard page. Then it reads the proportional set size (PSS, `/proc/<pid>/smaps_rollup`) of the master and
of each worker, in a serving-only environment (`--serving-venv`: what the host installs, no pandas or Dask, which
LightGBM imports when it finds them) or in this one. It runs twice, side by side: with the known clients (`models/clients.joblib`) and without them
(`MODEL_CLIENTS=off`). The limits it checks: at most 50 MB of served files, 512 MB PSS and 10 s cold start.

    python -m benchmarks.bench_footprint                      # the models of the last `dvc repro`
    python -m benchmarks.bench_footprint --models /elsewhere/models --label full-scale

Results: `benchmarks/results/footprint.json`, one entry per `--label` (default: the number of training clients
the reference summarises), each stamped with the commit.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import requests

from benchmarks.common import commit
from creditscore.config import ROOT
from harness.servers import VALID, Server, serving

RESULTS = ROOT / "benchmarks" / "results" / "footprint.json"
LIMITS = {"served_mib": 50, "pss_mib": 512, "cold_start_seconds": 10}


def warm_up(url: str, rounds: int) -> int:
    """A relationship manager's session, `rounds` times over (both workers take some); returns the requests sent."""
    sent = 0
    reference = requests.get(url + "/reference", timeout=30).json()
    first, second = reference["grid_features"][:2]
    for _ in range(rounds):
        for _ in range(5):
            assert requests.post(url + "/predict", json={"application": VALID}, timeout=30).status_code == 200
        listed = requests.get(url + "/clients?limit=5", timeout=30).json()["clients"]
        calls = ["/", "/reference", "/openapi.json", "/clients?limit=5"]
        if listed:
            client = listed[0]["SK_ID_CURR"]
            calls += [f"/clients/{client}", f"/clients/{client}/explain",
                      f"/clients/{client}/compare?feature={first}",
                      f"/clients/{client}/compare?feature={first}&versus={second}"]
        for call in calls:
            assert requests.get(url + call, timeout=30).status_code == 200, call
        sent += 5 + len(calls)
    return sent


def one_arm(models: Path, clients: bool, rounds: int, gunicorn: Path | None) -> dict:
    server = Server({**serving(models, clients), "API_KEY": None}, workers=2, gunicorn=gunicorn)
    start = time.perf_counter()
    server.start(timeout=120)
    cold = time.perf_counter() - start
    try:
        sent = warm_up(server.url, rounds)
        master, workers = server.pss_mib()
    finally:
        server.stop()
    return {"cold_start_seconds": round(cold, 2), "requests": sent, "pss_mib_master": master,
            "pss_mib_workers": workers, "pss_mib_total": round(master + sum(workers), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--label", help="the key of this run in footprint.json")
    parser.add_argument("--rounds", type=int, default=20, help="sessions of warm-up")
    parser.add_argument("--serving-venv", type=Path,
                        help="a virtual environment with requirements-serving.txt only, as the host installs it "
                             "(python -m venv V && V/bin/pip install -r requirements-serving.txt); default: this one")
    args = parser.parse_args()
    gunicorn = args.serving_venv / "bin" / "gunicorn" if args.serving_venv else None
    from creditscore.serving.bundle import Reference, load

    population = load(args.models / "reference.joblib", Reference).population
    summarised = int(population["clients"][population["index"][(-1,) * 5]])
    sizes = {name: round((args.models / name).stat().st_size / 2**20, 2)
             for name in ("bundle.joblib", "reference.joblib", "clients.joblib")}
    arms = {"with_known_clients": one_arm(args.models, True, args.rounds, gunicorn),
            "without_known_clients": one_arm(args.models, False, args.rounds, gunicorn)}
    served = sizes["bundle.joblib"] + sizes["reference.joblib"]
    entry = {"commit": commit(), "training_clients_summarised": summarised, "file_mib": sizes,
             "environment": "requirements-serving.txt" if args.serving_venv else "requirements.txt (development)",
             "served_mib_without_clients": round(served, 2),
             "served_mib_with_clients": round(served + sizes["clients.joblib"], 2), "arms": arms, "limits": LIMITS,
             "within_limits": {
                 "served_mib": served + sizes["clients.joblib"] <= LIMITS["served_mib"],
                 "pss_mib": max(a["pss_mib_total"] for a in arms.values()) <= LIMITS["pss_mib"],
                 "cold_start_seconds": max(a["cold_start_seconds"] for a in arms.values())
                 <= LIMITS["cold_start_seconds"]}}
    results = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {"runs": {}}
    results["runs"][args.label or f"{summarised}-training-clients"] = entry
    RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    print(json.dumps(entry, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
