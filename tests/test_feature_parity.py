"""One code path: a client's features from raw fields (the API's path) equal its row in the stage output."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

from creditscore.config import load_params
from creditscore.data.raw import read_table
from creditscore.data.schema import TABLES
from creditscore.features.serving import client_features
from creditscore.params import overridden
from stages.engineer import engineer
from stages.prepare import run

# target encoding of two categories and of the loan's terms at two steps
ENCODED = {"enabled": True, "columns": ["ORGANIZATION_TYPE", "OCCUPATION_TYPE"], "loan_terms_steps": [0.1, 0.2]}

@pytest.fixture(scope="module")
def pipeline(tiny_synthetic_dir, tmp_path_factory):
    """prepare + engineer on the tiny synthetic folder, with out-of-fold target encoding switched on."""
    root = tmp_path_factory.mktemp("pipeline")
    assert run(tiny_synthetic_dir, root / "prepared", root / "prepare.json", "synthetic", 0.2, 42) == 0
    params = overridden(load_params().engineer, {"min_count": 1, "target_encoding": ENCODED})
    (root / "features").mkdir()
    engineer(root / "prepared", root / "features", params, 42, load_params().protected)
    return root / "features"


def test_client_ranges_give_the_same_matrices(pipeline, tmp_path):
    """The engineer stage in ranges of 97 clients writes the same matrices and spec as in one range."""
    params = overridden(load_params().engineer, {"min_count": 1, "target_encoding": ENCODED, "chunk_clients": 97})
    report = engineer(pipeline.parent / "prepared", tmp_path, params, 42, load_params().protected)
    assert sum(report["clients"].values()) > 3 * 97  # several ranges, the last one partial
    assert (tmp_path / "spec.json").read_text() == (pipeline / "spec.json").read_text()
    for split in ("train", "holdout", "test"):
        chunked, whole = pl.read_parquet(tmp_path / f"{split}.parquet"), pl.read_parquet(pipeline / f"{split}.parquet")
        assert chunked.equals(whole, null_equal=True), split
    assert sorted(p.name for p in tmp_path.iterdir()) == ["holdout.parquet", "manifest.json", "spec.json",
                                                          "test.parquet", "train.parquet"]  # no part left behind


def test_client_ranges_cover_every_key_once():
    from stages.engineer import client_ranges

    assert client_ranges(np.array([9, 3, 5, 7, 1]), 2) == [(1, 3), (5, 7), (9, 9)]
    assert client_ranges(np.array([4, 2]), 5) == [(2, 4)]


def _raw_rows(raw_dir, client: int) -> tuple[dict, dict[str, list[dict]]]:
    """One client's raw rows as the API receives them: uncleaned Kaggle fields."""
    app = read_table(raw_dir, TABLES["application_test"]).filter(pl.col("SK_ID_CURR") == client)
    if app.height == 0:
        app = read_table(raw_dir, TABLES["application_train"]).filter(pl.col("SK_ID_CURR") == client)
    history = {}
    bureau = read_table(raw_dir, TABLES["bureau"]).filter(pl.col("SK_ID_CURR") == client)
    for name in ("bureau", "previous_application", "POS_CASH_balance", "installments_payments", "credit_card_balance"):
        history[name] = read_table(raw_dir, TABLES[name]).filter(pl.col("SK_ID_CURR") == client).to_dicts()
    balance = read_table(raw_dir, TABLES["bureau_balance"])
    history["bureau_balance"] = balance.filter(pl.col("SK_ID_BUREAU").is_in(bureau["SK_ID_BUREAU"].implode())).to_dicts()
    return app.to_dicts()[0], history


def _clients(raw_dir, split_ids):
    """A client with every history table, and one without any bureau record."""
    cards = set(read_table(raw_dir, TABLES["credit_card_balance"])["SK_ID_CURR"].to_list())
    bureau = set(read_table(raw_dir, TABLES["bureau"])["SK_ID_CURR"].to_list())
    rich = next(c for c in split_ids if c in cards and c in bureau)
    bare = next(c for c in split_ids if c not in bureau)
    return [rich, bare]


@pytest.mark.parametrize("split", ["test", "holdout", "train"])
def test_serving_path_equals_stage_output(pipeline, tiny_synthetic_dir, split):
    spec = json.loads((pipeline / "spec.json").read_text())
    stage = pl.read_parquet(pipeline / f"{split}.parquet")
    for client in _clients(tiny_synthetic_dir, stage["SK_ID_CURR"].to_list()):
        app, history = _raw_rows(tiny_synthetic_dir, client)
        served = client_features([app], history, spec)
        expected = stage.filter(pl.col("SK_ID_CURR") == client).select(served.columns)
        if split == "train":  # training rows carry out-of-fold encodings, by design different from serving's
            served = served.drop(pl.selectors.ends_with("_TARGET_ENC"))
            expected = expected.drop(pl.selectors.ends_with("_TARGET_ENC"))
        assert served.columns == expected.columns
        a, b = served.to_numpy().astype(np.float64), expected.to_numpy().astype(np.float64)
        assert np.array_equal(a, b, equal_nan=True), [
            c for c in served.columns if not np.array_equal(served[c].to_numpy(), expected[c].to_numpy(), equal_nan=True)]


def test_history_matters_for_the_served_features(pipeline, tiny_synthetic_dir):
    spec = json.loads((pipeline / "spec.json").read_text())
    client = _clients(tiny_synthetic_dir, pl.read_parquet(pipeline / "test.parquet")["SK_ID_CURR"].to_list())[0]
    app, history = _raw_rows(tiny_synthetic_dir, client)
    with_history = client_features([app], history, spec)
    without = client_features([app], None, spec)
    assert with_history["BURO_DAYS_CREDIT_MEAN"][0] is not None and without["BURO_DAYS_CREDIT_MEAN"][0] is None
    assert with_history["EXT_SOURCE_MEAN"][0] == without["EXT_SOURCE_MEAN"][0]


def test_no_history_fast_path_equals_the_full_path(pipeline, tiny_synthetic_dir):
    from creditscore.features.build import build_features, empty_tables, finalize
    from creditscore.features.serving import typed_frame

    spec = json.loads((pipeline / "spec.json").read_text())
    client = pl.read_parquet(pipeline / "test.parquet")["SK_ID_CURR"][0]
    app, _ = _raw_rows(tiny_synthetic_dir, client)
    fast = client_features([app], {}, spec)
    tables = {n: lf for n, lf in empty_tables().items() if n != "application_train"}
    full = build_features(typed_frame("application_test", [app]).lazy(), tables, spec)
    full = finalize(full.drop(pl.selectors.ends_with("_TARGET_ENC")), [
        n for n in spec["features"] if not n.endswith("_TARGET_ENC")])
    fast = fast.drop(pl.selectors.ends_with("_TARGET_ENC"))
    assert fast.columns == full.columns and fast.schema == full.schema
    assert np.array_equal(fast.to_numpy().astype(float), full.to_numpy().astype(float), equal_nan=True)


def test_serving_plan_computes_only_its_features_with_the_same_values(pipeline, tiny_synthetic_dir):
    from creditscore.features.serving import serving_plan

    spec = json.loads((pipeline / "spec.json").read_text())
    stage = pl.read_parquet(pipeline / "test.parquet")
    rng = np.random.default_rng(0)
    names = [spec["features"][i] for i in sorted(rng.choice(len(spec["features"]), 40, replace=False))]
    names += ["EXT_SOURCE_MEAN", "INSTAL_LATE_SHARE", "ORGANIZATION_TYPE_TARGET_ENC", "LOAN_TERMS_010_TARGET_ENC"]
    plan = serving_plan(spec, list(dict.fromkeys(names)))
    for client in _clients(tiny_synthetic_dir, stage["SK_ID_CURR"].to_list()):
        app, history = _raw_rows(tiny_synthetic_dir, client)
        for given in (history, None):
            planned = client_features([app], given, spec, plan)
            full = client_features([app], given, spec).select(planned.columns)
            assert planned.columns == ["SK_ID_CURR", *plan["names"]]
            assert np.array_equal(planned.to_numpy().astype(float), full.to_numpy().astype(float), equal_nan=True)
    with pytest.raises(KeyError, match="NOT_A_FEATURE"):
        serving_plan(spec, ["NOT_A_FEATURE"])


def test_client_matrix_equals_client_features(pipeline, tiny_synthetic_dir):
    """The API's NumPy path gives client_features' values, with and without history rows."""
    from creditscore.features.serving import client_matrix, serving_plan

    spec = json.loads((pipeline / "spec.json").read_text())
    stage = pl.read_parquet(pipeline / "test.parquet")
    names = ["EXT_SOURCE_MEAN", "PAYMENT_RATE", "DAYS_EMPLOYED", "DAYS_EMPLOYED_ANOM", "AGE_YEARS",
             "INSTAL_LATE_SHARE", "BURO_DAYS_CREDIT_MEAN", "POLY_EXT_SOURCE_1_X_EXT_SOURCE_2_X_DAYS_BIRTH"]
    names += [n for n in spec["features"] if n.startswith("CODE_GENDER_") or n.endswith("_TARGET_ENC")]
    assert {"LOAN_TERMS_010_TARGET_ENC", "ORGANIZATION_TYPE_TARGET_ENC"} <= set(names)
    plan = serving_plan(spec, names)
    for client in _clients(tiny_synthetic_dir, stage["SK_ID_CURR"].to_list()):
        app, history = _raw_rows(tiny_synthetic_dir, client)
        for given in (history, None):
            fast = client_matrix([app, app], given, plan)
            full = client_features([app, app], given, spec, plan).select(names).to_numpy().astype(np.float64)
            assert fast.shape == (2, len(names))
            assert np.array_equal(fast, full, equal_nan=True)
    flag_only = serving_plan(spec, ["DAYS_EMPLOYED_ANOM", "AGE_YEARS"])  # the flag's source column is not a feature
    pensioner = {**app, "DAYS_EMPLOYED": 365243}
    assert client_matrix([pensioner, {**app, "DAYS_EMPLOYED": -1000}], None, flag_only)[:, 0].tolist() == [1.0, 0.0]
