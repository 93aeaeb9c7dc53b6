"""gunicorn settings for the prediction API (Procfile, render.yaml and the end-to-end tests use this file)."""
import os

# Each worker loads the app once when it boots. Not preloaded in the master: Polars' thread pool does not survive a
# fork (a preloaded app deadlocks on its first feature query). The master checks the files: `on_starting` verifies
# the served files against their checksums and serves a private copy of them, so a worker booting later (crash,
# recycling) serves the bytes verified at start even if the files on disk changed (`/health` then warns). A missing
# or corrupt file stops the start with what to run.
preload_app = False
# What the master shares with its workers: the libraries, and the served files, none of which needs Polars (the
# bundle's fitted models, the reference's aggregates, the known clients' arrays and Arrow bytes). Imported and loaded
# in `on_starting`, before the fork, and frozen out of the garbage collector's reach, their memory is shared
# copy-on-write instead of built again in every worker (measured by benchmarks/bench_footprint.py). None starts a
# thread there: the numerical libraries and OpenMP are limited to one thread below (a worker forked from a master
# whose LightGBM had run OpenMP threads still predicts: its own threads start at its first prediction).
SHARED_IMPORTS = ("numpy", "scipy.stats", "sklearn.base", "sklearn.linear_model", "sklearn.isotonic",
                  "sklearn.pipeline", "imblearn.pipeline", "lightgbm", "flask", "pydantic", "joblib")
bind = f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# gunicorn's sync workers: one request at a time per process, so a worker that dies (kill -9, out of memory) takes
# down only the request it was scoring, and connections not yet accepted wait in the kernel's queue for the other
# workers. They need a proxy that reads each request whole before passing it on, which Heroku's router does (the
# headers and the first 1 MB of the body) and app/nginx.conf.template does on a host of your own: a stalled client
# then costs the proxy a connection, never a worker (docs/security.md, measured by benchmarks/bench_faults.py).
worker_class = "sync"
timeout = 30  # a worker silent for this long (a request stuck in the app, or a stalled client with no proxy) is replaced
graceful_timeout = 10
# Recycle workers now and then (bounded memory over weeks of uptime). The jitter is wide on purpose: with a
# narrow one, two workers under even load restarted within a second of each other, leaving no worker for
# ~1.2 s (measured by benchmarks/bench_api.py).
max_requests = 200_000
max_requests_jitter = 100_000
accesslog = os.environ.get("ACCESS_LOG")  # "-" for stdout; off by default (it costs ~10% throughput)
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")

# One thread per worker for the numerical libraries: with 2 workers on 2 cores, more threads only fight.
for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "POLARS_MAX_THREADS"):
    os.environ.setdefault(var, "1")


def on_starting(server):
    import gc
    import importlib
    import sys
    from pathlib import Path

    for name in SHARED_IMPORTS:
        importlib.import_module(name)
    from creditscore.config import ROOT
    from creditscore.errors import ArtifactError
    from creditscore.serving.artifacts import ENV, served_paths, snapshot
    from creditscore.serving.bundle import Bundle, KnownClients, Reference, preload

    paths = served_paths(os.environ, ROOT / "models")
    if "clients" not in paths:
        os.environ["MODEL_CLIENTS"] = "off"  # the workers serve what the master verified: no known clients
    import multiprocessing

    server.log_counters = multiprocessing.get_context("fork").Array("q", 2)  # shared memory, inherited by workers
    try:
        server.model_snapshot = snapshot(paths)
        # loaded here once and shared by every worker
        for name, kind in (("bundle", Bundle), ("reference", Reference), ("clients", KnownClients)):
            if name in paths:
                try:
                    preload(Path(os.environ[ENV[name]]), kind)
                except ImportError:  # a model needing a package the serving set lacks: each worker names it
                    pass
    except ArtifactError as exc:
        print(f"credit-scoring API: cannot start: {exc}", flush=True)
        raise SystemExit(1) from None
    gc.freeze()  # the collector leaves these objects alone, so it does not copy their pages into every worker
    if "polars" in sys.modules:  # something above began to import it: it must not run in the master
        raise SystemExit("credit-scoring API: polars was imported in the gunicorn master; remove what imported it "
                         "from SHARED_IMPORTS, or from the classes of the served files")


def post_fork(server, worker):
    # rows written to and dropped by the inference log, counted over every worker (GET /health)
    from creditscore.monitoring.inference_log import share_counters
    share_counters(server.log_counters)


def on_exit(server):
    import shutil
    shutil.rmtree(getattr(server, "model_snapshot", ""), ignore_errors=True)
