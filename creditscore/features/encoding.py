"""Category vocabularies (for one-hot and share features) and out-of-fold target encoding."""
from __future__ import annotations

import numpy as np
import polars as pl

from creditscore.features.core import NULL_LEVEL, clean_name


def fit_levels(frame: pl.LazyFrame, columns: list[str], max_levels: int, min_count: int) -> dict[str, list[str]]:
    """Known levels per text column: the most frequent first (ties by name), plus `nan` if any is missing."""
    counts = pl.collect_all([frame.group_by(column).agg(pl.len().alias("n")) for column in columns])
    return {column: _levels(count, column, max_levels, min_count) for column, count in zip(columns, counts)}


def _levels(counts: pl.DataFrame, column: str, max_levels: int, min_count: int) -> list[str]:
    counts = counts.sort(["n", column], descending=[True, False], nulls_last=True)
    known = [v for v, n in counts.iter_rows() if v is not None and n >= min_count][:max_levels]
    return known + ([NULL_LEVEL] if counts[column].null_count() > 0 else [])


def encode_out_of_fold(values: pl.Series, target: np.ndarray, folds: int, smoothing: float,
                       seed: int) -> tuple[np.ndarray, dict[str, float], float]:
    """Smoothed mean TARGET per level: out of fold for the training rows, full-data mapping for others.

    A row's own label never enters its encoding; the returned mapping (fitted on all training rows)
    encodes hold-out, test and serving rows. Missing values form their own level.
    """
    from sklearn.model_selection import StratifiedKFold  # here: the stage imports in 0.2 s instead of 1.2 s

    keys = values.fill_null(NULL_LEVEL).to_numpy().astype(str)
    encoded = np.empty(len(keys))
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for fit_idx, enc_idx in splitter.split(keys, target):
        mapping, prior = _smoothed_means(keys[fit_idx], target[fit_idx], smoothing)
        encoded[enc_idx] = [mapping.get(k, prior) for k in keys[enc_idx]]
    mapping, prior = _smoothed_means(keys, target, smoothing)
    return encoded, mapping, prior


def _smoothed_means(keys: np.ndarray, target: np.ndarray, smoothing: float) -> tuple[dict[str, float], float]:
    prior = float(target.mean())
    levels, inverse = np.unique(keys, return_inverse=True)
    sums = np.bincount(inverse, weights=target)
    counts = np.bincount(inverse)
    means = (sums + smoothing * prior) / (counts + smoothing)
    return dict(zip(levels.tolist(), means.tolist())), prior


def apply_encoding(values: pl.Series, mapping: dict[str, float], prior: float) -> np.ndarray:
    """Encode rows that were not in the training folds (hold-out, test, one API client)."""
    keys = values.fill_null(NULL_LEVEL).to_list()
    return np.array([mapping.get(str(k), prior) for k in keys], dtype=float)


def target_encoded_name(column: str) -> str:
    """Feature name of a target-encoded column."""
    return clean_name(f"{column}_TARGET_ENC")
