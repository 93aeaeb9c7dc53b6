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

from creditscore.config import load_params
from creditscore.decision.calibration import calibrate, fit_calibration
from creditscore.decision.cost import business_cost, choose_threshold, confusion, cost_curve, decision_report
from creditscore.modelling.leaves import leaf_floor
from creditscore.modelling.models import CrossFitEnsemble, make_pipeline, stacked_proba
from creditscore.modelling.sampling import stratified_sample
from creditscore.modelling.training import (
    candidates,
    early_stopping_out_of_fold,
    ensemble,
    evaluate,
    highest_auc,
    least_cost,
    out_of_fold,
    search_space_draws,
    stack,
)
from creditscore.params import Threshold, overridden
from creditscore.serving.bundle import TrainedModel, load
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
    honest, _, _ = out_of_fold(make_pipeline("random_forest", "smote", 0, {"n_estimators": 100}), x, y, 5, 0)
    assert naive > 0.75  # synthetic neighbours of validation rows were trained on
    assert abs(roc_auc_score(y, honest) - 0.5) < 0.1


def test_threshold_and_calibration_never_see_the_holdout():
    rng = np.random.default_rng(3)
    oof_y = (rng.random(2000) < 0.1).astype(int)
    oof_p = np.clip(0.1 + 0.3 * oof_y + rng.normal(0, 0.1, 2000), 0, 1)
    hold_y = (rng.random(500) < 0.1).astype(int)
    hold_p = np.clip(0.1 + 0.3 * hold_y + rng.normal(0, 0.1, 500), 0, 1)
    settings = Threshold(calibration="isotonic", pd_floor=0.0003, pd_ceiling=0.9997)
    cal_a, met_a, _ = choose(oof_y, oof_p, hold_y, hold_p, COST, settings)
    cal_b, met_b, _ = choose(oof_y, oof_p, 1 - hold_y, hold_p[::-1], COST, settings)
    assert cal_a == cal_b and met_a["threshold"] == met_b["threshold"]
    assert met_a["holdout_cost"] != met_b["holdout_cost"]


def test_calibration_by_hand():
    iso = fit_calibration(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]), "isotonic")
    assert calibrate(np.array([0.1, 0.25, 0.4]), iso).tolist() == pytest.approx([0.0, 0.5, 1.0])
    # a floor and a ceiling: no client is scored certain to repay or to default
    bounded = fit_calibration(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]), "isotonic", 0.0003, 0.9997)
    assert calibrate(np.array([0.0, 0.1, 0.25, 0.4, 1.0]), bounded).tolist() == pytest.approx(
        [0.0003, 0.0003, 0.5, 0.9997, 0.9997])
    with pytest.raises(ValueError, match="pd_floor must be below pd_ceiling"):
        fit_calibration(np.array([0.1]), np.array([0]), "isotonic", 0.5, 0.4)
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
    assert least_cost(results) == "b"  # least cost, ties by AUC (reported, never the selector)
    assert highest_auc(results) == "c"
    draws = search_space_draws({"a": [1, 2], "b": [3, 4, 5]}, 4, seed=0)
    assert len(draws) == 4 and len({tuple(d.items()) for d in draws}) == 4
    assert draws == search_space_draws({"a": [1, 2], "b": [3, 4, 5]}, 4, seed=0)
    y = np.r_[np.ones(20), np.zeros(80)].astype(int)
    keep = stratified_sample(100, y, 50, seed=0)
    assert len(keep) == 50 and y[keep].sum() == 10 and list(keep) == sorted(keep)


def _sigmoid(z):
    return 1 / (1 + np.exp(-z))


def test_stacker_weights_a_useless_member_zero_and_twins_equally():
    rng = np.random.default_rng(0)
    y = (rng.random(4000) < 0.1).astype(np.int64)
    signal = 1.5 * y + rng.normal(size=4000)  # informative log-odds
    noise = rng.normal(size=4000)  # no link to the label
    w = stack(np.column_stack([_sigmoid(signal), _sigmoid(noise)]), y)
    assert w[0] == pytest.approx(1.0) and w[1] == pytest.approx(0.0, abs=1e-9)  # a member only counts by its weight
    twins = stack(np.column_stack([_sigmoid(signal), _sigmoid(signal)]), y)
    np.testing.assert_allclose(twins, [0.5, 0.5], atol=1e-6)  # the ridge makes the solution unique and symmetric
    half = 1.5 * y + rng.normal(size=4000)  # a second, independent view of the same signal: both count
    both = stack(np.column_stack([_sigmoid(signal), _sigmoid(half)]), y)
    assert 0.35 < both[0] < 0.65 and both.sum() == pytest.approx(1.0)
    assert roc_auc_score(y, signal + half) > max(roc_auc_score(y, signal), roc_auc_score(y, half))
    flat = stack(np.column_stack([np.full(4000, 0.1), np.full(4000, 0.1)]), y)  # no signal at all: equal weights
    np.testing.assert_allclose(flat, [0.5, 0.5])


def test_ensemble_stacks_the_servable_candidates_only_and_drops_light_members():
    rng = np.random.default_rng(1)
    y = (rng.random(3000) < 0.1).astype(np.int64)
    z = {"lightgbm+none": 1.5 * y + rng.normal(size=3000), "logistic_regression+none": 1.2 * y + rng.normal(size=3000),
         "lightgbm+undersample": rng.normal(size=3000), "random_forest+none": 3.0 * y + rng.normal(size=3000),
         "scorecard+none": 3.0 * y + rng.normal(size=3000)}
    noise = z["lightgbm+undersample"]
    for label in (0, 1):  # no link to the label at all: the same mean among defaulters and good clients
        noise[y == label] -= noise[y == label].mean()
    results = {n: {"oof": _sigmoid(v), "model": n.split("+")[0], "strategy": n.split("+")[1], "auc": 0.7,
                   "params": {"n": n}, "fit_seconds": 1.0, "fold_models": [n]} for n, v in z.items()}
    params = overridden(load_params().train, {"folds": 5, "fbeta": 2, "ensemble": {"min_weight": 0.05, "l2": 1.0}})
    served = ensemble(results, y, params, COST)
    # the forest and the scorecard are stronger here, but not servable; the noise member is dropped
    assert served["params"]["members"] == ["lightgbm+none", "logistic_regression+none"]
    w = np.asarray(served["params"]["weights"])
    np.testing.assert_allclose(w, stack(np.column_stack([results[n]["oof"] for n in served["params"]["members"]]), y),
                               atol=1e-6)
    np.testing.assert_allclose(served["oof"], _sigmoid(w[0] * z["lightgbm+none"] + w[1] * z["logistic_regression+none"]),
                               rtol=1e-5)
    assert served["fold_models"] == [["lightgbm+none"], ["logistic_regression+none"]]
    assert served["auc"] == roc_auc_score(y, served["oof"])
    with pytest.raises(ValueError, match="none of .* is a model the ensemble is built from"):
        ensemble({"random_forest+none": results["random_forest+none"]}, y, params, COST)


def _weak_signal(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = (rng.random(n) < 1 / (1 + np.exp(-(-2.2 + 0.8 * x[:, 0] - 0.5 * x[:, 1] ** 2)))).astype(np.int64)
    return x, y


def test_early_stopping_chooses_one_count_and_predicts_out_of_fold_with_it():
    x, y = _weak_signal(3000, 2)
    params = {"n_estimators": 400, "learning_rate": 0.2, "num_leaves": 15, "min_child_samples": 20,
              "deterministic": True, "force_col_wise": True}
    oof, rounds, _, models = early_stopping_out_of_fold(make_pipeline("lightgbm", "none", 0, params), x, y, 3, 0, 400,
                                                        20)
    assert 1 <= rounds < 100  # a fast learning rate on a weak signal overfits early: nowhere near 400 trees
    manual = np.zeros(len(y))
    for (fit, val), fold_model in zip(StratifiedKFold(3, shuffle=True, random_state=0).split(x, y), models):
        model = make_pipeline("lightgbm", "none", 0, {**params, "n_estimators": rounds}).fit(x[fit], y[fit])
        manual[val] = model.predict_proba(x[val])[:, 1]
        # the kept fold model is the fit of exactly the common count, to the bit, and holds no other tree
        booster = fold_model.steps[-1][1].booster_
        assert booster.num_trees() == rounds
        assert np.array_equal(booster.predict(x, raw_score=True), model.steps[-1][1].booster_.predict(x, raw_score=True))
        assert np.array_equal(fold_model.predict_proba(x)[:, 1], model.predict_proba(x)[:, 1])
    assert np.array_equal(oof, manual)  # every fold is predicted at the common count, by a model that never saw it
    curve = []  # the mean validation AUC of each count: the chosen one is the best of those every fold reached
    for fit, val in StratifiedKFold(3, shuffle=True, random_state=0).split(x, y):
        model = make_pipeline("lightgbm", "none", 0, {**params, "n_estimators": rounds + 20}).fit(x[fit], y[fit])
        curve.append([roc_auc_score(y[val], model.predict_proba(x[val], num_iteration=k)[:, 1])
                      for k in range(1, rounds + 21)])
    assert int(np.argmax(np.mean(curve, axis=0))) + 1 == rounds
    # the premises: a fold's own best count is below the common one, so early stopping alone would have trimmed
    # that fold's model below the common count; and one is above it, so its model grew trees it must not keep
    assert min(int(np.argmax(c)) + 1 for c in curve) < rounds < max(int(np.argmax(c)) + 1 for c in curve)


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
    oof, _, _, _ = early_stopping_out_of_fold(make_pipeline("lightgbm", "none", 0, kernel), x, y, 5, 0, 300, 30)
    assert np.unique(oof).size <= 5 and roc_auc_score(y, oof) == pytest.approx(0.5, abs=0.03)  # the prior per fold
    params = overridden(load_params().train, {"folds": 5, "early_stopping_rounds": 30, "fbeta": 2})
    result = evaluate("lightgbm", "none", kernel, x, y, params, {"fn_cost": 10, "fp_cost": 1}, 0)
    assert result["params"]["min_child_weight"] < 39.3 and result["auc"] > 0.75
    assert result["params"]["min_child_weight"] == leaf_floor(kernel, y, 0.8)["min_child_weight"]  # the folds' floor


def test_the_served_model_is_the_evaluated_cross_fitted_ensemble(tmp_path, monkeypatch):
    """Nothing is refitted: the fold models that scored the training clients out of fold are the served model,
    which scores the hold-out once and the test clients; no fold model saw a hold-out row or its own fold."""
    import polars as pl

    from creditscore.modelling.models import members
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
    (features / "manifest.json").write_text(json.dumps([{"name": n, "table": "application", "group": "application",
                                                         "dtype": "float32", "meaning": n} for n in names]))
    lightgbm = {"n_estimators": 300, "learning_rate": 0.1, "num_leaves": 7, "deterministic": True,
                "force_col_wise": True}
    params = overridden(load_params().train, {
        "folds": 3, "benchmark_sample": 100_000, "early_stopping_rounds": 20, "fbeta": 2, "strategies": ["none"],
        "lightgbm": lightgbm, "logistic_regression": {"C": 0.1}, "search_budget": 0, "search_space": {},
        "ensemble": {"min_weight": 0.0, "l2": 1.0}, "mlflow": {"experiment": "test"}})
    # the served ensemble's two models alone (no scorecard challenger, which params.yaml requires of a pipeline)
    params = params.model_copy(update={"models": ["lightgbm", "logistic_regression"]})
    metrics = train(features, tmp_path / "selection.json", tmp_path / "model.joblib", tmp_path / "predictions",
                    tmp_path / "plots", params, COST, 0)
    (x_fit, y_fit), (x_hold, y_hold), (x_test, _) = splits["train"], splits["holdout"], splits["test"]
    trained = load(tmp_path / "model.joblib", TrainedModel, checksum=False)
    served = trained.pipeline
    assert trained.params["settings"][0]["n_estimators"] == metrics["n_estimators"] < 300
    folds = list(StratifiedKFold(3, shuffle=True, random_state=0).split(x_fit, y_fit))
    weights = dict(zip(metrics["ensemble"]["members"], [m["weight"] for m in metrics["ensemble"]["members"].values()]))
    assert sorted(weights) == ["lightgbm+none", "logistic_regression+none"] and sum(weights.values()) == pytest.approx(1)
    parts = members(served)
    assert len(parts) == 6 and metrics["ensemble"]["fold_models"] == 6  # 2 members x 3 fold models
    # each fold model was fitted on its training fold: refitted there, it gives the same predictions
    oof_z = np.zeros(len(y_fit))
    for j, name in enumerate(sorted(weights)):
        for k, (fit, val) in enumerate(folds):
            fold_model, weight = parts[3 * j + k]
            assert weight == pytest.approx(weights[name] / 3)
            settings = trained.params["settings"][j]  # LightGBM's: its leaf floor and early-stopped count
            again = make_pipeline(name.split("+")[0], "none", 0, settings).fit(x_fit[fit], y_fit[fit])
            assert np.allclose(fold_model.predict_proba(x_hold), again.predict_proba(x_hold))
            p = np.clip(fold_model.predict_proba(x_fit[val])[:, 1], 1e-15, 1 - 1e-15)
            oof_z[val] += weights[name] * np.log(p / (1 - p))
    predictions = tmp_path / "predictions"
    oof = pl.read_parquet(predictions / "oof.parquet")["proba"].to_numpy()
    np.testing.assert_allclose(oof, 1 / (1 + np.exp(-oof_z)), rtol=1e-6)  # the threshold learns from these
    hold_pred = pl.read_parquet(predictions / "holdout.parquet")["proba"].to_numpy()
    test_pred = pl.read_parquet(predictions / "test.parquet")["proba"].to_numpy()
    assert np.allclose(hold_pred, served.predict_proba(x_hold)[:, 1])  # the hold-out's figures are the served model's
    assert np.allclose(test_pred, served.predict_proba(x_test)[:, 1])
    assert metrics["holdout_auc"] == round(roc_auc_score(y_hold, hold_pred), 5)
    interval = metrics["holdout_auc_interval"]
    assert interval["low"] < metrics["holdout_auc"] < interval["high"]
    assert metrics["clients"] == {"train": 2400, "holdout": 600, "benchmark": 2400}


def test_a_model_the_api_cannot_load_is_refused_before_any_artifact():
    from creditscore.errors import ParamsError
    from stages.train import refuse_unservable

    forest = make_pipeline("random_forest", "none", 0, {"n_estimators": 5, "n_jobs": 1})
    with pytest.raises(ParamsError, match="random_forest, which the API cannot load from requirements-serving.txt"):
        refuse_unservable(forest)
    refuse_unservable(make_pipeline("lightgbm", "none", 0, {}))  # servable: no error


def test_train_monotone_becomes_lightgbm_constraints_and_scorecard_trends():
    from creditscore.modelling.training import model_settings
    params = overridden(load_params().train, {
        "lightgbm": {"num_leaves": 7}, "scorecard": {"trends": {"default": "auto_asc_desc", "A": "descending"}},
        "monotone": {"B": 1, "A": -1}})
    out = model_settings(params, ["A", "B", "C"], {"pdo": 20})
    assert out["lightgbm"] == {"num_leaves": 7, "monotone_constraints": [-1, 1, 0]}
    assert out["scorecard"]["trends"] == {"default": "auto_asc_desc", "A": "descending", "B": "ascending"}
    assert out["scorecard"]["feature_names"] == ["A", "B", "C"] and out["scorecard"]["pdo"] == 20
    assert params.lightgbm == {"num_leaves": 7} and params.scorecard.trends["A"] == "descending"  # unchanged
    unconstrained = overridden(params, {"monotone": {}})
    assert "monotone_constraints" not in model_settings(unconstrained, ["A", "B"], None)["lightgbm"]
    with pytest.raises(ValueError, match="train.monotone: Z is not among the 3 features"):
        model_settings(overridden(params, {"monotone": {"Z": 1}}), ["A", "B", "C"], None)


def test_the_points_card_reads_source_fields_and_ratios_only():
    """No polynomial term, product or target encoding on a card a committee signs, even when it is the strongest."""
    from creditscore.modelling.scorecard import PointsScorecard
    from creditscore.modelling.training import card_ineligible

    manifest = [{"name": "AMT_CREDIT", "group": "application", "meaning": "credit amount"},
                {"name": "CREDIT_INCOME_RATIO", "group": "application", "meaning": "credit amount / yearly income"},
                {"name": "EXT_SOURCE_PROD", "group": "application", "meaning": "product of the three external scores"},
                {"name": "POLY_EXT_SOURCE_2_POW2", "group": "application", "meaning": "external score 2 squared"},
                {"name": "LOAN_TERMS_010_TARGET_ENC", "group": "target_encoding", "meaning": "default rate"}]
    excluded = card_ineligible(manifest)
    assert excluded == ["EXT_SOURCE_PROD", "POLY_EXT_SOURCE_2_POW2", "LOAN_TERMS_010_TARGET_ENC"]
    rng = np.random.default_rng(5)
    signal = rng.normal(size=3000)
    y = (rng.random(3000) < 1 / (1 + np.exp(-(-2.0 + 1.5 * signal)))).astype(int)
    names = [m["name"] for m in manifest]
    x = np.column_stack([signal + rng.normal(scale=2.0, size=3000), rng.normal(size=3000), signal, signal, signal])
    card = PointsScorecard(feature_names=names, max_features=5, min_iv=0.0001, excluded=excluded).fit(x, y)
    assert set(card.selected_) <= {"AMT_CREDIT", "CREDIT_INCOME_RATIO"} and "AMT_CREDIT" in card.selected_
    open_card = PointsScorecard(feature_names=names, max_features=5, min_iv=0.0001).fit(x, y)
    assert set(open_card.selected_) & set(excluded)  # without the rule the strongest lines are the derived ones


def test_a_money_weighted_cost_moves_the_threshold_by_hand():
    """cost.basis: amount. The second defaulter's loan is tiny: counted, missing it costs 10 (refuse everyone
    from 0.2: cost 2); weighted by credit, it costs 50, less than refusing the 1,000 good loan (threshold 0.9)."""
    from creditscore.decision.cost import choose_threshold, cost_curve, money_cost

    y, p = np.array([1, 0, 0, 1]), np.array([0.9, 0.6, 0.3, 0.2])
    credit = np.array([100.0, 1000.0, 10.0, 5.0])
    assert choose_threshold(y, p, 10, 1) == 0.2
    assert choose_threshold(y, p, 10, 1, weights=credit) == 0.9
    thresholds, costs = cost_curve(y, p, 10, 1, weights=credit)
    assert costs.tolist() == [50.0, 1050.0, 1060.0, 1010.0, 1050.0]  # refuse from 0.9, 0.6, 0.3, 0.2; none
    assert money_cost(y, p, 0.9, 10, 1, credit) == 50.0 and money_cost(y, p, 0.2, 10, 1, credit) == 1010.0
    assert cost_curve(y, p, 10, 1, weights=np.ones(4))[1].tolist() == cost_curve(y, p, 10, 1)[1].tolist()


def test_the_threshold_stage_reports_both_bases_and_serves_the_chosen_one():
    rng = np.random.default_rng(8)
    oof_y, hold_y = (rng.random(3000) < 0.1).astype(int), (rng.random(800) < 0.1).astype(int)
    oof_p = np.clip(0.1 + 0.3 * oof_y + rng.normal(0, 0.1, 3000), 0, 1)
    hold_p = np.clip(0.1 + 0.3 * hold_y + rng.normal(0, 0.1, 800), 0, 1)
    credit = (rng.lognormal(12, 1, 3000), rng.lognormal(12, 1, 800))
    settings = Threshold(calibration="isotonic", pd_floor=0.0003, pd_ceiling=0.9997)
    _, counted, _ = choose(oof_y, oof_p, hold_y, hold_p, COST, settings, basis="count", amounts=credit)
    _, weighted, _ = choose(oof_y, oof_p, hold_y, hold_p, COST, settings, basis="amount", amounts=credit)
    assert counted["by_cost_basis"] == weighted["by_cost_basis"]  # both bases reported either way
    assert counted["threshold"] == counted["by_cost_basis"]["count"]["threshold"]
    assert weighted["threshold"] == weighted["by_cost_basis"]["amount"]["threshold"]
    assert weighted["cost_basis"] == "amount" and "by_cost_basis" not in choose(
        oof_y, oof_p, hold_y, hold_p, COST, settings)[1]


def test_stacked_probabilities_mix_log_odds_as_the_served_ensemble_does():
    # log-odds 0 and log 4 at weights 1/2 each: log 2, a probability of 2/3; weights (1, 0): the first member alone
    proba = np.array([[0.5, 0.8], [0.2, 0.9]])
    assert stacked_proba(proba, [0.5, 0.5])[0] == pytest.approx(2 / 3, rel=1e-12)
    np.testing.assert_allclose(stacked_proba(proba, [1.0, 0.0]), [0.5, 0.2], rtol=1e-12)

    class Fixed:  # a fold model that returns the given probabilities
        def __init__(self, p):
            self.p = np.asarray(p)

        def predict_proba(self, x):
            return np.column_stack([1 - self.p, self.p])

    served = CrossFitEnsemble([[Fixed(proba[:, 0])], [Fixed(proba[:, 1])]], [0.3, 0.7])
    np.testing.assert_allclose(served.predict_proba(np.zeros((2, 1)))[:, 1], stacked_proba(proba, [0.3, 0.7]),
                               rtol=1e-12)
