"""Probability calibration fitted on out-of-fold predictions, stored as plain numbers for serving."""
from __future__ import annotations

import numpy as np
from scipy.special import expit, logit
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from creditscore.errors import ParamsError

METHODS = ("isotonic", "sigmoid")


def fit_calibration(proba: np.ndarray, y: np.ndarray, method: str, floor: float = 0.0, ceiling: float = 1.0) -> dict:
    """Fit a monotone map from model score to observed default rate; return it as JSON-ready numbers.

    Every calibrated probability is then kept within [`floor`, `ceiling`]: no client is certain to repay or to
    default, whatever the few clients at an end of the score range happened to do (an isotonic step with no
    defaulter in it would say 0).
    """
    if not 0.0 <= floor < ceiling <= 1.0:
        raise ParamsError(f"params.yaml: threshold: pd_floor must be below pd_ceiling, within [0, 1], got {floor} and "
                         f"{ceiling}")
    bounds = {"floor": float(floor), "ceiling": float(ceiling)}
    if method == "isotonic":
        iso = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(proba, y)
        return {"method": method, "x": iso.X_thresholds_.tolist(), "y": iso.y_thresholds_.tolist(), **bounds}
    if method == "sigmoid":  # Platt scaling on the log-odds of the score
        z = logit(np.clip(proba, 1e-6, 1 - 1e-6)).reshape(-1, 1)
        lr = LogisticRegression(C=1e6).fit(z, y)
        return {"method": method, "a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0]), **bounds}
    raise ParamsError(f"params.yaml: threshold.calibration must be one of {METHODS}, got {method!r}")


def calibrate(proba: np.ndarray, calibration: dict) -> np.ndarray:
    """Calibrated probability of default for model scores (the same function in the stage and the API), within
    the calibration's floor and ceiling."""
    proba = np.asarray(proba, dtype=float)
    if calibration["method"] == "isotonic":
        out = np.interp(proba, calibration["x"], calibration["y"])
    else:
        out = expit(calibration["a"] * logit(np.clip(proba, 1e-6, 1 - 1e-6)) + calibration["b"])
    return np.clip(out, calibration["floor"], calibration["ceiling"])


def reliability(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> list[dict]:
    """Mean predicted probability against observed default rate, per quantile bin of the predictions."""
    edges = np.unique(np.quantile(proba, np.linspace(0, 1, bins + 1)))
    index = np.clip(np.searchsorted(edges, proba, side="right") - 1, 0, len(edges) - 2)
    return [{"mean_predicted": float(proba[index == b].mean()), "fraction_defaults": float(y[index == b].mean()),
             "clients": int((index == b).sum())} for b in range(len(edges) - 1) if (index == b).any()]
