"""Drift monitoring: the PSI by hand, the inference log under several processes, the drift stage end to end.

Length: the stage tests share the generated projects fixture (two pipeline runs), which is built once per module.
"""
from __future__ import annotations

import json
import math
import multiprocessing
import shutil
import sqlite3
import threading
import time
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from creditscore.config import load_params
from creditscore.decision.calibration import calibrate, fit_calibration
from creditscore.errors import DataError
from creditscore.monitoring.drift import EPSILON, characteristic_psi, psi, psi_band, stability_table
from creditscore.monitoring.inference_log import open_log, read_features
from creditscore.params import Params, overridden
from creditscore.serving.bundle import Bundle, load, save
from creditscore.stage import run as run_stage
from creditscore.synthetic.generate import generate
from stages import drift as stage
from stages.engineer import engineer
from stages.prepare import run as prepare

# --- population stability index -------------------------------------------------------------------------------


def test_psi_by_hand():
    reference = np.arange(1, 9)                     # quartile edges 2.75, 4.5, 6.25: two values per bin, 25% each
    current = np.array([1, 1, 1, 1, 1, 3, 5, 7])    # 5/8, 1/8, 1/8, 1/8
    expected = (5 / 8 - 1 / 4) * math.log((5 / 8) / (1 / 4)) + 3 * (1 / 8 - 1 / 4) * math.log((1 / 8) / (1 / 4))
    assert expected == pytest.approx(0.375 * math.log(5))
    assert psi(reference, current, bins=4) == pytest.approx(expected, abs=1e-12)


def test_psi_empty_bins_use_epsilon_and_outer_bins_are_open():
    reference = np.arange(1, 9)
    everyone_low = np.array([-100.0, 0.0, 1.0, 2.0])  # all in the first bin, including values below the reference
    expected = (1 - 0.25) * math.log(1 / 0.25) + 3 * (EPSILON - 0.25) * math.log(EPSILON / 0.25)
    assert psi(reference, everyone_low, bins=4) == pytest.approx(expected, abs=1e-12)
    everyone_high = np.array([7.0, 8.0, 50.0])  # above the reference maximum: last bin, not dropped
    assert psi(reference, everyone_high, bins=4) == pytest.approx(expected, abs=1e-12)


def test_psi_is_zero_for_identical_samples_and_grows_with_a_shift():
    scores = np.random.default_rng(0).beta(2, 12, size=5000)
    assert psi(scores, scores) == 0.0
    assert psi(scores, scores.copy()[::-1]) == 0.0  # order does not matter
    assert 0 < psi(scores, scores * 1.1) < psi(scores, scores * 1.5)
    tied = np.round(scores, 2)  # heavily tied scores, as isotonic calibration gives: merged edges still work
    assert psi(tied, tied) == 0.0


def test_psi_rejects_bad_input():
    with pytest.raises(ValueError, match="empty"):
        psi([], [0.1])
    with pytest.raises(ValueError, match="missing or infinite"):
        psi([0.1, 0.2], [0.1, float("nan")])


def test_characteristic_psi_by_hand_with_missing_values_as_a_bin():
    reference = [1.0, 2.0, 3.0, 4.0, np.nan]  # bins: below 2.5, from 2.5, missing: 2/5, 2/5, 1/5
    current = [1.0, 1.0, np.nan, np.nan, np.nan]  # 2/5, none, 3/5
    expected = (EPSILON - 0.4) * math.log(EPSILON / 0.4) + (0.6 - 0.2) * math.log(0.6 / 0.2)
    assert characteristic_psi(reference, current, bins=2) == pytest.approx(expected, rel=1e-12)
    assert characteristic_psi(reference, reference, bins=2) == 0.0
    frame = pl.DataFrame({"A": reference, "score": [0.1, 0.2, 0.3, 0.4, 0.5]})
    table = stability_table(frame, frame.with_columns(pl.Series("A", current)), ["A", "score"], bins=2)
    assert [(r["characteristic"], r["band"], r["missing_reference"], r["missing_current"]) for r in table] == [
        ("A", "act", 0.2, 0.6), ("score", "stable", 0.0, 0.0)]
    with pytest.raises(DataError, match="must both have rows"):
        characteristic_psi([], [1.0])


@pytest.mark.parametrize("value, band", [(0.0, "stable"), (0.0999, "stable"), (0.1, "watch"), (0.25, "watch"),
                                         (0.2501, "act"), (3.0, "act")])
def test_psi_band_edges(value, band):
    assert psi_band(value) == band


# --- inference log --------------------------------------------------------------------------------------------


def _record(i: int, **extra) -> dict:
    return {"sk_id_curr": 100_000 + i, "model_version": "3", "score": i / 1000, "decision": "granted",
            "features": {"i": float(i), "half": i / 2}, **extra}


# Columns, privacy rules, both backends and the server-level guarantees: tests/test_inference_log.py.


def test_inference_log_is_bounded_and_keeps_the_newest_rows(tmp_path):
    log = open_log(tmp_path / "log.db", max_rows=50, prune_every=10)
    for i in range(137):
        log.append([_record(i)])
        assert log.count() <= 50 + 10
    log.prune()
    assert log.count() == 50
    assert read_features(tmp_path / "log.db", ["i"])["score"].to_list() == [i / 1000 for i in range(87, 137)]
    assert open_log(tmp_path / "log.db", max_rows=20).count() == 20  # a new process prunes on opening


def _append_many(log, worker: int, rows: int, barrier, errors) -> None:
    try:
        barrier.wait()
        for i in range(rows):
            log.append([_record(worker * 1000 + i)])
    except BaseException as error:  # reported to the parent
        errors.put(f"{worker}: {error!r}")
        raise


def _in_processes(ctx, target, log, workers: int, rows: int) -> tuple[list[str], list[int]]:
    """`target(log, worker, rows, barrier, errors)` in `workers` forked processes started together; the errors
    they reported and their exit codes."""
    barrier, errors = ctx.Barrier(workers), ctx.Queue()
    processes = [ctx.Process(target=target, args=(log, w, rows, barrier, errors)) for w in range(workers)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    messages = []
    while not errors.empty():
        messages.append(errors.get())
    return messages, [p.exitcode for p in processes]


def _open_and_append(path, worker: int, rows: int, barrier, errors) -> None:
    try:
        log = open_log(path)  # every worker opens the new file at once, as gunicorn's workers do on a first deploy
        barrier.wait()
        for i in range(rows):
            if not log.append([_record(worker * 1000 + i)]):
                errors.put(f"{worker}: row {i} dropped ({log.status()})")
    except BaseException as error:
        errors.put(f"{worker}: {error!r}")
        raise


def test_workers_opening_a_new_sqlite_log_at_once_drop_no_row(tmp_path):
    """Contention is not an outage: the first open of a new file (the switch to WAL, the schema) by several
    processes at once waits for the lock instead of failing and dropping rows in the back-off."""
    held = sqlite3.connect(tmp_path / "held.db", isolation_level=None, check_same_thread=False)
    held.execute("CREATE TABLE t (x)")
    held.execute("BEGIN IMMEDIATE")  # another process mid-write on a file not yet in WAL mode
    threading.Timer(0.3, lambda: held.execute("COMMIT")).start()
    started = time.monotonic()
    assert open_log(tmp_path / "held.db").append([_record(1)])  # waits for the lock, then writes: no drop
    assert time.monotonic() - started >= 0.25
    # and the race itself: 8 workers opening a new file at once (it dropped a worker's rows in about 1 of 15
    # attempts before the switch to WAL waited for the lock)
    ctx = multiprocessing.get_context("fork")
    for attempt in range(30):
        path = tmp_path / f"new{attempt}.db"
        messages, codes = _in_processes(ctx, _open_and_append, path, 8, 10)
        assert messages == [] and codes == [0] * 8, (attempt, messages)
        assert open_log(path).count() == 8 * 10


def test_inference_log_concurrent_appends_from_several_processes(tmp_path):
    """Like gunicorn: the log object exists before the fork, each worker opens its own connection."""
    path = tmp_path / "log.db"
    log = open_log(path)
    log.append([_record(-1)])  # the parent has an open connection that the children must not reuse
    ctx = multiprocessing.get_context("fork")
    messages, codes = _in_processes(ctx, _append_many, log, 4, 200)
    assert messages == [] and codes == [0, 0, 0, 0]
    assert log.count() == 1 + 4 * 200
    values = read_features(path, ["i"])["score"].to_list()  # the score is stored exactly, the features rounded
    assert sorted(values) == sorted([-0.001] + [(w * 1000 + i) / 1000 for w in range(4) for i in range(200)])
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_read_features_errors_name_the_file_and_column(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.db"):
        read_features(tmp_path / "nothing.db", ["A"])
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE t (x)")
    with pytest.raises(ValueError, match="other.db: no inference_log table"):
        read_features(other, ["A"])
    empty = tmp_path / "empty.db"
    assert open_log(empty).count() == 0
    with pytest.raises(ValueError, match="empty.db: the inference log has no application rows"):
        read_features(empty, ["A"])
    open_log(empty).append([_record(1)])
    with pytest.raises(ValueError, match="empty.db: column NOPE missing"):
        read_features(empty, ["i", "NOPE"])
    (tmp_path / "text.db").write_text("not a database, just text\n" * 10)
    with pytest.raises(ValueError, match="text.db: not a readable"):
        read_features(tmp_path / "text.db", ["A"])


# --- the drift stage end to end --------------------------------------------------------------------------------

N_CLIENTS, SEED = 8000, 11
MODEL_FEATURES = ["EXT_SOURCE_MEAN", "EXT_SOURCE_2", "EXT_SOURCE_3", "EXT_SOURCE_1", "AGE_YEARS", "DAYS_BIRTH",
                  "PAYMENT_RATE", "CREDIT_TERM_YEARS", "AMT_CREDIT", "AMT_ANNUITY", "AMT_INCOME_TOTAL",
                  "DAYS_REGISTRATION", "DAYS_ID_PUBLISH", "CNT_CHILDREN", "REGION_POPULATION_RELATIVE",
                  "HOUR_APPR_PROCESS_START"]
SHIFTED = ["EXT_SOURCE_MEAN", "EXT_SOURCE_2", "EXT_SOURCE_3", "EXT_SOURCE_1", "AGE_YEARS", "DAYS_BIRTH"]
PARAMS = {"top_features": 15, "reference_sample": 5000, "current_sample": 5000, "share_alert": 0.3,
          "psi_alert": 0.25, "fail_on_alert": False, "log": ""}


def _params(**changes) -> Params:
    """params.yaml with these drift settings."""
    return overridden(load_params(), {"seed": 42, "drift": {**PARAMS, **changes}})


def _project(root: Path, drift: float) -> Path:
    """Synthetic data with the generator's drift knob, the real prepare and engineer code, a small fitted model."""
    generate(root / "raw", N_CLIENTS, SEED, drift)
    assert prepare(root / "raw", root / "prepared", root / "prepare.json", "synthetic", 0.2, SEED) == 0
    (root / "full").mkdir()
    engineer(root / "prepared", root / "full", load_params().engineer, SEED, load_params().protected)
    features, predictions = root / "features", root / "predictions"
    features.mkdir()
    predictions.mkdir()
    for split in ("train", "test"):  # only the columns the test needs, to keep the fixture small
        frame = pl.read_parquet(root / "full" / f"{split}.parquet")
        frame.select([c for c in ("SK_ID_CURR", "TARGET") if c in frame.columns] + MODEL_FEATURES).write_parquet(
            features / f"{split}.parquet")
    train, test = pl.read_parquet(features / "train.parquet"), pl.read_parquet(features / "test.parquet")
    x, y = train.select(MODEL_FEATURES).to_numpy(), train["TARGET"].to_numpy()
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(), LogisticRegression(max_iter=1000))
    oof = cross_val_predict(model, x, y, cv=StratifiedKFold(5, shuffle=True, random_state=SEED),
                            method="predict_proba")[:, 1]
    proba = model.fit(x, y).predict_proba(test.select(MODEL_FEATURES).to_numpy())[:, 1]
    pl.DataFrame({"SK_ID_CURR": train["SK_ID_CURR"], "TARGET": train["TARGET"], "proba": oof}).write_parquet(
        predictions / "oof.parquet")
    pl.DataFrame({"SK_ID_CURR": test["SK_ID_CURR"], "proba": proba}).write_parquet(predictions / "test.parquet")
    save(Bundle(pipeline=model, features=MODEL_FEATURES, model="logistic_regression", params={}, versions={},
                calibration=fit_calibration(oof, y, "isotonic"), threshold=0.2, cost={"fn_cost": 10, "fp_cost": 1},
                spec={}, manifest=[], metrics={}, points={"base_points": 600, "base_odds": 50, "pdo": 20}),
         root / "bundle.joblib")
    ranking = [{"feature": f, "mean_abs_shap": round(1 / (i + 1), 4)} for i, f in enumerate(MODEL_FEATURES)]
    (root / "explain.json").write_text(json.dumps({"global": [{"feature": "NOT_IN_MODEL", "mean_abs_shap": 9}]
                                                   + ranking}))
    for name in ("raw", "prepared", "full"):
        shutil.rmtree(root / name)
    return root


@pytest.fixture(scope="module")
def projects(tmp_path_factory) -> dict[float, Path]:
    return {drift: _project(tmp_path_factory.mktemp(f"drift{drift}"), drift) for drift in (0.0, 1.0)}


def _run(project: Path, out: Path, log: Path | None = None, **params) -> tuple[int, dict | None]:
    code = run_stage("drift", lambda _: stage.run(project / "features", project / "predictions", project / "bundle.joblib",
                                                  project / "explain.json", log, out / "drift.html", out / "drift.json",
                                                  _params(**params).drift, 42))  # as main() runs it
    metrics = out / "drift.json"
    return code, json.loads(metrics.read_text()) if metrics.exists() else None


@pytest.mark.slow  # two synthetic projects and evidently
def test_stage_flags_planted_drift_and_not_its_absence(projects, tmp_path, capsys):
    code, calm = _run(projects[0.0], tmp_path / "calm")
    assert code == 0 and "no drift alert" in capsys.readouterr().err
    code, drifted = _run(projects[1.0], tmp_path / "drifted")
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 0  # fail_on_alert is off: the alert is reported, the stage succeeds

    names = MODEL_FEATURES[:15]
    n_current = pl.scan_parquet(projects[0.0] / "features" / "test.parquet").select(pl.len()).collect().item()
    for metrics in (calm, drifted):
        assert metrics["top_features"] == names and metrics["n_features"] == 15  # NOT_IN_MODEL skipped
        assert set(metrics["features"]) == set(names) and metrics["current_source"] == "application_test"
        assert metrics["n_reference"] == N_CLIENTS * 0.8 and metrics["n_current"] == n_current
        assert metrics["n_reference_sample"] == 5000  # a seeded sample of the 6,400 training clients
        assert metrics["n_current_sample"] == n_current  # fewer rows than the sample size: all of them
    assert calm["alert"] is False and calm["n_drifted"] == 0 and calm["score_psi_band"] == "stable"
    assert calm["score_drift"]["drifted"] is False

    assert drifted["alert"] is True
    flagged = {f for f, v in drifted["features"].items() if v["drifted"]}
    assert set(SHIFTED) <= flagged and drifted["n_drifted"] == len(flagged)
    assert drifted["share_drifted"] == pytest.approx(len(flagged) / 15, abs=1e-6) and drifted["share_drifted"] >= 0.3
    assert drifted["score_drift"]["drifted"] is True and drifted["score_psi"] > calm["score_psi"] + 0.1
    for name in SHIFTED:
        assert drifted["features"][name]["drift_score"] > 3 * calm["features"][name]["drift_score"]
    assert drifted["features"]["EXT_SOURCE_2"]["method"] == "Wasserstein distance (normed)"
    alerts = [line for line in err if "DRIFT ALERT" in line]
    assert len(alerts) == 1 and f"{len(flagged)}/15 features drifted" in alerts[0]
    assert (tmp_path / "drifted" / "drift.html").stat().st_size > 10_000
    assert "<html" in (tmp_path / "drifted" / "drift.html").read_text()[:2000].lower()


@pytest.mark.slow  # two synthetic projects and evidently
def test_stage_outputs_are_byte_reproducible(projects, tmp_path):
    """dvc.lock records both outputs: metrics and the HTML report (random widget ids renamed) must not change."""
    _run(projects[1.0], tmp_path / "a")
    _run(projects[1.0], tmp_path / "b")
    for name in ("drift.json", "drift.html"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.slow  # two synthetic projects and evidently
def test_stage_reads_the_inference_log_as_current_data(projects, tmp_path, capsys):
    project = projects[1.0]
    bundle = load(project / "bundle.joblib", Bundle)
    test = pl.read_parquet(project / "features" / "test.parquet")
    scores = calibrate(pl.read_parquet(project / "predictions" / "test.parquet")["proba"].to_numpy(),
                       bundle.calibration)
    log = open_log(tmp_path / "inference.db")
    log.append([{"sk_id_curr": int(row["SK_ID_CURR"]), "model_version": "1", "score": float(s),
                 "decision": "refused" if s > 0.2 else "granted",
                 "features": {f: None if f == "PAYMENT_RATE" else row[f] for f in MODEL_FEATURES}}  # one never sent
                for row, s in zip(test.iter_rows(named=True), scores)])
    code, metrics = _run(project, tmp_path / "out", log=tmp_path / "inference.db")
    assert code == 0 and metrics["current_source"] == "inference_log" and metrics["n_current"] == test.height
    assert metrics["alert"] is True and set(SHIFTED) <= {f for f, v in metrics["features"].items() if v["drifted"]}
    never_sent = metrics["features"]["PAYMENT_RATE"]
    assert never_sent["drifted"] is True and never_sent["drift_score"] is None
    assert never_sent["method"] == "no values in the current sample" and never_sent["missing_share"]["current"] == 1.0
    # a log that does not exist yet: the stage falls back to application_test and says so
    code, metrics = _run(project, tmp_path / "fallback", log=tmp_path / "not-yet.db")
    assert code == 0 and metrics["current_source"] == "application_test"
    assert "no logged application yet" in capsys.readouterr().err


@pytest.mark.slow  # two synthetic projects and evidently
def test_stage_main_fails_on_alert_only_when_asked(projects, tmp_path, monkeypatch, capsys):
    project = projects[1.0]
    args = ["--features", str(project / "features"), "--predictions", str(project / "predictions"),
            "--bundle", str(project / "bundle.joblib"), "--importance", str(project / "explain.json"),
            "--report", str(tmp_path / "drift.html"), "--metrics", str(tmp_path / "drift.json")]
    monkeypatch.setattr(stage, "load_params", lambda: _params(fail_on_alert=True))
    assert stage.main(args) == 1
    assert json.loads((tmp_path / "drift.json").read_text())["alert"] is True  # outputs are still written
    assert sum("DRIFT ALERT" in line for line in capsys.readouterr().err.splitlines()) == 1
    monkeypatch.setattr(stage, "load_params", lambda: _params())
    assert stage.main(args) == 0


@pytest.mark.slow  # two synthetic projects and evidently
def test_stage_bad_input_names_file_and_column_and_writes_nothing(projects, tmp_path, capsys):
    project = Path(shutil.copytree(projects[0.0], tmp_path / "project"))
    test = project / "features" / "test.parquet"
    pl.read_parquet(test).drop("AGE_YEARS").write_parquet(test)
    out = tmp_path / "out"
    code, metrics = _run(project, out)
    err = capsys.readouterr().err
    assert code == 1 and metrics is None
    assert f"{test}: column AGE_YEARS missing" in err and err.count("\n") == 1
    assert not out.exists() or list(out.iterdir()) == []  # no report, no metrics, no temporary file

    ranking = (project / "explain.json").read_text()
    (project / "explain.json").write_text('{"local": []}')
    assert _run(project, out)[0] == 1 and "explain.json: expected a 'global' list" in capsys.readouterr().err
    (project / "explain.json").write_text(ranking)
    (project / "predictions" / "oof.parquet").unlink()
    assert _run(project, out)[0] == 1 and "oof.parquet: file not found" in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


@pytest.mark.slow
def test_the_stage_gives_the_same_verdicts_on_a_postgres_log_as_on_sqlite(projects, tmp_path, pg):
    """The same logged rows (applications, plus dashboard views the stage must leave out) in both backends."""
    pg.reset()
    project = projects[1.0]
    bundle = load(project / "bundle.joblib", Bundle)
    test = pl.read_parquet(project / "features" / "test.parquet")
    scores = calibrate(pl.read_parquet(project / "predictions" / "test.parquet")["proba"].to_numpy(),
                       bundle.calibration)
    records = [{"sk_id_curr": int(row["SK_ID_CURR"]), "model_version": "1", "score": float(s),
                "decision": "refused" if s > 0.2 else "granted", "features": {f: row[f] for f in MODEL_FEATURES}}
               for row, s in zip(test.iter_rows(named=True), scores)]
    views = [{**r, "kind": "view", "score": 0.99, "features": {f: 0.0 for f in MODEL_FEATURES}} for r in records[:500]]
    verdicts = {}
    for name, target in (("sqlite", tmp_path / "inference.db"), ("postgresql", pg.url)):
        log = open_log(target, key="k")
        log.append(records[: len(records) // 2])
        log.append(views)
        log.append(records[len(records) // 2:])
        log.close()
        code, metrics = _run(project, tmp_path / name, log=target)
        assert code == 0 and metrics["current_source"] == "inference_log" and metrics["n_current"] == test.height
        verdicts[name] = metrics
    assert verdicts["postgresql"] == verdicts["sqlite"]
    assert verdicts["sqlite"]["alert"] is True
    assert (tmp_path / "sqlite" / "drift.html").read_bytes() == (tmp_path / "postgresql" / "drift.html").read_bytes()

