"""What the inference log costs per request: POST /predict with the log off, on SQLite and on PostgreSQL, in one run.

Three servers of the API (`app:create_app()`, the repository's gunicorn config, 2 workers each) differ only in
INFERENCE_LOG: `off`, a temporary SQLite file, and a throwaway PostgreSQL cluster (Debian's binaries, started
here in a temp directory on a local port, `fsync` on as a real server has it, and stopped at the end).
The load is `wrk` (`apt-get install wrk`) with `--connections` closed-loop clients posting one raw application
each (rows of `data/synthetic/application_test.csv`). Targets alternate within each repetition, after a warm-up.
Reports the median over repetitions of throughput and p50/p99 latency, each backend's ratio to the log off,
the append cost per request (difference of mean service time), and rows logged against answers (every
answered request must be one row); writes `benchmarks/results/inference_log.json`.

    python -m benchmarks.bench_log                     # how results/inference_log.json was made
    python -m benchmarks.bench_log --duration 3 --repeats 1
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_api import Service, _sigterm, call, code_state, gunicorn, machine, raw_applications
from benchmarks.wrk import WRK_SCRIPT, run_wrk, summarise, write_requests
from creditscore.config import ROOT
from creditscore.monitoring.inference_log import logged_rows

RESULTS = ROOT / "benchmarks" / "results" / "inference_log.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=8, help="measured seconds per target and repetition")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--connections", type=int, default=4)
    parser.add_argument("--wrk-threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench_log needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    from harness.postgres import Cluster, bin_dir

    if bin_dir() is None:
        print("bench_log needs PostgreSQL's server binaries: apt-get install postgresql", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _sigterm)
    load_start = os.getloadavg()[0]
    work = Path(tempfile.mkdtemp(prefix="bench_log_"))
    cluster = Cluster()
    services: dict[str, Service] = {}
    try:
        cluster.start(fsync=True)
        env = {k: v for k, v in os.environ.items() if k not in ("API_KEY", "ACCESS_LOG", "INFERENCE_LOG",
                                                                  "DATABASE_URL")}
        env |= {"PYTHONPATH": str(ROOT), "INFERENCE_LOG_KEY": "bench-key"}
        targets = {"off": "off", "sqlite": str(work / "inference.sqlite"), "postgresql": cluster.url}
        for name, target in targets.items():
            services[name] = gunicorn(f"log_{name}", "app:create_app()", {**env, "INFERENCE_LOG": target}, work,
                                      None).start()
        for service in services.values():
            service.wait_ready("/health")
        apps = raw_applications(1000, args.seed)
        items = [("POST", "/predict", {"application": a}) for a in apps]
        for service in services.values():
            call(service.url + "/predict", items[0][2])
        script = work / "bench.lua"
        script.write_text(WRK_SCRIPT)
        requests_file = write_requests(work / "predict.txt", items)
        runs = {name: [] for name in services}
        warmups = {name: [] for name in services}
        for rep in range(args.repeats):
            for name, service in services.items():
                seed = args.seed + 100 * rep
                warmups[name].append(run_wrk(service.url, script, requests_file, args.warmup, args.connections,
                                             args.wrk_threads, seed))
                runs[name].append(run_wrk(service.url, script, requests_file, args.duration, args.connections,
                                          args.wrk_threads, seed + 1))
        answered = {name: 1 + sum(r["requests"] - r["errors"] for r in runs[name] + warmups[name]) for name in runs}
        health = {name: call(s.url + "/health")["inference_log"] for name, s in services.items()}
        logged = {"off": None, "sqlite": logged_rows(targets["sqlite"]), "postgresql": logged_rows(cluster.url)}
    finally:
        for service in services.values():
            service.stop()
        cluster.close()
        shutil.rmtree(work, ignore_errors=True)

    summary = {name: summarise(runs[name], warmups[name]) for name in runs}
    base = summary["off"]
    mean_ms = {name: statistics.median(r["mean_ms"] for r in runs[name]) for name in runs}
    comparison = {}
    for name in ("sqlite", "postgresql"):
        comparison[name] = {
            "throughput_ratio_to_off": round(summary[name]["throughput_rps"] / base["throughput_rps"], 3),
            "p50_ratio_to_off": round(summary[name]["p50_ms"] / base["p50_ms"], 3),
            "p99_ratio_to_off": round(summary[name]["p99_ms"] / base["p99_ms"], 3),
            # with C closed-loop clients on 2 workers, mean latency ~ service time x C / 2: the extra per request
            "append_ms_per_request": round((mean_ms[name] - mean_ms["off"]) * 2 / args.connections, 3),
            "rows_logged": logged[name], "requests_answered": answered[name],
            # wrk stops counting with requests in flight: each of them is answered and logged all the same
            "rows_beyond_answered_at_most": args.connections * 2 * args.repeats,
            "rows_written_health": health[name].get("rows_written"), "rows_dropped": health[name].get("rows_dropped"),
        }
    result = {
        "benchmark": "POST /predict throughput with the inference log off, on SQLite and on PostgreSQL",
        "command": "python -m benchmarks.bench_log " + " ".join(sys.argv[1:]),
        "settings": vars(args) | {"workers": 2, "postgres": "Debian's server binaries, throwaway cluster, fsync on",
                                  "sqlite": "WAL, synchronous=NORMAL, temporary file"},
        "machine": machine(), "code": code_state(),
        "load_average": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "targets": summary, "comparison": comparison,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for name in summary:
        s = summary[name]
        extra = comparison.get(name, {})
        print(f"{name:>10}: {s['throughput_rps']:7.1f} req/s  p50 {s['p50_ms']:6.2f} ms  p99 {s['p99_ms']:6.2f} ms"
              + (f"  x{extra['throughput_ratio_to_off']:.3f} of off, +{extra['append_ms_per_request']:.2f} ms/request,"
                 f" rows {extra['rows_logged']} / answered {extra['requests_answered']}" if extra else ""))
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
