"""What both backends share: the row rules (validation, pseudonym, rounding), the counters and the back-off."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import os
import threading
import time
import weakref
from urllib.parse import urlsplit

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
LOGGER = logging.getLogger("creditscore.monitoring.inference_log")
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


def check_present(where: str, features: list[str], present) -> None:
    """Raise ValueError naming the first feature that no logged application carries."""
    absent = [f for f, k in zip(features, present) if not k]
    if absent:
        raise ValueError(f"{where}: column {absent[0]} missing from every logged request"
                         + (f" (and {len(absent) - 1} more)" if len(absent) > 1 else ""))
