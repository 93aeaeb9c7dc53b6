"""Feature code on tiny hand-built tables with hand-computed values."""
from __future__ import annotations

import math
import os
import subprocess
import sys

import numpy as np
import polars as pl
import pytest

from creditscore.config import ROOT
from creditscore.errors import DataError
from creditscore.features.application import polynomial_terms
from creditscore.features.build import HISTORY, build_features, feature_groups, fit_vocabulary
from creditscore.features.core import Aggregation, aggregate, grouped, level_shares, row_count
from creditscore.features.encoding import apply_encoding, encode_out_of_fold
from creditscore.features.serving import client_features, client_matrix, serving_plan, typed_frame
from creditscore.params import GROUPS, TargetEncoding, check_groups

APPS = [
    {"SK_ID_CURR": 1, "AMT_INCOME_TOTAL": 100000.0, "AMT_CREDIT": 200000.0, "AMT_ANNUITY": 10000.0,
     "CNT_FAM_MEMBERS": 2, "DAYS_BIRTH": -10000, "DAYS_EMPLOYED": 365243, "CODE_GENDER": "F",
     "EXT_SOURCE_1": 0.2, "EXT_SOURCE_2": 0.4, "EXT_SOURCE_3": None},
    {"SK_ID_CURR": 2, "AMT_INCOME_TOTAL": 0.0, "AMT_CREDIT": 50000.0, "AMT_ANNUITY": 0.0,
     "CNT_FAM_MEMBERS": 1, "DAYS_BIRTH": -20000, "DAYS_EMPLOYED": -5000, "CODE_GENDER": "XNA",
     "EXT_SOURCE_1": 0.5, "EXT_SOURCE_2": 0.5, "EXT_SOURCE_3": 0.5},
]
HISTORY_ROWS = {
    "bureau": [
        {"SK_ID_CURR": 1, "SK_ID_BUREAU": 10, "CREDIT_ACTIVE": "Active", "DAYS_CREDIT": -100,
         "AMT_CREDIT_SUM": 1000.0, "AMT_CREDIT_SUM_DEBT": 400.0, "AMT_CREDIT_SUM_OVERDUE": 50.0},
        {"SK_ID_CURR": 1, "SK_ID_BUREAU": 11, "CREDIT_ACTIVE": "Closed", "DAYS_CREDIT": -300,
         "AMT_CREDIT_SUM": 3000.0, "AMT_CREDIT_SUM_DEBT": 0.0, "AMT_CREDIT_SUM_OVERDUE": 0.0},
    ],
    "bureau_balance": [{"SK_ID_BUREAU": 10, "MONTHS_BALANCE": m, "STATUS": s}
                       for m, s in ((0, "0"), (-1, "1"), (-2, "0"), (-3, "X"))],
    "installments_payments": [
        {"SK_ID_PREV": 7, "SK_ID_CURR": 1, "DAYS_INSTALMENT": -60, "DAYS_ENTRY_PAYMENT": -50,
         "AMT_INSTALMENT": 100.0, "AMT_PAYMENT": 80.0, "NUM_INSTALMENT_VERSION": 1},
        {"SK_ID_PREV": 7, "SK_ID_CURR": 1, "DAYS_INSTALMENT": -30, "DAYS_ENTRY_PAYMENT": -35,
         "AMT_INSTALMENT": 0.0, "AMT_PAYMENT": 100.0, "NUM_INSTALMENT_VERSION": 2},
    ],
}


@pytest.fixture(scope="module")
def spec():
    tables = {n: typed_frame(n, HISTORY_ROWS.get(n, [])).lazy() for n in HISTORY}
    vocab = fit_vocabulary(typed_frame("application_test", APPS).lazy(), tables, max_levels=10, min_count=1)
    return {"vocab": vocab, "groups": ["application", "bureau", "installments", "recent_and_rates", "previous",
                                       "pos_cash", "credit_card"],
            "poly": {"columns": ["EXT_SOURCE_1", "EXT_SOURCE_2"], "degree": 2}, "target_encoding": {}}


@pytest.fixture(scope="module")
def features(spec):
    full = {**spec, "features": list(feature_groups(spec))}  # a copy: the shared spec fixture stays as built
    return {row["SK_ID_CURR"]: row for row in client_features(APPS, HISTORY_ROWS, full).iter_rows(named=True)}


def test_bureau_aggregates_by_hand(features):
    one = features[1]
    assert one["BURO_DAYS_CREDIT_MEAN"] == -200 and one["BURO_DAYS_CREDIT_VAR"] == 20000  # (100²+100²)/1
    assert one["BURO_AMT_CREDIT_SUM_DEBT_SUM"] == 400 and one["ACTIVE_AMT_CREDIT_SUM_DEBT_SUM"] == 400
    assert one["CLOSED_AMT_CREDIT_SUM_MAX"] == 3000
    assert one["BURO_CREDIT_ACTIVE_Active_MEAN"] == 0.5
    assert one["BURO_MONTHS_BALANCE_SIZE_SUM"] == 4  # the closed credit has no monthly rows
    assert one["BURO_STATUS_1_MEAN_MEAN"] == 0.25  # one late month out of four, on the only credit with months
    assert one["BURO_ACTIVE_DEBT_CREDIT_RATIO"] == pytest.approx(0.4)
    assert one["BURO_OVERDUE_SHARE"] == 0.5 and one["BURO_LATE_MONTH_SHARE"] == 0.25


def test_client_without_history_gets_missing_aggregates(features):
    two = features[2]
    for name in ("BURO_DAYS_CREDIT_MEAN", "BURO_AMT_CREDIT_SUM_DEBT_SUM", "INSTAL_COUNT", "INSTAL_DPD_MAX"):
        assert two[name] is None, name


def test_instalment_clipping_and_zero_denominators(features):
    one = features[1]
    assert one["INSTAL_DPD_MAX"] == 10 and one["INSTAL_DPD_SUM"] == 10  # paid 10 days late, then 5 early -> 0
    assert one["INSTAL_DBD_MAX"] == 5 and one["INSTAL_DBD_MEAN"] == 2.5
    assert one["INSTAL_PAYMENT_PERC_MEAN"] == pytest.approx(0.8)  # 100 / 0 is missing, not infinite
    assert one["INSTAL_PAYMENT_DIFF_SUM"] == -80 and one["INSTAL_COUNT"] == 2
    assert one["INSTAL_NUM_INSTALMENT_VERSION_NUNIQUE"] == 2 and one["INSTAL_LATE_SHARE"] == 0.5


def test_application_ratios_sentinel_and_categories(features):
    one, two = features[1], features[2]
    assert one["CREDIT_INCOME_RATIO"] == 2 and one["PAYMENT_RATE"] == pytest.approx(0.05)
    assert one["INCOME_PER_PERSON"] == 50000 and one["CREDIT_TERM_YEARS"] == 20
    assert one["DAYS_EMPLOYED"] is None and one["DAYS_EMPLOYED_ANOM"] == 1 and one["DAYS_EMPLOYED_PERC"] is None
    assert two["CREDIT_INCOME_RATIO"] is None and two["CREDIT_TERM_YEARS"] is None  # zero denominators
    assert two["DAYS_EMPLOYED_PERC"] == pytest.approx(0.25)
    assert one["CODE_GENDER_F"] == 1 and two["CODE_GENDER_F"] == 0 and two["CODE_GENDER_nan"] == 1  # XNA -> missing
    assert one["EXT_SOURCE_MEAN"] == pytest.approx(0.3) and one["EXT_SOURCE_PROD"] is None
    assert one["EXT_SOURCE_STD"] == pytest.approx(math.sqrt(0.02), rel=1e-6)
    assert one["POLY_EXT_SOURCE_1_X_EXT_SOURCE_2"] == pytest.approx(0.08)
    assert one["POLY_EXT_SOURCE_1_POW2"] == pytest.approx(0.04)


def test_unseen_level_at_serving_sets_no_indicator(spec):
    spec = {**spec, "features": list(feature_groups(spec))}
    row = client_features([{**APPS[0], "CODE_GENDER": "M"}], None, spec).row(0, named=True)
    assert row["CODE_GENDER_F"] == 0 and row["CODE_GENDER_nan"] == 0 and "CODE_GENDER_M" not in row


def test_feature_names_come_from_the_spec_alone_and_are_lightgbm_safe(spec, features):
    names = list(feature_groups(spec))
    assert names == [n for n in next(iter(features.values())) if n != "SK_ID_CURR"]
    assert all(n.replace("_", "").isalnum() for n in names) and len(set(names)) == len(names)
    assert [t[0] for t in polynomial_terms(["A", "B", "C", "D"], 3)][:2] == ["POLY_A_POW2", "POLY_A_X_B"]
    assert len(polynomial_terms(["A", "B", "C", "D"], 3)) == 30  # 10 of degree 2, 20 of degree 3


def test_build_features_keeps_input_order(spec):
    app = typed_frame("application_test", list(reversed(APPS))).lazy()
    tables = {n: typed_frame(n, HISTORY_ROWS.get(n, [])).lazy() for n in HISTORY}
    assert build_features(app, tables, spec)["SK_ID_CURR"].to_list() == [2, 1]


def test_serving_refuses_unknown_fields_and_tables(spec):
    spec = {**spec, "features": list(feature_groups(spec))}  # its own complete spec, never another test's
    with pytest.raises(DataError, match="application_test: unknown field INCOME"):
        client_features([{"SK_ID_CURR": 1, "INCOME": 3}], None, spec)
    with pytest.raises(DataError, match="history: unknown table loans"):
        client_features(APPS, {"loans": []}, spec)


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_out_of_fold_target_encoding_never_sees_the_own_label():
    values = pl.Series(["a", "a", "a", "b", "b", "b", "a", "b"])
    y = np.array([1, 0, 1, 0, 0, 1, 0, 1])
    encoded, mapping, prior = encode_out_of_fold(values, y, folds=2, smoothing=0.0, seed=0)
    flipped = y.copy()
    flipped[0] = 1 - flipped[0]
    encoded_flipped, _, _ = encode_out_of_fold(values, flipped, folds=2, smoothing=0.0, seed=0)
    assert encoded[0] == encoded_flipped[0]  # row 0's label does not enter row 0's encoding
    assert mapping == {"a": 0.5, "b": 0.5} and prior == 0.5
    _, smoothed, _ = encode_out_of_fold(pl.Series(["a", "a", "b"]), np.array([1, 1, 0]), folds=2, smoothing=1.0, seed=0)
    assert smoothed["a"] == pytest.approx((2 + 2 / 3) / 3) and smoothed["b"] == pytest.approx((0 + 2 / 3) / 2)
    assert apply_encoding(pl.Series(["a", "zzz", None]), {"a": 0.9}, 0.1).tolist() == [0.9, 0.1, 0.1]


def test_level_shares_count_unknown_and_missing_rows():
    rows = pl.DataFrame({"SK_ID_CURR": [1, 1, 1, 1, 2], "S": ["a", None, "zz", "a", "b"]}).lazy()
    out = grouped(rows, "SK_ID_CURR", level_shares("S", ["a", "b", "nan"], "P_") + row_count("N")).collect()
    assert out.to_dicts() == [  # the unknown level "zz" counts in the denominator and in no share
        {"SK_ID_CURR": 1, "P_S_a_MEAN": 0.5, "P_S_b_MEAN": 0.0, "P_S_nan_MEAN": 0.25, "N": 4},
        {"SK_ID_CURR": 2, "P_S_a_MEAN": 0.0, "P_S_b_MEAN": 1.0, "P_S_nan_MEAN": 0.0, "N": 1}]


def test_grouped_refuses_two_different_inputs_with_one_name():
    rows = pl.DataFrame({"SK_ID_CURR": [1], "x": [2.0]}).lazy()
    clash = (Aggregation((pl.col("x").alias("_v"),), (pl.col("_v").list.sum().alias("A"),))
             + Aggregation(((pl.col("x") * 2).alias("_v"),), (pl.col("_v").list.max().alias("B"),)))
    with pytest.raises(ValueError, match="two different aggregation inputs are named _v"):
        grouped(rows, "SK_ID_CURR", clash)
    same = aggregate({"x": ["sum"]}, "P_") + aggregate({"x": ["max"]}, "Q_")  # one input, used twice
    assert grouped(rows, "SK_ID_CURR", same).collect().row(0) == (1, 2.0, 2.0)


THREADS_SCRIPT = """
import hashlib, sys, numpy as np, polars as pl
from creditscore.features.core import aggregate, grouped
rng = np.random.default_rng(0)
keys = np.sort(rng.integers(0, 40_000, 400_000))
frame = pl.DataFrame({"K": keys, "x": rng.lognormal(8, 2, keys.size) * rng.choice([-1, 1], keys.size)}).lazy()
out = grouped(frame, "K", aggregate({"x": ["sum", "mean", "var"]}, "")).collect()
print(hashlib.sha256(out.write_ipc(None).getvalue()).hexdigest())
"""


def test_float_aggregates_are_identical_whatever_the_number_of_threads():
    """A hash group-by gives other float sums with 1 and 3 threads on these rows (checked when written)."""
    digests = {subprocess.run([sys.executable, "-c", THREADS_SCRIPT], capture_output=True, text=True, check=True,
                              cwd=ROOT, env={**os.environ, "POLARS_MAX_THREADS": str(n)}).stdout for n in (1, 3)}
    assert len(digests) == 1


def test_a_typo_in_the_feature_groups_is_an_error_not_a_dropped_group():
    assert check_groups(GROUPS) == list(GROUPS)
    assert check_groups(["application", "bureau"]) == ["application", "bureau"]
    with pytest.raises(ValueError, match=r"unknown group\(s\) \['bureaux'\]"):
        check_groups(["application", "bureaux"])
    with pytest.raises(ValueError, match="must include 'application'"):
        check_groups(["bureau"])
    with pytest.raises(ValueError, match="a group is listed twice"):
        check_groups(["application", "bureau", "bureau"])


def test_the_engineer_stage_refuses_bad_groups_and_writes_nothing(tmp_path):
    params = (ROOT / "params.yaml").read_text()
    (tmp_path / "params.yaml").write_text(params.replace("groups: [application, bureau,", "groups: [application, bureaux,"))
    out = tmp_path / "features"
    done = subprocess.run([sys.executable, "-c", (
        "import sys; from pathlib import Path; import creditscore.config as c; from stages import engineer; "
        "engineer.load_params = lambda: c.load_params(Path(sys.argv[1])); "
        "sys.exit(engineer.main(['--prepared', sys.argv[2], '--out', sys.argv[3], '--metrics', sys.argv[4]]))"),
        str(tmp_path / "params.yaml"), str(tmp_path / "prepared"), str(out), str(tmp_path / "engineer.json")],
        cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 1
    assert done.stderr == ("engineer: error: params.yaml: engineer.groups: unknown group(s) ['bureaux']; expected some "
                           "of ['application', 'bureau', 'previous', 'pos_cash', 'installments', 'credit_card', "
                           "'recent_and_rates']\n")
    assert not out.exists() and not (tmp_path / "engineer.json").exists()


def test_loan_terms_key_counts_monthly_annuities_in_steps():
    from creditscore.features.encoding import encoding_key, encoding_keys, key_columns, loan_terms_key

    app = pl.DataFrame({"AMT_CREDIT": [100_000.0, 171_000.0, 50_000.0, 50_000.0, None],
                        "AMT_ANNUITY": [5_000.0, 5_000.0, 0.0, None, 2_500.0]})
    assert loan_terms_key(0.05) == "LOAN_TERMS_005" and loan_terms_key(0.2) == "LOAN_TERMS_020"
    # 20 and 34.2 annuities; no positive annuity or no credit: missing (its own level when encoded)
    assert encoding_key(app, "LOAN_TERMS_010").to_list() == ["200", "342", None, None, None]
    assert encoding_key(app, "LOAN_TERMS_005").to_list() == ["400", "684", None, None, None]
    assert encoding_key(app, "LOAN_TERMS_100").to_list() == ["20", "34", None, None, None]
    assert key_columns("LOAN_TERMS_010") == ("AMT_CREDIT", "AMT_ANNUITY") and key_columns("OCCUPATION_TYPE") == (
        "OCCUPATION_TYPE",)
    settings = TargetEncoding(enabled=True, columns=["OCCUPATION_TYPE"], loan_terms_steps=[0.05, 0.1], folds=5,
                              smoothing=20, min_count=20)
    assert encoding_keys(settings) == ["OCCUPATION_TYPE", "LOAN_TERMS_005", "LOAN_TERMS_010"]
    assert encoding_keys(settings.model_copy(update={"enabled": False})) == []


@pytest.mark.filterwarnings("ignore:The least populated class")
def test_loan_terms_encoding_gives_each_product_its_default_rate():
    """Two products with the same credit-to-annuity length to 0.1 of a month share one encoding; the prior
    fills a product never seen in training."""
    from creditscore.features.build import add_target_encoding
    from creditscore.features.encoding import encode_out_of_fold, encoding_key

    train = pl.DataFrame({"AMT_CREDIT": [342_000.0] * 4 + [308_440.0] * 4,
                          "AMT_ANNUITY": [10_000.0] * 4 + [10_000.0] * 4})
    y = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    _, mapping, prior = encode_out_of_fold(encoding_key(train, "LOAN_TERMS_010"), y, folds=2, smoothing=0.0, seed=0)
    assert mapping == {"342": 0.25, "308": 0.75} and prior == 0.5
    # a product seen by fewer clients than min_count is not encoded: its rows get the prior, in and out of fold
    rare = pl.Series(["a"] * 6 + ["b"] * 2)
    values, kept, prior = encode_out_of_fold(rare, y, folds=2, smoothing=0.0, seed=0, min_count=3)
    assert kept == {"a": 0.5} and prior == 0.5
    assert values[6:].tolist() == _fold_priors(y, 2, 0)[6:].tolist()
    spec = {"target_encoding": {"LOAN_TERMS_010": {"mapping": mapping, "prior": prior}}}
    rows = pl.DataFrame({"SK_ID_CURR": [1, 2, 3], "AMT_CREDIT": [171_020.0, 30_844.0, 120_000.0],
                         "AMT_ANNUITY": [5_000.0, 1_000.0, 10_000.0]})
    encoded = add_target_encoding(rows.select("SK_ID_CURR"), rows, spec)
    assert encoded["LOAN_TERMS_010_TARGET_ENC"].to_list() == [0.25, 0.75, 0.5]


def _fold_priors(y, folds, seed):
    """Each row's out-of-fold prior: the mean label of the other folds."""
    from sklearn.model_selection import StratifiedKFold

    out = np.empty(len(y))
    for fit, enc in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(np.zeros(len(y)), y):
        out[enc] = y[fit].mean()
    return out


def test_a_protected_field_changes_no_feature_on_either_path(spec):
    """params.yaml: protected. Every feature, through the stage's and the API's code, is the same whatever the
    protected field says, and none is named after it; without the list, the field is a feature (the test can fail)."""
    guarded = {**spec, "protected": ["CODE_GENDER"]}  # the vocabulary still knows its levels: no feature reads them
    guarded["features"] = list(feature_groups(guarded))
    assert not any("GENDER" in name for name in guarded["features"])
    open_spec = {**spec, "features": list(feature_groups(spec))}
    assert any("GENDER" in name for name in open_spec["features"])
    flipped = [{**row, "CODE_GENDER": {"M": "F", "F": "M"}.get(row.get("CODE_GENDER"), "M")} for row in APPS]
    for path in ("stage", "api"):
        if path == "stage":
            a = client_features(APPS, HISTORY_ROWS, guarded)
            b = client_features(flipped, HISTORY_ROWS, guarded)
            assert a.equals(b)
        else:
            plan = serving_plan(guarded, guarded["features"])
            a, b = client_matrix(APPS, None, plan), client_matrix(flipped, None, plan)
            assert np.array_equal(a, b, equal_nan=True)
    assert not client_features(APPS, HISTORY_ROWS, open_spec).equals(client_features(flipped, HISTORY_ROWS, open_spec))


def test_a_protected_days_column_takes_its_sentinel_flag_and_every_product_with_it(spec):
    names = list(feature_groups({**spec, "protected": ["DAYS_EMPLOYED"]}))
    assert "DAYS_EMPLOYED_ANOM" in feature_groups(spec) and not any("DAYS_EMPLOYED" in n for n in names)
