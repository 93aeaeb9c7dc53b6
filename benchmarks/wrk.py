"""wrk, driven from Python: a request file, one Lua script for every target, and the medians of repeated runs.

Used by `benchmarks/bench_api.py` (`apt-get install wrk`).
"""
from __future__ import annotations

import json
import statistics
import subprocess
from pathlib import Path

# One script for every target: its requests are lines "METHOD<TAB>PATH<TAB>BODY" of a file (args[1]), drawn at
# random (seed args[2] + thread); responses other than 200 are counted; done() prints one JSON line.
WRK_SCRIPT = r"""
local requests_, threads = {}, {}
non200, first_bad = 0, ""

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  for line in io.lines(args[1]) do
    local method, path, body = line:match("^(%u+)\t([^\t]+)\t(.*)$")
    local headers = {}
    if body == "" then body = nil else headers["Content-Type"] = "application/json" end
    requests_[#requests_ + 1] = wrk.format(method, path, headers, body)
  end
  math.randomseed(tonumber(args[2]) + 7919 * tid)
end

function request()
  return requests_[math.random(#requests_)]
end

function response(status, headers, body)
  if status ~= 200 then
    non200 = non200 + 1
    if first_bad == "" then first_bad = status .. " " .. string.sub(body or "", 1, 300) end
  end
end

function done(summary, latency, requests)
  local bad, sample = 0, ""
  for _, t in ipairs(threads) do
    bad = bad + t:get("non200")
    if sample == "" then sample = t:get("first_bad") end
  end
  local e = summary.errors
  io.write(string.format('BENCH_JSON {"requests": %d, "duration_us": %d, "non200": %d, "connect": %d, ' ..
    '"read": %d, "write": %d, "timeout": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "max_us": %d, ' ..
    '"mean_us": %.1f}\n', summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(95), latency:percentile(99), latency.max, latency.mean))
  if sample ~= "" then io.write("BENCH_FIRST_ERROR " .. sample .. "\n") end
end
"""


def write_requests(path: Path, items: list[tuple[str, str, object]]) -> Path:
    with open(path, "w") as out:
        for method, url_path, body in items:
            text = "" if body is None else json.dumps(body, allow_nan=False, separators=(",", ":"))
            out.write(f"{method}\t{url_path}\t{text}\n")
    return path


def run_wrk(url: str, script: Path, requests: Path, seconds: int, connections: int, threads: int,
            seed: int) -> dict:
    args = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(script),
            url, "--", str(requests), str(seed)]
    out = subprocess.run(args, check=False, capture_output=True, text=True, timeout=seconds + 60)
    lines = out.stdout.splitlines()
    found = [line for line in lines if line.startswith("BENCH_JSON ")]
    if out.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stdout[-2000:]} {out.stderr[-2000:]}")
    raw = json.loads(found[0].removeprefix("BENCH_JSON "))
    errors = raw["non200"] + raw["connect"] + raw["read"] + raw["write"] + raw["timeout"]
    result = {"requests": raw["requests"], "seconds": round(raw["duration_us"] / 1e6, 3),
              "throughput_rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
              "p50_ms": raw["p50_us"] / 1000, "p95_ms": raw["p95_us"] / 1000, "p99_ms": raw["p99_us"] / 1000,
              "max_ms": raw["max_us"] / 1000, "mean_ms": round(raw["mean_us"] / 1000, 3), "errors": errors,
              "error_kinds": {k: raw[k] for k in ("non200", "connect", "read", "write", "timeout") if raw[k]}}
    sample = [line.removeprefix("BENCH_FIRST_ERROR ") for line in lines if line.startswith("BENCH_FIRST_ERROR ")]
    if sample:
        result["first_error"] = sample[0]
    return result


def summarise(runs: list[dict], warmups: list[dict]) -> dict:
    keys = ("throughput_rps", "p50_ms", "p95_ms", "p99_ms", "errors")
    return {**{k: round(statistics.median(r[k] for r in runs), 3) for k in keys},
            "errors_total": sum(r["errors"] for r in runs), "warmup_errors_total": sum(w["errors"] for w in warmups),
            "runs": runs}
