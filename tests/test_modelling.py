"""Business cost, threshold choice, calibration and the leakage guarantees of the modelling stages."""
from __future__ import annotations

import json

import numpy as np
import pytest
from imblearn import FunctionSampler
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from creditscore.decision.calibration import calibrate, fit_calibration
from creditscore.decision.cost import business_cost, choose_threshold, confusion, cost_curve, decision_report
from creditscore.modelling.leaves import leaf_floor
from creditscore.modelling.models import make_pipeline
from creditscore.serving.bundle import TrainedModel, load
from creditscore.modelling.sampling import stratified_sample
from creditscore.modelling.training import (add_blend, best, blend, candidates, early_stopping_out_of_fold, evaluate,
                                            out_of_fold, search_space_draws)
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


def test_blend_weight_is_the_smallest_of_best_out_of_fold_auc_by_hand():
    y = np.array([0, 0, 1, 1])
    z_trees, z_linear = np.array([0.0, 2.0, 1.0, 3.0]), np.array([0.0, 0.0, 4.0, 4.0])
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    trees = {"oof": sigmoid(z_trees), "strategy": "none", "params": {"n_estimators": 7}, "fit_seconds": 1.0}
    linear = {"oof": sigmoid(z_linear), "strategy": "class_weight", "params": {"C": 0.1}, "fit_seconds": 2.0}
    params = {"folds": 2, "fbeta": 2, "blend": {"seeds": 1, "weights": [0.5, 0.0, 0.25, 0.1]}}
    # AUC by weight: 0 -> 0.75; 0.1 -> scores 0, 1.8, 1.3, 3.1 -> 0.75; 0.25 -> 0, 1.5, 1.75, 3.25 -> 1; 0.5 -> 1
    result = blend(trees, linear, None, y, params, COST, seed=0)
    assert result["weight_auc"] == {"0.0": 0.75, "0.1": 0.75, "0.25": 1.0, "0.5": 1.0}
    assert result["params"] == {"lightgbm_strategy": "none", "lightgbm": {"n_estimators": 7}, "seeds": 1,
                                "linear_strategy": "class_weight", "linear": {"C": 0.1}, "weight": 0.25}
    np.testing.assert_allclose(result["oof"], sigmoid(0.75 * z_trees + 0.25 * z_linear), rtol=1e-12)
    assert result["auc"] == 1.0 and result["model"] == "blend"
    alone = blend(trees, None, None, y, params, COST, seed=0)  # no logistic regression ran: the bag alone
    assert alone["params"]["weight"] == 0.0 and alone["auc"] == 0.75
    # the blend refines a LightGBM winner only, with the logistic regression of highest AUC
    results = {"lightgbm+none": {**trees, "model": "lightgbm"},
               "logistic_regression+class_weight": {**linear, "model": "logistic_regression", "auc": 0.7},
               "logistic_regression+none": {**linear, "oof": sigmoid(-z_linear), "model": "logistic_regression",
                                            "auc": 0.6}}
    assert add_blend(results, "logistic_regression+none", None, y, params, COST, 0) == {}
    assert add_blend(results, "lightgbm+none", None, y, {**params, "blend": {"seeds": 0, "weights": [0.5]}},
                     COST, 0) == {}
    refined = add_blend(results, "lightgbm+none", None, y, params, COST, 0)["blend"]
    np.testing.assert_allclose(refined["oof"], result["oof"], rtol=1e-12)  # the AUC 0.7 one, not the 0.6 one
    # the scale path: a bag of 5 served, its first member alone out of fold (no rows: any refit would fail)
    scaled = blend(trees, linear, None, y, {**params, "blend": {"seeds": 5, "weights": [0.25]}}, COST, seed=0,
                   oof_seeds=1)
    assert scaled["params"]["seeds"] == 5 and scaled["oof_seeds"] == 1 and result["oof_seeds"] == 1
    np.testing.assert_allclose(scaled["oof"], sigmoid(0.75 * z_trees + 0.25 * z_linear), rtol=1e-12)
    with pytest.raises(TypeError):  # without oof_seeds the bag is refitted out of fold: it needs the rows
        blend(trees, linear, None, y, {**params, "blend": {"seeds": 2, "weights": [0.25]}}, COST, seed=0)


def _weak_signal(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = (rng.random(n) < 1 / (1 + np.exp(-(-2.2 + 0.8 * x[:, 0] - 0.5 * x[:, 1] ** 2)))).astype(np.int64)
    return x, y


def test_early_stopping_chooses_one_count_and_predicts_out_of_fold_with_it():
    x, y = _weak_signal(3000, 0)
    params = {"n_estimators": 400, "learning_rate": 0.2, "num_leaves": 15, "min_child_samples": 20,
              "deterministic": True, "force_col_wise": True}
    oof, rounds, _ = early_stopping_out_of_fold(make_pipeline("lightgbm", "none", 0, params), x, y, 3, 0, 400, 20)
    assert 1 <= rounds < 100  # a fast learning rate on a weak signal overfits early: nowhere near 400 trees
    manual = np.zeros(len(y))
    for fit, val in StratifiedKFold(3, shuffle=True, random_state=0).split(x, y):
        model = make_pipeline("lightgbm", "none", 0, {**params, "n_estimators": rounds}).fit(x[fit], y[fit])
        manual[val] = model.predict_proba(x[val])[:, 1]
    assert np.allclose(oof, manual)  # every fold is predicted at the common count, by a model that never saw it
    curve = []  # the mean validation AUC of each count: the chosen one is the best of those every fold reached
    for fit, val in StratifiedKFold(3, shuffle=True, random_state=0).split(x, y):
        model = make_pipeline("lightgbm", "none", 0, {**params, "n_estimators": rounds + 20}).fit(x[fit], y[fit])
        curve.append([roc_auc_score(y[val], model.predict_proba(x[val], num_iteration=k)[:, 1])
                      for k in range(1, rounds + 21)])
    assert int(np.argmax(np.mean(curve, axis=0))) + 1 == rounds


def test_leaf_floor_by_hand():
    y = np.array([1] * 100 + [0] * 900)
    kernel = {"min_child_weight": 39.3259775, "min_child_samples": 200, "num_leaves": 34}
    # 800 clients per fold fit at a 10% default rate: hessians 800 x 0.1 x 0.9 = 72, over 8 leaves
    assert leaf_floor(kernel, y, 0.8) == {"min_child_weight": pytest.approx(9.0), "min_child_samples": 100,
                                          "num_leaves": 34}
    assert leaf_floor(kernel, np.tile(y, 100), 0.8) == kernel  # 80,000 per fit: the kernel's own settings
    assert leaf_floor({"num_leaves": 7}, y, 0.8) == {"num_leaves": 7}  # LightGBM's defaults are not touched


def test_lightgbm_on_few_clients_learns_with_the_leaf_floor():
    """The kernel's leaf (a hessian sum of 39.3, ~530 clients) on 640 clients: every tree a stump of one leaf,
    AUC 0.5 out of fold, which is what the 1,000-client real sample showed. The floor lets it learn."""
    rng = np.random.default_rng(11)
    x = rng.normal(size=(640, 5)).astype(np.float32)
    y = (rng.random(640) < 1 / (1 + np.exp(-(-2.5 + 1.2 * x[:, 0])))).astype(np.int64)
    kernel = {"n_estimators": 300, "learning_rate": 0.05, "num_leaves": 34, "min_child_weight": 39.3259775,
              "deterministic": True, "force_col_wise": True, "n_jobs": 1}
    oof, _, _ = early_stopping_out_of_fold(make_pipeline("lightgbm", "none", 0, kernel), x, y, 5, 0, 300, 30)
    assert np.unique(oof).size <= 5 and roc_auc_score(y, oof) == pytest.approx(0.5, abs=0.03)  # the prior per fold
    params = {"folds": 5, "early_stopping_rounds": 30, "fbeta": 2}
    result = evaluate("lightgbm", "none", kernel, x, y, params, {"fn_cost": 10, "fp_cost": 1}, 0)
    assert result["params"]["min_child_weight"] < 39.3 and result["auc"] > 0.75
    assert result["params"]["min_child_weight"] == leaf_floor(kernel, y, 0.8)["min_child_weight"]  # what the refit uses


@pytest.mark.parametrize("blended", [False, True])
def test_refit_is_trained_on_train_and_holdout_and_nothing_else(tmp_path, monkeypatch, blended):
    import polars as pl
    from sklearn.base import clone

    from stages.train import train

    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    monkeypatch.setenv("MLFLOW_ARTIFACT_LOCATION", (tmp_path / "mlartifacts").as_uri())
    names = [f"F{i}" for i in range(6)]
    features = tmp_path / "features"
    features.mkdir()
    splits = {}
    for split, n, seed in (("train", 2400, 1), ("holdout", 600, 2), ("test", 500, 3)):
        x, y = _weak_signal(n, seed)
        splits[split] = (x.astype(np.float32), y)
        frame = {"SK_ID_CURR": np.arange(n) + 10_000 * seed, **({"TARGET": y} if split != "test" else {}),
                 **{c: x[:, i].astype(np.float32) for i, c in enumerate(names)}}
        pl.DataFrame(frame).write_parquet(features / f"{split}.parquet")
    (tmp_path / "selection.json").write_text(json.dumps({"features": names}))
    lightgbm = {"n_estimators": 300, "learning_rate": 0.1, "num_leaves": 7, "deterministic": True,
                "force_col_wise": True}
    params = {"folds": 3, "benchmark_sample": 100_000, "early_stopping_rounds": 20, "fbeta": 2, "models": ["lightgbm"],
              "strategies": ["none"], "lightgbm": lightgbm, "search_budget": 0, "search_space": {},
              "mlflow": {"experiment": "test", "registered_model": "test-model", "alias": "champion"}}
    if blended:  # LightGBM bagged over 3 seeds with the logistic regression: the winner on this signal
        params.update(models=["lightgbm", "logistic_regression"], blend={"seeds": 3, "weights": [0.0, 0.2, 0.4]})
    metrics = train(features, tmp_path / "selection.json", tmp_path / "model.joblib", tmp_path / "predictions",
                    tmp_path / "plots", params, COST, 0)
    (x_fit, y_fit), (x_hold, y_hold), (x_test, _) = splits["train"], splits["holdout"], splits["test"]
    served = load(tmp_path / "model.joblib", TrainedModel, checksum=False).pipeline
    settings = {**lightgbm, "n_estimators": metrics["n_estimators"]}
    model = "lightgbm"
    if blended:
        assert metrics["model"].startswith("blend(") and metrics["blend"]["seeds"] == 3
        assert metrics["blend"]["weight"] > 0  # the logistic regression is a member too
        model, settings = "blend", {"lightgbm_strategy": "none", "lightgbm": settings, "seeds": 3,
                                    "linear_strategy": metrics["blend"]["linear"].split("+")[1], "linear": {},
                                    "weight": metrics["blend"]["weight"]}
    assert metrics["n_estimators"] < 300 and metrics["refit"] == {"clients": 3000, "train_clients": 2400,
                                                                  "holdout_clients": 600}
    expected = make_pipeline(model, "none", 0, settings).fit(np.vstack([x_fit, x_hold]), np.r_[y_fit, y_hold])
    train_only = make_pipeline(model, "none", 0, settings).fit(x_fit, y_fit)
    assert np.array_equal(served.predict_proba(x_test), expected.predict_proba(x_test))
    assert not np.allclose(served.predict_proba(x_test), train_only.predict_proba(x_test))
    test_pred = pl.read_parquet(tmp_path / "predictions" / "test.parquet")["proba"].to_numpy()
    assert np.allclose(test_pred, expected.predict_proba(x_test)[:, 1])
    # the one hold-out evaluation is by the model that never saw the hold-out
    hold_pred = pl.read_parquet(tmp_path / "predictions" / "holdout.parquet")["proba"].to_numpy()
    assert np.allclose(hold_pred, clone(train_only).fit(x_fit, y_fit).predict_proba(x_hold)[:, 1])
    assert metrics["holdout_auc"] == round(roc_auc_score(y_hold, hold_pred), 5)


def test_train_monotone_becomes_lightgbm_constraints_and_scorecard_trends():
    from stages.train import with_feature_settings
    params = {"lightgbm": {"num_leaves": 7}, "scorecard": {"trends": {"default": "auto_asc_desc", "A": "descending"}},
              "monotone": {"B": 1, "A": -1}}
    out = with_feature_settings(params, ["A", "B", "C"], {"pdo": 20})
    assert out["lightgbm"] == {"num_leaves": 7, "monotone_constraints": [-1, 1, 0]}
    assert out["scorecard"]["trends"] == {"default": "auto_asc_desc", "A": "descending", "B": "ascending"}
    assert out["scorecard"]["feature_names"] == ["A", "B", "C"] and out["scorecard"]["pdo"] == 20
    assert "monotone_constraints" not in with_feature_settings({**params, "monotone": {}}, ["A", "B"], None)["lightgbm"]
    with pytest.raises(ValueError, match="train.monotone: Z is not among the 3 features"):
        with_feature_settings({**params, "monotone": {"Z": 1}}, ["A", "B", "C"], None)
