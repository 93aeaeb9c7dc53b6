"""The planted default mechanism: latent risk factors per client and how they drive TARGET.

Each client gets independent standard-normal factors. Application factors set the rank of
application columns (EXT_SOURCE_1..3, DAYS_BIRTH, the payment rate AMT_ANNUITY/AMT_CREDIT); the
application part of the risk is then read off the observed columns through single-feature shapes
(`shapes.py`), as in the real data: non-linear, with little interaction. History factors enter
the log-odds linearly and only show through noisy history rows (bureau overdue and debt, late
instalments, refused previous applications, credit-card utilisation), so models that aggregate
the history tables gain a few AUC points over application-only models.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

# Application factors: they set the rank of their columns; the risk comes from the columns' shapes.
APPLICATION_FACTORS = ("ext_source_1", "ext_source_2", "ext_source_3", "age", "payment_rate")
# Weight of each history factor in the default log-odds (a positive factor value is riskier).
HISTORY_WEIGHTS = {"bureau_overdue": 0.45, "late_payment": 0.45, "refused_previous": 0.42,
                   "card_utilisation": 0.7}
LATE_PAYMENT_STEP = 0.8  # repeated late payment past a point is a step up in risk
EXT_COMMON = 0.35  # loading of the three EXT_SOURCE factors on a shared component
# Loading of EXT_SOURCE factors on the age factor (real Spearman with DAYS_BIRTH: -0.60, -0.10, -0.20):
# younger clients have lower external scores, so age and EXT_SOURCE_1 partly tell the same story.
AGE_LINK = {"ext_source_1": 0.6, "ext_source_3": 0.2}

# Drift knob: how far one unit of `data.drift` moves application_test's factors.
DRIFT_SHIFT = {"ext_source_1": 0.5, "ext_source_2": 0.5, "ext_source_3": 0.5, "age": 0.4}


def draw_factors(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """N(0,1) factors per client; the EXT_SOURCE factors share a component and lean on age."""
    factors = {name: rng.standard_normal(n) for name in (*APPLICATION_FACTORS, *HISTORY_WEIGHTS)}
    common = rng.standard_normal(n)
    for k in ("ext_source_1", "ext_source_2", "ext_source_3"):
        factors[k] = EXT_COMMON * common + np.sqrt(1 - EXT_COMMON**2) * factors[k]
    for k, a in AGE_LINK.items():
        factors[k] = a * factors["age"] + np.sqrt(1 - a**2) * factors[k]
    return factors


def shift_factors(factors: dict[str, np.ndarray], mask: np.ndarray, drift: float) -> None:
    """Move the factors of the masked clients by `drift` units (riskier, younger)."""
    for name, step in DRIFT_SHIFT.items():
        factors[name] = np.where(mask, factors[name] + drift * step, factors[name])


def history_score(factors: dict[str, np.ndarray]) -> np.ndarray:
    """The history part of the default log-odds: weighted history factors and a step on late payment."""
    linear = sum(w * factors[k] for k, w in HISTORY_WEIGHTS.items())
    return linear + LATE_PAYMENT_STEP * (factors["late_payment"] > 1.2)


def risk_score(factors: dict[str, np.ndarray], application: np.ndarray) -> np.ndarray:
    """Default log-odds before the intercept: the application shapes plus the history part."""
    return application + history_score(factors)


def solve_intercept(score: np.ndarray, target_rate: float) -> float:
    """Intercept b such that mean(sigmoid(b + score)) equals the target rate."""
    lo, hi = -15.0, 5.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if expit(mid + score).mean() < target_rate else (lo, mid)
    return (lo + hi) / 2


def draw_target(score: np.ndarray, intercept: float, rng: np.random.Generator) -> np.ndarray:
    """TARGET in {0, 1} drawn from the logistic model."""
    return (rng.random(score.shape[0]) < expit(intercept + score)).astype(np.int64)
