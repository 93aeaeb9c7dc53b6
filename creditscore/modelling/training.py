"""Honest model comparison: every candidate scored out of fold on the same stratified folds.

LightGBM's number of trees is not a fixed count: each fold grows trees until its validation AUC has not
improved for `early_stopping_rounds`, and the count served is the one that maximises the mean validation
AUC over the folds. The out-of-fold predictions are taken at that common count, and the refit uses it.
"""
from __future__ import annotations

import itertools
import time

import lightgbm as lgb
import numpy as np
from sklearn.base import clone
from sklearn.metrics import fbeta_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from creditscore.compute import Runner
from creditscore.decision.cost import choose_threshold, decision_report
from creditscore.modelling.leaves import leaf_floor
from creditscore.modelling.models import logit, make_pipeline
from creditscore.stage import progress_bar


def out_of_fold(pipeline, x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, float]:
    """Out-of-fold probabilities of a pipeline fitted on each training fold, and the total fit seconds.

    Samplers live inside the pipeline, so they resample the training folds only; the validation
    fold is predicted as it is.
    """
    oof, seconds = np.zeros(len(y)), 0.0
    with progress_bar(folds, "cross-validation folds") as bar:
        for fit, val in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
            model = clone(pipeline)
            start = time.perf_counter()
            model.fit(x[fit], y[fit])
            seconds += time.perf_counter() - start
            oof[val] = model.predict_proba(x[val])[:, 1]
            bar.update()
    return oof, seconds


def _fit_transform(steps, x, y):
    """Fit the steps before the model on a training fold: samplers resample it, transformers transform it."""
    for _, step in steps:
        if hasattr(step, "fit_resample"):
            x, y = step.fit_resample(x, y)
        else:
            x = step.fit_transform(x, y)
    return x, y


def _transform(steps, x):
    """Apply fitted transformers (samplers act during fit only) to rows to predict."""
    for _, step in steps:
        if not hasattr(step, "fit_resample"):
            x = step.transform(x)
    return x


def early_stopping_out_of_fold(pipeline, x: np.ndarray, y: np.ndarray, folds: int, seed: int, max_rounds: int,
                               patience: int) -> tuple[np.ndarray, int, float]:
    """Out-of-fold probabilities of a LightGBM pipeline at the tree count of best mean validation AUC.

    Each fold grows at most `max_rounds` trees and stops once its validation AUC has not improved for
    `patience` rounds; the common count is the argmax of the mean AUC curve over the length every fold
    reached. Returns the predictions, that count and the total fit seconds.
    """
    fitted, curves, seconds = [], [], 0.0
    with progress_bar(folds, "LightGBM folds (early stopping)") as bar:
        for fit, val in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
            model = clone(pipeline)
            model.steps[-1][1].set_params(n_estimators=max_rounds, metric="auc")
            start = time.perf_counter()
            x_fit, y_fit = _fit_transform(model.steps[:-1], x[fit], y[fit])
            x_val = _transform(model.steps[:-1], x[val])
            record: dict = {}
            model.steps[-1][1].fit(x_fit, y_fit, eval_X=x_val, eval_y=y[val],
                                   callbacks=[lgb.early_stopping(patience, verbose=False),
                                              lgb.record_evaluation(record)])
            seconds += time.perf_counter() - start
            fitted.append((model.steps[-1][1], x_val, val))
            curves.append(record["valid_0"]["auc"])
            bar.update()
    reached = min(len(c) for c in curves)
    rounds = int(np.argmax(np.mean([c[:reached] for c in curves], axis=0))) + 1
    oof = np.zeros(len(y))
    for estimator, x_val, val in fitted:
        oof[val] = estimator.predict_proba(x_val, num_iteration=rounds)[:, 1]
    return oof, rounds, seconds


def score(y: np.ndarray, proba: np.ndarray, cost: dict, beta: float) -> dict:
    """AUC, and the business cost, recall, precision and F-beta at the candidate's own best threshold."""
    threshold = choose_threshold(y, proba, cost["fn_cost"], cost["fp_cost"])
    report = decision_report(y, proba, threshold, cost["fn_cost"], cost["fp_cost"])
    return {"auc": float(roc_auc_score(y, proba)), "threshold": threshold,
            "cost_per_client": report["cost_per_client"], "recall": report["recall"],
            "precision": report["precision"], "fbeta": float(fbeta_score(y, proba >= threshold, beta=beta)),
            **{k: report[k] for k in ("tp", "fp", "fn", "tn")}}


def candidates(models: list[str], strategies: list[str]) -> list[tuple[str, str]]:
    """Every (model, strategy) pair; the prior-only dummy and the scorecard (its weights of evidence are the
    population's odds) take no imbalance strategy."""
    return [(m, s) for m, s in itertools.product(models, strategies) if m not in ("dummy", "scorecard") or s == "none"]


def best(results: dict[str, dict]) -> str:
    """The candidate of least business cost, ties broken by the higher AUC."""
    return min(results, key=lambda k: (round(results[k]["cost_per_client"], 10), -results[k]["auc"]))


def search_space_draws(space: dict[str, list], budget: int, seed: int) -> list[dict]:
    """`budget` distinct random configurations from a grid of values (seeded)."""
    grid = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    order = np.random.default_rng(seed).permutation(len(grid))[:budget]
    return [grid[i] for i in order]


def evaluate(model: str, strategy: str, model_params: dict, x, y, params: dict, cost: dict, seed: int,
             oof_seeds: int | None = None) -> dict:
    """Out-of-fold score, predictions and fit time of one candidate configuration.

    For LightGBM, `n_estimators` is the most trees a fold may grow; the returned params hold the count
    chosen by early stopping, which is what a refit uses. `oof_seeds`: see `blend`.
    """
    if model == "blend":  # its members again on these rows (the tree count by early stopping), the same weight
        lgb_params = {**model_params["lightgbm"], "n_estimators": params["lightgbm"]["n_estimators"]}
        trees = evaluate("lightgbm", model_params["lightgbm_strategy"], lgb_params, x, y, params, cost, seed)
        linear = (evaluate("logistic_regression", model_params["linear_strategy"], model_params["linear"], x, y,
                           params, cost, seed) if model_params["weight"] > 0 else None)
        return blend(trees, linear, x, y, params, cost, seed, weights=[model_params["weight"]], oof_seeds=oof_seeds)
    if model == "lightgbm":  # the refit uses these settings too, so the floor is the folds' (80% of these rows)
        model_params = leaf_floor(model_params, y, 1.0 - 1.0 / params["folds"])
    pipeline = make_pipeline(model, strategy, seed, model_params)
    if model == "lightgbm":
        oof, rounds, seconds = early_stopping_out_of_fold(pipeline, x, y, params["folds"], seed,
                                                          int(model_params["n_estimators"]),
                                                          params["early_stopping_rounds"])
        model_params = {**model_params, "n_estimators": rounds}
    else:
        oof, seconds = out_of_fold(pipeline, x, y, params["folds"], seed)
    return {**score(y, oof, cost, params["fbeta"]), "fit_seconds": round(seconds, 2), "model": model,
            "strategy": strategy, "params": model_params, "oof": oof}


def evaluate_candidate(candidate: tuple[str, str, dict], x, y, params: dict, cost: dict, seed: int) -> dict:
    """One task: `evaluate` of a (model, strategy, model params) candidate; runs here or on a Dask worker."""
    model, strategy, model_params = candidate
    return evaluate(model, strategy, model_params, x, y, params, cost, seed)


def _with_threads(model_params: dict, model: str, compute: Runner) -> dict:
    """On a cluster, LightGBM and the forest use a worker's threads, not every core of its machine."""
    if compute.local or model not in ("lightgbm", "random_forest"):
        return model_params
    return {**model_params, "n_jobs": compute.threads(0)}


def _evaluate_all(named: list[tuple[str, tuple[str, str, dict]]], x, y, params: dict, cost: dict, seed: int, log,
                  compute: Runner | None) -> dict[str, dict]:
    """Every named candidate out of fold, as tasks (`compute`); `log(name, result)` is told of each, in order."""
    compute = compute or Runner()
    results = {}
    if compute.local:  # one at a time, each told as soon as it is scored
        for name, candidate in named:
            results[name] = evaluate_candidate(candidate, x, y, params, cost, seed)
            if log:
                log(name, results[name])
        return results
    tasks = [(m, s, _with_threads(p, m, compute)) for _, (m, s, p) in named]
    done = compute.map(evaluate_candidate, tasks, {"x": x, "y": y, "params": params, "cost": cost, "seed": seed})
    for (name, (_, _, model_params)), result in zip(named, done):
        # the worker's thread count is where it ran, not the candidate's setting: the refits here use the machine's
        threads = {} if "n_jobs" not in model_params else {"n_jobs": model_params["n_jobs"]}
        results[name] = {**result, "params": {**{k: v for k, v in result["params"].items() if k != "n_jobs"}, **threads}}
        if log:
            log(name, results[name])
    return results


def benchmark(x: np.ndarray, y: np.ndarray, params: dict, cost: dict, seed: int, log=None,
              compute: Runner | None = None) -> dict[str, dict]:
    """Score every candidate out of fold; `log(name, result)` is told of each. The candidates are tasks."""
    named = [(f"{m}+{s}", (m, s, params.get(m, {}))) for m, s in candidates(params["models"], params["strategies"])]
    return _evaluate_all(named, x, y, params, cost, seed, log, compute)


def tune_lightgbm(x, y, params: dict, strategy: str, cost: dict, seed: int, log=None,
                  compute: Runner | None = None) -> dict[str, dict]:
    """Random search over the LightGBM grid with the given imbalance strategy, on the same folds (as tasks)."""
    draws = search_space_draws(params["search_space"], params["search_budget"], seed)
    named = [(f"lightgbm+{strategy}+search{i}", ("lightgbm", strategy, {**params["lightgbm"], **draw}))
             for i, draw in enumerate(draws)]
    return _evaluate_all(named, x, y, params, cost, seed, log, compute)


def blend(trees: dict, linear: dict | None, x, y, params: dict, cost: dict, seed: int,
          weights: list[float] | None = None, oof_seeds: int | None = None) -> dict:
    """The blend candidate: `trees` (a LightGBM result) bagged over seeds, mixed in log-odds with `linear`.

    The bag's out-of-fold predictions average LightGBM refitted with seeds seed+1, seed+2, ... on the same
    folds at the same tree count (seed itself is `trees`' own). The weight of the logistic regression is the
    one of `train.blend.weights` whose blended out-of-fold predictions have the highest AUC (the smallest on
    a tie): one number chosen on training folds only, never on the hold-out. `oof_seeds` (at most `seeds`)
    bags fewer members out of fold than the served bag holds: the scale path, whose weight is already chosen.
    """
    spec = params["blend"]
    seeds = spec["seeds"]
    bagged = seeds if oof_seeds is None else max(1, min(int(oof_seeds), seeds))
    start = time.perf_counter()
    z_trees = [logit(trees["oof"])]
    for i in range(1, bagged):
        pipeline = make_pipeline("lightgbm", trees["strategy"], seed + i, trees["params"])
        z_trees.append(logit(out_of_fold(pipeline, x, y, params["folds"], seed)[0]))
    z_bag = np.mean(z_trees, axis=0)
    grid = [0.0] if linear is None else sorted(float(w) for w in (spec["weights"] if weights is None else weights))
    z_lin = np.zeros(len(y)) if linear is None else logit(linear["oof"])
    aucs = [roc_auc_score(y, (1 - w) * z_bag + w * z_lin) for w in grid]
    weight = grid[int(np.argmax(aucs))]
    oof = 1.0 / (1.0 + np.exp(-((1 - weight) * z_bag + weight * z_lin)))
    blend_params = {"lightgbm_strategy": trees["strategy"], "lightgbm": trees["params"], "seeds": seeds,
                    "linear_strategy": linear["strategy"] if linear else "none",
                    "linear": linear["params"] if linear else {}, "weight": weight}
    seconds = time.perf_counter() - start + trees["fit_seconds"] + (linear["fit_seconds"] if linear else 0.0)
    return {**score(y, oof, cost, params["fbeta"]), "fit_seconds": round(seconds, 2), "model": "blend",
            "strategy": "none", "params": blend_params, "oof": oof, "oof_seeds": bagged,
            "weight_auc": {str(w): round(float(a), 5) for w, a in zip(grid, aucs)}}


def add_blend(results: dict[str, dict], base: str, x, y, params: dict, cost: dict, seed: int,
              log=None) -> dict[str, dict]:
    """The blend built on the LightGBM candidate `base`, with the logistic regression of highest AUC when one ran."""
    if "blend" not in params or params["blend"]["seeds"] < 1 or results[base]["model"] != "lightgbm":
        return {}
    linear = {k: v for k, v in results.items() if v["model"] == "logistic_regression"}
    lin = linear[max(linear, key=lambda k: (linear[k]["auc"], k))] if linear else None
    result = blend(results[base], lin, x, y, params, cost, seed)
    if log:
        log("blend", result)
    return {"blend": result}
