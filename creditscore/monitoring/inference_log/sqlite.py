"""The SQLite backend: one file shared by the workers of one machine (the embedded default)."""
from __future__ import annotations

import os
import sqlite3
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from creditscore.monitoring.inference_log.base import (
                                                       BUSY_TIMEOUT_MS,
                                                       SCHEMA_VERSION,
                                                       TABLE,
                                                       InferenceLog,
                                                       LogUnavailable,
                                                       check_present,
                                                       )

SQLITE_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'application' CHECK (kind IN ('application', 'view')),
    client_ref TEXT,
    model_version TEXT NOT NULL,
    score REAL NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('granted', 'refused')),
    features TEXT NOT NULL
)"""
# Connections inherited across fork: kept referenced so that the child never closes them (closing one could
# release the child's own POSIX locks on the file or touch the parent's WAL state); never used either.
_INHERITED: list[sqlite3.Connection] = []


def _migrate_sqlite(conn: sqlite3.Connection) -> None:
    """Create the table, or bring a version-1 log (raw sk_id_curr, no kind) to version 2; idempotent."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(SQLITE_SCHEMA)
        columns = [c[1] for c in conn.execute(f"PRAGMA table_info({TABLE})")]
        if "kind" not in columns:
            conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN kind TEXT NOT NULL DEFAULT 'application' "
                         "CHECK (kind IN ('application', 'view'))")
        if "client_ref" not in columns:
            conn.execute(f"ALTER TABLE {TABLE} ADD COLUMN client_ref TEXT")
        if "sk_id_curr" in columns:  # version 1 stored the raw id: it goes
            conn.execute(f"ALTER TABLE {TABLE} DROP COLUMN sk_id_curr")
        conn.execute(f"CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {TABLE} (ts)")
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _switch_to_wal(conn: sqlite3.Connection) -> None:
    """Put the file in WAL mode, waiting for the lock as the busy timeout would: SQLite does not call its busy handler
    for the switch, so workers opening a new file at once would otherwise get "database is locked" at once, and
    the back-off would drop their rows. Contention is not an outage."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    while True:
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if mode != "wal":  # SQLite may keep the old mode without an error
                raise sqlite3.OperationalError(f"database is locked (journal mode still {mode})")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.005)


class SQLiteLog(InferenceLog):
    """One SQLite file shared by the workers of one machine.

    - WAL journal (readers never block the writer) with a busy timeout; every write is a short `BEGIN IMMEDIATE`
      transaction (the write lock up front, so the busy handler applies instead of "database is locked");
    - each process opens its own connection lazily and opens a new one when it sees a different `os.getpid()`
      (a connection inherited across fork is never used, nor closed, by the child);
    - the file is created 0600 (SQLite gives its -wal and -shm files the same mode).
    """

    backend = "sqlite"

    def __init__(self, path, **kwargs):
        super().__init__(Path(path), **kwargs)
        self.path = self.target
        self._conn: sqlite3.Connection | None = None
        self._io = threading.Lock()  # the threads of a process share its connection: one statement at a time
        ephemeral = [v for v in ("DYNO", "RENDER") if os.environ.get(v)]
        self.durable = not ephemeral  # a dyno's or a Render instance's disk is thrown away at each restart

    def _reset_after_fork(self) -> None:
        if self._conn is not None:
            _INHERITED.append(self._conn)
        super()._reset_after_fork()
        self._conn, self._pid, self._io = None, None, threading.Lock()

    def _connection(self) -> sqlite3.Connection:
        if self._conn is not None and self._pid == os.getpid():
            return self._conn
        if self._conn is not None:  # inherited from the parent (fork without the hook): set aside, never closed
            _INHERITED.append(self._conn)
        self._conn, self._since_prune = None, 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))  # owner-only from the first byte
        conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                               check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _switch_to_wal(conn)
            conn.execute("PRAGMA synchronous = NORMAL")  # a killed process loses no commit; a power cut may lose the last
            _migrate_sqlite(conn)
        except BaseException:
            conn.close()  # a retry after the back-off opens a new one: none is left open
            raise
        self._conn, self._pid = conn, os.getpid()
        self._prune_sql(conn)
        return conn

    def _prune_sql(self, conn: sqlite3.Connection) -> None:
        """Rows older than max_age_days go, then all but the max_rows newest ids (exact while ids have no gaps;
        an OFFSET-based exact cut scans the index: ~30 ms at 100,000 rows against ~4 ms for this one)."""
        cutoff = datetime.fromtimestamp(time.time() - self.max_age_days * 86400, UTC).isoformat(timespec="milliseconds")
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.execute(f"DELETE FROM {TABLE} WHERE ts < ?", (cutoff,))
            conn.execute(f"DELETE FROM {TABLE} WHERE id <= (SELECT MAX(id) FROM {TABLE}) - ?", (self.max_rows,))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        self._since_prune = 0

    def _write(self, rows: list[tuple]) -> None:
        ts = datetime.now(UTC).isoformat(timespec="milliseconds")
        try:
            with self._io:
                conn = self._connection()
                conn.execute("BEGIN IMMEDIATE")
                try:
                    conn.executemany(f"INSERT INTO {TABLE} (ts, kind, client_ref, model_version, score, decision, "
                                     "features) VALUES (?, ?, ?, ?, ?, ?, ?)", [(ts, *r) for r in rows])
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except (sqlite3.OperationalError, OSError) as error:  # locked beyond the busy timeout, disk full, read-only
            raise LogUnavailable(f"{type(error).__name__}: {error}") from error

    def _prune_now(self) -> None:
        with self._io:
            self._prune_sql(self._connection())

    def count(self) -> int:
        with self._io:
            return self._connection().execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0]

    def close(self) -> None:
        with self._io:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = self._pid = None


def _json_path(name: str) -> str:
    return '$."' + name.replace('"', '\\"') + '"'


def _open_sqlite(path: Path) -> tuple[sqlite3.Connection, int]:
    """A read-only connection to an existing log file and its count of applications (errors name the file)."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: inference log not found")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
    try:
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        if conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (TABLE,)).fetchone() is None:
            raise ValueError(f"{path}: no {TABLE} table (not an inference log)")
        columns = [c[1] for c in conn.execute(f"PRAGMA table_info({TABLE})")]
        where = " WHERE kind = 'application'" if "kind" in columns else ""
        return conn, conn.execute(f"SELECT COUNT(*) FROM {TABLE}{where}").fetchone()[0]
    except sqlite3.DatabaseError as error:
        conn.close()
        raise ValueError(f"{path}: not a readable SQLite inference log ({error})") from error
    except BaseException:
        conn.close()
        raise


def _read_sqlite(path: Path, features: list[str]) -> list[tuple]:
    conn, n = _open_sqlite(path)
    try:
        if n == 0:
            raise ValueError(f"{path}: the inference log has no application rows")
        paths = [_json_path(f) for f in features]
        where = " WHERE kind = 'application'"
        if features:
            present = conn.execute("SELECT " + ", ".join("SUM(json_type(features, ?) IS NOT NULL)" for _ in features)
                                   + f" FROM {TABLE}{where}", paths).fetchone()
            check_present(str(path), features, present)
        select = ", ".join(["score"] + ["json_extract(features, ?)"] * len(features))
        return conn.execute(f"SELECT {select} FROM {TABLE}{where} ORDER BY id", paths).fetchall()
    except sqlite3.DatabaseError as error:
        raise ValueError(f"{path}: could not read the inference log ({error})") from error
    finally:
        conn.close()
