"""Business cost, threshold choice, calibration and the leakage guarantees of the modelling stages."""
from __future__ import annotations

import numpy as np
import pytest
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from imblearn import FunctionSampler
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from creditscore.calibration import calibrate, fit_calibration
from creditscore.cost import business_cost, choose_threshold, confusion, cost_curve, decision_report
from creditscore.models import make_pipeline
from creditscore.training import best, candidates, out_of_fold, search_space_draws, stratified_sample
from stages.threshold import choose

COST = {"fn_cost": 10, "fp_cost": 1}


def test_cost_of_a_decision_by_hand():
    y, p = np.array([1, 0, 0, 1]), np.array([0.9, 0.6, 0.2, 0.1])
    assert confusion(y, p, 0.5) == {"tp": 1, "fp": 1, "fn": 1, "tn": 1}
    assert business_cost(y, p, 0.5, 10, 1) == 11
    assert business_cost(y, p, 0.05, 10, 1) == 2  # refuse everyone: two good clients lost
    assert business_cost(y, p, 0.95, 10, 1) == 20  # accept everyone: two defaults


def test_choose_threshold_by_hand():
    y, p = np.array([0, 1, 0, 0]), np.array([0.9, 0.5, 0.4, 0.1])
    assert choose_threshold(y, p, 10, 1) == 0.5  # refusing 0.9 and 0.5 costs 1; any other choice costs 2 or 10
    assert choose_threshold(np.array([1, 0]), np.array([0.3, 0.3]), 10, 1) == 0.3  # ties refuse together
    report = decision_report(y, p, 0.5, 10, 1)
    assert report["cost"] == 1 and report["cost_vs_accept_all"] == 0.1 and report["cost_vs_refuse_all"] == pytest.approx(1 / 3)
    assert report["recall"] == 1.0 and report["precision"] == 0.5 and report["approval_rate"] == 0.5


def test_cost_curve_matches_brute_force():
    rng = np.random.default_rng(0)
    y = (rng.random(300) < 0.1).astype(int)
    p = np.round(rng.random(300), 2)  # many ties
    thresholds, costs = cost_curve(y, p, 10, 1)
    for t, c in zip(thresholds, costs):
        assert c == business_cost(y, p, t, 10, 1)
    brute = min(np.r_[np.unique(p), 1.01], key=lambda t: (business_cost(y, p, t, 10, 1), -t))
    assert choose_threshold(y, p, 10, 1) == brute


def test_samplers_only_ever_see_training_folds():
    x = np.column_stack([np.arange(200.0), np.random.default_rng(1).random(200)])
    y = np.r_[np.ones(40), np.zeros(160)].astype(int)
    seen = []

    def record(xs, ys):
        seen.append(set(xs[:, 0].astype(int)))
        return xs, ys

    pipeline = Pipeline([("sampler", FunctionSampler(func=record, validate=False)),
                         ("model", LogisticRegression())])
    out_of_fold(pipeline, x, y, folds=4, seed=0)
    folds = [set(fit) for fit, _ in StratifiedKFold(4, shuffle=True, random_state=0).split(x, y)]
    assert seen == folds  # each fit resampled exactly its training fold; prediction never resamples


def test_smote_before_cross_validation_leaks_but_not_inside_the_pipeline():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(600, 5)), (rng.random(600) < 0.1).astype(int)  # no signal at all
    xs, ys = SMOTE(random_state=0).fit_resample(x, y)
    forest = RandomForestClassifier(n_estimators=100, random_state=0, n_jobs=2)
    naive = roc_auc_score(ys, cross_val_predict(forest, xs, ys, cv=StratifiedKFold(5, shuffle=True, random_state=0),
                                                method="predict_proba")[:, 1])
    honest, _ = out_of_fold(make_pipeline("random_forest", "smote", 0, {"n_estimators": 100}), x, y, 5, 0)
    assert naive > 0.75  # synthetic neighbours of validation rows were trained on
    assert abs(roc_auc_score(y, honest) - 0.5) < 0.1


def test_threshold_and_calibration_never_see_the_holdout():
    rng = np.random.default_rng(3)
    oof_y = (rng.random(2000) < 0.1).astype(int)
    oof_p = np.clip(0.1 + 0.3 * oof_y + rng.normal(0, 0.1, 2000), 0, 1)
    hold_y = (rng.random(500) < 0.1).astype(int)
    hold_p = np.clip(0.1 + 0.3 * hold_y + rng.normal(0, 0.1, 500), 0, 1)
    cal_a, met_a, _ = choose(oof_y, oof_p, hold_y, hold_p, COST, "isotonic")
    cal_b, met_b, _ = choose(oof_y, oof_p, 1 - hold_y, hold_p[::-1], COST, "isotonic")
    assert cal_a == cal_b and met_a["threshold"] == met_b["threshold"]
    assert met_a["holdout_cost"] != met_b["holdout_cost"]


def test_calibration_by_hand():
    iso = fit_calibration(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]), "isotonic")
    assert calibrate(np.array([0.1, 0.25, 0.4]), iso).tolist() == pytest.approx([0.0, 0.5, 1.0])
    rng = np.random.default_rng(0)
    z = rng.normal(size=20000)
    y = (rng.random(20000) < 1 / (1 + np.exp(-(2 * z - 1)))).astype(int)
    sig = fit_calibration(1 / (1 + np.exp(-z)), y, "sigmoid")
    assert sig["a"] == pytest.approx(2, abs=0.15) and sig["b"] == pytest.approx(-1, abs=0.15)
    with pytest.raises(ValueError, match="threshold.calibration must be one of"):
        fit_calibration(np.array([0.1]), np.array([0]), "beta")


def test_candidate_grid_and_winner_rule():
    assert candidates(["dummy", "lightgbm"], ["none", "smote"]) == [("dummy", "none"), ("lightgbm", "none"),
                                                                    ("lightgbm", "smote")]
    results = {"a": {"cost_per_client": 0.5, "auc": 0.70}, "b": {"cost_per_client": 0.5, "auc": 0.72},
               "c": {"cost_per_client": 0.6, "auc": 0.90}}
    assert best(results) == "b"  # least cost, ties by AUC
    draws = search_space_draws({"a": [1, 2], "b": [3, 4, 5]}, 4, seed=0)
    assert len(draws) == 4 and len({tuple(d.items()) for d in draws}) == 4
    assert draws == search_space_draws({"a": [1, 2], "b": [3, 4, 5]}, 4, seed=0)
    y = np.r_[np.ones(20), np.zeros(80)].astype(int)
    keep = stratified_sample(100, y, 50, seed=0)
    assert len(keep) == 50 and y[keep].sum() == 10 and list(keep) == sorted(keep)
