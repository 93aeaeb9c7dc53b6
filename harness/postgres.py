"""A throwaway PostgreSQL server for the tests and benchmarks: Debian's binaries, a cluster in a temp directory, a local port.

No mock and no Docker: `initdb` a fresh cluster, `pg_ctl start` it on a free loopback port (as the `postgres`
user when the tests run as root, since PostgreSQL refuses root), stop it at the end. `.ci/run` installs
Debian's `postgresql` package when it is missing; without it these tests skip (and fail under
REQUIRE_ALL_TESTS=1, as in CI).
"""
from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from harness.servers import free_port


def bin_dir() -> Path | None:
    """The newest installed PostgreSQL server binaries (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(Path(p).parts[4]))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).parent if pg_ctl else None


class Cluster:
    """`start()`, `stop()` and `start()` again keep the same data: a real server restart."""

    def __init__(self, bin: Path | None = None):
        self.bin = bin or bin_dir()
        if self.bin is None:
            raise RuntimeError("PostgreSQL server binaries not found: apt-get install postgresql")
        # its own directory straight under the temp dir: pytest's are 0700 root, where `postgres` cannot enter
        self.root = Path(tempfile.mkdtemp(prefix="credit-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_user:
            shutil.chown(self.root, "postgres")
            os.chmod(self.root, 0o700)
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        done = subprocess.run([*self.as_user, str(self.bin / tool), *args], capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(f"{tool} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self, fsync: bool = False) -> Cluster:
        """Start (or restart) the server; fsync off by default: the tests need a server, not durability on disk."""
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories={self.root} "
                   f"-c fsync={'on' if fsync else 'off'}")
        self._run("pg_ctl", "start", "-w", "-t", "60", "-D", str(self.data), "-l", str(self.root / "server.log"),
                  "-o", options)
        return self

    def stop(self) -> None:
        """Fast shutdown: open connections are cut, as when a managed database restarts or fails over."""
        self._run("pg_ctl", "stop", "-w", "-m", "fast", "-D", str(self.data))

    def close(self) -> None:
        """Stop the server if it runs and delete the cluster."""
        if self.running():
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def running(self) -> bool:
        return (self.data / "postmaster.pid").exists()

    def sql(self, query: str, params=()) -> list[tuple]:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=5) as conn:
            cur = conn.execute(query, params)
            return cur.fetchall() if cur.description else []

    def reset(self) -> None:
        self.sql("DROP TABLE IF EXISTS inference_log")
