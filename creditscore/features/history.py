"""Per-client aggregates of the six history tables, after the Kaggle kernel "LightGBM with simple features".

Every function takes LazyFrames of cleaned tables (the 365243 sentinel already missing) and the
category vocabulary, and returns a LazyFrame with one row per SK_ID_CURR. Row count does not matter:
the same code aggregates 58 million rows in the stage and one client's rows in the API.
"""
from __future__ import annotations

import polars as pl

from creditscore.features.core import KEY, aggregate, level_indicators, level_shares, safe_div

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


def _shares(vocab: dict, table: str, prefix: str) -> list[pl.Expr]:
    return [e for column, levels in vocab.get(table, {}).items() for e in level_shares(column, levels, prefix)]


def aggregate_bureau_balance(bureau_balance: pl.LazyFrame, vocab: dict) -> pl.LazyFrame:
    """Per bureau credit: months covered (min, max, count) and the share of each monthly STATUS."""
    levels = vocab.get("bureau_balance", {}).get("STATUS", [])
    return bureau_balance.group_by("SK_ID_BUREAU", maintain_order=True).agg(
        aggregate({"MONTHS_BALANCE": ["min", "max", "size"]}, "") + level_shares("STATUS", levels, ""))


def aggregate_bureau(bureau: pl.LazyFrame, bureau_balance: pl.LazyFrame, vocab: dict) -> pl.LazyFrame:
    """Per client: bureau credits (numeric, category shares, monthly statuses), then active and closed ones."""
    status_means = [f"STATUS_{level}_MEAN" for level in vocab.get("bureau_balance", {}).get("STATUS", [])]
    credits = bureau.join(aggregate_bureau_balance(bureau_balance, vocab), on="SK_ID_BUREAU", how="left",
                          maintain_order="left").set_sorted(KEY)
    every = credits.group_by(KEY, maintain_order=True).agg(
        aggregate(BUREAU_NUM, "BURO_") + _shares(vocab, "bureau", "BURO_")
        + aggregate({c: ["mean"] for c in status_means}, "BURO_"))
    subsets = [credits.filter(pl.col("CREDIT_ACTIVE") == status).group_by(KEY, maintain_order=True).agg(aggregate(BUREAU_NUM, f"{name}_"))
               for status, name in (("Active", "ACTIVE"), ("Closed", "CLOSED"))]
    return every.join(subsets[0], on=KEY, how="left").join(subsets[1], on=KEY, how="left")


def aggregate_previous(previous: pl.LazyFrame, vocab: dict) -> pl.LazyFrame:
    """Per client: previous applications (numeric, category shares), then approved and refused ones."""
    prev = previous.with_columns(safe_div(pl.col("AMT_APPLICATION"), pl.col("AMT_CREDIT")).alias("APP_CREDIT_PERC"))
    every = prev.group_by(KEY, maintain_order=True).agg(aggregate(PREVIOUS_NUM, "PREV_") + _shares(vocab, "previous_application", "PREV_"))
    subsets = [prev.filter(pl.col("NAME_CONTRACT_STATUS") == status).group_by(KEY, maintain_order=True).agg(
        aggregate(PREVIOUS_NUM, f"{name}_")) for status, name in (("Approved", "APPROVED"), ("Refused", "REFUSED"))]
    return every.join(subsets[0], on=KEY, how="left").join(subsets[1], on=KEY, how="left")


def aggregate_pos_cash(pos: pl.LazyFrame, vocab: dict) -> pl.LazyFrame:
    """Per client: monthly POS and cash loan balances (months, days past due, status shares, count)."""
    return pos.group_by(KEY, maintain_order=True).agg(aggregate(POS_NUM, "POS_") + _shares(vocab, "POS_CASH_balance", "POS_")
                                 + [pl.len().alias("POS_COUNT")])


def instalment_columns(installments: pl.LazyFrame) -> pl.LazyFrame:
    """Payment ratio and difference, days past due and days before due (clipped at 0)."""
    late = pl.col("DAYS_ENTRY_PAYMENT") - pl.col("DAYS_INSTALMENT")
    return installments.with_columns(
        safe_div(pl.col("AMT_PAYMENT"), pl.col("AMT_INSTALMENT")).alias("PAYMENT_PERC"),
        (pl.col("AMT_INSTALMENT") - pl.col("AMT_PAYMENT")).alias("PAYMENT_DIFF"),
        late.clip(lower_bound=0).alias("DPD"), (-late).clip(lower_bound=0).alias("DBD"))


def aggregate_installments(installments: pl.LazyFrame, vocab: dict) -> pl.LazyFrame:
    """Per client: instalment payments (lateness, payment ratio and difference, amounts, count)."""
    return instalment_columns(installments).group_by(KEY, maintain_order=True).agg(
        aggregate(INSTALMENT_NUM, "INSTAL_") + [pl.len().alias("INSTAL_COUNT")])


def aggregate_credit_card(cards: pl.LazyFrame, vocab: dict, numeric: list[str]) -> pl.LazyFrame:
    """Per client: every credit-card balance column and status indicator, five ways, and a count."""
    levels = vocab.get("credit_card_balance", {})
    indicators = [e for column, lv in levels.items() for e in level_indicators(column, lv)]
    flagged = cards.with_columns(indicators)
    names = [c for c in numeric if c not in CARD_SKIP] + [e.meta.output_name() for e in indicators]
    return flagged.group_by(KEY, maintain_order=True).agg(aggregate({c: CARD_AGGS for c in names}, "CC_") + [pl.len().alias("CC_COUNT")])
