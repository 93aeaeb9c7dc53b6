"""Building blocks of the feature code: safe ratios, named aggregations, category shares, names."""
from __future__ import annotations

import re

import polars as pl

KEY = "SK_ID_CURR"
AGGREGATIONS = {
    "min": lambda e: e.min(), "max": lambda e: e.max(), "mean": lambda e: e.mean(),
    "sum": lambda e: e.sum(), "var": lambda e: e.var(ddof=1), "nunique": lambda e: e.drop_nulls().n_unique(),
    "size": lambda e: e.len(),
}
NULL_LEVEL = "nan"  # the level that stands for a missing category, as in the Kaggle kernel


def safe_div(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator, missing (never infinite) when the denominator is 0 or missing."""
    return pl.when(denominator == 0).then(None).otherwise(numerator.cast(pl.Float64) / denominator)


def clean_name(name: str) -> str:
    """A feature name LightGBM accepts: letters, digits and underscores only."""
    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", name)).strip("_")


def aggregate(spec: dict[str, list[str]], prefix: str) -> list[pl.Expr]:
    """Aggregation expressions named PREFIX_COLUMN_AGG (pandas semantics: sum of nothing is 0)."""
    return [AGGREGATIONS[agg](pl.col(column)).alias(f"{prefix}{column}_{agg.upper()}")
            for column, names in spec.items() for agg in names]


def grouped(frame: pl.LazyFrame, key: str, exprs: list[pl.Expr]) -> pl.LazyFrame:
    """One row per key, aggregating contiguous slices of rows sorted by key.

    Float sums depend on the order of the additions, and a hash group-by adds in an order that
    varies between runs (measured: 1-ulp differences, which float32 rounding sometimes keeps).
    `frame` must be sorted by `key` (prepare writes the tables so; the API sorts a client's rows):
    Polars then sums each group's slice in row order, and every run gives identical floats.
    """
    return frame.set_sorted(key).group_by(key, maintain_order=True).agg(exprs)


def level_indicators(column: str, levels: list[str], prefix: str = "") -> list[pl.Expr]:
    """0/1 indicator per known level (and per missing value); unknown levels are all zeros."""
    exprs = []
    for level in levels:
        hit = pl.col(column).is_null() if level == NULL_LEVEL else pl.col(column).eq_missing(pl.lit(level))
        exprs.append(hit.cast(pl.Float64).alias(clean_name(f"{prefix}{column}_{level}")))
    return exprs


def level_shares(column: str, levels: list[str], prefix: str) -> list[pl.Expr]:
    """Share of each known level (and of missing values) among a client's rows."""
    return [e.mean().alias(f"{e.meta.output_name()}_MEAN") for e in level_indicators(column, levels, prefix)]
