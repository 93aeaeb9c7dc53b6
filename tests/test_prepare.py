"""prepare: exact cleaning on hand-built frames, every bad-input case, the real-format sample."""
from __future__ import annotations

import json

import polars as pl
import pytest

from creditscore.data.cleaning import check_unique, clean_table, drop_orphans, split_holdout
from creditscore.data.raw import read_table
from creditscore.data.schema import TABLES, Table
from creditscore.errors import DataError
from stages.prepare import run
from tests.conftest import SAMPLE_DIR, needs_sample

TINY = Table("tiny", (("SK_ID_CURR", "int"), ("DAYS_EMPLOYED", "int"), ("CODE_GENDER", "str"),
                      ("AMT_CREDIT", "float")), key="SK_ID_CURR", sentinel_columns=("DAYS_EMPLOYED",))


def _run(raw, tmp_path, capsys):
    out, metrics = tmp_path / "prepared", tmp_path / "metrics" / "prepare.json"
    code = run(raw, out, metrics, "synthetic", 0.2, 42)
    return code, capsys.readouterr().err, out, metrics


def _edit(path, transform):
    """Rewrite a CSV through a polars transform, keeping every column as text."""
    frame = pl.read_csv(path, infer_schema=False)
    transform(frame).write_csv(path)


def test_clean_table_turns_sentinel_and_tokens_into_missing_with_a_flag():
    frame = pl.DataFrame({"SK_ID_CURR": [1, 2, 3], "DAYS_EMPLOYED": [-100, 365243, None],
                          "CODE_GENDER": ["F", "XNA", "Unknown"], "AMT_CREDIT": [1.0, 2.0, 3.0]})
    cleaned, report = clean_table(frame, TINY)
    assert cleaned["DAYS_EMPLOYED"].to_list() == [-100, None, None]
    assert cleaned["DAYS_EMPLOYED_ANOM"].to_list() == [0, 1, 0]
    assert cleaned["CODE_GENDER"].to_list() == ["F", None, None]
    assert report == {"sentinel": {"DAYS_EMPLOYED": 1}, "missing_token": {"CODE_GENDER": 2}}


def test_drop_orphans_counts_rows_with_unknown_or_missing_parents():
    child = pl.DataFrame({"SK_ID_CURR": [1, 2, 9, None], "v": [1, 2, 3, 4]})
    kept, orphans = drop_orphans(child, "SK_ID_CURR", pl.Series([1, 2, 3]))
    assert kept["v"].to_list() == [1, 2] and orphans == 2


def test_check_unique_names_the_repeated_key():
    with pytest.raises(DataError, match=r"bureau.csv: column SK_ID_BUREAU has duplicate keys .*e\.g\. 7"):
        check_unique(pl.DataFrame({"SK_ID_BUREAU": [7, 7, 8]}), "SK_ID_BUREAU", "bureau.csv")


def test_split_holdout_is_stratified_seeded_and_disjoint():
    frame = pl.DataFrame({"SK_ID_CURR": list(range(100)), "TARGET": [1] * 10 + [0] * 90})
    fit, hold = split_holdout(frame, 0.2, seed=1)
    assert (fit.height, hold.height) == (80, 20)
    assert hold["TARGET"].sum() == 2 and fit["TARGET"].sum() == 8
    assert not set(fit["SK_ID_CURR"]) & set(hold["SK_ID_CURR"])
    assert split_holdout(frame.reverse(), 0.2, seed=1)[1]["SK_ID_CURR"].to_list() == hold["SK_ID_CURR"].to_list()
    assert split_holdout(frame, 0.2, seed=2)[1]["SK_ID_CURR"].to_list() != hold["SK_ID_CURR"].to_list()


def test_read_table_strips_the_byte_order_mark_and_types_columns(tmp_path):
    (tmp_path / "tiny.csv").write_bytes(b"\xef\xbb\xbfSK_ID_CURR,DAYS_EMPLOYED,CODE_GENDER,AMT_CREDIT\n"
                                        b"5,-3.0,M,10.5\n6,,F,\n")
    frame = read_table(tmp_path, TINY)
    assert frame.columns == TINY.names
    assert frame.schema == {"SK_ID_CURR": pl.Int64, "DAYS_EMPLOYED": pl.Int32, "CODE_GENDER": pl.String,
                            "AMT_CREDIT": pl.Float64}
    assert frame.rows() == [(5, -3, "M", 10.5), (6, None, "F", None)]


def test_valid_folder_is_prepared_with_a_disjoint_holdout(raw_copy, tmp_path, capsys):
    code, err, out, metrics = _run(raw_copy, tmp_path, capsys)
    assert code == 0, err
    train, hold = (pl.read_parquet(out / f"application_{n}.parquet") for n in ("train", "holdout"))
    assert (train.height, hold.height) == (320, 80)
    assert not set(train["SK_ID_CURR"]) & set(hold["SK_ID_CURR"])
    assert hold["TARGET"].mean() == pytest.approx(train["TARGET"].mean(), abs=0.02)
    report = json.loads(metrics.read_text())
    assert report["tables"]["bureau"]["rows_read"] == pl.read_parquet(out / "bureau.parquet").height
    assert report["tables"]["application_train"]["sentinel"]["DAYS_EMPLOYED"] > 0
    assert "DAYS_EMPLOYED_ANOM" in train.columns and train["DAYS_EMPLOYED"].max() < 0


BAD_CASES = {
    "missing column": ("bureau.csv", lambda f: f.drop("SK_ID_CURR"), "bureau.csv: column SK_ID_CURR missing"),
    "target out of range": ("application_train.csv",
                            lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 3).then(pl.lit("2"))
                                                     .otherwise(pl.col("TARGET")).alias("TARGET")),
                            "application_train.csv: TARGET has values {2}"),
    "duplicate key": ("previous_application.csv", lambda f: pl.concat([f, f.head(1)]),
                      "previous_application.csv: column SK_ID_PREV has duplicate keys"),
    "non-numeric amount": ("installments_payments.csv",
                           lambda f: f.with_columns(pl.when(pl.int_range(pl.len()) == 4).then(pl.lit("12,5 EUR"))
                                                    .otherwise(pl.col("AMT_PAYMENT")).alias("AMT_PAYMENT")),
                           "installments_payments.csv: column AMT_PAYMENT has a non-numeric value '12,5 EUR' "
                           "(line 6"),
    "fractional day count": ("bureau.csv", lambda f: f.with_columns(pl.lit("-10.5").alias("DAYS_CREDIT")),
                             "bureau.csv: column DAYS_CREDIT must hold whole numbers, found -10.5"),
    "missing target": ("application_train.csv", lambda f: f.with_columns(pl.lit(None).alias("TARGET")),
                       "application_train.csv: TARGET has 400 missing values"),
    "test client also labelled": ("application_test.csv",
                                  lambda f: f.with_columns(pl.lit("100002").alias("SK_ID_CURR")).head(1),
                                  "application_test.csv: column SK_ID_CURR repeats 1 clients"),
}


@pytest.mark.parametrize("case", sorted(BAD_CASES))
def test_bad_input_stops_with_a_named_error_and_no_output(case, raw_copy, tmp_path, capsys):
    file, transform, message = BAD_CASES[case]
    _edit(raw_copy / file, transform)
    code, err, out, metrics = _run(raw_copy, tmp_path, capsys)
    assert code == 1
    assert f"prepare: error: {message}" in err
    assert not out.exists() and not metrics.exists()
    assert not list(tmp_path.glob(".prepared.*"))  # no scratch folder left behind


def test_empty_file_and_missing_required_file(raw_copy, tmp_path, capsys):
    (raw_copy / "bureau.csv").write_bytes(b"")
    code, err, out, _ = _run(raw_copy, tmp_path, capsys)
    assert code == 1 and "bureau.csv: file is empty" in err and not out.exists()
    header = (raw_copy / "application_train.csv").read_text().splitlines()[0]
    (raw_copy / "application_train.csv").write_text(header + "\n")
    code, err, out, _ = _run(raw_copy, tmp_path, capsys)
    assert code == 1 and "application_train.csv: no data rows (header only)" in err
    (raw_copy / "application_train.csv").unlink()
    code, err, out, _ = _run(raw_copy, tmp_path, capsys)
    assert code == 1 and "application_train.csv: required file not found" in err


def test_failed_run_keeps_the_previous_good_output(raw_copy, tmp_path, capsys):
    assert _run(raw_copy, tmp_path, capsys)[0] == 0
    before = (tmp_path / "prepared" / "bureau.parquet").read_bytes()
    _edit(raw_copy / "bureau.csv", lambda f: f.drop("CREDIT_ACTIVE"))
    assert _run(raw_copy, tmp_path, capsys)[0] == 1
    assert (tmp_path / "prepared" / "bureau.parquet").read_bytes() == before


def test_missing_history_tables_are_empty_with_a_warning(raw_copy, tmp_path, capsys):
    (raw_copy / "credit_card_balance.csv").unlink()
    (raw_copy / "application_test.csv").unlink()
    code, err, out, metrics = _run(raw_copy, tmp_path, capsys)
    assert code == 0
    assert "warning: credit_card_balance.csv: not found" in err
    cards = pl.read_parquet(out / "credit_card_balance.parquet")
    assert cards.height == 0 and cards.columns == TABLES["credit_card_balance"].names
    assert len(json.loads(metrics.read_text())["warnings"]) == 2


def test_orphan_history_rows_are_counted_and_dropped(raw_copy, tmp_path, capsys):
    _edit(raw_copy / "bureau.csv", lambda f: f.with_columns(
        pl.when(pl.int_range(pl.len()) < 5).then(pl.lit("999999999")).otherwise(pl.col("SK_ID_CURR")).alias("SK_ID_CURR")))
    code, err, out, metrics = _run(raw_copy, tmp_path, capsys)
    assert code == 0
    assert json.loads(metrics.read_text())["tables"]["bureau"]["orphans_dropped"] == 5
    assert "bureau.csv: 5 rows point at unknown SK_ID_CURR" in err


@needs_sample
def test_real_kaggle_sample_passes_the_schema_and_prepare(tmp_path, capsys):
    for table in TABLES.values():
        assert read_table(SAMPLE_DIR, table).columns == table.names
    code, err, out, metrics = _run(SAMPLE_DIR, tmp_path, capsys)
    assert code == 0, err
    report = json.loads(metrics.read_text())
    assert report["split"]["application_train"]["clients"] == 800
    assert report["split"]["application_test"]["clients"] == 153
    assert report["tables"]["previous_application"]["sentinel"]["DAYS_FIRST_DRAWING"] > 0
    assert pl.read_parquet(out / "application_train.parquet")["DAYS_EMPLOYED"].max() < 0
