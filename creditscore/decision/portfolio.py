"""Money and segments: expected loss (PD × EAD × LGD) at the threshold, and the hold-out's figures by segment.

The exposure at default (EAD) of a new loan is its credit amount; the loss given default (LGD) is a parameter
(`params.yaml: portfolio.lgd`). The target is Kaggle's "payment difficulties" flag, so the probability of default
here is the calibrated probability of that event, and the expected loss is the loss if every such client
defaulted for good: an upper reading, stated as such in the model card.
"""
from __future__ import annotations

import re

import numpy as np
from sklearn.metrics import roc_auc_score


def level_key(label: str) -> tuple:
    """Segment levels in reading order: '<100,000' before '100,000-149,999' before '300,000+', then words."""
    digits = re.match(r"<?([0-9][0-9,]*)", label)
    if digits:
        return (0, -1 if label.startswith("<") else 0, int(digits.group(1).replace(",", "")))
    return (1, 0, label)


def expected_loss(pd_: np.ndarray, ead: np.ndarray, lgd: float) -> np.ndarray:
    """PD × EAD × LGD per client (a missing exposure counts as none)."""
    return np.asarray(pd_, dtype=np.float64) * np.nan_to_num(np.asarray(ead, dtype=np.float64)) * float(lgd)


def book(y: np.ndarray, pd_: np.ndarray, ead: np.ndarray, refused: np.ndarray, lgd: float) -> dict:
    """The approved book at the threshold: exposure, expected loss, its rate, and the loss the hold-out's labels
    give on the same book (every defaulter's exposure × LGD); the expected loss of every applicant beside it."""
    y, refused = np.asarray(y).astype(bool), np.asarray(refused).astype(bool)
    ead = np.nan_to_num(np.asarray(ead, dtype=np.float64))
    loss = expected_loss(pd_, ead, lgd)
    approved = ~refused
    exposure = float(ead[approved].sum())
    return {"clients": int(len(y)), "approved": int(approved.sum()), "lgd": float(lgd),
            "exposure_approved": round(exposure, 2),
            "expected_loss_approved": round(float(loss[approved].sum()), 2),
            "expected_loss_rate_approved": round(float(loss[approved].sum()) / exposure, 6) if exposure else None,
            "observed_loss_approved": round(float(ead[approved & y].sum()) * float(lgd), 2),
            "expected_loss_all_applicants": round(float(loss.sum()), 2),
            "expected_loss_per_approved_client": round(float(loss[approved].mean()), 2) if approved.any() else None}


def segment_figures(y: np.ndarray, pd_: np.ndarray, refused: np.ndarray, ead: np.ndarray, lgd: float,
                    segments: dict[str, np.ndarray], min_defaults: int) -> dict:
    """Per segment and level: clients, defaulters, default rate, approval rate, AUC and Gini, expected loss of the
    approved; `too_small` when it has fewer than `min_defaults` defaulters or good clients (its AUC is noise)."""
    y, refused = np.asarray(y).astype(int), np.asarray(refused).astype(bool)
    pd_ = np.asarray(pd_, dtype=np.float64)
    loss = expected_loss(pd_, ead, lgd)
    out = {}
    for name, labels in segments.items():
        labels = np.asarray(labels).astype(str)
        out[name] = {}
        for level in sorted(set(labels.tolist())):
            mask = labels == level
            defaults, clients = int(y[mask].sum()), int(mask.sum())
            small = min(defaults, clients - defaults) < min_defaults
            auc = float(roc_auc_score(y[mask], pd_[mask])) if 0 < defaults < clients else None
            out[name][level] = {
                "clients": clients, "defaulters": defaults, "default_rate": round(defaults / clients, 5),
                "approval_rate": round(float((~refused[mask]).mean()), 5),
                "auc": None if auc is None else round(auc, 5), "gini": None if auc is None else round(2 * auc - 1, 5),
                "expected_loss_approved": round(float(loss[mask & ~refused].sum()), 2), "too_small": bool(small)}
    return out
