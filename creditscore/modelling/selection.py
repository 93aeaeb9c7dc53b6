"""Feature selection with random probes: keep the features whose importance beats noise.

Probe columns of several kinds (Gaussian, uniform, binary, and permuted copies of real features,
which keep a real marginal but no link to the target) are added to the training matrix. LightGBM
is fitted on the training folds of a stratified split, over several seeds; in each run the probes'
gain importances set a threshold (their max, mean + 3σ, or a quantile) and a real feature "beats
the probes" when its importance is above it. Features that beat the probes in at least a given
share of runs are kept. Only training folds are ever fitted on.

The guard: a selection is only served when it does not cost accuracy out of sample. The whole
procedure (probes, runs, rule) is repeated on the training part of outer folds; LightGBM is fitted
there on each candidate set (the probe selection, the features that earned any gain, every feature)
and scored on the outer fold, which neither the selection nor the fit saw. The smallest set whose
out-of-sample AUC is within `probe.tolerance` of the best set's is the one served.
"""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

from creditscore.compute import Runner
from creditscore.errors import ParamsError
from creditscore.modelling.sampling import stratified_sample
from creditscore.params import Probe

PROBE_KINDS = ("gaussian", "uniform", "binary", "permuted")
RULES = ("max", "mean3sd", "quantile")
SETS = ("probe", "used", "all")  # the candidate sets of the guard, smallest first


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
    raise ParamsError(f"params.yaml: probe.rule must be one of {RULES}, got {rule!r}")


def booster_params(model_params: dict, seed: int) -> dict:
    """LightGBM's native parameters for the probe model (the scikit-learn names are LightGBM aliases)."""
    params = {k: v for k, v in model_params.items() if k != "n_estimators"}
    return {"objective": "binary", "seed": seed, "verbose": -1, **params}


def seed_runs(item: tuple[int, np.ndarray | None], x: np.ndarray, y: np.ndarray, params: Probe, model_params: dict,
              tick=None) -> list[tuple[np.ndarray, float]]:
    """One task: a seed's probe runs on the rows `item[1]` of x (every row when None).

    The seed draws the probes and the folds. The seed's matrix (features and its probes) is binned once into a
    LightGBM Dataset; every fold fits on a subset of it, which reuses the bins (they see no label) instead of
    binning the fold's rows again. Returns each fold's gain importances of the real features and its threshold.
    """
    seed, rows = item
    if rows is not None:
        x, y = x[rows], y[rows]
    rng = np.random.default_rng(seed)
    probes, _ = make_probes(x, params.probes_per_kind, rng)
    booster = booster_params(model_params, seed)
    binned = lgb.Dataset(np.hstack([x, probes]), y, params=booster, free_raw_data=True).construct()
    out = []
    for fit_idx, _ in StratifiedKFold(params.folds, shuffle=True, random_state=seed).split(x, y):
        model = lgb.train(booster, binned.subset(fit_idx), num_boost_round=int(model_params.get("n_estimators", 100)))
        importance = model.feature_importance(importance_type="gain")
        real, noise = importance[: x.shape[1]], importance[x.shape[1]:]
        out.append((real, probe_threshold(noise, params.rule, params.quantile)))
        if tick:
            tick()
    return out


def combine_runs(per_seed: list[list[tuple[np.ndarray, float]]], n_features: int) -> dict:
    """Which real features beat the probes, over every seed's folds (in seed then fold order)."""
    wins, importance_sum, thresholds = np.zeros(n_features), np.zeros(n_features), []
    for real, threshold in (run for runs in per_seed for run in runs):
        wins += real > threshold
        importance_sum += real
        thresholds.append(threshold)
    return {"share_beating_probes": wins / len(thresholds), "mean_importance": importance_sum / len(thresholds),
            "mean_threshold": float(np.mean(thresholds)), "runs": len(thresholds)}


def _many_runs(x, y, params: Probe, model_params: dict, row_sets: list, compute: Runner | None) -> list[dict]:
    """The probe runs of every seed on each set of rows (None: every row), as tasks; one combined result per set."""
    compute = compute or Runner()
    model_params = {**model_params, "n_jobs": compute.threads(int(model_params.get("n_jobs", 0)))}
    items = [(seed, rows) for rows in row_sets for seed in params.seeds]
    done = compute.map(seed_runs, items, {"x": x, "y": y, "params": params, "model_params": model_params},
                       progress=("probe runs", "fit", params.folds), ticks=True)
    n = len(params.seeds)
    return [combine_runs(done[i * n:(i + 1) * n], x.shape[1]) for i in range(len(row_sets))]


def probe_runs(x: np.ndarray, y: np.ndarray, params: Probe, model_params: dict, compute: Runner | None = None) -> dict:
    """Gain importances of real features and probes over seeds × folds; which real features beat the probes."""
    return _many_runs(x, y, params, model_params, [None], compute)[0]


def select(names: list[str], share: np.ndarray, min_share: float) -> list[str]:
    """Features that beat the probes in at least min_share of the runs, in their original order."""
    return [n for n, s in zip(names, share) if s >= min_share]


def candidate_sets(names: list[str], runs: dict, min_share: float) -> dict[str, list[str]]:
    """The sets the guard compares, smallest first: the probe selection, every feature with gain in some run, all."""
    return {"probe": select(names, runs["share_beating_probes"], min_share),
            "used": [n for n, g in zip(names, runs["mean_importance"]) if g > 0],
            "all": list(names)}


def _fit_predict(x_fit, y_fit, x_val, columns: list[int], seed: int, model_params: dict) -> np.ndarray:
    if not columns:  # an empty selection predicts the training default rate
        return np.full(len(x_val), y_fit.mean())
    model = lgb.LGBMClassifier(random_state=seed, verbose=-1, **model_params).fit(x_fit[:, columns], y_fit)
    return model.predict_proba(x_val[:, columns])[:, 1]


def guard_rows(fit: np.ndarray, y: np.ndarray, size: int | None, seed: int) -> np.ndarray:
    """The rows of an outer training part the guard selects and fits on: all of them, or above `size`
    (`probe.guard_sample`) a stratified sample of that many, in ascending order."""
    if size is None or len(fit) <= size:
        return fit
    return fit[stratified_sample(len(fit), y[fit], size, seed)]


def validate_sets(x: np.ndarray, y: np.ndarray, params: Probe, model_params: dict, seed: int, log=None,
                  compute: Runner | None = None) -> dict:
    """Out-of-sample AUC of each candidate set: selected on the outer training folds, scored on the outer fold.

    Above `probe.guard_sample` clients, the selection and the fits of each outer training part see a stratified
    sample of it (`guard_rows`); every client of the outer fold is still scored.
    Returns the pooled out-of-fold AUC per set, the AUC per outer fold and set, each fold's set sizes and the
    clients each outer fold's selection saw.
    The probe runs of every outer fold are tasks (`compute`); the sets are fitted here.
    """
    index = [str(i) for i in range(x.shape[1])]
    oof = {s: np.zeros(len(y)) for s in SETS}
    per_fold = {s: [] for s in SETS}
    sizes = {s: [] for s in SETS}
    outer = [(guard_rows(fit, y, params.guard_sample, seed), val)
             for fit, val in StratifiedKFold(params.validation_folds, shuffle=True, random_state=seed).split(x, y)]
    fold_runs = _many_runs(x, y, params, model_params, [fit for fit, _ in outer], compute)
    for k, ((fit, val), runs) in enumerate(zip(outer, fold_runs)):
        for name, columns in candidate_sets(index, runs, params.min_share).items():
            columns = [int(c) for c in columns]
            oof[name][val] = _fit_predict(x[fit], y[fit], x[val], columns, seed, model_params)
            per_fold[name].append(float(roc_auc_score(y[val], oof[name][val])))
            sizes[name].append(len(columns))
        if log:
            log(f"outer fold {k + 1}: " + ", ".join(f"{s} {sizes[s][-1]} features AUC {per_fold[s][-1]:.4f}"
                                                   for s in SETS))
    return {"auc": {s: float(roc_auc_score(y, oof[s])) for s in SETS}, "fold_auc": per_fold, "sizes": sizes,
            "clients": [len(fit) for fit, _ in outer]}


def guarded_choice(auc: dict[str, float], tolerance: float, sizes: dict[str, int]) -> str:
    """The smallest non-empty candidate set whose out-of-sample AUC is at most `tolerance` below the best set's.

    The reference is the best set, not every feature: when the features that earned gain beat every feature,
    a probe selection within the tolerance of every feature can still be well below them (real rows, 12,800
    clients: probe 0.7343, every feature 0.7358, used 0.7398 out of sample; the submission scored 0.7434 with
    the probe selection, 0.7538 with `used`).

    On data too small for the probe model to split, every set scores 0.5 and the probes keep nothing: the
    choice is then every feature, and the train stage's benchmark decides what to make of them.
    """
    reference = max(auc[s] for s in SETS if sizes[s] > 0)
    return next(s for s in SETS if sizes[s] > 0 and auc[s] >= reference - tolerance)
