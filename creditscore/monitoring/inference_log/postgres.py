"""The PostgreSQL backend: a table shared by every worker of every instance (DATABASE_URL)."""
from __future__ import annotations

import os

from creditscore.monitoring.inference_log.base import (
                                                       ACQUIRE_TIMEOUT_S,
                                                       CONNECT_TIMEOUT_S,
                                                       LOGGER,
                                                       SCHEMA_VERSION,
                                                       STATEMENT_TIMEOUT_MS,
                                                       TABLE,
                                                       InferenceLog,
                                                       LogUnavailable,
                                                       check_present,
                                                       describe,
                                                       )

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


def _pg_read(url: str, query, params=()) -> list[tuple]:
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_S * 5) as conn:
            if conn.execute("SELECT to_regclass(%s)", (TABLE,)).fetchone()[0] is None:
                raise ValueError(f"{describe(url)}: no {TABLE} table (not an inference log, or nothing logged yet)")
            return conn.execute(query, params).fetchall()
    except psycopg.Error as error:
        raise ValueError(f"{describe(url)}: could not read the inference log ({str(error).strip()})") from error


def _read_pg(url: str, features: list[str]) -> list[tuple]:
    where = f" FROM {TABLE} WHERE kind = 'application'"
    if features:
        counts = _pg_read(url, "SELECT COUNT(*), " + ", ".join("COUNT(*) FILTER (WHERE features ? %s)" for _ in features)
                          + where, features)[0]
    else:
        counts = _pg_read(url, "SELECT COUNT(*)" + where)[0]
    if counts[0] == 0:
        raise ValueError(f"{describe(url)}: the inference log has no application rows")
    check_present(describe(url), features, counts[1:])
    select = ", ".join(["score"] + ["(features ->> %s)::double precision"] * len(features))
    return _pg_read(url, f"SELECT {select}{where} ORDER BY id", features)
