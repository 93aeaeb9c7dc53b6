"""gunicorn settings for the prediction API (Procfile, render.yaml and the end-to-end tests use this file)."""
import os

# Each worker loads the model once when it boots. Not preloaded in the master: Polars' thread pool does not
# survive a fork (a preloaded app deadlocks on its first feature query). The master only checks the files:
# `on_starting` verifies the bundle and the reference against their checksums and serves a private copy
# of them, so a worker booting later (crash, recycling) loads the bytes verified at start even if the files
# on disk changed (`/health` then warns). A missing or corrupt file stops the start with what to run.
preload_app = False
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = 1
worker_class = "sync"
timeout = 30
graceful_timeout = 10
# Recycle workers now and then (bounded memory over weeks of uptime). The jitter is wide on purpose: with a
# narrow one, two workers under even load restarted within a second of each other, leaving no worker for
# ~1.2 s (measured by benchmarks/bench_api.py). Sync workers close each connection: no keep-alive setting.
max_requests = 200_000
max_requests_jitter = 100_000
accesslog = os.environ.get("ACCESS_LOG")  # "-" for stdout; off by default (it costs ~10% throughput)
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")

# One thread per worker for the numerical libraries: with 2 workers on 2 cores, more threads only fight.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS"):
    os.environ.setdefault(var, "1")


def on_starting(server):
    from pathlib import Path

    from creditscore.artifacts import ArtifactError, snapshot
    from creditscore.config import ROOT

    paths = {"bundle": Path(os.environ.get("MODEL_BUNDLE") or ROOT / "models" / "bundle.joblib"),
             "reference": Path(os.environ.get("MODEL_REFERENCE") or ROOT / "models" / "reference.joblib")}
    import multiprocessing

    server.log_counters = multiprocessing.get_context("fork").Array("q", 2)  # shared memory, inherited by workers
    try:
        server.model_snapshot = snapshot(paths)
    except ArtifactError as exc:
        print(f"credit-scoring API: cannot start: {exc}", flush=True)
        raise SystemExit(1) from None


def post_fork(server, worker):
    # rows written to and dropped by the inference log, counted over every worker (GET /health)
    from creditscore.inference_log import share_counters
    share_counters(server.log_counters)


def on_exit(server):
    import shutil
    shutil.rmtree(getattr(server, "model_snapshot", ""), ignore_errors=True)
