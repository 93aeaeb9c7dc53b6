"""The figures a model validator asks for: Gini, KS, score bands, Brier score and expected calibration error.

All take the truth (1 = default) and a probability of default. Bands are equal-count: clients are ranked
by probability (ties in their given order, so the bands are stable) and cut into `n` groups of sizes that
differ by at most one; band 1 is the lowest risk. Approving bands 1..k gives the cumulative approval rate
and the default rate among the approved at that cut.
"""
from __future__ import annotations

import numpy as np
from sklearn.metrics import brier_score_loss, precision_recall_curve, roc_auc_score, roc_curve

from creditscore.decision.calibration import reliability
from creditscore.decision.points import points_of


def gini(y: np.ndarray, proba: np.ndarray) -> float:
    """2·AUC − 1."""
    return 2.0 * float(roc_auc_score(y, proba)) - 1.0


def ks(y: np.ndarray, proba: np.ndarray) -> tuple[float, float]:
    """Kolmogorov–Smirnov statistic (largest gap between the defaulters' and the good clients' score
    distributions) and the probability at which it is reached (refuse at or above it)."""
    fpr, tpr, thresholds = roc_curve(y, proba)
    gap = tpr - fpr
    best = int(np.argmax(gap))
    return float(gap[best]), float(min(thresholds[best], 1.0))


def band_of(proba: np.ndarray, n: int) -> np.ndarray:
    """Equal-count band (1 = lowest probability) of each client."""
    order = np.argsort(proba, kind="stable")
    bands = np.empty(len(proba), dtype=np.int64)
    bands[order] = np.arange(len(proba)) * n // len(proba) + 1
    return bands


def score_bands(y: np.ndarray, proba: np.ndarray, n: int = 10, scale: dict | None = None) -> list[dict]:
    """Per band: clients, defaults, default rate, probability range (and points range with a `scale`:
    base_points, base_odds, pdo); cumulative approval and default rates."""
    y = np.asarray(y, dtype=np.int64)
    bands = band_of(np.asarray(proba, dtype=np.float64), n)
    rows, approved, approved_defaults = [], 0, 0
    for band in range(1, n + 1):
        mask = bands == band
        clients, defaults = int(mask.sum()), int(y[mask].sum())
        approved += clients
        approved_defaults += defaults
        rows.append({"band": band, "clients": clients, "defaults": defaults,
                     "default_rate": round(defaults / clients, 6) if clients else None,
                     "min_proba": round(float(proba[mask].min()), 6) if clients else None,
                     "max_proba": round(float(proba[mask].max()), 6) if clients else None,
                     **({"min_points": round(float(points_of(proba[mask].max(), **scale)), 1),
                         "max_points": round(float(points_of(proba[mask].min(), **scale)), 1)}
                        if scale and clients else {}),
                     "cumulative_approval_rate": round(approved / len(y), 6),
                     "cumulative_default_rate": round(approved_defaults / approved, 6) if approved else None})
    return rows


def expected_calibration_error(y: np.ndarray, proba: np.ndarray, n: int = 10) -> float:
    """Mean |predicted − observed default rate| over equal-count bands, weighted by their clients."""
    y = np.asarray(y, dtype=np.float64)
    proba = np.asarray(proba, dtype=np.float64)
    bands = band_of(proba, n)
    return float(sum(abs(proba[bands == b].mean() - y[bands == b].mean()) * (bands == b).sum()
                     for b in range(1, n + 1) if (bands == b).any()) / len(y))


def validator_figures(y: np.ndarray, proba: np.ndarray, n: int = 10, scale: dict | None = None) -> dict:
    """Gini, KS and its probability (and points), Brier score, expected calibration error and the score bands."""
    statistic, at = ks(y, proba)
    return {"auc": round(float(roc_auc_score(y, proba)), 5), "gini": round(gini(y, proba), 5),
            "ks": round(statistic, 5), "ks_probability": round(at, 6),
            **({"ks_points": round(float(points_of(at, **scale)), 1)} if scale else {}),
            "brier": round(float(brier_score_loss(y, proba)), 6),
            "ece": round(expected_calibration_error(y, proba, n), 6), "bands": score_bands(y, proba, n, scale)}


def holdout_curves(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, list[dict]]:
    """Hold-out ROC, precision-recall, reliability and confusion rows for `dvc plots`."""
    fpr, tpr, _ = roc_curve(y, proba)
    precision, recall, _ = precision_recall_curve(y, proba)
    step = max(1, len(fpr) // 400)  # keep the plot files small
    refused = proba >= threshold
    return {"roc": [{"fpr": float(a), "tpr": float(b)} for a, b in zip(fpr[::step], tpr[::step])],
            "precision_recall": [{"recall": float(r), "precision": float(p)}
                                 for r, p in zip(recall[::step], precision[::step])],
            "calibration": reliability(y, proba),
            "confusion": [{"actual": "default" if t else "good", "predicted": "refused" if r else "granted"}
                          for t, r in zip(y.astype(bool), refused)]}
