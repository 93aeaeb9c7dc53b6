"""Building blocks of the feature code: safe ratios, named aggregations, category shares, names."""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

import polars as pl

AGGREGATIONS = {  # applied to a list column holding one key's values; the same results as a group-by's
    "min": lambda e: e.list.min(), "max": lambda e: e.list.max(), "mean": lambda e: e.list.mean(),
    "sum": lambda e: e.list.sum(), "var": lambda e: e.list.var(ddof=1),
    "nunique": lambda e: e.list.drop_nulls().list.n_unique(), "size": lambda e: e.list.len(),
}
NULL_LEVEL = "nan"  # the level that stands for a missing category, as in the Kaggle kernel


def safe_div(numerator: pl.Expr, denominator: pl.Expr) -> pl.Expr:
    """numerator / denominator, missing (never infinite) when the denominator is 0 or missing."""
    return pl.when(denominator == 0).then(None).otherwise(numerator.cast(pl.Float64) / denominator)


def clean_name(name: str) -> str:
    """A feature name LightGBM accepts: letters, digits and underscores only."""
    return re.sub(r"_+", "_", re.sub(r"[^0-9A-Za-z_]", "_", name)).strip("_")


@dataclass(frozen=True)
class Aggregation:
    """Per-key features: row-level `inputs` (named columns), collected into one list per key, and
    `outputs`, one expression over those lists per feature. Aggregations add up with `+`."""
    inputs: tuple[pl.Expr, ...] = ()
    outputs: tuple[pl.Expr, ...] = ()

    def __add__(self, other: Aggregation) -> Aggregation:
        return Aggregation(self.inputs + other.inputs, self.outputs + other.outputs)


def aggregate(spec: dict[str, list[str]], prefix: str) -> Aggregation:
    """Aggregations of columns named PREFIX_COLUMN_AGG (pandas semantics: sum of nothing is 0)."""
    return Aggregation(tuple(pl.col(column) for column in spec),
                       tuple(AGGREGATIONS[agg](pl.col(column)).alias(f"{prefix}{column}_{agg.upper()}")
                             for column, names in spec.items() for agg in names))


def row_count(name: str) -> Aggregation:
    """The number of rows per key."""
    return Aggregation((pl.lit(1, pl.UInt8).alias("_row"),), (pl.col("_row").list.len().alias(name),))


def grouped(frame: pl.LazyFrame, key: str, aggregation: Aggregation) -> pl.LazyFrame:
    """One row per key, in key order: the aggregation's outputs.

    `frame` must be sorted by `key` (prepare writes the tables so; the API sorts a client's rows).
    Each key's rows are then a contiguous slice, collected as lists in row order, and every list
    aggregation runs over one key's values in that order: float sums come out identical from run
    to run, whatever the number of threads. (A hash group-by adds in an order that varies:
    measured 1-ulp differences, which float32 rounding sometimes keeps.) Collecting lists and then
    aggregating was also measured 2-3x faster than aggregating the sorted slices directly
    (previous_application at full scale, 30 numeric aggregates: 0.60 s -> 0.20 s).
    """
    inputs: dict[str, pl.Expr] = {}
    for expr in aggregation.inputs:
        name = expr.meta.output_name()
        if name in inputs and not inputs[name].meta.eq(expr):
            raise ValueError(f"two different aggregation inputs are named {name}")
        inputs[name] = expr
    lists = (frame.select([pl.col(key), *inputs.values()]).set_sorted(key)
             .group_by(key, maintain_order=True).agg([pl.col(name) for name in inputs]))
    return lists.select([pl.col(key), *aggregation.outputs])


def level_indicators(column: str, levels: list[str], prefix: str = "") -> list[pl.Expr]:
    """0/1 indicator per known level (and per missing value); unknown levels are all zeros."""
    exprs = []
    for level in levels:
        hit = pl.col(column).is_null() if level == NULL_LEVEL else pl.col(column).eq_missing(pl.lit(level))
        exprs.append(hit.cast(pl.Float64).alias(clean_name(f"{prefix}{column}_{level}")))
    return exprs


def level_shares(column: str, levels: list[str], prefix: str) -> Aggregation:
    """Share of each known level (and of missing values) among a key's rows.

    The text column is coded once as small integers (known levels 0..n-1, unknown n, missing n+1);
    each share is then a count of matches in the key's list of codes, over the list's length.
    """
    return _level_shares(column, tuple(levels), prefix)


@lru_cache(maxsize=1024)  # built once per vocabulary: an API request with history reuses them (6 ms each)
def _level_shares(column: str, levels: tuple[str, ...], prefix: str) -> Aggregation:
    known = [level for level in levels if level != NULL_LEVEL]
    code = f"_code_{column}"
    missing = pl.when(pl.col(column).is_null()).then(pl.lit(len(known) + 1, pl.UInt16)).otherwise(len(known))
    coded = pl.col(column).cast(pl.Enum(known), strict=False).to_physical().cast(pl.UInt16).fill_null(missing)
    outputs = tuple((pl.col(code).list.count_matches(len(known) + 1 if level == NULL_LEVEL else known.index(level))
                     / pl.col(code).list.len()).alias(clean_name(f"{prefix}{column}_{level}") + "_MEAN")
                    for level in levels)
    return Aggregation((coded.alias(code),), outputs)
