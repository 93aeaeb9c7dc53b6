"""The inference log on both backends (SQLite and a real PostgreSQL server), alone and behind gunicorn.

Length: the SQLite and PostgreSQL cases run as pairs over shared fixtures (one cluster per session), so they stay in
one file.

Guarantees tested: the same rows and privacy rules on both backends; exactly one row per answered request with
4 workers, after a worker is killed mid-load, across a server restart and with two instances writing at once;
a database outage drops and counts rows but never fails or stalls a scoring request, and logging resumes by
itself when the database returns.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
import requests

from creditscore.monitoring.inference_log import COLUMNS, TABLE, logged_rows, open_log, read_features
from tests.server import VALID, Server, require_models

pytestmark = pytest.mark.slow

KEY = "test-pseudonym-key"


def ref(sk_id: int) -> str:
    return hmac.new(KEY.encode(), str(sk_id).encode(), hashlib.sha256).hexdigest()[:20]


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return str(tmp_path / "logs" / "inference.sqlite")
    pg = request.getfixturevalue("pg")
    pg.reset()
    return pg.url


def stored_rows(target: str) -> list[dict]:
    """Every stored row as a dict of COLUMNS, read with the backend's own driver."""
    query = f"SELECT {', '.join(COLUMNS)} FROM {TABLE} ORDER BY id"
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target) as conn:
            rows = conn.execute(query).fetchall()
        return [dict(zip(COLUMNS, r)) | {"features": r[-1], "ts": r[1].isoformat()} for r in rows]
    with sqlite3.connect(target) as conn:
        rows = conn.execute(query).fetchall()
    return [dict(zip(COLUMNS, r)) | {"features": json.loads(r[-1])} for r in rows]


RECORDS = [
    {"sk_id_curr": 100042, "model_version": "7", "score": 0.1234567, "decision": "granted",
     "features": {"DAYS_BIRTH": -14012, "AMT_INCOME_TOTAL": 137250.0, "EXT_SOURCE_3": 0.53789, "FLAG": 1,
                  "MISSING": None, "NAN": float("nan")}},
    {"sk_id_curr": None, "model_version": "7", "score": 0.9, "decision": "refused", "features": {"DAYS_BIRTH": -9999}},
    {"kind": "view", "sk_id_curr": 100042, "model_version": "7", "score": 0.1234567, "decision": "granted",
     "features": {"DAYS_BIRTH": -14012}},
]


def test_the_same_rows_and_privacy_rules_on_both_backends(target):
    log = open_log(target, key=KEY)
    assert log.append(RECORDS) is True and log.count() == 3
    rows = stored_rows(target)
    assert [r["kind"] for r in rows] == ["application", "application", "view"]
    assert [r["client_ref"] for r in rows] == [ref(100042), None, ref(100042)]  # keyed pseudonym, never the id
    assert rows[0]["features"] == {"DAYS_BIRTH": -14000.0, "AMT_INCOME_TOTAL": 140000.0, "EXT_SOURCE_3": 0.54,
                                   "FLAG": 1.0, "MISSING": None, "NAN": None}
    assert [r["score"] for r in rows] == [0.1234567, 0.9, 0.1234567] and rows[1]["decision"] == "refused"
    assert all("100042" not in json.dumps(r, default=str) for r in rows)
    assert rows[0]["ts"].endswith("+00:00")
    # the drift stage's reader: applications only, oldest first
    frame = read_features(target, ["DAYS_BIRTH", "EXT_SOURCE_3"])
    assert frame.rows() == [(-14000.0, 0.54, 0.1234567), (-10000.0, None, 0.9)]
    assert logged_rows(target) == 2
    with pytest.raises(ValueError, match="column ABSENT missing from every logged request"):
        read_features(target, ["DAYS_BIRTH", "ABSENT"])
    log.close()


def test_without_a_key_no_client_reference_is_stored(target):
    log = open_log(target)
    log.append(RECORDS[:1])
    assert stored_rows(target)[0]["client_ref"] is None
    log.close()


def test_a_bad_record_writes_nothing(target):
    log = open_log(target, key=KEY)
    with pytest.raises(ValueError, match="kind must be one of"):
        log.append([RECORDS[0], {**RECORDS[0], "kind": "replay"}])
    with pytest.raises(ValueError, match="score must be a finite number"):
        log.append([RECORDS[0], {**RECORDS[0], "score": float("inf")}])
    assert log.count() == 0
    log.close()


def test_retention_by_age_and_by_size(target):
    log = open_log(target, key=KEY, max_rows=5, prune_every=1000, max_age_days=30)
    log.append(RECORDS[:1] * 3)
    old = (datetime.now(UTC) - timedelta(days=31)).isoformat(timespec="milliseconds")
    if target.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(target) as conn:
            conn.execute(f"UPDATE {TABLE} SET ts = %s WHERE id = (SELECT MIN(id) FROM {TABLE})", (old,))
    else:
        with sqlite3.connect(target) as conn:
            conn.execute(f"UPDATE {TABLE} SET ts = ? WHERE id = (SELECT MIN(id) FROM {TABLE})", (old,))
    log.prune()
    assert log.count() == 2  # the 31-day-old row went
    log.append([{**RECORDS[0], "score": i / 10} for i in range(6)])
    log.prune()
    assert [r["score"] for r in stored_rows(target)] == [0.1, 0.2, 0.3, 0.4, 0.5]  # the 5 newest
    log.close()


def test_the_sqlite_file_is_owner_only_and_a_version_1_log_is_migrated(tmp_path):
    path = tmp_path / "inference.sqlite"
    with sqlite3.connect(path) as conn:  # the schema before this version: raw ids, no kind
        conn.execute(f"CREATE TABLE {TABLE} (id INTEGER PRIMARY KEY AUTOINCREMENT, ts TEXT NOT NULL, sk_id_curr "
                     "INTEGER, model_version TEXT NOT NULL, score REAL NOT NULL, decision TEXT NOT NULL, "
                     "features TEXT NOT NULL)")
        conn.execute(f"INSERT INTO {TABLE} (ts, sk_id_curr, model_version, score, decision, features) VALUES "
                     f"('{datetime.now(UTC).isoformat()}', 100042, '6', 0.5, 'granted', '{{\"A\": 1.0}}')")
    os.chmod(path, 0o644)
    log = open_log(path, key=KEY)
    log.append(RECORDS[:1])
    with sqlite3.connect(path) as conn:
        columns = [c[1] for c in conn.execute(f"PRAGMA table_info({TABLE})")]
        version = conn.execute("PRAGMA user_version").fetchone()[0]
    assert sorted(columns) == sorted(COLUMNS) and version == 2  # sk_id_curr is gone
    assert [(r["kind"], r["client_ref"]) for r in stored_rows(str(path))] == [("application", None),
                                                                              ("application", ref(100042))]
    log.close()
    fresh = tmp_path / "new" / "inference.sqlite"
    open_log(fresh).append(RECORDS[:1])
    assert fresh.stat().st_mode & 0o777 == 0o600


def test_a_postgres_outage_drops_and_counts_rows_fast_and_logging_resumes():
    from tests.postgres import cluster as new_cluster

    cluster = new_cluster().start()
    try:
        log = open_log(cluster.url, key=KEY)
        assert log.ensure_schema() and log.append(RECORDS[:1])
        cluster.stop()
        started = time.monotonic()
        results = [log.append(RECORDS[:1]) for _ in range(50)]
        assert time.monotonic() - started < 1.0  # the back-off: no request waits for a dead server
        assert results == [False] * 50 and log.status()["rows_dropped"] == 50
        cluster.start()
        attempts, deadline = 0, time.monotonic() + 20
        while time.monotonic() < deadline:
            attempts += 1
            if log.append(RECORDS[:1]):
                break
            time.sleep(0.2)
        status = log.status()
        assert status["rows_written"] == 2 and log.count() == 2  # resumed by itself
        assert status["rows_written"] + status["rows_dropped"] == 1 + 50 + attempts  # every row written or counted
        log.close()
    finally:
        cluster.close()


# --- behind gunicorn ------------------------------------------------------------------------------------------


def _post(url: str, sk_id: int, session: requests.Session) -> tuple[int, int, float]:
    started = time.monotonic()
    try:
        response = session.post(url + "/predict", json={"application": {**VALID, "SK_ID_CURR": sk_id}}, timeout=30)
        status = response.status_code
    except requests.RequestException:
        status = 0
    return sk_id, status, time.monotonic() - started


def load(url: str, ids: range, threads: int = 8) -> list[tuple[int, int, float]]:
    """POST one application per id from `threads` clients; (id, status, seconds) per request (status 0: no answer)."""
    local = threading.local()

    def one(sk_id: int):
        if not hasattr(local, "session"):
            local.session = requests.Session()
        return _post(url, sk_id, local.session)

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, ids))


def workers_of(server: Server) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def serve(target: str, workers: int = 4) -> Server:
    return Server({"INFERENCE_LOG": target, "INFERENCE_LOG_KEY": KEY, "API_KEY": None}, workers=workers).start()


def refs(target: str) -> list[str]:
    return [r["client_ref"] for r in stored_rows(target)]


def test_four_workers_a_killed_worker_and_a_restart_lose_and_duplicate_no_row(target):
    require_models()
    s = serve(target)
    try:
        answers = load(s.url, range(1, 1001))
        assert all(status == 200 for _, status, _ in answers)
        assert sorted(refs(target)) == sorted(ref(i) for i in range(1, 1001))  # exactly 1,000 rows, one each
        health = requests.get(s.url + "/health").json()["inference_log"]
        assert health["rows_written"] >= 1000 and health["rows_dropped"] == 0  # counted over every worker

        killed_at = []
        killer = threading.Timer(1.0, lambda: (os.kill(workers_of(s)[0], signal.SIGKILL),
                                               killed_at.append(time.monotonic())))
        killer.start()
        answers = load(s.url, range(10_001, 11_001))
        finished_at = time.monotonic()
        killer.join()
        assert killed_at and killed_at[0] < finished_at - 1.0  # the worker was killed well before the load ended
        answered = {i for i, status, _ in answers if status == 200}
        failed = {i for i, status, _ in answers if status != 200}
        assert len(failed) <= 2, failed  # the request(s) in flight in the killed worker
        logged = [r for r in refs(target) if r not in {ref(i) for i in range(1, 1001)}]
        assert len(logged) == len(set(logged))  # nothing duplicated
        assert {ref(i) for i in answered} <= set(logged)  # every answered request was committed first
        assert set(logged) <= {ref(i) for i in range(10_001, 11_001)} and len(logged) <= len(answered) + len(failed)
    finally:
        s.stop()
    before = len(refs(target))
    s = serve(target, workers=2)  # a restart (a deploy, Heroku's daily cycle): every row is still there
    try:
        assert len(refs(target)) == before
        assert all(status == 200 for _, status, _ in load(s.url, range(20_001, 20_101)))
        assert len(refs(target)) == before + 100
    finally:
        s.stop()


def test_two_instances_writing_at_once_share_one_postgres_log(pg):
    require_models()
    pg.reset()
    a, b = serve(pg.url, workers=2), serve(pg.url, workers=2)
    try:
        with ThreadPoolExecutor(2) as pool:
            done = list(pool.map(lambda job: load(*job, threads=4), [(a.url, range(1, 501)), (b.url, range(501, 1001))]))
        assert all(status == 200 for answers in done for _, status, _ in answers)
        assert sorted(refs(pg.url)) == sorted(ref(i) for i in range(1, 1001))
    finally:
        a.stop(), b.stop()


def test_a_database_outage_never_fails_or_stalls_scoring_and_resumes_by_itself():
    from tests.postgres import cluster as new_cluster

    require_models()
    cluster = new_cluster().start()
    s = serve(cluster.url, workers=2)
    try:
        baseline = load(s.url, range(1, 201), threads=4)
        slowest_before = max(t for _, _, t in baseline)
        stopper = threading.Timer(0.5, cluster.stop)
        stopper.start()
        during = load(s.url, range(1001, 1801), threads=4)
        stopper.join()
        assert all(status == 200 for _, status, _ in baseline + during)  # not one scoring request failed
        # a request waits at most the pool's acquire timeout (0.25 s) beyond its usual latency
        assert max(t for _, _, t in during) < slowest_before + 1.0
        health = requests.get(s.url + "/health").json()
        assert health["status"] == "ok" and health["inference_log"]["rows_dropped"] > 0
        assert any("dropped since start" in w for w in health["warnings"])
        cluster.start()
        sent, logged, deadline = 200 + 800, False, time.monotonic() + 30
        while not logged and time.monotonic() < deadline:
            batch = range(5001 + sent, 5011 + sent)
            assert all(status == 200 for _, status, _ in load(s.url, batch, threads=2))
            sent += 10
            logged = bool(set(refs(cluster.url)) & {ref(i) for i in batch})
            time.sleep(0.2)
        assert logged, "logging did not resume after the database came back"
        health = requests.get(s.url + "/health").json()["inference_log"]
        assert health["rows_written"] == len(refs(cluster.url))  # every row counted as written is in the database
        assert health["rows_written"] + health["rows_dropped"] == sent  # and every other one is counted as dropped
    finally:
        s.stop()
        cluster.close()
