"""Stratified subsamples for scale: the probe stage and the train stage's benchmark above their sample size."""
from __future__ import annotations

import numpy as np
from sklearn.model_selection import train_test_split


def stratified_sample(n_rows: int, y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Row indices of a stratified subsample (all rows when size >= n_rows), in ascending order."""
    if size >= n_rows:
        return np.arange(n_rows)
    keep, _ = train_test_split(np.arange(n_rows), train_size=size, stratify=y, random_state=seed)
    return np.sort(keep)
