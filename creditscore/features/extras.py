"""Features past the Kaggle kernel, after what top solutions found useful.

Recent windows (the last 12 months weigh more than old history), the interest rate implied by
previous applications, debt and utilisation ratios, and shares of late or short payments.
Each function gives the aggregation of one table's rows, as its history group prepares them
(`build._group_frames`), so that both are computed in the same pass over the table.
"""
from __future__ import annotations

import polars as pl

from creditscore.features.core import AGGREGATIONS, Aggregation, safe_div
from creditscore.features.history import LATE_MONTHS

RECENT_DAYS, RECENT_MONTHS = -365, -12
F64 = pl.Float64


def _list(column: str, how: str) -> pl.Expr:
    """An aggregate of a client's list of values of a row-level input (min, max, mean, sum)."""
    return AGGREGATIONS[how](pl.col(column))


def bureau_extras() -> Aggregation:
    """Debt over credit of active credits, overdue share, recent credits, late monthly statuses."""
    active = pl.col("CREDIT_ACTIVE") == "Active"
    inputs = ((pl.col("AMT_CREDIT_SUM_OVERDUE") > 0).fill_null(False).cast(F64).alias("_overdue"),
              (pl.col("DAYS_CREDIT") >= RECENT_DAYS).fill_null(False).cast(F64).alias("_recent"),
              pl.col(LATE_MONTHS), pl.col("MONTHS_BALANCE_SIZE"),
              pl.when(active).then(pl.col("AMT_CREDIT_SUM_DEBT")).alias("_active_debt"),
              pl.when(active).then(pl.col("AMT_CREDIT_SUM")).alias("_active_credit"))
    outputs = (_list("_overdue", "mean").alias("BURO_OVERDUE_SHARE"), _list("_recent", "sum").alias("BURO_RECENT_COUNT"),
               safe_div(_list(LATE_MONTHS, "sum"), _list("MONTHS_BALANCE_SIZE", "sum")).alias("BURO_LATE_MONTH_SHARE"),
               safe_div(_list("_active_debt", "sum"), _list("_active_credit", "sum"))
               .alias("BURO_ACTIVE_DEBT_CREDIT_RATIO"))
    return Aggregation(inputs, outputs)


def previous_extras() -> Aggregation:
    """Implied yearly interest rate (simple), refused counts, overall and over the last year."""
    rate = safe_div(safe_div(pl.col("AMT_ANNUITY") * pl.col("CNT_PAYMENT"), pl.col("AMT_CREDIT")) - 1,
                    pl.col("CNT_PAYMENT") / 12)
    refused = (pl.col("NAME_CONTRACT_STATUS") == "Refused").fill_null(False).cast(F64)
    recent = pl.col("DAYS_DECISION") >= RECENT_DAYS
    inputs = (rate.alias("_rate"), refused.alias("_refused"), pl.when(recent).then(refused).alias("_recent_refused"),
              recent.fill_null(False).cast(F64).alias("_recent"))
    outputs = (_list("_rate", "min").alias("PREV_INTEREST_RATE_MIN"), _list("_rate", "max").alias("PREV_INTEREST_RATE_MAX"),
               _list("_refused", "sum").alias("PREV_REFUSED_COUNT"),
               _list("_recent_refused", "mean").alias("PREV_RECENT_REFUSED_SHARE"),
               _list("_recent", "sum").alias("PREV_RECENT_COUNT"), _list("_rate", "mean").alias("PREV_INTEREST_RATE_MEAN"))
    return Aggregation(inputs, outputs)


def installment_extras() -> Aggregation:
    """Late and short payment shares, overall and over the last year."""
    recent = pl.col("DAYS_INSTALMENT") >= RECENT_DAYS
    late = (pl.col("DPD") > 0).cast(F64)
    inputs = (late.alias("_late"), (pl.col("PAYMENT_DIFF") > 0).cast(F64).alias("_short"),
              pl.when(recent).then(late).alias("_recent_late"), pl.when(recent).then(pl.col("DPD")).alias("_recent_dpd"),
              pl.when(recent).then(pl.col("PAYMENT_PERC")).alias("_recent_perc"))
    outputs = (_list("_late", "mean").alias("INSTAL_LATE_SHARE"), _list("_short", "mean").alias("INSTAL_SHORT_SHARE"),
               _list("_recent_late", "mean").alias("INSTAL_RECENT_LATE_SHARE"),
               _list("_recent_dpd", "mean").alias("INSTAL_RECENT_DPD_MEAN"),
               _list("_recent_dpd", "max").alias("INSTAL_RECENT_DPD_MAX"),
               _list("_recent_perc", "mean").alias("INSTAL_RECENT_PAYMENT_PERC_MEAN"))
    return Aggregation(inputs, outputs)


def pos_extras() -> Aggregation:
    """Days past due over the last 12 months."""
    recent = pl.col("MONTHS_BALANCE") >= RECENT_MONTHS
    inputs = (pl.when(recent).then(pl.col("SK_DPD")).alias("_recent_dpd"),
              pl.when(recent).then((pl.col("SK_DPD") > 0).cast(F64)).alias("_recent_late"))
    outputs = (_list("_recent_dpd", "mean").alias("POS_RECENT_SK_DPD_MEAN"),
               _list("_recent_late", "mean").alias("POS_RECENT_LATE_SHARE"))
    return Aggregation(inputs, outputs)


def card_extras() -> Aggregation:
    """Credit-card utilisation (balance over limit), overall and over the last 12 months."""
    util = safe_div(pl.col("AMT_BALANCE"), pl.col("AMT_CREDIT_LIMIT_ACTUAL"))
    recent = pl.col("MONTHS_BALANCE") >= RECENT_MONTHS
    inputs = (util.alias("_util"), pl.when(recent).then(util).alias("_recent_util"))
    outputs = (_list("_util", "mean").alias("CC_UTILISATION_MEAN"), _list("_util", "max").alias("CC_UTILISATION_MAX"),
               _list("_recent_util", "mean").alias("CC_RECENT_UTILISATION_MEAN"))
    return Aggregation(inputs, outputs)


MEANINGS = {  # feature: (source table, one-line meaning)
    "BURO_ACTIVE_DEBT_CREDIT_RATIO": ("bureau", "current debt / amount of the active credit-bureau credits"),
    "BURO_OVERDUE_SHARE": ("bureau", "share of credit-bureau credits with an overdue amount"),
    "BURO_RECENT_COUNT": ("bureau", "credit-bureau credits granted in the last 12 months"),
    "BURO_LATE_MONTH_SHARE": ("bureau_balance", "share of credit-bureau months reported late (status 1-5)"),
    "PREV_INTEREST_RATE_MIN": ("previous_application", "lowest yearly interest rate implied by a previous loan"),
    "PREV_INTEREST_RATE_MAX": ("previous_application", "highest yearly interest rate implied by a previous loan"),
    "PREV_INTEREST_RATE_MEAN": ("previous_application", "average yearly interest rate implied by previous loans"),
    "PREV_REFUSED_COUNT": ("previous_application", "number of refused previous applications"),
    "PREV_RECENT_REFUSED_SHARE": ("previous_application", "share of applications refused in the last 12 months"),
    "PREV_RECENT_COUNT": ("previous_application", "previous applications decided in the last 12 months"),
    "INSTAL_LATE_SHARE": ("installments_payments", "share of instalments paid late"),
    "INSTAL_SHORT_SHARE": ("installments_payments", "share of instalments paid short"),
    "INSTAL_RECENT_LATE_SHARE": ("installments_payments", "share of instalments paid late in the last 12 months"),
    "INSTAL_RECENT_DPD_MEAN": ("installments_payments", "average days late over the last 12 months"),
    "INSTAL_RECENT_DPD_MAX": ("installments_payments", "most days late over the last 12 months"),
    "INSTAL_RECENT_PAYMENT_PERC_MEAN": ("installments_payments", "average paid / due over the last 12 months"),
    "POS_RECENT_SK_DPD_MEAN": ("POS_CASH_balance", "average days past due on POS and cash loans, last 12 months"),
    "POS_RECENT_LATE_SHARE": ("POS_CASH_balance", "share of POS and cash loan months past due, last 12 months"),
    "CC_UTILISATION_MEAN": ("credit_card_balance", "average credit-card balance / limit"),
    "CC_UTILISATION_MAX": ("credit_card_balance", "highest credit-card balance / limit"),
    "CC_RECENT_UTILISATION_MEAN": ("credit_card_balance", "average credit-card balance / limit, last 12 months"),
}
