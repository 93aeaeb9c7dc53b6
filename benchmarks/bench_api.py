"""Benchmark the prediction API under a bounded load against a minimal scorer and MLflow's scoring server.

Length: the three servers, the load generator and the report are measured in one run, side by side, as the benchmark
rules ask.

Starts three servers on 127.0.0.1, each with 2 worker processes:

- `benchmarks/minimal_scorer.py` under gunicorn with the repository's `app/gunicorn.conf.py`: POST a ready
  feature vector, get a LightGBM booster's probability (`Booster.predict`, float64 row, one thread). The
  booster is trained here on the bundle's features of `data/features/train.parquet` (`--trees`, seed 42);
- our API (`app:create_app()`), same gunicorn config, inference log on (a temporary file), no API key:
  `GET /clients/<id>` (random ids of `GET /clients?limit=1000`), `POST /predict` with one raw application
  (rows of `data/synthetic/application_test.csv` read as the tests read them: numbers as JSON numbers,
  empty fields left out), `GET /clients/<id>/explain`;
- `mlflow models serve` on `models:/home-credit-default@champion` (`--env-manager local -w 2`, uvicorn),
  POST /invocations with one `dataframe_split` row.

The load is `wrk` (`apt-get install wrk`): `--connections` concurrent connections (closed loop, HTTP/1.1
keep-alive: uvicorn keeps connections open; gunicorn's sync workers close each after its answer), requests drawn at random from a prepared list. For each repetition every target gets a
warm-up, then `--duration` seconds measured; targets alternate within a repetition. Reports the median over
repetitions of throughput, p50/p95/p99 latency and errors (any response other than 200, or a socket error),
ratios to the minimal scorer and the latency goals; writes `benchmarks/results/api.json`.

    python -m benchmarks.bench_api                    # how results/api.json was made (the config as is)
    python -m benchmarks.bench_api --duration 3 --repeats 1      # a quick look
    python -m benchmarks.bench_api --max-requests 0   # worker recycling off

Worker recycling: with the config's former max_requests of 20,000 +- 2,000, both workers recycled within a
second of each other every 10-20 s at these rates, leaving no worker for ~1.2 s (p99 over 1 s). The config now
uses 200,000 +- 100,000; each run records the worker reboots inside it (`worker_restarts`).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from importlib.metadata import version
from pathlib import Path

import lightgbm as lgb
import numpy as np
import polars as pl

from benchmarks.wrk import WRK_SCRIPT, run_wrk, summarise, write_requests
from creditscore.config import ROOT
from creditscore.data.raw import read_table
from creditscore.data.schema import TABLES
from creditscore.modelling.tracking import tracking_uri
from creditscore.serving.bundle import Bundle, load
from harness.servers import free_port

RESULTS = ROOT / "benchmarks" / "results" / "api.json"
BIN = Path(sys.executable).parent
MODEL_NAME_ALIAS = ("home-credit-default", "champion")  # what the train stage registers
MODEL_URI = "models:/{}@{}".format(*MODEL_NAME_ALIAS)
GOALS = {  # throughput as a share of the minimal scorer's, latency bounds in ms
    "api_client": {"throughput_ratio_min": 0.60, "p99_ms_max": 15},
    "api_predict_raw": {"throughput_ratio_min": 0.30, "p99_ms_max": 30},
    "api_explain": {"p50_ms_max": 20},
}

class Service:
    """A server in its own process group (stopped as a group: gunicorn's or uvicorn's workers with it)."""

    def __init__(self, name: str, args: list[str], env: dict, port: int, log: Path):
        self.name, self.args, self.env, self.port, self.log = name, args, env, port, log
        self.url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Service:
        with open(self.log, "wb") as out:
            self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                            start_new_session=True)
        return self

    def wait_ready(self, path: str, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited ({self.process.returncode}):\n{self.tail()}")
            try:
                with urllib.request.urlopen(self.url + path, timeout=2) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.25)
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout:.0f} s:\n{self.tail()}")

    def boots(self) -> int:
        """Worker processes gunicorn has booted so far (2 at start; more after max_requests recycling)."""
        return self.tail(10 ** 8).count("Booting worker")

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.process.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.process.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


def gunicorn(name: str, app: str, env: dict, work: Path, max_requests: int | None) -> Service:
    port = free_port()
    args = [str(BIN / "gunicorn"), "--config", "app/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", app]
    if max_requests is not None:  # overrides the config's worker recycling (0: never)
        args[-1:-1] = ["--max-requests", str(max_requests)]
    return Service(name, args, {**env, "PORT": str(port), "WEB_CONCURRENCY": "2"}, port, work / f"{name}.log")


def call(url: str, body: dict | list | None = None) -> dict | list:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data, {"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def train_booster(features: list[str], trees: int, seed: int, path: Path) -> dict:
    """The minimal scorer's model: LightGBM on the bundle's features of the training set."""
    train = pl.read_parquet(ROOT / "data" / "features" / "train.parquet", columns=[*features, "TARGET"])
    x, y = train.select(features).to_numpy().astype(np.float64), train["TARGET"].to_numpy()
    start = time.perf_counter()
    booster = lgb.train({"objective": "binary", "learning_rate": 0.05, "num_leaves": 31, "seed": seed,
                         "deterministic": True, "num_threads": 2, "verbose": -1},
                        lgb.Dataset(x, y, feature_name=features), num_boost_round=trees)
    fit = time.perf_counter() - start
    booster.save_model(str(path))
    row = x[:1].copy()
    for _ in range(200):
        booster.predict(row, num_threads=1)
    start = time.perf_counter()
    for i in range(2000):
        booster.predict(x[i % len(x)][None, :], num_threads=1)
    per_row = (time.perf_counter() - start) / 2000
    return {"trees": trees, "seed": seed, "train_rows": len(x), "features": len(features),
            "fit_seconds": round(fit, 2), "in_process_predict_ms_per_row": round(per_row * 1000, 4)}


def feature_rows(features: list[str], required: set[str], n: int, seed: int) -> list[list]:
    """Ready feature vectors (test clients), null for missing; only rows MLflow's signature accepts."""
    x = pl.read_parquet(ROOT / "data" / "features" / "test.parquet", columns=features).to_numpy().astype(np.float64)
    must = [i for i, f in enumerate(features) if f in required]
    x = x[~np.isnan(x[:, must]).any(axis=1)]
    pick = np.random.default_rng(seed).choice(len(x), size=min(n, len(x)), replace=False)
    return [[None if np.isnan(v) else float(v) for v in x[i]] for i in pick]


def raw_applications(n: int, seed: int) -> list[dict]:
    """Raw application rows as a caller sends them: numbers as JSON numbers, empty fields left out."""
    frame = read_table(ROOT / "data" / "synthetic", TABLES["application_test"])
    rows = [{k: v for k, v in r.items() if v is not None} for r in frame.to_dicts()]
    return random.Random(seed).sample(rows, min(n, len(rows)))


def goal_verdicts(targets: dict, ratios: dict) -> dict:
    verdicts = {}
    for name, goal in GOALS.items():
        t, checks = targets[name], {}
        if "throughput_ratio_min" in goal:
            checks["throughput_ratio"] = ratios[name]["throughput"] >= goal["throughput_ratio_min"]
        if "p99_ms_max" in goal:
            checks["p99_ms"] = t["p99_ms"] <= goal["p99_ms_max"]
        if "p50_ms_max" in goal:
            checks["p50_ms"] = t["p50_ms"] <= goal["p50_ms_max"]
        checks["no_errors"] = t["errors_total"] == 0
        verdicts[name] = {"goal": goal, "measured": {"throughput_ratio": ratios[name]["throughput"],
                                                     "p50_ms": t["p50_ms"], "p99_ms": t["p99_ms"]},
                          "checks": checks, "met": all(checks.values())}
    return verdicts


def machine() -> dict:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    memory = next((int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    wrk = subprocess.run(["wrk", "--version"], check=False, capture_output=True, text=True).stdout.splitlines()
    return {"cpus": os.cpu_count(), "cpu": cpu, "memory_gib": round(memory / 1024 ** 2, 1),
            "python": platform.python_version(), "platform": platform.platform(),
            "wrk": wrk[0].split(" [")[0] if wrk else None,
            **{p: version(p) for p in ("flask", "gunicorn", "uvicorn", "lightgbm", "mlflow", "numpy", "polars")}}


def code_state() -> dict:
    """Which code the API served: the commit, the files changed since, a digest of app/ and creditscore/."""
    def git(*args: str) -> str:
        out = subprocess.run(["git", *args], cwd=ROOT, check=False, capture_output=True, text=True)
        return out.stdout.rstrip("\n")
    digest = hashlib.sha256()
    for path in sorted(p for d in ("app", "creditscore") for p in (ROOT / d).rglob("*") if p.is_file()
                       and "__pycache__" not in p.parts):
        digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    return {"commit": git("rev-parse", "--short=12", "HEAD"),
            "changed_since_commit": git("status", "--porcelain", "--", "app", "creditscore").splitlines(),
            "sources_sha256": digest.hexdigest()[:16]}


def _sigterm(signum, frame):
    raise SystemExit(128 + signum)  # runs the finally blocks: every server is stopped


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="measured seconds per target and repetition")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up seconds before each measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4, help="concurrent clients (closed loop)")
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--trees", type=int, default=400)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--max-requests", type=int, default=None,
                        help="override the config's max_requests (worker recycling) for both gunicorn servers; "
                             "0 disables it (default: the config's 20,000 +- 2,000)")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_api needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    load_start = os.getloadavg()[0]
    code = code_state()

    import mlflow  # slow import: only once the arguments are fine
    mlflow.set_tracking_uri(tracking_uri())
    info = mlflow.models.get_model_info(MODEL_URI)
    required = {c.name for c in info.signature.inputs.inputs if c.required}
    bundle = load(ROOT / "models" / "bundle.joblib", Bundle)
    features: list[str] = bundle.features
    served = f"{bundle.model} ({' -> '.join(type(s).__name__ for s in bundle.pipeline.named_steps.values())}), " \
             f"registered model version {mlflow.MlflowClient().get_model_version_by_alias(*MODEL_NAME_ALIAS).version}"
    del bundle

    work = Path(tempfile.mkdtemp(prefix="bench_api_"))
    services: list[Service] = []
    try:
        booster = train_booster(features, args.trees, args.seed, work / "booster.txt")
        env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "ACCESS_LOG", "INFERENCE_LOG")}
        env |= {"PYTHONPATH": str(ROOT), "DVC_NO_ANALYTICS": "1"}
        minimal = gunicorn("minimal", "benchmarks.minimal_scorer:create_app()",
                           {**env, "MINIMAL_MODEL": str(work / "booster.txt")}, work, args.max_requests)
        api = gunicorn("api", "app:create_app()", {**env, "INFERENCE_LOG": str(work / "inference.sqlite")}, work,
                       args.max_requests)
        port = free_port()
        mlflow_env = {**env, "MLFLOW_TRACKING_URI": tracking_uri(),
                      **{v: "1" for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}}
        serve = Service("mlflow", [str(BIN / "mlflow"), "models", "serve", "-m", MODEL_URI, "--env-manager", "local",
                                   "-h", "127.0.0.1", "-p", str(port), "-w", "2"], mlflow_env, port,
                        work / "mlflow.log")
        services = [minimal, api, serve]
        for s in services:
            s.start()
        minimal.wait_ready("/health")
        api.wait_ready("/health")
        serve.wait_ready("/ping")

        rows = feature_rows(features, required, 1000, args.seed)
        ids = [c["SK_ID_CURR"] for c in call(api.url + "/clients?limit=1000")["clients"]]
        apps = raw_applications(1000, args.seed)
        lists = {
            "minimal": (minimal, [("POST", "/score", r) for r in rows]),
            "api_client": (api, [("GET", f"/clients/{i}", None) for i in ids]),
            "api_predict_raw": (api, [("POST", "/predict", {"application": a}) for a in apps]),
            "api_explain": (api, [("GET", f"/clients/{i}/explain", None) for i in ids]),
            "mlflow": (serve, [("POST", "/invocations", {"dataframe_split": {"columns": features, "data": [r]}})
                               for r in rows]),
        }
        for name, (service, items) in lists.items():  # each kind of request works before any load
            for method, path, body in items[:3]:
                try:
                    call(service.url + path, body)
                except urllib.error.HTTPError as exc:
                    raise RuntimeError(f"{name}: {method} {path} -> {exc.code} {exc.read()[:500]!r}") from exc
        script = work / "bench.lua"
        script.write_text(WRK_SCRIPT)
        files = {name: write_requests(work / f"{name}.txt", items) for name, (_, items) in lists.items()}

        runs = {name: [] for name in lists}
        warmups = {name: [] for name in lists}
        for rep in range(args.repeats):
            for name, (service, _) in lists.items():
                seed = args.seed + 100 * rep
                warmups[name].append(run_wrk(service.url, script, files[name], args.warmup, args.connections,
                                             args.wrk_threads, seed + 1))
                booted = service.boots()
                run = run_wrk(service.url, script, files[name], args.duration, args.connections, args.wrk_threads,
                              seed)
                if service is not serve:  # a recycled worker reboots during the measurement
                    run["worker_restarts"] = service.boots() - booted
                runs[name].append(run)
                print(f"rep {rep + 1}/{args.repeats} {name:16s} {run['throughput_rps']:8.1f} req/s  "
                      f"p50 {run['p50_ms']:7.2f}  p95 {run['p95_ms']:7.2f}  p99 {run['p99_ms']:7.2f} ms  "
                      f"errors {run['errors']}", flush=True)
        with sqlite3.connect(work / "inference.sqlite") as conn:
            logged = conn.execute("SELECT COUNT(*) FROM inference_log").fetchone()[0]
    finally:
        for s in services:
            s.stop()
        boots = {s.name: s.boots() for s in services if s.name != "mlflow"}
        shutil.rmtree(work, ignore_errors=True)

    targets = {name: summarise(runs[name], warmups[name]) for name in lists}
    base = targets["minimal"]
    ratios = {name: {"throughput": round(t["throughput_rps"] / base["throughput_rps"], 3),
                     "p50": round(t["p50_ms"] / base["p50_ms"], 2), "p99": round(t["p99_ms"] / base["p99_ms"], 2)}
              for name, t in targets.items() if name != "minimal"}
    described = {
        "minimal": "benchmarks/minimal_scorer.py: POST /score, ready 38-feature vector -> LightGBM booster probability",
        "api_client": "our API: GET /clients/<id> (random id of GET /clients?limit=1000), inference log on",
        "api_predict_raw": "our API: POST /predict with one raw application_test row, no history, inference log on",
        "api_explain": "our API: GET /clients/<id>/explain",
        "mlflow": f"mlflow models serve {MODEL_URI} (uvicorn, 2 workers): POST /invocations, one dataframe_split row",
    }
    recycling = "" if args.max_requests is None else f", --max-requests {args.max_requests} (overrides the config)"
    result = {
        "machine": machine(),
        "settings": {
            "load_generator": "wrk (closed loop, a Lua script draws each request at random from a prepared list)",
            "connections": args.connections, "wrk_threads": args.wrk_threads, "duration_s": args.duration,
            "warmup_s": args.warmup, "repeats": args.repeats, "seed": args.seed,
            "order": "within each repetition: " + ", ".join(lists),
            "servers": {"minimal": f"gunicorn, app/gunicorn.conf.py, 2 sync workers{recycling}",
                        "api": f"gunicorn, app/gunicorn.conf.py, 2 sync workers{recycling}; "
                               "INFERENCE_LOG = a temporary SQLite file; API_KEY unset; access log off",
                        "mlflow": "mlflow models serve --env-manager local -w 2 (uvicorn, access log on, its default)"},
            "keep_alive": "wrk keeps connections open; uvicorn keeps them, gunicorn's sync workers close each",
            "latency": "wrk: from writing the request to reading the whole response (queueing behind the other "
                       "connections included, TCP connect excluded)",
            "minimal_booster": booster, "model_served_by_api_and_mlflow": served,
            "payloads": {"feature_vectors": len(rows), "client_ids": len(ids), "raw_applications": len(apps)},
        },
        "targets": {name: {"what": described[name], **t} for name, t in targets.items()},
        "ratios_vs_minimal": ratios,
        "goals": goal_verdicts(targets, ratios),
        "code": {**code, "unchanged_during_run": code_state()["sources_sha256"] == code["sources_sha256"]},
        "load_average_1min": {"start": load_start, "end": os.getloadavg()[0]},  # end: mostly this benchmark
        "all_requests_succeeded": all(t["errors_total"] == 0 and t["warmup_errors_total"] == 0
                                      for t in targets.values()),
        "gunicorn_worker_restarts": {k: max(v - 2, 0) for k, v in boots.items()},  # max_requests recycling
        "inference_log_rows": logged,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"\n{'target':16s} {'req/s':>8s} {'p50':>7s} {'p95':>7s} {'p99':>7s} {'errors':>6s} {'x minimal':>9s}")
    for name, t in targets.items():
        ratio = ratios.get(name, {}).get("throughput", 1.0)
        print(f"{name:16s} {t['throughput_rps']:8.1f} {t['p50_ms']:7.2f} {t['p95_ms']:7.2f} {t['p99_ms']:7.2f} "
              f"{t['errors_total']:6d} {ratio:9.3f}")
    print(json.dumps({k: v["met"] for k, v in result["goals"].items()}))
    if not result["code"]["unchanged_during_run"]:
        print("warning: app/ or creditscore/ changed during the run: the API measured may be either version")
    return 0 if result["all_requests_succeeded"] else 1


if __name__ == "__main__":
    sys.exit(main())
