"""gunicorn settings for the prediction API (Procfile, render.yaml and the end-to-end tests use this file)."""
import errno
import os
import selectors
import socket
import time

from gunicorn.workers.gthread import ThreadWorker

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
# Threaded workers, so that slow clients cannot hold the service: threads read requests (a request
# that stalls half-sent holds one of 16 for at most READ_TIMEOUT_S per read), and one request at a time is
# scored per worker (BoundedThreadWorker below). Against gunicorn's sync workers (GUNICORN_WORKER=sync) this
# costs some peak throughput, measured side by side by benchmarks/bench_faults.py; behind a proxy that buffers
# whole requests, sync workers are the faster choice.
threads = int(os.environ.get("GUNICORN_THREADS", "16"))
timeout = 30
graceful_timeout = 10
keepalive = 0  # a connection per request: an idle kept-alive connection would be lost with its worker
READ_TIMEOUT_S = float(os.environ.get("READ_TIMEOUT", "10"))
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


class _ReadTimeoutSocket(socket.socket):
    """A client socket whose blocking mode has a timeout: a stalled read or write fails after READ_TIMEOUT_S."""

    __slots__ = ("stalled",)

    def setblocking(self, flag: bool) -> None:
        if flag:
            self.settimeout(READ_TIMEOUT_S)
        else:
            super().setblocking(False)

    def recv(self, *args):
        try:
            return super().recv(*args)
        except TimeoutError:  # told as the client's reset, which gunicorn closes quietly (no traceback per attempt)
            self.stalled = True
            raise ConnectionResetError(errno.ECONNRESET, f"no data from the client for {READ_TIMEOUT_S:g} s") from None


MAX_BUFFERED_BODY = 5 * 1024 * 1024  # app.MAX_BODY_BYTES: larger bodies are left for the app to refuse (413)


class _FailedBody:
    """A request body that could not be read: the app's read raises the error (and answers 408)."""

    def __init__(self, error: OSError):
        self.error = error

    def read(self, *args):
        raise self.error

    readline = read


def _read_body_first(req) -> None:
    import io

    length = next((v for k, v in req.headers if k == "CONTENT-LENGTH"), None)
    chunked = any(k == "TRANSFER-ENCODING" for k, _ in req.headers)
    if (length is None and not chunked) or (length is not None and not length.isdigit()):
        return
    if length is not None and int(length) > MAX_BUFFERED_BODY:
        return
    try:
        req.body = io.BytesIO(req.body.read(MAX_BUFFERED_BODY + 1))
    except OSError as error:
        req.body = _FailedBody(error)


class BoundedThreadWorker(ThreadWorker):
    """gunicorn's gthread worker with two bounds it lacks against slow clients.

    - A read timeout on every client socket: once a request has begun, gthread reads it with a plain blocking
      socket, so a client that sends half a request line and stops holds its thread as long as it likes.
    - No lingering on the main loop: gthread closes a connection "gracefully" on its main thread, waiting up to
      2 s for the client to close its side. A client that never does (every stalled one) froze the accept loop
      for 2 s each: 8 of them, 16 s of no new connection. Here a stalled client's socket is closed at once; any
      other is half-closed and drained without waiting, and if the client has not closed yet, its socket waits in
      the worker's poller (at most LINGER_S) instead of the loop waiting for it. (A pool of closing threads did
      the same but cost a third of the throughput in thread hand-offs.)
    """

    LINGER_S = 2.0
    ACCEPT_PAUSE_S = 0.05

    def init_process(self):
        import threading

        self._lingering: dict = {}  # socket -> deadline
        self._app, self._busy_lock, self._busy = threading.Lock(), threading.Lock(), 0
        self._paused_until = 0.0
        super().init_process()

    # One request in the app at a time, and no accepting while it runs: scoring is CPU-bound (more at once would
    # only share the core), and connections not yet accepted wait in the kernel's queue, where the other workers
    # take them. So a worker that dies (kill -9, out of memory) takes down the one request it was scoring, not
    # every connection it had accepted; slow clients still only cost a reading thread.
    # After each accept, accepting also pauses until that connection's request reaches the app (or ACCEPT_PAUSE_S
    # passes: a client that sends nothing or stalls is read on its thread while the worker takes others).
    # Without this, the main loop could accept a second connection before the first request's gate closed.
    def set_accept_enabled(self, enabled):
        super().set_accept_enabled(enabled and self._busy == 0 and time.monotonic() >= self._paused_until)

    def accept(self, listener):
        super().accept(listener)
        self._paused_until = time.monotonic() + self.ACCEPT_PAUSE_S
        super().set_accept_enabled(False)

    def wait_for_and_dispatch_events(self, timeout):
        pause = self._paused_until - time.monotonic()
        super().wait_for_and_dispatch_events(min(timeout, pause) if pause > 0 else timeout)

    def _regate(self):
        self.set_accept_enabled(self.nr_conns < self.worker_connections)

    def handle_request(self, req, conn):
        _read_body_first(req)  # a stalled body must hold this reading thread, not the app and the accept loop
        with self._busy_lock:
            self._busy += 1
            self._paused_until = 0.0  # the accepted request has arrived: the busy gate takes over
        self.method_queue.defer(self._regate)
        try:
            with self._app:
                return super().handle_request(req, conn)
        finally:
            with self._busy_lock:
                self._busy -= 1
            self.method_queue.defer(self._regate)

    def enqueue_req(self, conn):
        if not isinstance(conn.sock, _ReadTimeoutSocket):
            conn.sock = _ReadTimeoutSocket(fileno=conn.sock.detach())
            conn.close = lambda graceful=False, conn=conn: self._close(conn, graceful)
        super().enqueue_req(conn)

    def _close(self, conn, graceful: bool) -> None:  # on the main thread (finish_request)
        from gunicorn import util

        sock = conn.sock
        if not graceful or getattr(sock, "stalled", False):
            util.close(sock)
            return
        try:
            sock.shutdown(socket.SHUT_WR)
            sock.setblocking(False)
        except OSError:
            util.close(sock)
            return
        if not self._drain(sock):
            self._lingering[sock] = time.monotonic() + self.LINGER_S
            self.poller.register(sock, selectors.EVENT_READ, self._on_lingering)

    @staticmethod
    def _drain(sock) -> bool:
        """Read what the client still sends; close and return True once it has closed (or failed)."""
        from gunicorn import util

        for _ in range(16):
            try:
                if not sock.recv(4096):
                    break
            except BlockingIOError:
                return False
            except OSError:
                break
        util.close(sock)
        return True

    def _on_lingering(self, sock) -> None:
        if self._drain_registered(sock):
            self._lingering.pop(sock, None)

    def _drain_registered(self, sock) -> bool:
        self.poller.unregister(sock)
        if self._drain(sock):
            return True
        self.poller.register(sock, selectors.EVENT_READ, self._on_lingering)
        return False

    def murder_keepalived(self):
        super().murder_keepalived()
        from gunicorn import util

        now = time.monotonic()
        for sock, deadline in list(self._lingering.items()):
            if deadline <= now:
                self.poller.unregister(sock)
                util.close(sock)
                del self._lingering[sock]


# GUNICORN_WORKER=sync: the former one-request-per-process workers (no defence against slow clients)
worker_class = "sync" if os.environ.get("GUNICORN_WORKER") == "sync" else BoundedThreadWorker
if worker_class == "sync":
    threads = 1  # (gunicorn turns sync workers with more threads into plain gthread ones)


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
