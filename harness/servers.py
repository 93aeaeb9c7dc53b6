"""A real gunicorn server of the API on a free local port, and the nginx proxy of app/nginx.conf.template in front of
it, for tests and benchmarks (no pytest needed)."""
from __future__ import annotations

import os
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from creditscore.config import ROOT

# A valid raw application, as a caller of the API sends it (the tests' and the benchmarks' request body).
VALID = {"AMT_INCOME_TOTAL": 135000.0, "AMT_CREDIT": 513000.0, "AMT_ANNUITY": 24700.5, "DAYS_BIRTH": -14000,
         "EXT_SOURCE_2": 0.55, "CODE_GENDER": "F", "NAME_EDUCATION_TYPE": "Higher education", "CNT_FAM_MEMBERS": 2}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serving(models: Path, clients: bool = True) -> dict:
    """The environment that serves a pipeline run's models folder (inference log off)."""
    return {"MODEL_BUNDLE": str(models / "bundle.joblib"), "MODEL_REFERENCE": str(models / "reference.joblib"),
            "MODEL_CLIENTS": str(models / "clients.joblib") if clients else "off", "INFERENCE_LOG": "off"}


def pss_mib(pid: int) -> float:
    """A process's proportional set size in MiB: its private pages, and its share of the pages it shares."""
    with open(f"/proc/{pid}/smaps_rollup") as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith("Pss:")) / 1024


def answers_health(process: subprocess.Popen, url: str, name: str, timeout: float) -> bool:
    """Wait until `url`/health answers 200 (True) or `timeout` passes (False); a process that exits raises."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited ({process.returncode}):\n{process.stdout.read()}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.1)
    return False


class Server:
    def __init__(self, env: dict | None = None, workers: int = 2, gunicorn: Path | None = None):
        """`gunicorn`: the executable to run (default: this interpreter's), e.g. a serving-only environment's."""
        self.gunicorn = gunicorn or Path(sys.executable).parent / "gunicorn"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        merged = {**os.environ, "PORT": str(self.port), "WEB_CONCURRENCY": str(workers), **(env or {})}
        self.env = {k: v for k, v in merged.items() if v is not None}  # None unsets a variable
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 60) -> Server:
        self.process = subprocess.Popen(
            [str(self.gunicorn), "--config", "app/gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}", "app:create_app()"],
            cwd=ROOT, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if not answers_health(self.process, self.url, "gunicorn", timeout):
            self.stop()
            raise RuntimeError("gunicorn did not answer /health in time")
        return self

    def pss_mib(self) -> tuple[float, list[float]]:
        """Proportional set size (MiB) of the master and of each worker, now (`/proc/<pid>/smaps_rollup`)."""
        children = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout.split()
        return round(pss_mib(self.process.pid), 1), [round(pss_mib(int(c)), 1) for c in children]

    def stop(self) -> str:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.stdout.read() if self.process and self.process.stdout else ""


def nginx_executable() -> str | None:
    """Debian's nginx (`apt-get install nginx`), if installed."""
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).is_file()), None)


class Proxy:
    """nginx with the repository's app/nginx.conf.template, on a free local port, in front of a started server on
    `upstream_port`: the buffering proxy the sync workers are deployed behind (what Heroku's router does for the
    Procfile)."""

    def __init__(self, upstream_port: int, read_timeout: float = 10):
        self.upstream_port, self.read_timeout = upstream_port, read_timeout
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = Path(tempfile.mkdtemp(prefix="nginx-"))
        self.prefix.chmod(0o755)  # run as root, nginx's workers are `nobody`: they must reach their temp folders
        self.process: subprocess.Popen | None = None

    def config(self) -> Path:
        """The template filled in as `envsubst` would, for this port, upstream and temporary folder."""
        template = string.Template((ROOT / "app" / "nginx.conf.template").read_text())
        text = template.safe_substitute(PORT=f"127.0.0.1:{self.port}", UPSTREAM=f"127.0.0.1:{self.upstream_port}",
                                        PREFIX=str(self.prefix),
                                        READ_TIMEOUT=f"{round(self.read_timeout * 1000)}ms")
        path = self.prefix / "nginx.conf"
        path.write_text(text)
        return path

    def start(self, timeout: float = 20) -> Proxy:
        executable = nginx_executable()
        if executable is None:
            raise FileNotFoundError("nginx is not installed (Debian: apt-get install nginx)")
        self.process = subprocess.Popen([executable, "-c", str(self.config()), "-e", "stderr"],
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            if not answers_health(self.process, self.url, "nginx", timeout):
                raise RuntimeError("nginx did not answer /health in time")
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self) -> str:
        out = ""
        if self.process and self.process.poll() is None:
            self.process.terminate()  # nginx's fast shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
        if self.process and self.process.stdout:
            out = self.process.stdout.read()
        shutil.rmtree(self.prefix, ignore_errors=True)
        return out


def run_until_exit(env: dict, timeout: float = 60) -> subprocess.CompletedProcess:
    """Start gunicorn expecting it to refuse to start; return its exit status and output."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    port = free_port()
    return subprocess.run([str(gunicorn), "--config", "app/gunicorn.conf.py", "--bind", f"127.0.0.1:{port}",
                           "app:create_app()"], cwd=ROOT, env={**os.environ, **env}, capture_output=True, text=True,
                          timeout=timeout)
