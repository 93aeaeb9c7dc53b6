"""What one request costs the API: sequential latency of scoring and of an explanation, on a pipeline's models.

One gunicorn worker (the repository's config, inference log off) serves the models of a run. One client sends
requests one after the other, so the figures are the service time of a request, not queueing:
`POST /predict` with one raw application, and `GET /clients/<id>/explain` (the dashboard's reasons: TreeSHAP
over every fold model of the ensemble) for known clients in turn. After a warm-up, it reports p50, p99 and the
maximum per endpoint, with the number of fold models the bundle serves. Limits: p99 at most 50 ms for
`/predict`, 100 ms for an explanation. Results: `benchmarks/results/latency.json`, one entry per `--label`.

    python -m benchmarks.bench_latency                                      # the last `dvc repro`'s models
    python -m benchmarks.bench_latency --models /tmp/full/models --label full-scale
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import requests

from benchmarks.common import commit
from creditscore.config import ROOT
from creditscore.serving.bundle import Bundle, load
from harness.servers import VALID, Server, serving

RESULTS = ROOT / "benchmarks" / "results" / "latency.json"
LIMITS_MS = {"predict": 50.0, "explain": 100.0}


def timed(call, n: int) -> list[float]:
    """Milliseconds of `n` calls of `call(i)`, one after the other; every answer must be 200."""
    times = []
    for i in range(n):
        started = time.perf_counter()
        response = call(i)
        times.append(1000 * (time.perf_counter() - started))
        if response.status_code != 200:
            raise RuntimeError(f"{response.url}: {response.status_code} {response.text[:300]}")
    return times


def summary(times: list[float], limit: float) -> dict:
    p99 = float(np.percentile(times, 99))
    return {"requests": len(times), "p50_ms": round(float(np.median(times)), 2), "p99_ms": round(p99, 2),
            "max_ms": round(max(times), 2), "limit_p99_ms": limit, "within_limit": p99 <= limit}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--label", default="default", help="the key of this run in latency.json")
    parser.add_argument("--requests", type=int, default=200, help="measured requests per endpoint")
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    bundle = load(args.models / "bundle.joblib", Bundle)
    fold_models = len(getattr(bundle.pipeline[-1], "members_", [])) or 1
    server = Server({**serving(args.models), "API_KEY": None}, workers=1).start(timeout=300)
    try:
        with requests.Session() as http:
            ids = [c["SK_ID_CURR"] for c in http.get(server.url + "/clients", params={"limit": 100}).json()["clients"]]

            def predict(_):
                return http.post(server.url + "/predict", json={"application": VALID})

            def explain(i):
                return http.get(f"{server.url}/clients/{ids[i % len(ids)]}/explain")

            for call in (predict, explain):
                timed(call, args.warmup)
            results = {"predict": summary(timed(predict, args.requests), LIMITS_MS["predict"]),
                       "explain": summary(timed(explain, args.requests), LIMITS_MS["explain"])}
    finally:
        server.stop()
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    runs = previous.get("runs", {})
    runs[args.label] = {"commit": commit(), "model": bundle.model, "fold_models": fold_models,
                        "command": "python -m benchmarks.bench_latency " + " ".join(sys.argv[1:]), **results}
    RESULTS.write_text(json.dumps({"benchmark": "sequential latency of one worker: POST /predict and "
                                   "GET /clients/<id>/explain", "runs": runs}, indent=2) + "\n")
    print(json.dumps(runs[args.label], indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
