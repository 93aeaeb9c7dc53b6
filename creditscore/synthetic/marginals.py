"""Sample columns from the marginals of real rows (quantiles, category shares, missing shares)."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.data.schema import SENTINEL_DAYS

MARGINALS = Path(__file__).with_name("marginals.json")
DISCRETE_MAX = 30  # numeric columns with at most this many listed values are sampled as discrete


@lru_cache(maxsize=1)
def load_marginals() -> dict:
    """Return the derived statistics of real rows shipped with the package."""
    return json.loads(MARGINALS.read_text())


def column_stats(table: str, column: str) -> dict:
    """Return the statistics of one column (application_test shares application_train's)."""
    table = "application_train" if table == "application_test" else table
    return load_marginals()[table]["columns"][column]


def quantile_curve(points: list[list[float]], u: np.ndarray) -> np.ndarray:
    """Inverse CDF: interpolate the (probability, value) quantile points at u."""
    probs, values = np.asarray(points, dtype=float).T
    return np.interp(u, probs, values)


def scaled_counts(points: list[list[float]], mean: float, u: np.ndarray) -> np.ndarray:
    """Rows per parent: the profile's shape, rescaled to a target mean, at least 1."""
    shape = quantile_curve(points, u)
    shape_mean = quantile_curve(points, (np.arange(1000) + 0.5) / 1000).mean()
    return np.maximum(1, np.rint(shape * mean / shape_mean)).astype(np.int64)


def without_sentinel(stats: dict) -> list[list[float]]:
    """Quantile points of the values that are not the 365243 sentinel, rescaled to [0, 1]."""
    share = stats.get("share_365243", 0.0)
    if not share:
        return stats["quantiles"]
    kept = [[p / (1 - share), v] for p, v in stats["quantiles"] if v != SENTINEL_DAYS and p <= 1 - share]
    # the sentinel only stands in DAYS_* columns, whose real values end at 0 (today)
    return kept if kept[-1][0] >= 1 else kept + [[1.0, max(kept[-1][1], 0.0)]]


def _numeric(stats: dict, u: np.ndarray) -> np.ndarray:
    values = stats.get("values")
    if values and len(values) <= DISCRETE_MAX and "share_365243" not in stats:
        keys = np.array([float(k) for k, _ in values])
        cum = np.cumsum([p for _, p in values])
        return keys[np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(keys) - 1)]
    sentinel_share = stats.get("share_365243", 0.0)
    out = quantile_curve(without_sentinel(stats), np.minimum(u / (1.0 - sentinel_share), 1.0))
    if sentinel_share:
        out = np.where(u >= 1.0 - sentinel_share, float(SENTINEL_DAYS), out)
    if stats.get("integer_valued"):
        out = np.rint(out)
    return out


def sample_codes(stats: dict, u: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Category codes for uniforms u (by descending share) and the category labels."""
    labels = [k for k, _ in stats["values"]]
    cum = np.cumsum([p for _, p in stats["values"]])
    codes = np.minimum(np.searchsorted(cum / cum[-1], u, side="right"), len(labels) - 1)
    return codes, labels


def categorical_series(name: str, codes: np.ndarray, labels: list[str], missing: np.ndarray | None = None) -> pl.Series:
    """A string Series from integer codes into labels; `missing` marks nulls."""
    idx = pl.Series(name, codes.astype(np.float64) if missing is None
                    else np.where(missing, np.nan, codes.astype(np.float64)), nan_to_null=True).cast(pl.UInt32)
    return pl.Series(name, labels, dtype=pl.String).gather(idx).alias(name)


def numeric_series(name: str, values: np.ndarray, integer: bool) -> pl.Series:
    """A numeric Series from floats with NaN for missing; integer columns become Int64."""
    s = pl.Series(name, values.astype(np.float64), nan_to_null=True)
    return s.cast(pl.Int64) if integer else s


def sample_series(table: str, column: str, n: int, rng: np.random.Generator,
                  u: np.ndarray | None = None, missing_u: np.ndarray | None = None,
                  integer: bool = False) -> pl.Series:
    """Draw one column of n rows from its marginal; u sets the rank, missing_u the missingness."""
    stats = column_stats(table, column)
    u = rng.random(n) if u is None else u
    missing = (rng.random(n) if missing_u is None else missing_u) < stats.get("missing", 0.0)
    if stats["kind"] == "categorical":
        codes, labels = sample_codes(stats, u)
        return categorical_series(column, codes, labels, missing)
    values = _numeric(stats, u)
    if not stats.get("integer_valued"):
        values = np.round(values, 3 if column.startswith("AMT_") else 6)
    values = np.where(missing, np.nan, values)
    return numeric_series(column, values, integer)
