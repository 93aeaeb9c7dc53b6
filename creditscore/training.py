"""Honest model comparison: every candidate scored out of fold on the same stratified folds."""
from __future__ import annotations

import itertools
import time

import numpy as np
from sklearn.base import clone
from sklearn.metrics import fbeta_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold, train_test_split

from creditscore.cost import choose_threshold, decision_report
from creditscore.models import make_pipeline


def stratified_sample(n_rows: int, y: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Row indices of a stratified subsample (all rows when size >= n_rows), in ascending order."""
    if size >= n_rows:
        return np.arange(n_rows)
    keep, _ = train_test_split(np.arange(n_rows), train_size=size, stratify=y, random_state=seed)
    return np.sort(keep)


def out_of_fold(pipeline, x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, float]:
    """Out-of-fold probabilities of a pipeline fitted on each training fold, and the total fit seconds.

    Samplers live inside the pipeline, so they resample the training folds only; the validation
    fold is predicted as it is.
    """
    oof, seconds = np.zeros(len(y)), 0.0
    for fit, val in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        model = clone(pipeline)
        start = time.perf_counter()
        model.fit(x[fit], y[fit])
        seconds += time.perf_counter() - start
        oof[val] = model.predict_proba(x[val])[:, 1]
    return oof, seconds


def score(y: np.ndarray, proba: np.ndarray, cost: dict, beta: float) -> dict:
    """AUC, and the business cost, recall, precision and F-beta at the candidate's own best threshold."""
    threshold = choose_threshold(y, proba, cost["fn_cost"], cost["fp_cost"])
    report = decision_report(y, proba, threshold, cost["fn_cost"], cost["fp_cost"])
    return {"auc": float(roc_auc_score(y, proba)), "threshold": threshold,
            "cost_per_client": report["cost_per_client"], "recall": report["recall"],
            "precision": report["precision"], "fbeta": float(fbeta_score(y, proba >= threshold, beta=beta)),
            **{k: report[k] for k in ("tp", "fp", "fn", "tn")}}


def candidates(models: list[str], strategies: list[str]) -> list[tuple[str, str]]:
    """Every (model, strategy) pair; the prior-only dummy needs no imbalance strategy."""
    return [(m, s) for m, s in itertools.product(models, strategies) if m != "dummy" or s == "none"]


def best(results: dict[str, dict]) -> str:
    """The candidate of least business cost, ties broken by the higher AUC."""
    return min(results, key=lambda k: (round(results[k]["cost_per_client"], 10), -results[k]["auc"]))


def search_space_draws(space: dict[str, list], budget: int, seed: int) -> list[dict]:
    """`budget` distinct random configurations from a grid of values (seeded)."""
    grid = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    order = np.random.default_rng(seed).permutation(len(grid))[:budget]
    return [grid[i] for i in order]


def evaluate(model: str, strategy: str, model_params: dict, x, y, params: dict, cost: dict, seed: int) -> dict:
    """Out-of-fold score and fit time of one candidate configuration."""
    pipeline = make_pipeline(model, strategy, seed, model_params)
    oof, seconds = out_of_fold(pipeline, x, y, int(params["folds"]), seed)
    return {**score(y, oof, cost, float(params["fbeta"])), "fit_seconds": round(seconds, 2), "model": model,
            "strategy": strategy, "params": model_params}


def benchmark(x: np.ndarray, y: np.ndarray, params: dict, cost: dict, seed: int, log=None) -> dict[str, dict]:
    """Score every candidate out of fold; `log(name, result)` is told of each."""
    results = {}
    for model, strategy in candidates(params["models"], params["strategies"]):
        name = f"{model}+{strategy}"
        results[name] = evaluate(model, strategy, params.get(model, {}), x, y, params, cost, seed)
        if log:
            log(name, results[name])
    return results


def tune_lightgbm(x, y, params: dict, strategy: str, cost: dict, seed: int, log=None) -> dict[str, dict]:
    """Random search over the LightGBM grid with the given imbalance strategy, on the same folds."""
    results = {}
    for i, draw in enumerate(search_space_draws(params["search_space"], int(params["search_budget"]), seed)):
        name = f"lightgbm+{strategy}+search{i}"
        results[name] = evaluate("lightgbm", strategy, {**params["lightgbm"], **draw}, x, y, params, cost, seed)
        if log:
            log(name, results[name])
    return results
