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

from creditscore.explanation import fairness, reasons
from creditscore.explanation.contributions import contributions, raw_score, typical_values
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


SPEC = {"vocab": {"application": {"NAME_INCOME_TYPE": ["Working", "Pensioner"]}},
        "poly": {"columns": ["EXT_SOURCE_2", "DAYS_BIRTH"], "degree": 2}}
REASON_FEATURES = ["DAYS_BIRTH", "PAYMENT_RATE", "POLY_EXT_SOURCE_2_X_DAYS_BIRTH", "NAME_INCOME_TYPE_Working",
                   "INSTAL_LATE_SHARE", "EXT_SOURCE_MEAN", "DAYS_EMPLOYED"]
MANIFEST = [{"name": f, "table": "installments_payments" if f.startswith("INSTAL") else "application"}
            for f in REASON_FEATURES]
# DAYS_BIRTH 0.4 + half of the product 0.2; the ratio's 0.3 halved between annuity and credit; the mean of the
# three external scores split in three; the one-hot level goes to its column; the aggregate to its table
CONTRIB = np.array([0.4, 0.3, 0.2, -0.5, 0.25, 0.06, 0.0])
RAW = {"DAYS_BIRTH": -9131, "AMT_ANNUITY": 24700.0, "AMT_CREDIT": 406597.0, "EXT_SOURCE_2": 0.26,
       "NAME_INCOME_TYPE": "Working", "DAYS_EMPLOYED": None}


def test_derived_features_are_attributed_to_the_fields_they_are_built_from():
    sources = reasons.sources_of(SPEC, MANIFEST, REASON_FEATURES)
    assert sources == {"DAYS_BIRTH": ("DAYS_BIRTH",), "PAYMENT_RATE": ("AMT_ANNUITY", "AMT_CREDIT"),
                       "POLY_EXT_SOURCE_2_X_DAYS_BIRTH": ("DAYS_BIRTH", "EXT_SOURCE_2"),
                       "NAME_INCOME_TYPE_Working": ("NAME_INCOME_TYPE",),
                       "INSTAL_LATE_SHARE": ("history:installments_payments",),
                       "EXT_SOURCE_MEAN": ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"),
                       "DAYS_EMPLOYED": ("DAYS_EMPLOYED",)}


def test_target_encoded_features_are_attributed_to_the_columns_their_key_reads():
    names = ["LOAN_TERMS_010_TARGET_ENC", "OCCUPATION_TYPE_TARGET_ENC", "DAYS_BIRTH"]
    manifest = [{"name": n, "table": "application", "group": "target_encoding" if n.endswith("_ENC") else "application"}
                for n in names]
    assert reasons.sources_of(SPEC, manifest, names) == {"LOAN_TERMS_010_TARGET_ENC": ("AMT_CREDIT", "AMT_ANNUITY"),
                                                         "OCCUPATION_TYPE_TARGET_ENC": ("OCCUPATION_TYPE",),
                                                         "DAYS_BIRTH": ("DAYS_BIRTH",)}


def test_a_refusal_gets_its_main_reasons_in_human_units():
    sources = reasons.sources_of(SPEC, MANIFEST, REASON_FEATURES)
    x_row = np.array([-9131, 0.06, -2374.06, 1.0, 0.35, 0.4, np.nan])
    out = reasons.reasons(CONTRIB, REASON_FEATURES, sources, RAW, x_row, refused=True,
                          typical={"DAYS_BIRTH": -15000.0}, meanings={"INSTAL_LATE_SHARE": "share of instalments paid late"})
    assert [r["feature"] for r in out] == ["DAYS_BIRTH", "history:installments_payments", "AMT_ANNUITY", "AMT_CREDIT"]
    assert [r["text"] for r in out] == ["Age: 25 years (typical granted client: 41 years)",
                                        "Instalment payment record (share of instalments paid late: 35%)",
                                        "Yearly annuity: 24,700", "Credit amount: 406,597"]
    assert [r["contribution"] for r in out] == [0.5, 0.25, 0.15, 0.15]
    assert {r["direction"] for r in out} == {"towards refusal"} and out[1]["value"] is None


def test_a_grant_gets_its_main_strengths_and_only_fields_the_model_used():
    sources = reasons.sources_of(SPEC, MANIFEST, REASON_FEATURES)
    x_row = np.zeros(len(REASON_FEATURES))
    out = reasons.reasons(CONTRIB, REASON_FEATURES, sources, RAW, x_row, refused=False)
    assert [(r["text"], r["value"], r["direction"]) for r in out] == [
        ("Income type: Working", "Working", "towards approval")]
    # DAYS_EMPLOYED contributes 0: never a reason, whatever its value
    used = reasons.reasons(np.r_[CONTRIB[:-1], 0.9], REASON_FEATURES, sources, RAW, x_row, refused=True)
    assert used[0]["text"] == "Time in the current job: not employed (pensioner) or not given"
    assert len(reasons.reasons(np.full(7, 0.1), REASON_FEATURES, sources, RAW, x_row, refused=True)) == 4


@pytest.mark.parametrize("field, value, said", [
    ("DAYS_BIRTH", -20000, "55 years"), ("DAYS_EMPLOYED", -913, "2.5 years"),
    ("DAYS_ID_PUBLISH", -1461, "4.0 years ago"), ("AMT_INCOME_TOTAL", 135000.0, "135,000"),
    ("EXT_SOURCE_3", 0.5, "0.50"), ("OWN_CAR_AGE", 7.0, "7 years"),
    ("FLAG_EMAIL", 1.0, "yes"), ("FLAG_OWN_CAR", "Y", "Y"), ("CODE_GENDER", "F", "F"), ("AMT_CREDIT", float("nan"), "not given")])
def test_values_are_said_in_human_units(field, value, said):
    assert reasons.say(field, value) == said


def test_typical_values():
    x = np.array([[1.0, np.nan], [3.0, np.nan], [np.nan, np.nan], [10.0, np.nan]])
    out = typical_values(x)
    assert out[0] == 3.0 and math.isnan(out[1])


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


def test_ensemble_is_its_fold_models_weighted_in_log_odds_and_so_are_its_contributions(data):
    from imblearn.pipeline import Pipeline

    from creditscore.modelling.models import CrossFitEnsemble

    x, y = data
    trees = {"n_estimators": 30, "num_leaves": 7, "min_child_samples": 10, "colsample_bytree": 0.5}
    m0, m1 = (make_pipeline("lightgbm", "none", s, trees).fit(x[s::2], y[s::2]) for s in (0, 1))  # two folds
    lr = make_pipeline("logistic_regression", "none", 3, {"C": 1.0}).fit(x, y)
    ensemble = Pipeline([("model", CrossFitEnsemble([[m0, m1], [lr]], [0.7, 0.3], ["lightgbm", "linear"]))])
    assert not np.allclose(raw_score(m0, x), raw_score(m1, x))
    z = 0.35 * raw_score(m0, x) + 0.35 * raw_score(m1, x) + 0.3 * raw_score(lr, x)
    np.testing.assert_allclose(ensemble.predict_proba(x)[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-9)
    np.testing.assert_allclose(raw_score(ensemble, x), z, atol=1e-9)
    c = contributions(ensemble, x[:40])
    parts = [contributions(m, x[:40]) for m in (m0, m1, lr)]
    np.testing.assert_allclose(c.values, 0.35 * parts[0].values + 0.35 * parts[1].values + 0.3 * parts[2].values,
                               atol=1e-12)
    np.testing.assert_allclose(c.score, z[:40], atol=1e-9)  # additive: contributions + base = the ensemble's score
    assert c.space == "log-odds"
    with pytest.raises(ValueError, match="weights must be non-negative and add up to 1"):
        CrossFitEnsemble([[m0], [lr]], [0.9, 0.3])
    with pytest.raises(ValueError, match="one non-empty list of fold models per weight"):
        CrossFitEnsemble([[m0], []], [0.5, 0.5])


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


def test_model_card_says_what_the_ensemble_is_made_of():
    from creditscore.explanation.modelcard import _ensemble

    train = {"ensemble": {"folds": 5, "fold_models": 10, "members": {
        "lightgbm+none": {"weight": 0.8, "auc": 0.761, "log_loss": 0.25},
        "logistic_regression+none": {"weight": 0.2, "auc": 0.745, "log_loss": 0.26}}}}
    assert _ensemble(train) == (
        " It is a cross-fitted ensemble of 10 fold models: each member's 5 fold models averaged in log-odds, the "
        "members mixed at weights learned by a non-negative logistic regression on their out-of-fold log-odds: "
        "`lightgbm+none` 0.8 (out-of-fold AUC 0.7610), `logistic_regression+none` 0.2 (out-of-fold AUC 0.7450). "
        "Its explanations are the same weighted sum of its fold models' contributions.")


def test_older_applicants_are_not_scored_worse_for_age_alone_once_age_is_monotone():
    """Risk planted to rise after 62: an unconstrained LightGBM scores 62+ applicants worse than at 61; with
    `train.monotone` (AGE_YEARS: -1, risk falls with age) none is."""
    rng = np.random.default_rng(0)
    age = rng.uniform(20, 80, 6000)
    y = (rng.random(6000) < np.where(age >= 62, 0.30, 0.40 - 0.005 * (age - 20))).astype(int)
    x = np.column_stack([age, rng.normal(size=6000)])
    days = -age * 365.25

    def at_age(rows, days_birth):
        out = x[rows].copy()
        out[:, 0] = -days_birth / 365.25
        return out

    params = {"n_estimators": 60, "learning_rate": 0.1, "num_leaves": 7, "min_child_samples": 50}
    results = {}
    for name, extra in (("free", {}), ("monotone", {"monotone_constraints": [-1, 0]})):
        model = make_pipeline("lightgbm", "none", 0, {**params, **extra}).fit(x, y)
        results[name] = fairness.older_for_age_alone(lambda rows, model=model: model.predict_proba(rows)[:, 1], x, days,
                                                     at_age)
    assert results["free"]["clients"] == int((age >= 62).sum()) > 1000
    assert results["free"]["share_worse"] > 0.9 and results["free"]["mean_change"] > 0.05
    assert results["monotone"]["worse_for_age"] == 0 and results["monotone"]["max_change"] <= 0
    none = fairness.older_for_age_alone(lambda rows: rows[:, 0], x[:1], np.array([-20 * 365.25]), at_age)
    assert none["clients"] == 0 and none["share_worse"] is None
