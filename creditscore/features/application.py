"""Features of the application row: one-hot categories, business ratios, EXT_SOURCE statistics, polynomials."""
from __future__ import annotations

from itertools import combinations_with_replacement

import polars as pl

from creditscore.data.cleaning import SENTINEL_SUFFIX
from creditscore.features.core import level_indicators, safe_div

EXT = ["EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"]
C = pl.col
BUSINESS = {  # name: (expression, one-line meaning for the manifest)
    "CREDIT_INCOME_RATIO": (safe_div(C("AMT_CREDIT"), C("AMT_INCOME_TOTAL")), "credit amount / yearly income"),
    "ANNUITY_INCOME_RATIO": (safe_div(C("AMT_ANNUITY"), C("AMT_INCOME_TOTAL")), "yearly annuity / yearly income"),
    "PAYMENT_RATE": (safe_div(C("AMT_ANNUITY"), C("AMT_CREDIT")), "annuity / credit: share of the loan repaid per year"),
    "CREDIT_TERM_YEARS": (safe_div(C("AMT_CREDIT"), C("AMT_ANNUITY")), "credit / annuity: years to repay"),
    "INCOME_PER_PERSON": (safe_div(C("AMT_INCOME_TOTAL"), C("CNT_FAM_MEMBERS")), "income per family member"),
    "DAYS_EMPLOYED_PERC": (safe_div(C("DAYS_EMPLOYED"), C("DAYS_BIRTH")), "share of life spent in the current job"),
    "GOODS_CREDIT_RATIO": (safe_div(C("AMT_GOODS_PRICE"), C("AMT_CREDIT")), "goods price / credit amount"),
    "CREDIT_GOODS_DIFF": ((C("AMT_CREDIT") - C("AMT_GOODS_PRICE")).cast(pl.Float64),
                          "credit amount above the goods price (fees, insurance)"),
    "CHILDREN_RATIO": (safe_div(C("CNT_CHILDREN"), C("CNT_FAM_MEMBERS")), "children / family members"),
    "CAR_AGE_BIRTH_RATIO": (safe_div(C("OWN_CAR_AGE"), C("DAYS_BIRTH")), "car age relative to client age"),
    "PHONE_CHANGE_BIRTH_RATIO": (safe_div(C("DAYS_LAST_PHONE_CHANGE"), C("DAYS_BIRTH")),
                                 "time since phone change relative to age"),
    "AGE_YEARS": ((-C("DAYS_BIRTH") / 365.25), "client age in years"),
}


def business_features() -> list[pl.Expr]:
    """Ratios a credit analyst reads first; a zero denominator gives a missing value."""
    docs = pl.sum_horizontal([C(f"FLAG_DOCUMENT_{k}") for k in range(2, 22)]).cast(pl.Float64)
    requests = pl.sum_horizontal([C(f"AMT_REQ_CREDIT_BUREAU_{p}") for p in
                                  ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR")]).cast(pl.Float64)
    return [expr.alias(name) for name, (expr, _) in BUSINESS.items()] + [
        docs.alias("DOCUMENT_COUNT"), requests.alias("BUREAU_REQUEST_COUNT")]


def ext_source_features() -> list[pl.Expr]:
    """Mean, spread, product, min and max of the external scores (over those present)."""
    present = pl.concat_list(EXT).list.drop_nulls()
    return [present.list.mean().alias("EXT_SOURCE_MEAN"), present.list.std(ddof=1).alias("EXT_SOURCE_STD"),
            (C(EXT[0]) * C(EXT[1]) * C(EXT[2])).alias("EXT_SOURCE_PROD"),
            present.list.min().alias("EXT_SOURCE_MIN"), present.list.max().alias("EXT_SOURCE_MAX")]


def polynomial_terms(columns: list[str], degree: int) -> list[tuple[str, tuple[str, ...]]]:
    """Names and factors of every monomial of degree 2..degree of the columns."""
    terms = []
    for d in range(2, degree + 1):
        for combo in combinations_with_replacement(columns, d):
            parts = [f"{c}_POW{combo.count(c)}" if combo.count(c) > 1 else c for c in dict.fromkeys(combo)]
            terms.append(("POLY_" + "_X_".join(parts), combo))
    return terms


def polynomial_features(columns: list[str], degree: int) -> list[pl.Expr]:
    """Products of the strongest raw predictors; missing when a factor is missing."""
    exprs = []
    for name, combo in polynomial_terms(columns, degree):
        product = C(combo[0]).cast(pl.Float64)
        for c in combo[1:]:
            product = product * C(c)
        exprs.append(product.alias(name))
    return exprs


def application_expressions(vocab: dict, numeric: list[str], poly: dict, only: list[str] | None = None,
                            protected: list[str] | tuple = ()) -> list[pl.Expr]:
    """The expressions of the application features; `only` keeps those producing the given names, in that order.

    No expression reads a `protected` column (`params.yaml: protected`): a feature that would is not built, so
    the selection, the models and the card never see it. The API's serving plan builds the model's subset once at
    start and reuses it for every request.
    """
    levels = vocab.get("application", {})
    exprs = ([C(c).cast(pl.Float64) for c in numeric]
             + [e for column, lv in levels.items() for e in level_indicators(column, lv)]
             + business_features() + ext_source_features()
             + polynomial_features(poly["columns"], int(poly["degree"])))
    if protected:  # a column's sentinel flag (DAYS_EMPLOYED_ANOM) is read from it by the cleaning
        blocked = set(protected) | {c + SENTINEL_SUFFIX for c in protected}
        exprs = [e for e in exprs if not set(e.meta.root_names()) & blocked]
    if only is None:
        return exprs
    by_name = {e.meta.output_name(): e for e in exprs}
    return [by_name[name] for name in only]


def application_features(app: pl.LazyFrame, vocab: dict, numeric: list[str], poly: dict,
                         only: list[str] | None = None, protected: list[str] | tuple = ()) -> pl.LazyFrame:
    """One row per application: raw numeric columns, category indicators and derived features."""
    return app.select([C("SK_ID_CURR")] + application_expressions(vocab, numeric, poly, only, protected))
