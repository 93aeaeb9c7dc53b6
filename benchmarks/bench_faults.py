"""The API under faults: a worker killed under load, slow clients, a soak, and the worker model side by side.

Length: every fault is measured against the same servers in one run (never two benchmarks at once).

Every server is the API (`app:create_app()`) under gunicorn with the repository's `app/gunicorn.conf.py` (gunicorn's
sync workers), 2 workers, on 127.0.0.1, behind nginx with `app/nginx.conf.template` as deployed
(`harness.servers.Proxy`), with the inference log on a temporary SQLite file (keyed pseudonyms, so that every logged
row can be matched to the request that made it). Four measurements, one JSON (`benchmarks/results/faults.json`):

1. **kill -9 under load.** `--clients` Python clients post raw applications (each with its own SK_ID_CURR) through
   the proxy for `--kill-run` seconds; one worker is killed with SIGKILL a third of the way in. Requests, failures,
   p50/p99 before, during (the 2 s after the kill) and after; time to recover (from the kill to the first 1 s window
   with no failure and a p99 under twice the one before); log rows against answers (lost: an answered request
   with no row; duplicated: a request with two rows).
2. **Slow clients**, behind the proxy and straight to gunicorn: 8 connections that send half a request and stop,
   then 5 `GET /health`; their latency (the done-when: under 1 s).
3. **Soak**: `--soak` seconds of the same load through the proxy; each worker's memory (USS and RSS) at start and end.
4. **The proxy's cost**: `wrk` (when installed) on `POST /predict` and `GET /clients/<id>`, through the proxy against
   straight to gunicorn, alternating, median of `--repeats`.

    python -m benchmarks.bench_faults                     # how results/faults.json was made (3-minute soak)
    python -m benchmarks.bench_faults --soak 20 --kill-run 15 --repeats 1     # a quick look
"""
from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import shutil
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import requests

from benchmarks.bench_api import Service, _sigterm, call, code_state, gunicorn, machine, raw_applications
from benchmarks.wrk import WRK_SCRIPT, run_wrk, write_requests
from creditscore.config import ROOT
from harness.servers import Proxy

RESULTS = ROOT / "benchmarks" / "results" / "faults.json"
KEY = "bench-faults"
HALF_OPEN = [b"GET /hea", b"GET /health HTTP/1.1\r\nHost: x\r\n",
             b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 900\r\n\r\n{\"ap"]


def ref(sk_id: int) -> str:
    return hmac.new(KEY.encode(), str(sk_id).encode(), hashlib.sha256).hexdigest()[:20]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    values = sorted(values)
    return round(values[min(len(values) - 1, int(q * len(values)))] * 1000, 2)


class Load:
    """Closed-loop clients posting raw applications; records (start, seconds, status, id) per request."""

    def __init__(self, url: str, apps: list[dict], clients: int, first_id: int):
        self.url, self.apps, self.clients = url, apps, clients
        self.next_id, self.lock, self.stop_at = first_id, threading.Lock(), 0.0
        self.records: list[tuple[float, float, int, int]] = []

    def _client(self, index: int) -> None:
        session = requests.Session()
        while time.monotonic() < self.stop_at:
            with self.lock:
                sk_id, self.next_id = self.next_id, self.next_id + 1
            app = {**self.apps[sk_id % len(self.apps)], "SK_ID_CURR": sk_id}
            started = time.monotonic()
            try:
                status = session.post(self.url + "/predict", json={"application": app}, timeout=30).status_code
            except requests.RequestException:
                status, session = 0, requests.Session()
            with self.lock:
                self.records.append((started, time.monotonic() - started, status, sk_id))

    def run(self, seconds: float, during=None) -> list[tuple[float, float, int, int]]:
        self.stop_at = time.monotonic() + seconds
        threads = [threading.Thread(target=self._client, args=(i,)) for i in range(self.clients)]
        for t in threads:
            t.start()
        if during is not None:
            during()
        for t in threads:
            t.join()
        return sorted(self.records)


def window(records, start: float, end: float) -> dict:
    inside = [r for r in records if start <= r[0] < end]
    ok = [r[1] for r in inside if r[2] == 200]
    return {"requests": len(inside), "failures": sum(r[2] != 200 for r in inside),
            "p50_ms": percentile(ok, 0.5), "p99_ms": percentile(ok, 0.99)}


def logged_refs(path: Path) -> list[str]:
    import sqlite3

    with sqlite3.connect(path) as conn:
        return [r[0] for r in conn.execute("SELECT client_ref FROM inference_log WHERE kind = 'application'")]


def workers(service: Service) -> list[psutil.Process]:
    master = psutil.Process(service.process.pid)
    return [p for p in master.children() if "gunicorn" in " ".join(p.cmdline())]


def kill_under_load(service: Service, url: str, apps, log: Path, seconds: float, clients: int) -> dict:
    """The load goes to `url` (the proxy in front of `service`); a worker of `service` is killed."""
    load = Load(url, apps, clients, first_id=1_000_000)
    t0 = time.monotonic()
    kill_at = t0 + seconds / 3
    killed = {}

    def kill():
        time.sleep(max(0.0, kill_at - time.monotonic()))
        victim = workers(service)[0]
        killed["pid"], killed["at"] = victim.pid, time.monotonic()
        os.kill(victim.pid, signal.SIGKILL)

    records = load.run(seconds, during=kill)
    at = killed["at"]
    before = window(records, t0 + 1, at)
    recovered = None
    for start in (at + 0.25 * i for i in range(int((t0 + seconds - at) / 0.25))):
        w = window(records, start, start + 1)
        if w["requests"] and w["failures"] == 0 and w["p99_ms"] is not None and before["p99_ms"] and \
                w["p99_ms"] < 2 * before["p99_ms"]:
            recovered = round(start - at, 2)
            break
    answered = {r[3] for r in records if r[2] == 200}
    unanswered = {r[3] for r in records if r[2] != 200}
    rows = logged_refs(log)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r] = counts.get(r, 0) + 1
    return {"clients": clients, "seconds": seconds, "killed_worker_at_s": round(at - t0, 2),
            "requests": len(records), "failures": len(unanswered),
            "before": before, "during_2s_after_kill": window(records, at, at + 2),
            "after": window(records, at + 2, t0 + seconds), "time_to_recover_s": recovered,
            "log": {"rows": len(rows), "answers": len(answered),
                    "lost_answered_rows": sum(ref(i) not in counts for i in answered),
                    "duplicated_rows": sum(c - 1 for c in counts.values() if c > 1),
                    "rows_of_unanswered_requests": sum(ref(i) in counts for i in unanswered)}}


def slow_clients(port: int, url: str, connections: int = 8) -> dict:
    """Half-open connections to `port`, then /health at `url` (the same server)."""
    held = []
    for i in range(connections):
        c = socket.create_connection(("127.0.0.1", port))
        c.sendall(HALF_OPEN[i % len(HALF_OPEN)])
        held.append(c)
    time.sleep(0.5)
    latencies = []
    try:
        for _ in range(5):
            started = time.monotonic()
            try:
                ok = requests.get(url + "/health", timeout=60).status_code == 200
            except requests.RequestException:
                ok = False
            latencies.append(round(time.monotonic() - started, 3) if ok else None)
    finally:
        for c in held:
            c.close()
    return {"half_open_connections": connections, "health_latency_s": latencies,
            "max_s": max((x for x in latencies if x is not None), default=None),
            "goal_under_1s_met": all(x is not None and x < 1 for x in latencies)}


def memory(service: Service) -> list[dict]:
    out = []
    for p in workers(service):
        info = p.memory_full_info()
        out.append({"pid": p.pid, "uss_mib": round(info.uss / 2 ** 20, 1), "rss_mib": round(info.rss / 2 ** 20, 1)})
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kill-run", type=float, default=30, help="seconds of load around the worker kill")
    parser.add_argument("--soak", type=float, default=180, help="seconds of soak")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=3, help="wrk repetitions of the worker-model comparison")
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, _sigterm)
    work = Path(tempfile.mkdtemp(prefix="bench_faults_"))
    env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "ACCESS_LOG", "INFERENCE_LOG", "DATABASE_URL")}
    env |= {"PYTHONPATH": str(ROOT), "INFERENCE_LOG_KEY": KEY}
    apps = raw_applications(1000, args.seed)
    result = {"command": "python -m benchmarks.bench_faults " + " ".join(sys.argv[1:]), "settings": vars(args),
              "machine": machine(), "code": code_state(), "load_average_start": round(os.getloadavg()[0], 2)}
    services: list[Service] = []
    proxies: list[Proxy] = []

    def serve(name: str, extra: dict) -> tuple[Service, Proxy]:
        s = gunicorn(name, "app:create_app()", {**env, **extra}, work, None).start()
        services.append(s)
        s.wait_ready("/health")
        proxies.append(Proxy(s.port).start())
        return s, proxies[-1]

    try:
        log = work / "kill.sqlite"
        s, proxy = serve("kill", {"INFERENCE_LOG": str(log)})
        result["kill_under_load"] = kill_under_load(s, proxy.url, apps, log, args.kill_run, args.clients)
        s.stop()
        print("kill -9 under load:", json.dumps(result["kill_under_load"]))

        s, proxy = serve("slow", {"INFERENCE_LOG": "off"})
        result["slow_clients"] = {"behind_nginx": slow_clients(proxy.port, proxy.url)}
        print("slow clients (behind nginx):", json.dumps(result["slow_clients"]["behind_nginx"]))
        result["slow_clients"]["no_proxy"] = slow_clients(s.port, s.url)
        print("slow clients (no proxy):", json.dumps(result["slow_clients"]["no_proxy"]))
        s.stop()

        s, proxy = serve("soak", {"INFERENCE_LOG": str(work / "soak.sqlite")})
        start_memory = memory(s)
        records = Load(proxy.url, apps, args.clients, first_id=5_000_000).run(args.soak)
        result["soak"] = {"seconds": args.soak, "requests": len(records),
                          "failures": sum(r[2] != 200 for r in records),
                          "p50_ms": percentile([r[1] for r in records if r[2] == 200], 0.5),
                          "p99_ms": percentile([r[1] for r in records if r[2] == 200], 0.99),
                          "workers_memory_start": start_memory, "workers_memory_end": memory(s)}
        s.stop()
        print("soak:", json.dumps({k: v for k, v in result["soak"].items()}))

        if shutil.which("wrk"):
            s, proxy = serve("wm", {"INFERENCE_LOG": "off"})
            targets = {"behind_nginx": proxy.url, "no_proxy": s.url}
            ids = [c["SK_ID_CURR"] for c in call(s.url + "/clients?limit=500")["clients"]]
            files = {"predict": write_requests(work / "p.txt", [("POST", "/predict", {"application": a}) for a in apps]),
                     "client": write_requests(work / "c.txt", [("GET", f"/clients/{i}", None) for i in ids])}
            script = work / "bench.lua"
            script.write_text(WRK_SCRIPT)
            runs: dict[str, dict[str, list]] = {k: {m: [] for m in targets} for k in files}
            for rep in range(args.repeats):
                for kind, path in files.items():
                    for name, url in targets.items():
                        run_wrk(url, script, path, 2, 4, 2, args.seed + rep)
                        runs[kind][name].append(run_wrk(url, script, path, 8, 4, 2, args.seed + rep + 50))
            result["proxy_cost"] = {
                kind: {name: {"throughput_rps": statistics.median(r["throughput_rps"] for r in rs),
                              "p99_ms": statistics.median(r["p99_ms"] for r in rs),
                              "errors": sum(r["errors"] for r in rs)} for name, rs in by.items()}
                for kind, by in runs.items()}
            for by in result["proxy_cost"].values():
                by["behind_nginx_over_no_proxy"] = round(by["behind_nginx"]["throughput_rps"]
                                                         / by["no_proxy"]["throughput_rps"], 3)
            print("the proxy's cost:", json.dumps(result["proxy_cost"]))
    finally:
        for proxy in proxies:
            proxy.stop()
        for s in services:
            s.stop()
        shutil.rmtree(work, ignore_errors=True)
    result["load_average_end"] = round(os.getloadavg()[0], 2)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
