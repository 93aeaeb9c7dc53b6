"""Single-feature risk shapes: the application part of the default log-odds, read off observed columns.

The real data's default rate is a non-linear function of single columns (steep at the low end of
EXT_SOURCE, a hump in the middle of AMT_GOODS_PRICE and AMT_CREDIT, a jagged payment rate, missing
DAYS_EMPLOYED (pensioners) low-risk, missing EXT_SOURCE_3 high-risk) with little interaction, so
additive boosting does as well as full boosting there and better than a logistic regression.
`shapes.json` holds, per numeric column, log-odds at value knots (interpolated linearly, flat beyond
the ends) and the log-odds when missing, and per category column the log-odds of each level.
It is fitted by `tools/fit_shapes.py` so that the synthetic default rate by decile and by category
matches the real profile's (statistics only; no rows).
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.data.schema import SENTINEL_DAYS

SHAPES = Path(__file__).with_name("shapes.json")
MISSING = "<missing>"
# Kernel ratios (numerator, denominator); PAYMENT_RATE carries a shape.
RATIOS = {"DAYS_EMPLOYED_PERC": ("DAYS_EMPLOYED", "DAYS_BIRTH"),
          "INCOME_CREDIT_PERC": ("AMT_INCOME_TOTAL", "AMT_CREDIT"),
          "INCOME_PER_PERSON": ("AMT_INCOME_TOTAL", "CNT_FAM_MEMBERS"),
          "ANNUITY_INCOME_PERC": ("AMT_ANNUITY", "AMT_INCOME_TOTAL"),
          "PAYMENT_RATE": ("AMT_ANNUITY", "AMT_CREDIT")}


@lru_cache(maxsize=1)
def load_shapes() -> dict:
    """The fitted shapes shipped with the package."""
    return json.loads(SHAPES.read_text())


def _present(frame: pl.DataFrame, name: str) -> np.ndarray:
    s = frame[name].cast(pl.Float64)
    if name.startswith("DAYS_"):
        s = pl.Series(name, s.to_numpy()).replace(float(SENTINEL_DAYS), None)
    return s.to_numpy().astype(np.float64)


def column_values(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A numeric column (365243 as missing) or a kernel ratio, NaN for missing."""
    if name in RATIOS:
        a, b = RATIOS[name]
        with np.errstate(divide="ignore", invalid="ignore"):
            out = _present(frame, a) / _present(frame, b)
        out[~np.isfinite(out)] = np.nan
        return out
    return _present(frame, name)


def category_codes(frame: pl.DataFrame, name: str) -> np.ndarray:
    """A category column as strings, MISSING for nulls."""
    return frame[name].cast(pl.String).fill_null(MISSING).to_numpy().astype(str)


def numeric_effect(x: np.ndarray, shape: dict) -> np.ndarray:
    """Log-odds of a numeric shape at values x (missing values get the shape's `missing`)."""
    out = np.interp(np.nan_to_num(x), shape["values"], shape["logodds"])
    return np.where(np.isnan(x), shape["missing"], out)


def category_effect(codes: np.ndarray, levels: dict) -> np.ndarray:
    """Log-odds of each category code (an unlisted level adds nothing)."""
    keys = np.asarray(list(levels), dtype=str)
    vals = np.asarray(list(levels.values()), dtype=float)
    order = np.argsort(keys)
    idx = np.clip(np.searchsorted(keys[order], codes), 0, len(keys) - 1)
    return np.where(keys[order][idx] == codes, vals[order][idx], 0.0)


def shape_score(frame: pl.DataFrame, shapes: dict | None = None) -> np.ndarray:
    """The application part of the default log-odds: the sum of the single-feature shapes."""
    shapes = shapes or load_shapes()
    total = np.zeros(frame.height)
    for name, shape in shapes["numeric"].items():
        total += numeric_effect(column_values(frame, name), shape)
    for name, levels in shapes["categories"].items():
        total += category_effect(category_codes(frame, name), levels)
    return total
