"""Inference log: one row per scored request, appended by every API worker, read back by the drift stage.

Two backends behind one small interface (`open_log(target)` gives an `InferenceLog`; `logged_rows` and
`read_features` read one back):

- **SQLite** (a file path): the embedded default for a laptop. The file is created owner-only (0600).
- **PostgreSQL** (a `postgresql://` or Heroku-style `postgres://` URL): what a hosted deployment needs, because
  a dyno's or a Render instance's disk is thrown away at every restart and two instances do not share a file.
  psycopg 3 with a `psycopg_pool` pool per worker process, opened lazily after gunicorn's fork.

What a row holds, on both backends (`base._row` builds it, so the rules cannot differ):

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

import os
from pathlib import Path

import polars as pl

from creditscore.monitoring.inference_log.base import (
                                                       COLUMNS,
                                                       DECISIONS,
                                                       KINDS,
                                                       SCHEMA_VERSION,
                                                       SIGNIFICANT_DIGITS,
                                                       TABLE,
                                                       InferenceLog,
                                                       LogUnavailable,
                                                       coarse,
                                                       describe,
                                                       is_url,
                                                       pseudonym,
                                                       share_counters,
                                                       )
from creditscore.monitoring.inference_log.postgres import PostgresLog, _pg_read, _read_pg
from creditscore.monitoring.inference_log.sqlite import SQLiteLog, _open_sqlite, _read_sqlite

__all__ = ["COLUMNS", "DECISIONS", "KINDS", "SCHEMA_VERSION", "SIGNIFICANT_DIGITS", "TABLE", "InferenceLog",
           "LogUnavailable", "PostgresLog", "SQLiteLog", "coarse", "describe", "from_environment", "is_url",
           "logged_rows", "open_log", "pseudonym", "read_features", "share_counters"]


def open_log(target, **kwargs) -> InferenceLog:
    """The log at `target`: a PostgreSQL URL or a SQLite file path (see the module docstring)."""
    if is_url(target):
        return PostgresLog(str(target), **kwargs)
    kwargs.pop("pool_size", None)
    return SQLiteLog(target, **kwargs)


def from_environment(default_path: Path, env=None) -> InferenceLog | None:
    """The API's log: INFERENCE_LOG ("off", a URL or a path), else DATABASE_URL, else `default_path`.

    `env`: the settings to read (the process environment by default).
    """
    env = os.environ if env is None else env
    target = env.get("INFERENCE_LOG") or env.get("DATABASE_URL") or str(default_path)
    if target.strip().lower() in ("off", "none"):
        return None
    return open_log(target, max_rows=int(env.get("INFERENCE_LOG_MAX_ROWS", "100000")),
                    max_age_days=float(env.get("INFERENCE_LOG_MAX_DAYS", "90")),
                    key=env.get("INFERENCE_LOG_KEY"), pool_size=int(env.get("INFERENCE_LOG_POOL", "4")))


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
