"""Local contributions for whichever model the pipeline chose; shared by `explain` and the API (reasons: `reasons`).

`contributions` gives, for each client and feature, how far that feature moves the model's own score
(log-odds for LightGBM and logistic regression) away from the base value; contributions plus the base
value equal the score exactly. For LightGBM these are the booster's TreeSHAP values (`pred_contrib`),
for logistic regression the exact linear SHAP values against the training data (coefficient x
standardised value, the scaler having centred every feature on its training mean), and for the ensemble
(`creditscore.modelling.models.CrossFitEnsemble`) the same weighted sum of its fold models' contributions as its
score; for
the points scorecard, each feature's coefficient times its weight of evidence, centred on the training clients. The
explain stage checks them against the `shap` library. None needs `shap` at serving time.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from creditscore.modelling.models import members, model_kind

BATCH = 256  # rows from which contributions use every core


@dataclass(frozen=True)
class Contributions:
    values: np.ndarray   # (clients, features)
    base: np.ndarray     # (clients,)
    space: str           # what values + base add up to: "log-odds" or "probability"

    @property
    def score(self) -> np.ndarray:
        return self.values.sum(axis=1) + self.base


def preprocess(pipeline, x: np.ndarray) -> np.ndarray:
    """The pipeline's prediction-time transforms (imputation, scaling); samplers only act during fit."""
    for _, step in pipeline.steps[:-1]:
        if hasattr(step, "transform"):
            x = step.transform(x)
    return np.asarray(x, dtype=np.float64)


def contributions(pipeline, x: np.ndarray) -> Contributions:
    """Per-feature contributions to the model score for the rows of `x` (features in the model's order)."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float64))
    model = pipeline.steps[-1][1]
    kind = model_kind(pipeline)
    if kind == "ensemble":
        parts = [(contributions(m, x), w) for m, w in members(pipeline)]
        return Contributions(sum(w * c.values for c, w in parts), sum(w * c.base for c, w in parts), "log-odds")
    xt = preprocess(pipeline, x)
    if kind == "lightgbm":
        # one thread for the API's single rows (one per gunicorn worker), every core for the explain stage's batches
        out = model.booster_.predict(xt, pred_contrib=True, num_threads=1 if len(xt) < BATCH else 0)
        return Contributions(out[:, :-1], out[:, -1], "log-odds")
    if kind == "logistic_regression":
        names = [n for n, _ in pipeline.steps]
        if "scale" not in names:
            raise ValueError("linear contributions need the StandardScaler step that centres the features")
        coef = model.coef_[0]
        return Contributions(xt * coef, np.full(len(xt), float(model.intercept_[0])), "log-odds")
    if kind == "scorecard":  # coefficient x (WoE - its training mean): linear SHAP on the weights of evidence
        values, base = model.parts(x)
        return Contributions(values, base, "log-odds")
    if kind == "dummy":
        prior = float(model.class_prior_[1])
        return Contributions(np.zeros_like(xt), np.full(len(xt), math.log(prior / (1 - prior))), "log-odds")
    import shap  # random forest only: TreeSHAP in probability space (slow; not a served default)
    explainer = shap.TreeExplainer(model)
    values = np.asarray(explainer.shap_values(xt, check_additivity=False))
    values = values[..., 1] if values.ndim == 3 else values
    base = np.atleast_1d(explainer.expected_value)[-1]
    return Contributions(values, np.full(len(xt), float(base)), "probability")


def raw_score(pipeline, x: np.ndarray) -> np.ndarray:
    """The score the contributions add up to, computed by the model itself (for checks)."""
    kind = model_kind(pipeline)
    if kind == "lightgbm":
        return pipeline.steps[-1][1].booster_.predict(preprocess(pipeline, x), raw_score=True)
    if kind == "ensemble":
        return sum(w * raw_score(m, x) for m, w in members(pipeline))
    p = pipeline.predict_proba(x)[:, 1]
    if kind == "random_forest":
        return p
    p = np.clip(p, 1e-15, 1 - 1e-15)
    return np.log(p / (1 - p))


def typical_values(x_granted: np.ndarray) -> np.ndarray:
    """Median of each feature over granted clients, ignoring missing values (NaN where all are missing)."""
    x = np.asarray(x_granted, dtype=np.float64)
    out = np.full(x.shape[1], np.nan)
    present = ~np.isnan(x).all(axis=0)
    out[present] = np.nanmedian(x[:, present], axis=0)
    return out


def labels_from_manifest(manifest: list[dict]) -> dict[str, str]:
    return {row["name"]: row["meaning"] for row in manifest}
