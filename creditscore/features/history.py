"""Per-client aggregates of the six history tables, after the Kaggle kernel "LightGBM with simple features".

Every function takes LazyFrames of cleaned tables (the 365243 sentinel already missing) and the
category vocabulary, and returns a LazyFrame with one row per SK_ID_CURR. Row count does not matter:
the same code aggregates 58 million rows in the stage and one client's rows in the API.
"""
from __future__ import annotations

import polars as pl

from creditscore.data.schema import KEY
from creditscore.features.core import (
    Aggregation,
    aggregate,
    grouped,
    level_indicators,
    level_shares,
    row_count,
    safe_div,
)

BUREAU_NUM = {
    "DAYS_CREDIT": ["min", "max", "mean", "var"], "DAYS_CREDIT_ENDDATE": ["min", "max", "mean"],
    "DAYS_CREDIT_UPDATE": ["mean"], "CREDIT_DAY_OVERDUE": ["max", "mean"], "AMT_CREDIT_MAX_OVERDUE": ["mean"],
    "AMT_CREDIT_SUM": ["max", "mean", "sum"], "AMT_CREDIT_SUM_DEBT": ["max", "mean", "sum"],
    "AMT_CREDIT_SUM_OVERDUE": ["mean"], "AMT_CREDIT_SUM_LIMIT": ["mean", "sum"], "AMT_ANNUITY": ["max", "mean"],
    "CNT_CREDIT_PROLONG": ["sum"], "MONTHS_BALANCE_MIN": ["min"], "MONTHS_BALANCE_MAX": ["max"],
    "MONTHS_BALANCE_SIZE": ["mean", "sum"],
}
PREVIOUS_NUM = {
    "AMT_ANNUITY": ["min", "max", "mean"], "AMT_APPLICATION": ["min", "max", "mean"],
    "AMT_CREDIT": ["min", "max", "mean"], "APP_CREDIT_PERC": ["min", "max", "mean", "var"],
    "AMT_DOWN_PAYMENT": ["min", "max", "mean"], "AMT_GOODS_PRICE": ["min", "max", "mean"],
    "HOUR_APPR_PROCESS_START": ["min", "max", "mean"], "RATE_DOWN_PAYMENT": ["min", "max", "mean"],
    "DAYS_DECISION": ["min", "max", "mean"], "CNT_PAYMENT": ["mean", "sum"],
}
POS_NUM = {"MONTHS_BALANCE": ["max", "mean", "size"], "SK_DPD": ["max", "mean"], "SK_DPD_DEF": ["max", "mean"]}
INSTALMENT_NUM = {
    "NUM_INSTALMENT_VERSION": ["nunique"], "DPD": ["max", "mean", "sum"], "DBD": ["max", "mean", "sum"],
    "PAYMENT_PERC": ["max", "mean", "sum", "var"], "PAYMENT_DIFF": ["max", "mean", "sum", "var"],
    "AMT_INSTALMENT": ["max", "mean", "sum"], "AMT_PAYMENT": ["min", "max", "mean", "sum"],
    "DAYS_ENTRY_PAYMENT": ["max", "mean", "sum"],
}
CARD_AGGS = ["min", "max", "mean", "sum", "var"]
CARD_SKIP = ("SK_ID_PREV", KEY)
LATE_STATUSES = ["1", "2", "3", "4", "5"]
LATE_MONTHS = "LATE_MONTHS"  # helper column of bureau credits: months reported late


def _shares(vocab: dict, table: str, prefix: str) -> Aggregation:
    shares = Aggregation()
    for column, levels in vocab.get(table, {}).items():
        shares += level_shares(column, levels, prefix)
    return shares


def _numeric(frame: pl.LazyFrame, key: str, spec: dict, prefix: str, extra: Aggregation = Aggregation()) -> pl.LazyFrame:
    """Aggregate a spec (plus extra aggregations such as shares and counts) per key."""
    return grouped(frame, key, aggregate(spec, prefix) + extra)


def aggregate_bureau_balance(bureau_balance: pl.LazyFrame, vocab: dict) -> pl.LazyFrame:
    """Per bureau credit: months covered (min, max, count), the share of each monthly STATUS, late months."""
    levels = vocab.get("bureau_balance", {}).get("STATUS", [])
    late = Aggregation((pl.col("STATUS").is_in(LATE_STATUSES).fill_null(False).cast(pl.UInt32).alias("_late"),),
                       (pl.col("_late").list.sum().alias(LATE_MONTHS),))
    return _numeric(bureau_balance, "SK_ID_BUREAU", {"MONTHS_BALANCE": ["min", "max", "size"]}, "",
                    level_shares("STATUS", levels, "") + late)


def bureau_credits(bureau: pl.LazyFrame, bureau_balance: pl.LazyFrame, vocab: dict) -> pl.LazyFrame:
    """Bureau credits with their monthly-balance summary (one plan, shared by the bureau and extras groups)."""
    return bureau.join(aggregate_bureau_balance(bureau_balance, vocab), on="SK_ID_BUREAU", how="left",
                       maintain_order="left")


def _with_subsets(every: pl.LazyFrame, rows: pl.LazyFrame, column: str, spec: dict,
                  subsets: tuple[tuple[str, str], ...]) -> pl.LazyFrame:
    """Per-client aggregates beside the same numeric aggregates of subsets of rows (column == value)."""
    for value, prefix in subsets:
        part = grouped(rows.filter(pl.col(column) == value), KEY, aggregate(spec, f"{prefix}_"))
        every = every.join(part, on=KEY, how="left", maintain_order="left")
    return every


def aggregate_bureau(credits: pl.LazyFrame, vocab: dict, extra: Aggregation = Aggregation()) -> pl.LazyFrame:
    """Per client: bureau credits (numeric, category shares, monthly statuses), then active and closed ones.

    `extra` (other aggregations of the same credits) is computed in the same pass.
    """
    status_means = {f"STATUS_{level}_MEAN": ["mean"] for level in vocab.get("bureau_balance", {}).get("STATUS", [])}
    every = _numeric(credits, KEY, {**BUREAU_NUM, **status_means}, "BURO_", _shares(vocab, "bureau", "BURO_") + extra)
    return _with_subsets(every, credits, "CREDIT_ACTIVE", BUREAU_NUM, (("Active", "ACTIVE"), ("Closed", "CLOSED")))


def previous_rows(previous: pl.LazyFrame) -> pl.LazyFrame:
    """Previous applications with their application / credit ratio."""
    return previous.with_columns(safe_div(pl.col("AMT_APPLICATION"), pl.col("AMT_CREDIT")).alias("APP_CREDIT_PERC"))


def aggregate_previous(prev: pl.LazyFrame, vocab: dict, extra: Aggregation = Aggregation()) -> pl.LazyFrame:
    """Per client: previous applications (numeric, category shares), then approved and refused ones.

    `prev` comes from `previous_rows`; `extra` is computed in the same pass.
    """
    every = _numeric(prev, KEY, PREVIOUS_NUM, "PREV_", _shares(vocab, "previous_application", "PREV_") + extra)
    return _with_subsets(every, prev, "NAME_CONTRACT_STATUS", PREVIOUS_NUM,
                         (("Approved", "APPROVED"), ("Refused", "REFUSED")))


def aggregate_pos_cash(pos: pl.LazyFrame, vocab: dict, extra: Aggregation = Aggregation()) -> pl.LazyFrame:
    """Per client: monthly POS and cash loan balances (months, days past due, status shares, count)."""
    return _numeric(pos, KEY, POS_NUM, "POS_",
                    _shares(vocab, "POS_CASH_balance", "POS_") + row_count("POS_COUNT") + extra)


def instalment_columns(installments: pl.LazyFrame) -> pl.LazyFrame:
    """Payment ratio and difference, days past due and days before due (clipped at 0)."""
    late = pl.col("DAYS_ENTRY_PAYMENT") - pl.col("DAYS_INSTALMENT")
    return installments.with_columns(
        safe_div(pl.col("AMT_PAYMENT"), pl.col("AMT_INSTALMENT")).alias("PAYMENT_PERC"),
        (pl.col("AMT_INSTALMENT") - pl.col("AMT_PAYMENT")).alias("PAYMENT_DIFF"),
        late.clip(lower_bound=0).alias("DPD"), (-late).clip(lower_bound=0).alias("DBD"))


def aggregate_installments(instalments: pl.LazyFrame, extra: Aggregation = Aggregation()) -> pl.LazyFrame:
    """Per client: instalment payments (lateness, payment ratio and difference, amounts, count).

    `instalments` comes from `instalment_columns`; `extra` is computed in the same pass.
    """
    return _numeric(instalments, KEY, INSTALMENT_NUM, "INSTAL_", row_count("INSTAL_COUNT") + extra)


def aggregate_credit_card(cards: pl.LazyFrame, vocab: dict, numeric: list[str],
                          extra: Aggregation = Aggregation()) -> pl.LazyFrame:
    """Per client: every credit-card balance column and status indicator, five ways, and a count."""
    levels = vocab.get("credit_card_balance", {})
    indicators = [e for column, lv in levels.items() for e in level_indicators(column, lv)]
    names = [c for c in numeric if c not in CARD_SKIP] + [e.meta.output_name() for e in indicators]
    return _numeric(cards.with_columns(indicators), KEY, {c: CARD_AGGS for c in names}, "CC_",
                    row_count("CC_COUNT") + extra)
