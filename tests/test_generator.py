"""The synthetic generator: Kaggle format, realistic marginals, determinism, planted signal."""
from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl
import pytest
from scipy.stats import spearmanr
from sklearn.metrics import roc_auc_score

from creditscore.data.schema import TABLES
from creditscore.synthetic.generate import BOM, generate
from creditscore.synthetic.marginals import column_stats, load_marginals, quantile_curve, scaled_counts
from tests.conftest import SAMPLE_DIR, needs_sample


def _read(folder, name):
    return pl.read_csv(folder / f"{name}.csv", infer_schema_length=None)


def _auc(y, x):
    keep = ~np.isnan(x)
    return roc_auc_score(y[keep], x[keep])


def test_every_file_has_the_declared_header_and_bom(synthetic_dir):
    for name, table in TABLES.items():
        raw = (synthetic_dir / table.file).read_bytes()[:4000]
        assert raw.startswith(BOM) == table.bom, name
        header = raw.decode("utf-8-sig").splitlines()[0].split(",")
        assert header == table.names, name


@needs_sample
def test_headers_and_bom_match_the_real_kaggle_sample(synthetic_dir):
    for table in TABLES.values():
        real = (SAMPLE_DIR / table.file).read_bytes()
        ours = (synthetic_dir / table.file).read_bytes()
        assert real.startswith(BOM) == ours.startswith(BOM), table.file
        assert real.decode("utf-8-sig").splitlines()[0] == ours.decode("utf-8-sig").splitlines()[0], table.file


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path):
    digests = []
    for run, seed in (("a", 11), ("b", 11), ("c", 12)):
        generate(tmp_path / run, n_clients=300, seed=seed)
        digests.append({t.file: hashlib.md5((tmp_path / run / t.file).read_bytes()).hexdigest()
                        for t in TABLES.values()})
    assert digests[0] == digests[1]
    assert all(digests[0][f] != digests[2][f] for f in digests[0])


def test_quantile_curve_and_scaled_counts_on_hand_values():
    points = [[0, 0.0], [0.5, 10.0], [1, 30.0]]
    assert quantile_curve(points, np.array([0.25, 0.5, 0.75])).tolist() == [5.0, 10.0, 20.0]
    counts = scaled_counts([[0, 1.0], [1, 3.0]], 4.0, np.array([0.0, 0.5, 1.0]))
    assert counts.tolist() == [2, 4, 6]  # shape mean 2 -> scaled by 2


@pytest.mark.parametrize("column", ["NAME_CONTRACT_TYPE", "CODE_GENDER", "FLAG_OWN_REALTY", "NAME_EDUCATION_TYPE"])
def test_category_shares_match_the_profile(synthetic_dir, column):
    app = _read(synthetic_dir, "application_train")
    shares = app[column].value_counts(normalize=True)
    observed = dict(zip(shares[column].to_list(), shares["proportion"].to_list()))
    for value, expected in column_stats("application_train", column)["values"]:
        if expected > 0.05:
            assert observed.get(value, 0.0) == pytest.approx(expected, abs=0.025), value


def test_missing_shares_and_medians_match_the_profile(synthetic_dir):
    app = _read(synthetic_dir, "application_train")
    for column in ("EXT_SOURCE_1", "EXT_SOURCE_3", "APARTMENTS_AVG", "OCCUPATION_TYPE", "AMT_REQ_CREDIT_BUREAU_YEAR",
                   "OWN_CAR_AGE"):
        expected = column_stats("application_train", column)["missing"]
        assert app[column].null_count() / app.height == pytest.approx(expected, abs=0.03), column
    for column in ("AMT_INCOME_TOTAL", "AMT_CREDIT", "DAYS_BIRTH", "EXT_SOURCE_2", "REGION_POPULATION_RELATIVE"):
        q = dict((p, v) for p, v in column_stats("application_train", column)["quantiles"])
        assert app[column].median() == pytest.approx(q[0.5], rel=0.12), column
    share = (app["DAYS_EMPLOYED"] == 365243).mean()
    assert share == pytest.approx(column_stats("application_train", "DAYS_EMPLOYED")["share_365243"], abs=0.02)
    assert ((app["DAYS_BIRTH"] < 0) & (app["DAYS_ID_PUBLISH"] <= 0)).all()


def test_history_volumes_per_client_match_the_full_release(synthetic_dir):
    full = load_marginals()["full_scale"]["rows"]
    clients = _read(synthetic_dir, "application_train").height + _read(synthetic_dir, "application_test").height
    per_client = full["application_train"] + full["application_test"]
    for name in ("bureau", "bureau_balance", "previous_application", "POS_CASH_balance", "installments_payments",
                 "credit_card_balance"):
        rows = pl.scan_csv(synthetic_dir / TABLES[name].file).select(pl.len()).collect().item()
        assert rows / clients == pytest.approx(full[name] / per_client, rel=0.15), name


def test_keys_link_the_tables(synthetic_dir):
    apps = pl.concat([_read(synthetic_dir, "application_train")["SK_ID_CURR"],
                      _read(synthetic_dir, "application_test")["SK_ID_CURR"]])
    assert apps.n_unique() == apps.len()
    bureau = _read(synthetic_dir, "bureau")
    prev = _read(synthetic_dir, "previous_application")
    assert bureau["SK_ID_BUREAU"].is_unique().all() and prev["SK_ID_PREV"].is_unique().all()
    assert bureau["SK_ID_CURR"].is_in(apps.implode()).all()
    balance = _read(synthetic_dir, "bureau_balance")
    assert balance["SK_ID_BUREAU"].is_in(bureau["SK_ID_BUREAU"].implode()).all()
    assert set(balance["STATUS"].unique().to_list()) <= {"C", "X", "0", "1", "2", "3", "4", "5"}
    for name in ("POS_CASH_balance", "installments_payments", "credit_card_balance"):
        child = _read(synthetic_dir, name)
        assert child["SK_ID_PREV"].is_in(prev["SK_ID_PREV"].implode()).all(), name
        pairs = child.select("SK_ID_PREV", "SK_ID_CURR").unique().join(prev.select("SK_ID_PREV", "SK_ID_CURR"),
                                                                       on="SK_ID_PREV")
        assert (pairs["SK_ID_CURR"] == pairs["SK_ID_CURR_right"]).all(), name


def test_target_rate_and_planted_application_signal(synthetic_dir):
    app = _read(synthetic_dir, "application_train")
    y = app["TARGET"].to_numpy()
    assert y.mean() == pytest.approx(0.081, abs=0.012)
    for column, (low, high) in {"EXT_SOURCE_1": (0.6, 0.72), "EXT_SOURCE_2": (0.62, 0.73),
                                "EXT_SOURCE_3": (0.62, 0.74)}.items():
        assert low < 1 - _auc(y, app[column].to_numpy()) < high, column
    assert _auc(y, app["DAYS_BIRTH"].cast(pl.Float64).to_numpy()) > 0.54  # younger is riskier
    noise = json.loads((synthetic_dir / "planted_signals.json").read_text())["noise_columns"]["application_train"]
    for column in ("FLAG_DOCUMENT_5", "AMT_REQ_CREDIT_BUREAU_HOUR", "YEARS_BUILD_AVG", "HOUR_APPR_PROCESS_START"):
        assert column in noise
        auc = _auc(y, app[column].cast(pl.Float64).to_numpy())
        assert abs(auc - 0.5) < 0.04, column


def test_planted_history_signal(synthetic_dir):
    app = _read(synthetic_dir, "application_train").select("SK_ID_CURR", "TARGET")
    late = (_read(synthetic_dir, "installments_payments")
            .group_by("SK_ID_CURR").agg(((pl.col("DAYS_ENTRY_PAYMENT") - pl.col("DAYS_INSTALMENT")) > 0)
                                        .mean().alias("late")))
    refused = (_read(synthetic_dir, "previous_application")
               .group_by("SK_ID_CURR").agg((pl.col("NAME_CONTRACT_STATUS") == "Refused").mean().alias("refused")))
    util = (_read(synthetic_dir, "credit_card_balance")
            .group_by("SK_ID_CURR").agg((pl.col("AMT_BALANCE") / pl.col("AMT_CREDIT_LIMIT_ACTUAL")).mean().alias("util")))
    frame = app.join(late, on="SK_ID_CURR", how="left").join(refused, on="SK_ID_CURR", how="left").join(
        util, on="SK_ID_CURR", how="left")
    y = frame["TARGET"].to_numpy()
    for column in ("late", "refused", "util"):
        assert _auc(y, frame[column].to_numpy()) > 0.54, column
    # planted_signals.json is a true map of the data: every factor names a real file and columns it really has
    signals = json.loads((synthetic_dir / "planted_signals.json").read_text())
    for name, factor in signals["factors"].items():
        header = pl.read_csv(synthetic_dir / f"{factor['table']}.csv", n_rows=0).columns
        assert set(factor["columns"]) <= set(header) and factor["weight"] > 0, name


def test_drift_knob_shifts_only_application_test(tmp_path):
    generate(tmp_path / "calm", n_clients=3000, seed=5)
    generate(tmp_path / "drift", n_clients=3000, seed=5, drift=1.0)
    for folder, gap in (("calm", (-0.02, 0.02)), ("drift", (0.06, 0.3))):
        train, test = (_read(tmp_path / folder, n)["EXT_SOURCE_2"].mean() for n in ("application_train",
                                                                                   "application_test"))
        assert gap[0] < train - test < gap[1], folder


@pytest.fixture(scope="module")
def realism_figures(synthetic_dir, tmp_path_factory):
    """Application-only model figures (3 folds) and the history gain of the 6,000-client population."""
    from benchmarks.bench_realism import history_figures
    from creditscore.synthetic import realism
    app = realism.read_applications(synthetic_dir / "application_train.csv")
    columns = ["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3", "DAYS_BIRTH", "DAYS_EMPLOYED", "AMT_GOODS_PRICE",
               "AMT_CREDIT"]
    figures = realism.model_figures(app, folds=3, seed=42, profile_columns=columns)
    figures["history"] = history_figures(synthetic_dir, tmp_path_factory.mktemp("realism"), folds=3)
    return figures


@pytest.mark.slow  # models fitted on the 6,000-client population
def test_models_rank_as_on_real_data(realism_figures):
    """Boosting beats a standardised logistic regression through single-feature shapes, not interactions."""
    auc = realism_figures["cv_auc"]
    assert 0.72 < auc["lightgbm"] < 0.80, auc
    assert realism_figures["lgb_minus_lr"] > 0.008, auc  # real: +0.024; a linear risk gives <= 0
    assert abs(realism_figures["additive_gap"]) < 0.015, auc  # real: 0.0016
    assert auc["lightgbm"] - auc["lightgbm_ext_sources_only"] > 0.015, auc
    assert 0.01 < realism_figures["history"]["history_gain"] < 0.06, realism_figures["history"]


@pytest.mark.slow  # models fitted on the 6,000-client population
def test_decile_shapes_follow_the_real_ones(realism_figures):
    deciles = {c: d["default_rate_by_decile"] for c, d in realism_figures["deciles"].items()}
    rate = realism_figures["default_rate"]
    for k in (1, 2, 3):  # decreasing, steep at the low end, flat at the top
        curve = deciles[f"EXT_SOURCE_{k}"]
        assert spearmanr(curve, range(10)).statistic < -0.8, (k, curve)
        assert curve[0] - curve[1] > curve[8] - curve[9] and curve[0] > 2 * rate, (k, curve)
    assert spearmanr(deciles["DAYS_BIRTH"], range(10)).statistic > 0.8  # younger is riskier
    assert spearmanr(deciles["DAYS_EMPLOYED"], range(10)).statistic > 0.8
    for column in ("AMT_GOODS_PRICE", "AMT_CREDIT"):  # a hump in the middle deciles, not monotone
        curve = deciles[column]
        assert max(curve[2:6]) > max(curve[0], curve[9]) + 0.015, (column, curve)
    figures = realism_figures["deciles"]
    assert figures["DAYS_EMPLOYED"]["default_rate_when_missing"] < rate - 0.01  # pensioners
    assert figures["EXT_SOURCE_3"]["default_rate_when_missing"] > rate + 0.005
