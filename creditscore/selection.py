"""Feature selection with random probes: keep the features whose importance beats noise.

Probe columns of several kinds (Gaussian, uniform, binary, and permuted copies of real features,
which keep a real marginal but no link to the target) are added to the training matrix. LightGBM
is fitted on the training folds of a stratified split, over several seeds; in each run the probes'
gain importances set a threshold (their max, mean + 3σ, or a quantile) and a real feature "beats
the probes" when its importance is above it. Features that beat the probes in at least a given
share of runs are kept. Only training folds are ever fitted on.
"""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
from sklearn.model_selection import StratifiedKFold

PROBE_KINDS = ("gaussian", "uniform", "binary", "permuted")
RULES = ("max", "mean3sd", "quantile")


def make_probes(x: np.ndarray, per_kind: int, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """Probe columns for the rows of x, and their names (PROBE_<kind>_<i>)."""
    n, columns, names = x.shape[0], [], []
    for i in range(per_kind):
        source = x[:, rng.integers(0, x.shape[1])]
        draws = {"gaussian": rng.standard_normal(n), "uniform": rng.random(n),
                 "binary": (rng.random(n) < 0.5).astype(float), "permuted": rng.permutation(source)}
        for kind in PROBE_KINDS:
            columns.append(draws[kind])
            names.append(f"PROBE_{kind}_{i}")
    return np.column_stack(columns), names


def probe_threshold(probe_importance: np.ndarray, rule: str, quantile: float = 0.95) -> float:
    """The importance a real feature must exceed in one run."""
    if rule == "max":
        return float(probe_importance.max())
    if rule == "mean3sd":
        return float(probe_importance.mean() + 3 * probe_importance.std())
    if rule == "quantile":
        return float(np.quantile(probe_importance, quantile))
    raise ValueError(f"params.yaml: probe.rule must be one of {RULES}, got {rule!r}")


def probe_runs(x: np.ndarray, y: np.ndarray, params: dict, model_params: dict) -> dict:
    """Gain importances of real features and probes over seeds × folds; which real features beat the probes."""
    wins = np.zeros(x.shape[1])
    importance_sum = np.zeros(x.shape[1])
    thresholds, runs = [], 0
    for seed in params["seeds"]:
        rng = np.random.default_rng(seed)
        probes, _ = make_probes(x, int(params["probes_per_kind"]), rng)
        augmented = np.hstack([x, probes])
        folds = StratifiedKFold(int(params["folds"]), shuffle=True, random_state=seed)
        for fit_idx, _ in folds.split(x, y):
            model = lgb.LGBMClassifier(random_state=seed, importance_type="gain", **model_params)
            model.fit(augmented[fit_idx], y[fit_idx])
            importance = model.feature_importances_
            real, noise = importance[: x.shape[1]], importance[x.shape[1]:]
            threshold = probe_threshold(noise, params["rule"], float(params.get("quantile", 0.95)))
            wins += real > threshold
            importance_sum += real
            thresholds.append(threshold)
            runs += 1
    return {"share_beating_probes": wins / runs, "mean_importance": importance_sum / runs,
            "mean_threshold": float(np.mean(thresholds)), "runs": runs}


def select(names: list[str], share: np.ndarray, min_share: float) -> list[str]:
    """Features that beat the probes in at least min_share of the runs, in their original order."""
    return [n for n, s in zip(names, share) if s >= min_share]
