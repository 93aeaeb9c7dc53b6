"""Features past the Kaggle kernel, after what top solutions found useful.

Recent windows (the last 12 months weigh more than old history), the interest rate implied by
previous applications, debt and utilisation ratios, and shares of late or short payments.
"""
from __future__ import annotations

import polars as pl

from creditscore.features.core import KEY, grouped, safe_div
from creditscore.features.history import LATE_MONTHS, instalment_columns

RECENT_DAYS, RECENT_MONTHS = -365, -12


def bureau_extras(credits: pl.LazyFrame) -> pl.LazyFrame:
    """Debt over credit of active credits, overdue share, recent credits, late monthly statuses."""
    active = pl.col("CREDIT_ACTIVE") == "Active"
    exact = [(pl.col("AMT_CREDIT_SUM_OVERDUE") > 0).fill_null(False).mean().alias("BURO_OVERDUE_SHARE"),
             (pl.col("DAYS_CREDIT") >= RECENT_DAYS).fill_null(False).sum().cast(pl.Float64).alias("BURO_RECENT_COUNT"),
             safe_div(pl.col(LATE_MONTHS).sum(), pl.col("MONTHS_BALANCE_SIZE").sum()).alias("BURO_LATE_MONTH_SHARE")]
    floating = [safe_div(pl.col("AMT_CREDIT_SUM_DEBT").filter(active).sum(),
                         pl.col("AMT_CREDIT_SUM").filter(active).sum()).alias("BURO_ACTIVE_DEBT_CREDIT_RATIO")]
    return grouped(credits, KEY, exact + floating)


def previous_extras(previous: pl.LazyFrame) -> pl.LazyFrame:
    """Implied yearly interest rate (simple), refused counts, overall and over the last year."""
    rate = safe_div(safe_div(pl.col("AMT_ANNUITY") * pl.col("CNT_PAYMENT"), pl.col("AMT_CREDIT")) - 1,
                    pl.col("CNT_PAYMENT") / 12)
    refused = (pl.col("NAME_CONTRACT_STATUS") == "Refused").fill_null(False)
    recent = pl.col("DAYS_DECISION") >= RECENT_DAYS
    exact = [pl.col("_rate").min().alias("PREV_INTEREST_RATE_MIN"), pl.col("_rate").max().alias("PREV_INTEREST_RATE_MAX"),
             refused.sum().cast(pl.Float64).alias("PREV_REFUSED_COUNT"),
             refused.filter(recent).mean().alias("PREV_RECENT_REFUSED_SHARE"),
             recent.fill_null(False).sum().cast(pl.Float64).alias("PREV_RECENT_COUNT")]
    floating = [pl.col("_rate").mean().alias("PREV_INTEREST_RATE_MEAN")]
    return grouped(previous.with_columns(rate.alias("_rate")), KEY, exact + floating)


def installment_extras(installments: pl.LazyFrame) -> pl.LazyFrame:
    """Late and short payment shares, overall and over the last year."""
    rows = instalment_columns(installments)
    recent = pl.col("DAYS_INSTALMENT") >= RECENT_DAYS
    late, short = pl.col("DPD") > 0, pl.col("PAYMENT_DIFF") > 0
    exact = [late.mean().alias("INSTAL_LATE_SHARE"), short.mean().alias("INSTAL_SHORT_SHARE"),
             late.filter(recent).mean().alias("INSTAL_RECENT_LATE_SHARE"),
             pl.col("DPD").filter(recent).mean().alias("INSTAL_RECENT_DPD_MEAN"),
             pl.col("DPD").filter(recent).max().alias("INSTAL_RECENT_DPD_MAX")]
    floating = [pl.col("PAYMENT_PERC").filter(recent).mean().alias("INSTAL_RECENT_PAYMENT_PERC_MEAN")]
    return grouped(rows, KEY, exact + floating)


def pos_extras(pos: pl.LazyFrame) -> pl.LazyFrame:
    """Days past due over the last 12 months."""
    recent = pl.col("MONTHS_BALANCE") >= RECENT_MONTHS
    return grouped(pos, KEY, [pl.col("SK_DPD").filter(recent).mean().alias("POS_RECENT_SK_DPD_MEAN"),
                              (pl.col("SK_DPD") > 0).filter(recent).mean().alias("POS_RECENT_LATE_SHARE")])


def card_extras(cards: pl.LazyFrame) -> pl.LazyFrame:
    """Credit-card utilisation (balance over limit), overall and over the last 12 months."""
    util = safe_div(pl.col("AMT_BALANCE"), pl.col("AMT_CREDIT_LIMIT_ACTUAL"))
    recent = pl.col("MONTHS_BALANCE") >= RECENT_MONTHS
    return grouped(cards.with_columns(util.alias("_util")), KEY, [
        pl.col("_util").mean().alias("CC_UTILISATION_MEAN"), pl.col("_util").max().alias("CC_UTILISATION_MAX"),
        pl.col("_util").filter(recent).mean().alias("CC_RECENT_UTILISATION_MEAN")])


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
