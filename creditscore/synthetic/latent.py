"""The planted default mechanism: latent risk factors per client and how they drive TARGET.

Each client gets independent standard-normal factors. Application factors are read off
application columns (EXT_SOURCE_1..3, DAYS_BIRTH, the payment rate AMT_ANNUITY/AMT_CREDIT);
history factors only show through noisy history rows (bureau overdue and debt, late
instalments, refused previous applications, credit-card utilisation), so models that
aggregate the history tables gain a few AUC points over application-only models.
"""
from __future__ import annotations

import numpy as np
from scipy.special import expit

# Weight of each factor in the default log-odds (a positive factor value is riskier).
APPLICATION_WEIGHTS = {"ext_source_1": 0.55, "ext_source_2": 0.58, "ext_source_3": 0.6,
                       "age": 0.40, "payment_rate": 0.30}
HISTORY_WEIGHTS = {"bureau_overdue": 0.45, "late_payment": 0.45, "refused_previous": 0.42,
                   "card_utilisation": 0.7}
WEIGHTS = {**APPLICATION_WEIGHTS, **HISTORY_WEIGHTS}
NONLINEAR = {"payment_rate_u": 0.25, "late_payment_step": 0.8, "ext_age_interaction": 0.25}
EXT_COMMON = 0.35  # loading of the three EXT_SOURCE factors on a shared component

# Drift knob: how far one unit of `data.drift` moves application_test's factors.
DRIFT_SHIFT = {"ext_source_1": 0.5, "ext_source_2": 0.5, "ext_source_3": 0.5, "age": 0.4}


def draw_factors(n: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Independent N(0,1) factors per client; the EXT_SOURCE factors share a component."""
    factors = {name: rng.standard_normal(n) for name in WEIGHTS}
    common = rng.standard_normal(n)
    for k in ("ext_source_1", "ext_source_2", "ext_source_3"):
        factors[k] = EXT_COMMON * common + np.sqrt(1 - EXT_COMMON**2) * factors[k]
    return factors


def shift_factors(factors: dict[str, np.ndarray], mask: np.ndarray, drift: float) -> None:
    """Move the factors of the masked clients by `drift` units (riskier, younger)."""
    for name, step in DRIFT_SHIFT.items():
        factors[name] = np.where(mask, factors[name] + drift * step, factors[name])


def risk_score(factors: dict[str, np.ndarray], extra: np.ndarray) -> np.ndarray:
    """Default log-odds before the intercept: weighted factors, non-linear effects, weak observable effects.

    As in the real data, not every effect is linear: very short and very long loans are both riskier
    (a U-shape in the payment rate), and repeated late payment past a point is a step up in risk.
    """
    linear = sum(w * factors[k] for k, w in WEIGHTS.items())
    u_shape = NONLINEAR["payment_rate_u"] * (factors["payment_rate"] ** 2 - 1)
    step = NONLINEAR["late_payment_step"] * (factors["late_payment"] > 1.2)
    interaction = NONLINEAR["ext_age_interaction"] * factors["ext_source_3"] * factors["age"]
    return linear + u_shape + step + interaction + extra


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
