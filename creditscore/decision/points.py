"""The score in points: a probability of default on the scale a credit team quotes (PDO scaling).

`base_points` at good:bad odds of `base_odds`, and `pdo` more points each time those odds double, so a
higher score is a safer client. The scorecard's card, the validator's bands and the API's `points` use it.
"""
from __future__ import annotations

import math

import numpy as np


def points_of(proba, base_points: float, base_odds: float, pdo: float) -> np.ndarray:
    """Points of each probability of default, clipped to [1e-6, 1 - 1e-6] (an isotonic calibration gives 0 to its
    safest step: its points stay finite, 884 with the defaults)."""
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-6, 1 - 1e-6)
    return base_points + pdo / math.log(2) * (np.log((1 - p) / p) - math.log(base_odds))
