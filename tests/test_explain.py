"""Contributions, reason codes, fairness rates and the model card, on tiny hand-built models and data."""
from __future__ import annotations

import math

import numpy as np
import pytest
import shap
from imblearn.pipeline import Pipeline
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from creditscore.explanation.contributions import contributions, format_value, raw_score, reason_codes, typical_values
from creditscore.explanation.fairness import age_bands, group_rates
from creditscore.modelling.models import make_pipeline

FEATURES = ["INCOME", "DEBT_RATIO", "EXT_SCORE"]
LABELS = {"INCOME": "yearly income", "DEBT_RATIO": "debt / income", "EXT_SCORE": "external credit score"}


def hand_built_logistic() -> Pipeline:
    """A logistic model whose every number is set by hand: impute medians, standardise, then coefficients."""
    imputer = SimpleImputer(strategy="median").fit(np.array([[1000.0, 0.2, 0.5], [3000.0, 0.4, 0.7]]))
    scaler = StandardScaler()
    scaler.mean_, scaler.scale_, scaler.var_ = np.array([2000.0, 0.3, 0.6]), np.array([1000.0, 0.1, 0.1]), None
    scaler.n_features_in_ = 3
    model = LogisticRegression()
    model.classes_ = np.array([0, 1])
    model.coef_ = np.array([[-0.5, 2.0, -1.0]])
    model.intercept_ = np.array([-2.0])
    return Pipeline([("impute", imputer), ("scale", scaler), ("model", model)])


def test_linear_contributions_are_exact_hand_computed_values():
    pipe = hand_built_logistic()
    client = np.array([[1500.0, 0.5, np.nan]])  # EXT_SCORE missing -> median 0.6 -> standardised 0
    c = contributions(pipe, client)
    # (1500-2000)/1000 * -0.5 = 0.25 ; (0.5-0.3)/0.1 * 2 = 4.0 ; 0 * -1 = 0
    np.testing.assert_allclose(c.values[0], [0.25, 4.0, 0.0], atol=1e-12)
    assert c.base[0] == -2.0 and c.space == "log-odds"
    p = pipe.predict_proba(client)[0, 1]
    assert math.isclose(c.score[0], math.log(p / (1 - p)), abs_tol=1e-9)


def test_reason_codes_on_hand_built_model_and_client():
    pipe = hand_built_logistic()
    client = np.array([1500.0, 0.5, np.nan])
    c = contributions(pipe, client[None, :])
    typical = np.array([2500.0, 0.25, 0.65])
    reasons = reason_codes(client, c.values[0], FEATURES, LABELS, typical)
    # only positive contributions are reasons: DEBT_RATIO (4.0) then INCOME (0.25); EXT_SCORE contributes 0
    assert [r["feature"] for r in reasons] == ["DEBT_RATIO", "INCOME"]
    assert reasons[0]["text"] == "Debt / income is 0.5, higher than 0.25 for a typical granted client"
    assert reasons[1]["text"] == "Yearly income is 1,500, lower than 2,500 for a typical granted client"
    assert reasons[0]["contribution"] == 4.0 and reasons[1]["rank"] == 2


def test_reason_codes_missing_value_ties_and_limit():
    values = np.array([np.nan, 1.0, 2.0, 3.0, 4.0, 5.0])
    contrib = np.array([0.3, 0.3, 0.1, -0.2, 0.05, 0.02])
    names = ["A", "B", "C", "D", "E", "F"]
    reasons = reason_codes(values, contrib, names, {"A": "months employed"}, np.array([12, 1, 2, np.nan, 4, 5.0]))
    assert [r["feature"] for r in reasons] == ["A", "B", "C", "E"]  # tie broken by order; D pushes to granting
    assert reasons[0]["text"] == "Months employed is not known (typical granted client: 12)"
    assert reasons[0]["value"] is None
    assert reasons[1]["text"] == "B is 1, as for a typical granted client"


def test_typical_values_and_format():
    x = np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan], [10.0, np.nan]])
    out = typical_values(x)
    assert out[0] == 3.0 and math.isnan(out[1])
    assert format_value(float("nan")) == "unknown" and format_value(1234567.8) == "1,234,568"
    assert format_value(0.012345) == "0.0123"


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 5))
    x[rng.random(x.shape) < 0.1] = np.nan
    y = (np.nan_to_num(x[:, 0]) + 0.5 * np.nan_to_num(x[:, 1]) + rng.normal(size=600) > 1).astype(int)
    return x, y


def test_lightgbm_contributions_add_up_and_match_shap(data):
    x, y = data
    pipe = make_pipeline("lightgbm", "none", 0, {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 10}).fit(x, y)
    c = contributions(pipe, x[:50])
    np.testing.assert_allclose(c.score, raw_score(pipe, x[:50]), atol=1e-9)
    theirs = shap.TreeExplainer(pipe.steps[-1][1].booster_).shap_values(x[:50])
    np.testing.assert_allclose(c.values, theirs, atol=1e-6)


@pytest.mark.parametrize("strategy", ["none", "undersample", "smote"])
def test_logistic_contributions_add_up_and_match_shap(data, strategy):
    x, y = data
    pipe = make_pipeline("logistic_regression", strategy, 0, {"C": 1.0}).fit(x, y)
    c = contributions(pipe, x[:50])
    np.testing.assert_allclose(c.score, raw_score(pipe, x[:50]), atol=1e-9)
    if strategy == "none":  # the scaler saw exactly these rows: the linear SHAP background is their mean
        xt = pipe[:-1].transform(x)
        masker = shap.maskers.Independent(xt, max_samples=len(xt))
        theirs = shap.LinearExplainer(pipe.steps[-1][1], masker).shap_values(xt[:50])
        np.testing.assert_allclose(c.values, theirs, atol=1e-9)


def test_blend_is_its_members_weighted_in_log_odds_and_so_are_its_contributions(data):
    x, y = data
    trees = {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 10, "colsample_bytree": 0.5}
    spec = {"lightgbm_strategy": "none", "lightgbm": trees, "seeds": 2, "linear_strategy": "none",
            "linear": {"C": 1.0}, "weight": 0.3}
    blend = make_pipeline("blend", "none", 3, spec).fit(x, y)
    # the members, fitted by hand: LightGBM with seeds 3 and 4, the logistic regression
    m0, m1 = (make_pipeline("lightgbm", "none", s, trees).fit(x, y) for s in (3, 4))
    lr = make_pipeline("logistic_regression", "none", 3, {"C": 1.0}).fit(x, y)
    assert not np.allclose(raw_score(m0, x), raw_score(m1, x))  # the seeds sample different columns
    z = 0.35 * raw_score(m0, x) + 0.35 * raw_score(m1, x) + 0.3 * raw_score(lr, x)
    np.testing.assert_allclose(blend.predict_proba(x)[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-9)
    np.testing.assert_allclose(raw_score(blend, x), z, atol=1e-9)
    c = contributions(blend, x[:40])
    parts = [contributions(m, x[:40]) for m in (m0, m1, lr)]
    np.testing.assert_allclose(c.values, 0.35 * parts[0].values + 0.35 * parts[1].values + 0.3 * parts[2].values,
                               atol=1e-12)
    np.testing.assert_allclose(c.score, z[:40], atol=1e-9)  # additive: contributions + base = the blend's score
    assert c.space == "log-odds"
    with pytest.raises(ValueError, match="weight must be in"):
        make_pipeline("blend", "none", 3, {**spec, "weight": 1.0}).fit(x, y)


def test_dummy_has_no_contributions(data):
    x, y = data
    pipe = make_pipeline("dummy", "none", 0).fit(x, y)
    c = contributions(pipe, x[:5])
    assert not c.values.any()
    assert math.isclose(c.base[0], math.log(y.mean() / (1 - y.mean())))


def test_fairness_rates_on_hand_built_decisions():
    y = np.array([1, 1, 0, 0, 0, 1, 0, 0])
    refused = np.array([1, 0, 1, 0, 0, 1, 0, 0]).astype(bool)
    groups = np.array(["F", "F", "F", "F", "M", "M", "M", "M"])
    out = group_rates(y, refused, groups, min_clients=1)
    assert out["groups"]["F"] == {"clients": 4, "approval_rate": 0.5, "false_negative_rate": 0.5,
                                  "false_positive_rate": 0.5, "adverse_impact_ratio": 0.66667}
    assert out["groups"]["M"] == {"clients": 4, "approval_rate": 0.75, "false_negative_rate": 0.0,
                                  "false_positive_rate": 0.0, "adverse_impact_ratio": 1.0}
    assert out["approval_rate_gap"] == 0.25 and out["false_negative_rate_gap"] == 0.5
    # F approved at 0.5 / 0.75 of M's rate: below four fifths. Refusal of defaulters 0.5 vs 1, of good clients 0.5 vs 0
    assert out["adverse_impact_ratio_min"] == 0.66667 and out["adverse_impact_flagged"] == ["F"]
    assert out["equalized_odds_difference"] == 0.5
    small = group_rates(y, refused, groups, min_clients=5)  # groups too small for a gap or a ratio
    assert small["approval_rate_gap"] is None and small["equalized_odds_difference"] is None
    assert small["groups"]["F"]["adverse_impact_ratio"] is None and small["adverse_impact_flagged"] == []
    no_defaulter = group_rates(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 0]), np.array(["a", "a", "b", "b"]), 1)
    assert no_defaulter["groups"]["a"]["false_negative_rate"] is None  # no defaulter to miss: undefined, not 0
    assert no_defaulter["groups"]["b"]["false_positive_rate"] is None


def test_age_bands_edges():
    days = -np.array([29.99, 30.0, 45.0, 59.99, 60.0, np.nan]) * 365.25
    assert age_bands(days, [30, 40, 50, 60]).tolist() == ["<30", "30-39", "40-49", "50-59", "60+", "unknown"]
    out = group_rates(np.zeros(6), np.zeros(6, bool), age_bands(days, [30, 40, 50, 60]), min_clients=1)
    assert list(out["groups"]) == ["<30", "30-39", "40-49", "50-59", "60+", "unknown"]


def test_model_card_says_what_the_blend_is_made_of():
    from creditscore.explanation.modelcard import _blend

    assert _blend({"model": "lightgbm+none"}) == ""
    train = {"blend": {"seeds": 5, "weight": 0.25, "lightgbm": "lightgbm+none", "linear": "logistic_regression+none",
                       "oof_auc_by_weight": {"0.0": 0.75, "0.25": 0.76123}}}
    assert _blend(train) == (" It averages `lightgbm+none` over 5 seeds in log-odds and mixes in "
                             "`logistic_regression+none` with weight 0.25, the weight of highest out-of-fold AUC on "
                             "the training clients (0.0: 0.7500, 0.25: 0.7612); its explanations are the same "
                             "weighted sum of its members' contributions.")
