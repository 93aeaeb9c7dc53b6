"""The gated registry: the rule on hand-made figures, then the register stage on a real MLflow store (SQLite)."""
from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from creditscore.config import load_params
from creditscore.modelling import registry
from creditscore.modelling.models import make_pipeline
from creditscore.params import overridden
from creditscore.serving.bundle import Bundle, save

GATES = {"min_holdout_auc": 0.70, "max_ece": 0.05, "max_fairness_gap": 0.10}
PASSING = {"holdout_auc": 0.75, "holdout_ece": 0.02, "fairness_gap": 0.04, "fairness_gap_by_attribute": {"gender": 0.04},
           "holdout_cost_per_client": 0.50}


def test_the_fingerprint_is_the_hold_out_not_its_order():
    ids, y = np.array([3, 1, 2]), np.array([1, 0, 0])
    same = registry.fingerprint(ids[::-1], y[::-1])
    assert registry.fingerprint(ids, y) == same
    assert registry.fingerprint(ids, np.array([0, 0, 1])) != same          # another label
    assert registry.fingerprint(np.array([3, 1, 4]), y) != same            # another client


def test_gates_are_inclusive_and_name_what_failed():
    at_limits = {**PASSING, "holdout_auc": 0.70, "holdout_ece": 0.05, "fairness_gap": 0.10}
    assert all(g["passed"] for g in registry.check_gates(at_limits, GATES).values())
    worse = {**PASSING, "holdout_ece": 0.0501, "fairness_gap": 0.2}
    decision = registry.decide(worse, GATES, 0.001, "h", None)
    assert decision["alias"] == "challenger"
    assert decision["reason"] == "failed the gate(s) holdout_ece, fairness_gap"


@pytest.mark.parametrize("champion, alias, reason", [
    (None, "champion", "passed every gate; there was no champion"),
    ({"holdout_cost_per_client": "0.5", "holdout_fingerprint": "other"}, "champion",
     "passed every gate; the champion was measured on another hold-out, so their costs cannot be compared"),
    ({"holdout_cost_per_client": "0.5010", "holdout_fingerprint": "h"}, "champion",
     "passed every gate and saves 0.00100 per client against the champion"),
    ({"holdout_cost_per_client": "0.5009", "holdout_fingerprint": "h"}, "challenger",
     "passed every gate but saves 0.00090 per client against the champion, less than the margin 0.001"),
])
def test_a_passing_model_must_beat_the_champion_on_the_same_hold_out(champion, alias, reason):
    decision = registry.decide(PASSING, GATES, 0.001, "h", champion)
    assert (decision["alias"], decision["reason"]) == (alias, reason)
    if champion and champion["holdout_fingerprint"] == "h":
        assert decision["comparison"]["champion_cost_per_client"] == float(champion["holdout_cost_per_client"])


# --- the stage's function on a real store -------------------------------------------------------------------------

def _run(tmp_path, monkeypatch, threshold: float, cost: float, ece: float = 0.02) -> dict:
    """Save a small bundle (its threshold makes it another file) and register it with the given figures."""
    from stages.register import register

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2))
    y = (x[:, 0] + rng.normal(size=200) > 1).astype(int)
    pipeline = make_pipeline("logistic_regression", "none", 0, {"C": 1.0}).fit(x, y)
    bundle = Bundle(pipeline=pipeline, features=["A", "B"], model="logistic_regression+none", params={}, versions={},
                    calibration={"method": "none"}, threshold=threshold, cost={"fn_cost": 10, "fp_cost": 1}, spec={},
                    manifest=[], metrics={}, points={"base_points": 600, "base_odds": 50, "pdo": 20})
    save(bundle, tmp_path / "bundle.joblib")
    (tmp_path / "features").mkdir(exist_ok=True)
    (tmp_path / "predictions").mkdir(exist_ok=True)
    pl.DataFrame({"A": x[:, 0], "B": x[:, 1]}).write_parquet(tmp_path / "features" / "train.parquet")
    pl.DataFrame({"SK_ID_CURR": np.arange(200), "TARGET": y}).write_parquet(tmp_path / "predictions" / "holdout.parquet")
    metrics = {"train": {"holdout_auc": 0.8},
               "threshold": {"holdout_cost_per_client": cost, "validation": {"holdout": {"ece": ece}}},
               "explain": {"fairness": {"gender": {"equalized_odds_difference": 0.03}}}}
    params = overridden(load_params(), {"train": {"mlflow": {"experiment": "test"}}, "register": {
        "registered_model": "m", "margin": 0.001, "gates": {**GATES, "fairness_attributes": ["gender"]}}})
    return register(tmp_path / "bundle.joblib", tmp_path / "features", tmp_path / "predictions", metrics, params)


def test_the_register_stage_keeps_the_champion_where_the_gates_say(tmp_path, monkeypatch):
    from mlflow import MlflowClient

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", (tmp_path / "artifacts").as_uri())
    first = _run(tmp_path, monkeypatch, 0.10, 0.50)
    assert (first["version"], first["alias"], first["champion_before"], first["champion_after"]) == (1, "champion", None, 1)
    again = _run(tmp_path, monkeypatch, 0.10, 0.50)   # the same bundle: nothing new is registered
    assert again == first
    client = MlflowClient()
    assert [int(v.version) for v in client.search_model_versions("name='m'")] == [1]
    worse = _run(tmp_path, monkeypatch, 0.11, 0.5005)  # saves less than the margin: challenger
    assert (worse["version"], worse["alias"], worse["champion_after"]) == (2, "challenger", 1)
    assert int(client.get_model_version_by_alias("m", "champion").version) == 1
    assert int(client.get_model_version_by_alias("m", "challenger").version) == 2
    uncalibrated = _run(tmp_path, monkeypatch, 0.12, 0.40, ece=0.09)  # cheaper, but fails a gate
    assert uncalibrated["alias"] == "challenger" and "holdout_ece" in uncalibrated["reason"]
    better = _run(tmp_path, monkeypatch, 0.13, 0.45)
    assert (better["version"], better["alias"], better["champion_before"], better["champion_after"]) == (4, "champion", 1, 4)
    assert int(client.get_model_version_by_alias("m", "champion").version) == 4
    assert client.get_model_version("m", "4").tags["holdout_cost_per_client"] == "0.45"
