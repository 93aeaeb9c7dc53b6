"""Helpers shared by the benchmarks: run a step in its own process, measure it, summarise repeats."""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

from creditscore.config import ROOT

WORK = ROOT / "benchmarks" / ".work"


def commit() -> str:
    """The commit the benchmark runs on, `+changes` when the working tree's code differs from it (results and
    documentation aside)."""
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                            ":(exclude)benchmarks/results", ":(exclude)*.md"], cwd=ROOT, capture_output=True, text=True)
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


def write_results(path, result: dict) -> None:
    """Write a benchmark's results as JSON, stamped with the commit it ran on."""
    path.write_text(json.dumps({"commit": commit(), **result}, indent=2) + "\n")
GENERATE = ("import sys; from pathlib import Path; from creditscore.synthetic.generate import generate; "
            "generate(Path(sys.argv[1]), int(sys.argv[2]), 42)")
PREPARE = ("import sys; from pathlib import Path; from stages.prepare import run; "
           "sys.exit(run(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), 'synthetic', 0.2, 42))")


def measure(args: list[str], cwd=ROOT, keep_log=None) -> dict:
    """Run a command; return its wall seconds and peak resident memory in MiB (ru_maxrss from wait4).

    `keep_log`: a path that receives the command's standard error (its stage log lines), kept after the run.
    """
    with tempfile.TemporaryFile() as log:  # a file, not a pipe: a chatty step cannot block on a full pipe
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=log)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        log.seek(0)
        text = log.read().decode(errors="replace")
        if keep_log is not None:
            keep_log.write_text(text)
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"{' '.join(map(str, args))} failed: {text[-3000:]}")
    return {"seconds": round(wall, 2), "peak_mib": round(usage.ru_maxrss / 1024, 1)}


def python(code: str, *args) -> list[str]:
    """The command that runs a snippet of Python with arguments."""
    return [sys.executable, "-c", code, *map(str, args)]


def median_run(runs: list[dict]) -> dict:
    """Median wall time and peak memory over repeated runs."""
    return {k: statistics.median(r[k] for r in runs) for k in ("seconds", "peak_mib")}
