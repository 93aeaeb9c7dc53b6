"""Exact outputs of the small helpers the stages print or plot with, on hand-built inputs."""
from __future__ import annotations

import numpy as np

from creditscore.explanation.figures import pick_clients
from stages.drift import alert_line
from stages.train import curves, describe, n_trees


def test_pick_clients_highest_lowest_closest_without_repeats():
    proba = np.array([0.9, 0.1, 0.5, 0.52, 0.05])
    assert pick_clients(proba, 0.5, {"highest": 2, "lowest": 1, "closest": 2}) == [
        ("highest", 0), ("highest", 3), ("lowest", 4), ("closest", 2), ("closest", 1)]  # 3 was taken: next closest
    assert pick_clients(proba, 0.5, {"highest": 0, "lowest": 0, "closest": 0}) == []


def test_curves_for_dvc_plots():
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.6, 0.4, 0.8])
    out = curves(y, proba, threshold=0.5)
    assert out["roc"] == [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.0, "tpr": 0.5}, {"fpr": 0.5, "tpr": 0.5},
                          {"fpr": 0.5, "tpr": 1.0}, {"fpr": 1.0, "tpr": 1.0}]
    assert out["confusion"] == [{"actual": "good", "predicted": "granted"}, {"actual": "good", "predicted": "refused"},
                                {"actual": "default", "predicted": "granted"},
                                {"actual": "default", "predicted": "refused"}]
    assert out["precision_recall"][0] == {"recall": 1.0, "precision": 0.5}


def test_candidate_names_and_tree_counts():
    single = {"model": "lightgbm", "strategy": "class_weight", "params": {"n_estimators": 300}}
    assert describe(single) == "lightgbm+class_weight" and n_trees(single) == 300
    blend = {"model": "blend", "strategy": "none", "params": {"weight": 0.25, "linear_strategy": "none", "seeds": 5,
                                                               "lightgbm_strategy": "none",
                                                               "lightgbm": {"n_estimators": 441}}}
    assert describe(blend) == "blend(0.75 x lightgbm+none x 5 seeds + 0.25 x logistic_regression+none)"
    assert n_trees(blend) == 441
    bag = {**blend, "params": {**blend["params"], "weight": 0.0}}
    assert describe(bag) == "blend(1 x lightgbm+none x 5 seeds)"
    assert n_trees({"model": "logistic_regression", "strategy": "none", "params": {}}) is None


def test_alert_line_says_what_drifted():
    calm = {"n_drifted": 1, "n_features": 15, "share_drifted": 1 / 15, "score_psi": 0.031, "score_psi_band": "stable",
            "alert": False, "current_source": "application_test", "n_current": 3170}
    assert alert_line(calm) == ("no drift alert: 1/15 features drifted (7%), score PSI 0.03 (stable); current data "
                                "application_test (3,170 rows)")
    alarm = {**calm, "n_drifted": 9, "share_drifted": 0.6, "score_psi": 0.4, "score_psi_band": "act", "alert": True}
    assert alert_line(alarm) == "DRIFT ALERT: 9/15 features drifted (60%), score PSI 0.40 (act) — retrain or investigate"
