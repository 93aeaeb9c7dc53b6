"""Inference log: one row per scored request, appended by every API worker, read back by the drift stage.

Two backends behind one small interface (`open_log(target)` gives an `InferenceLog`; `logged_rows` and
`read_features` read one back):

- **SQLite** (a file path): the embedded default for a laptop. The file is created owner-only (0600).
- **PostgreSQL** (a `postgresql://` or Heroku-style `postgres://` URL): what a hosted deployment needs, because
  a dyno's or a Render instance's disk is thrown away at every restart and two instances do not share a file.
  psycopg 3 with a `psycopg_pool` pool per worker process, opened lazily after gunicorn's fork.

What a row holds, on both backends (`_row` builds it, so the rules cannot differ):

| column | content |
|---|---|
| `id` | increasing row number |
| `ts` | UTC time of the answer (ISO text in SQLite, `timestamptz` in PostgreSQL) |
| `kind` | `application` (`POST /predict`: an applicant the model had not scored yet) or `view` (`GET /clients/<id>`: a dashboard look at a known client). The drift stage reads applications only. |
| `client_ref` | a keyed pseudonym of `SK_ID_CURR`: the first 20 hex digits of HMAC-SHA256(`INFERENCE_LOG_KEY`, id). Without a key, or without an id, it is null. The raw id is never stored. |
| `model_version`, `score`, `decision` | the served model, its calibrated probability, granted or refused |
| `features` | the model's feature values, each rounded to 2 significant digits (`-14012` days of age becomes `-14000`, an income of `137250` becomes `140000`): enough for the drift statistics, not an exact fingerprint of a person. Missing and non-finite values are null. |

Retention: each process prunes rows older than `max_age_days` and the oldest rows beyond `max_rows`, once when
it connects and then every `prune_every` rows it writes.

A log outage never fails a scoring request: a row that cannot be written within a bounded time is counted as
dropped (`status()`; service-wide across gunicorn workers once `share_counters` has been called in each worker),
a warning is logged, and the next attempts wait for a short, growing back-off before trying the database again.
A row is committed before the API answers, so a killed worker loses no answered row.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import sqlite3
import threading
import time
import weakref
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import polars as pl

TABLE = "inference_log"
SCHEMA_VERSION = 2
KINDS = ("application", "view")
DECISIONS = ("granted", "refused")
COLUMNS = ("id", "ts", "kind", "client_ref", "model_version", "score", "decision", "features")
SIGNIFICANT_DIGITS = 2
BUSY_TIMEOUT_MS = 30_000
ACQUIRE_TIMEOUT_S = 0.25     # PostgreSQL: the longest a request waits for a pooled connection
STATEMENT_TIMEOUT_MS = 2_000  # PostgreSQL: the longest an insert may run on the server
CONNECT_TIMEOUT_S = 2
BACKOFF_S = (0.5, 5.0)        # after a failure: first and longest pause before the database is tried again
WARN_EVERY_S = 60.0
LOGGER = logging.getLogger("creditscore.inference_log")
_LOGS: weakref.WeakSet[InferenceLog] = weakref.WeakSet()
_SHARED = None  # multiprocessing.Array('q', 2): rows written and dropped by every worker of the service


def share_counters(array) -> None:
    """Count written and dropped rows in `array` (a shared `multiprocessing.Array('q', 2)` made by the master)."""
    global _SHARED
    _SHARED = array


def _after_fork_in_child() -> None:
    for log in list(_LOGS):
        log._reset_after_fork()


os.register_at_fork(after_in_child=_after_fork_in_child)


def is_url(target: str | os.PathLike) -> bool:
    return str(target).startswith(("postgresql://", "postgres://"))


def describe(target: str | os.PathLike) -> str:
    """The target without its password (for messages, /health and /model)."""
    if not is_url(target):
        return str(target)
    parts = urlsplit(str(target))
    host = parts.hostname or "localhost"
    return f"postgresql://{host}{f':{parts.port}' if parts.port else ''}{parts.path or ''}"


def pseudonym(sk_id: int | None, key: str | None) -> str | None:
    """The keyed pseudonym stored for a client id (null without a key or an id)."""
    if sk_id is None or not key:
        return None
    return hmac.new(key.encode(), str(int(sk_id)).encode(), hashlib.sha256).hexdigest()[:20]


def coarse(value) -> float | None:
    """A feature value as stored: rounded to SIGNIFICANT_DIGITS; missing and non-finite values become None."""
    if value is None:
        return None
    value = float(value)
    if not math.isfinite(value):
        return None
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def _row(record: dict, key: str | None) -> tuple:
    """(kind, client_ref, model_version, score, decision, features JSON) of one record, validated."""
    kind = record.get("kind", "application")
    if kind not in KINDS:
        raise ValueError(f"inference log: kind must be one of {KINDS}, got {kind!r}")
    decision = record["decision"]
    if decision not in DECISIONS:
        raise ValueError(f"inference log: decision must be one of {DECISIONS}, got {decision!r}")
    score = float(record["score"])
    if not math.isfinite(score):
        raise ValueError(f"inference log: score must be a finite number, got {record['score']!r}")
    features = {str(k): coarse(v) for k, v in record["features"].items()}
    return (kind, pseudonym(record.get("sk_id_curr"), key), str(record["model_version"]), score, decision,
            json.dumps(features, allow_nan=False, separators=(",", ":")))


class LogUnavailable(Exception):
    """The backend could not take the rows now (counted as dropped by `append`)."""


class InferenceLog:
    """Append-only, bounded log of scored requests; the backend classes below differ only in storage."""

    backend = ""
    durable = True

    def __init__(self, target, max_rows: int = 100_000, prune_every: int = 1_000, max_age_days: float = 90,
                 key: str | None = None):
        if max_rows < 1 or prune_every < 1 or max_age_days <= 0:
            raise ValueError("inference log: max_rows and prune_every must be >= 1 and max_age_days > 0")
        self.target = target
        self.max_rows, self.prune_every, self.max_age_days = int(max_rows), int(prune_every), float(max_age_days)
        self.key = key or None
        self._lock = threading.Lock()
        self._local = [0, 0]  # written, dropped by this process
        self._since_prune = 0
        self._retry_at = 0.0
        self._backoff = BACKOFF_S[0]
        self._warned_at = -math.inf
        self._pid: int | None = None
        _LOGS.add(self)

    # --- what a backend provides -------------------------------------------------------------------------
    def _write(self, rows: list[tuple]) -> None:  # raises LogUnavailable
        raise NotImplementedError

    def _prune_now(self) -> None:
        raise NotImplementedError

    def count(self) -> int:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def _reset_after_fork(self) -> None:
        self._lock = threading.Lock()
        self._since_prune, self._retry_at, self._backoff = 0, 0.0, BACKOFF_S[0]

    # --- shared behaviour ----------------------------------------------------------------------------------
    def _count(self, written: int, dropped: int) -> None:
        self._local[0] += written
        self._local[1] += dropped
        if _SHARED is not None:
            with _SHARED.get_lock():
                _SHARED[0] += written
                _SHARED[1] += dropped

    def append(self, records: list[dict]) -> bool:
        """Append scored requests in one transaction; False (rows counted as dropped) if the backend is down.

        Records: kind ("application" by default, or "view"), sk_id_curr (int or None), model_version, score,
        decision, features (name -> number or None). A malformed record raises ValueError and writes nothing.
        """
        if not records:
            return True
        rows = [_row(r, self.key) for r in records]  # validate everything before writing anything
        with self._lock:  # state only: the write itself runs outside it (the backend serialises what it must)
            now = time.monotonic()
            if now < self._retry_at:
                self._dropped(len(rows), now, "still in back-off after a failure")
                return False
        try:
            self._write(rows)
        except LogUnavailable as error:
            with self._lock:
                self._retry_at = time.monotonic() + self._backoff
                self._backoff = min(self._backoff * 2, BACKOFF_S[1])
                self._dropped(len(rows), now, str(error))
            return False
        with self._lock:
            self._backoff, self._retry_at = BACKOFF_S[0], 0.0
            self._count(len(rows), 0)
            self._since_prune += len(rows)
            due = self._since_prune >= self.prune_every
            if due:
                self._since_prune = 0
        if due:
            try:
                self._prune_now()
            except LogUnavailable:
                pass  # retried after the next prune_every rows
        return True

    def _dropped(self, n: int, now: float, why: str) -> None:
        self._count(0, n)
        if now - self._warned_at >= WARN_EVERY_S:
            self._warned_at = now
            LOGGER.warning("inference log %s unavailable (%s): %d row(s) dropped by this worker so far",
                           describe(self.target), why, self._local[1])

    def prune(self) -> None:
        """Enforce max_rows and max_age_days now."""
        self._prune_now()

    def status(self) -> dict:
        """Backend, location (no password), durability and the rows written and dropped since start."""
        shared = _SHARED is not None
        written, dropped = (_SHARED[0], _SHARED[1]) if shared else self._local
        return {"backend": self.backend, "location": describe(self.target), "durable": self.durable,
                "rows_written": int(written), "rows_dropped": int(dropped),
                "counted_over": "every worker since start" if shared else "this process since start"}


# --- SQLite ---------------------------------------------------------------------------------------------------

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
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = NORMAL")  # a killed process loses no commit; a power cut may lose the last
        _migrate_sqlite(conn)
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


# --- PostgreSQL -----------------------------------------------------------------------------------------------

PG_SCHEMA = (
    f"""CREATE TABLE IF NOT EXISTS {TABLE} (
        id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        ts TIMESTAMPTZ NOT NULL DEFAULT now(),
        kind TEXT NOT NULL DEFAULT 'application' CHECK (kind IN ('application', 'view')),
        client_ref TEXT,
        model_version TEXT NOT NULL,
        score DOUBLE PRECISION NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('granted', 'refused')),
        features JSONB NOT NULL)""",
    f"CREATE INDEX IF NOT EXISTS {TABLE}_ts ON {TABLE} (ts)",
    f"COMMENT ON TABLE {TABLE} IS 'credit-scoring inference log, schema version {SCHEMA_VERSION}'",
)
MIGRATION_LOCK = 720_641_001  # pg_advisory_xact_lock key: workers starting together migrate one at a time


def _pg_unavailable(error: Exception) -> LogUnavailable:
    return LogUnavailable(f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error) else ''}")


class PostgresLog(InferenceLog):
    """A PostgreSQL table shared by every worker of every instance; a psycopg_pool pool per process."""

    backend = "postgresql"

    def __init__(self, url: str, pool_size: int = 4, **kwargs):
        super().__init__(str(url), **kwargs)
        self.url = self.target
        self.pool_size = int(pool_size)
        self._pool = None
        self._migrated = False

    def _reset_after_fork(self) -> None:
        super()._reset_after_fork()
        self._pool, self._pid, self._migrated = None, None, False  # the parent's pool threads are not ours

    def _get_pool(self):
        with self._lock:
            if self._pool is None or self._pid != os.getpid():
                self._open_pool()
            return self._pool

    def _open_pool(self) -> None:
        from psycopg_pool import ConnectionPool

        self._pool = ConnectionPool(
            self.url, min_size=1, max_size=self.pool_size, open=False, name="inference-log",
            timeout=ACQUIRE_TIMEOUT_S, reconnect_timeout=10,
            # tcp_user_timeout: a server that vanishes without closing the socket fails a write in 3 s, not minutes
            kwargs={"connect_timeout": CONNECT_TIMEOUT_S, "application_name": "credit-scoring-api",
                    "tcp_user_timeout": 3000, "keepalives_idle": 30,
                    # synchronous_commit off: the durability of the SQLite log (WAL, synchronous NORMAL). A committed
                    # row survives a worker kill, an API restart and a database restart; a crash of the database
                    # machine may lose its last fraction of a second. On: ~4 ms of WAL flush per request here.
                    "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS} -c synchronous_commit=off"})
        self._pool.open(wait=False)  # connects in the background: a down database does not block the start
        self._pid = os.getpid()

    def _run(self, work, timeout: float = ACQUIRE_TIMEOUT_S):
        """Run work(conn) in a transaction; one retry on a fresh connection when a pooled one turns out dead."""
        import psycopg
        from psycopg_pool import PoolTimeout

        pool = self._get_pool()
        for attempt in (0, 1):
            try:
                with pool.connection(timeout=timeout) as conn:
                    if not self._migrated:
                        self._migrate(conn)
                    return work(conn)
            except psycopg.OperationalError as error:  # the server went away: the pool discards the connection
                if attempt:
                    raise _pg_unavailable(error) from error
            except (PoolTimeout, psycopg.errors.QueryCanceled) as error:
                raise _pg_unavailable(error) from error
        raise AssertionError("unreachable")

    def _migrate(self, conn) -> None:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
            for statement in PG_SCHEMA:
                conn.execute(statement)
        self._migrated = True

    def ensure_schema(self, timeout: float = CONNECT_TIMEOUT_S + 1) -> bool:
        """Create or migrate the table now (at start); False if the database is unreachable (retried later)."""
        try:
            self._run(lambda conn: None, timeout=timeout)
            return True
        except LogUnavailable as error:
            LOGGER.warning("inference log %s unreachable at start (%s): rows are dropped until it answers",
                           describe(self.url), error)
            return False

    def _write(self, rows: list[tuple]) -> None:
        def insert(conn):
            with conn.cursor() as cur:
                cur.executemany(f"INSERT INTO {TABLE} (kind, client_ref, model_version, score, decision, features) "
                                "VALUES (%s, %s, %s, %s, %s, %s::jsonb)", rows)
        self._run(insert)

    def _prune_now(self) -> None:
        def prune(conn):
            conn.execute(f"DELETE FROM {TABLE} WHERE ts < now() - make_interval(secs => %s)",
                         (self.max_age_days * 86400,))
            conn.execute(f"DELETE FROM {TABLE} WHERE id <= (SELECT MAX(id) FROM {TABLE}) - %s", (self.max_rows,))
        self._run(prune)
        self._since_prune = 0

    def count(self) -> int:
        return self._run(lambda conn: conn.execute(f"SELECT COUNT(*) FROM {TABLE}").fetchone()[0],
                         timeout=CONNECT_TIMEOUT_S + 1)

    def close(self) -> None:
        with self._lock:
            pool, mine = self._pool, self._pid == os.getpid()
            self._pool = self._pid = None
        if pool is not None and mine:
            pool.close()


def open_log(target, **kwargs) -> InferenceLog:
    """The log at `target`: a PostgreSQL URL or a SQLite file path (see the module docstring)."""
    if is_url(target):
        return PostgresLog(str(target), **kwargs)
    kwargs.pop("pool_size", None)
    return SQLiteLog(target, **kwargs)


def from_environment(default_path: Path) -> InferenceLog | None:
    """The API's log: INFERENCE_LOG ("off", a URL or a path), else DATABASE_URL, else `default_path`."""
    env = os.environ
    target = env.get("INFERENCE_LOG") or env.get("DATABASE_URL") or str(default_path)
    if target.strip().lower() in ("off", "none"):
        return None
    return open_log(target, max_rows=int(env.get("INFERENCE_LOG_MAX_ROWS", "100000")),
                    max_age_days=float(env.get("INFERENCE_LOG_MAX_DAYS", "90")),
                    key=env.get("INFERENCE_LOG_KEY"), pool_size=int(env.get("INFERENCE_LOG_POOL", "4")))


# --- reading (drift stage, tests) -----------------------------------------------------------------------------


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


def _pg_read(url: str, query, params=()) -> list[tuple]:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S * 5) as conn:
            if conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is None:
                raise ValueError(f"{describe(url)}: no {TABLE} table (not an inference log, or nothing logged yet)")
            return conn.execute(query, params).fetchall()
    except psycopg.Error as error:
        raise ValueError(f"{describe(url)}: could not read the inference log ({str(error).strip()})") from error


def logged_rows(target) -> int:
    """Applications in a log; 0 if a SQLite file does not exist yet (the API has not logged anything)."""
    if is_url(target):
        try:
            return _pg_read(str(target), f"SELECT COUNT(*) FROM {TABLE} WHERE kind = 'application'")[0][0]
        except ValueError as error:
            if f"no {TABLE} table" in str(error):
                return 0
            raise
    path = Path(target)
    if not path.is_file():
        return 0
    conn, n = _open_sqlite(path)
    conn.close()
    return n


def _absent_message(where: str, features: list[str], present) -> None:
    absent = [f for f, k in zip(features, present) if not k]
    if absent:
        raise ValueError(f"{where}: column {absent[0]} missing from every logged request"
                         + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""))


def read_features(target, features: list[str]) -> pl.DataFrame:
    """The logged feature values and score of the applications (views left out), oldest first, as Float64.

    Raises FileNotFoundError if a SQLite file is absent and ValueError (naming the log, and the feature when one
    is the problem) if it is not an inference log, has no application rows, or no row carries a feature.
    """
    if is_url(target):
        rows = _read_pg(str(target), features)
    else:
        rows = _read_sqlite(Path(target), features)
    columns = list(zip(*rows))
    data = {name: pl.Series(name, columns[i + 1], dtype=pl.Float64, strict=False) for i, name in enumerate(features)}
    data["score"] = pl.Series("score", columns[0], dtype=pl.Float64)
    return pl.DataFrame(data)


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
            _absent_message(str(path), features, present)
        select = ", ".join(["score"] + ["json_extract(features, ?)"] * len(features))
        return conn.execute(f"SELECT {select} FROM {TABLE}{where} ORDER BY id", paths).fetchall()
    except sqlite3.DatabaseError as error:
        raise ValueError(f"{path}: could not read the inference log ({error})") from error
    finally:
        conn.close()


def _read_pg(url: str, features: list[str]) -> list[tuple]:
    where = f" FROM {TABLE} WHERE kind = 'application'"
    if features:
        counts = _pg_read(url, "SELECT COUNT(*), " + ", ".join("COUNT(*) FILTER (WHERE features ? %s)" for _ in features)
                          + where, features)[0]
    else:
        counts = _pg_read(url, "SELECT COUNT(*)" + where)[0]
    if counts[0] == 0:
        raise ValueError(f"{describe(url)}: the inference log has no application rows")
    _absent_message(describe(url), features, counts[1:])
    select = ", ".join(["score"] + ["(features ->> %s)::double precision"] * len(features))
    return _pg_read(url, f"SELECT {select}{where} ORDER BY id", features)
