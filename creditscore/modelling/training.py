"""Honest model comparison: every candidate scored out of fold on the same stratified folds.

LightGBM's number of trees is not a fixed count: each fold grows trees until its validation AUC has not
improved for `early_stopping_rounds`, and the count served is the one that maximises the mean validation
AUC over the folds. The out-of-fold predictions are taken at that common count, and every fold model
served predicts with it.
"""
from __future__ import annotations

import itertools
import time

import lightgbm as lgb
import numpy as np
from scipy.optimize import minimize
from sklearn.base import clone
from sklearn.metrics import fbeta_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold

from creditscore.compute import Runner
from creditscore.decision.cost import choose_threshold, decision_report
from creditscore.errors import ParamsError
from creditscore.modelling.leaves import leaf_floor
from creditscore.modelling.models import SERVABLE, logit, make_pipeline, stacked_proba
from creditscore.params import Train
from creditscore.stage import progress_bar


def out_of_fold(pipeline, x: np.ndarray, y: np.ndarray, folds: int, seed: int) -> tuple[np.ndarray, float, list]:
    """Out-of-fold probabilities of a pipeline fitted on each training fold, the total fit seconds and the
    fitted fold pipelines (in fold order).

    Samplers live inside the pipeline, so they resample the training folds only; the validation
    fold is predicted as it is.
    """
    oof, seconds, models = np.zeros(len(y)), 0.0, []
    with progress_bar(folds, "cross-validation folds") as bar:
        for fit, val in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
            model = clone(pipeline)
            start = time.perf_counter()
            model.fit(x[fit], y[fit])
            seconds += time.perf_counter() - start
            oof[val] = model.predict_proba(x[val])[:, 1]
            models.append(model)
            bar.update()
    return oof, seconds, models


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


def _stop_keeping_every_tree(patience: int):
    """`lgb.early_stopping`, except that the booster keeps every tree it grew.

    LightGBM trims a booster that stopped early to its own best count. A fold whose best count is below the
    common one chosen over every fold would then lack trees, and would have to be fitted again. This callback
    stops when `lgb.early_stopping` does, and reports the last tree as the best, so that nothing is trimmed
    (raising `EarlyStopException` from a callback is how LightGBM documents a callback to stop training).
    """
    stop = lgb.early_stopping(patience, verbose=False)

    def callback(env) -> None:
        try:
            stop(env)
        except lgb.callback.EarlyStopException:
            raise lgb.callback.EarlyStopException(env.iteration, env.evaluation_result_list) from None

    callback.order = stop.order  # LightGBM runs the callbacks after each tree in this order
    return callback


def early_stopping_out_of_fold(pipeline, x: np.ndarray, y: np.ndarray, folds: int, seed: int, max_rounds: int,
                               patience: int) -> tuple[np.ndarray, int, float, list]:
    """Out-of-fold probabilities of a LightGBM pipeline at the tree count of best mean validation AUC.

    Each fold grows at most `max_rounds` trees and stops once its validation AUC has not improved for
    `patience` rounds; the common count is the argmax of the mean AUC curve over the length every fold
    reached. Every fold grew at least that many trees, and keeps them (`_stop_keeping_every_tree`): a fold
    model is cut to the common count, which gives the trees a fit of exactly that many would grow, since the
    fit is deterministic and a tree depends only on the trees before it. Returns the predictions, that count,
    the total fit seconds and the fold pipelines.
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
                                   callbacks=[_stop_keeping_every_tree(patience), lgb.record_evaluation(record)])
            seconds += time.perf_counter() - start
            fitted.append((model, val))
            curves.append(record["valid_0"]["auc"])
            bar.update()
    reached = min(len(c) for c in curves)
    rounds = int(np.argmax(np.mean([c[:reached] for c in curves], axis=0))) + 1
    oof, models = np.zeros(len(y)), []
    for model, val in fitted:
        booster = model.steps[-1][1].booster_
        booster.model_from_string(booster.model_to_string(num_iteration=rounds))  # the served model: `rounds` trees
        booster.best_iteration = rounds
        oof[val] = model.predict_proba(x[val])[:, 1]
        models.append(model)
    return oof, rounds, seconds, models


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


def least_cost(results: dict[str, dict]) -> str:
    """The candidate of least business cost at its own best out-of-fold threshold, ties broken by the higher AUC.

    Reported only (what a pick-one-winner rule would serve): between candidates this close, that cost is noise.
    """
    return min(results, key=lambda k: (round(results[k]["cost_per_client"], 10), -results[k]["auc"]))


def highest_auc(results: dict[str, dict]) -> str:
    """The candidate of highest out-of-fold AUC, ties broken by name."""
    return max(results, key=lambda k: (round(results[k]["auc"], 12), k))


def search_space_draws(space: dict[str, list], budget: int, seed: int) -> list[dict]:
    """`budget` distinct random configurations from a grid of values (seeded)."""
    grid = [dict(zip(space, values)) for values in itertools.product(*space.values())]
    order = np.random.default_rng(seed).permutation(len(grid))[:budget]
    return [grid[i] for i in order]


def evaluate(model: str, strategy: str, model_params: dict, x, y, params: Train, cost: dict, seed: int) -> dict:
    """Out-of-fold score, predictions, fit time and fold models of one candidate configuration.

    For LightGBM, `n_estimators` is the most trees a fold may grow; the returned params hold the count
    chosen by early stopping, at which every fold model predicts.
    """
    if model == "lightgbm":  # the floor of the folds' rows (80% of these rows)
        model_params = leaf_floor(model_params, y, 1.0 - 1.0 / params.folds)
    pipeline = make_pipeline(model, strategy, seed, model_params)
    if model == "lightgbm":
        oof, rounds, seconds, models = early_stopping_out_of_fold(pipeline, x, y, params.folds, seed,
                                                          int(model_params["n_estimators"]),
                                                          params.early_stopping_rounds)
        model_params = {**model_params, "n_estimators": rounds}
    else:
        oof, seconds, models = out_of_fold(pipeline, x, y, params.folds, seed)
    return {**score(y, oof, cost, params.fbeta), "fit_seconds": round(seconds, 2), "model": model,
            "strategy": strategy, "params": model_params, "oof": oof, "fold_models": models}


def evaluate_candidate(candidate: tuple[str, str, dict], x, y, params: Train, cost: dict, seed: int) -> dict:
    """One task: `evaluate` of a (model, strategy, model params) candidate; runs here or on a Dask worker."""
    model, strategy, model_params = candidate
    return evaluate(model, strategy, model_params, x, y, params, cost, seed)


def _with_threads(model_params: dict, model: str, compute: Runner) -> dict:
    """On a cluster, LightGBM and the forest use a worker's threads, not every core of its machine."""
    if compute.local or model not in ("lightgbm", "random_forest"):
        return model_params
    return {**model_params, "n_jobs": compute.threads(0)}


def _evaluate_all(named: list[tuple[str, tuple[str, str, dict]]], x, y, params: Train, cost: dict, seed: int, log,
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


def card_ineligible(manifest: list[dict]) -> list[str]:
    """Features a points card may not use: its lines must be source fields and ratios a person can check, so no
    polynomial term, product or target encoding."""
    return [m["name"] for m in manifest if m["name"].startswith("POLY_") or m["name"].endswith("_TARGET_ENC")
            or m.get("group") == "target_encoding" or str(m.get("meaning", "")).startswith("product of")]


def model_settings(params: Train, names: list[str] | None = None, points: dict | None = None,
                   card_excluded: list[str] | tuple = ()) -> dict[str, dict]:
    """Each model's library settings, as new dicts: `train.<model>`, with `train.monotone` as LightGBM's monotone
    constraints (one per column of `names`) and as the scorecard's trends, and the scorecard's feature names,
    points scaling and the features it may not use (`card_ineligible`)."""
    monotone = dict(params.monotone)
    unknown = sorted(set(monotone) - set(names or []))
    if unknown:
        raise ParamsError(f"params.yaml: train.monotone: {unknown[0]} is not among the {len(names or [])} features "
                          "the model is trained on (data/selection/features.json)")
    lightgbm = dict(params.lightgbm)
    if monotone:
        lightgbm["monotone_constraints"] = [int(monotone.get(n, 0)) for n in names]
    trends = {**params.scorecard.trends, **{n: "ascending" if d > 0 else "descending" for n, d in monotone.items()}}
    scorecard = {**params.scorecard.model_dump(), "trends": trends, **(points or {}),
                 **({"feature_names": list(names)} if names is not None else {}),
                 **({"excluded": sorted(set(card_excluded) & set(names or []))} if card_excluded else {})}
    return {"dummy": {}, "logistic_regression": dict(params.logistic_regression),
            "random_forest": dict(params.random_forest), "lightgbm": lightgbm, "scorecard": scorecard}


def benchmark(x: np.ndarray, y: np.ndarray, params: Train, cost: dict, seed: int, log=None,
              compute: Runner | None = None, settings: dict[str, dict] | None = None) -> dict[str, dict]:
    """Score every candidate out of fold, each with its `settings` (default: `model_settings(params)`);
    `log(name, result)` is told of each. The candidates are tasks."""
    settings = settings or model_settings(params)
    named = [(f"{m}+{s}", (m, s, settings[m])) for m, s in candidates(params.models, params.strategies)]
    return _evaluate_all(named, x, y, params, cost, seed, log, compute)


def tune_lightgbm(x, y, params: Train, strategy: str, cost: dict, seed: int, log=None,
                  compute: Runner | None = None, settings: dict[str, dict] | None = None) -> dict[str, dict]:
    """Random search over the LightGBM grid with the given imbalance strategy, on the same folds (as tasks)."""
    base = (settings or model_settings(params))["lightgbm"]
    draws = search_space_draws(params.search_space, params.search_budget, seed)
    named = [(f"lightgbm+{strategy}+search{i}", ("lightgbm", strategy, {**base, **draw}))
             for i, draw in enumerate(draws)]
    return _evaluate_all(named, x, y, params, cost, seed, log, compute)


def stack(oof: np.ndarray, y: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """Non-negative weights of the members whose out-of-fold probabilities are the columns of `oof`, adding up to 1.

    A logistic regression of the label on the members' log-odds, its coefficients constrained to be at least 0
    and lightly ridge-penalised (`l2`, on the summed log-loss: it makes the solution unique when members are
    nearly collinear), minimises the out-of-fold log-loss, a proper scoring rule; the weights are its
    coefficients scaled to add up to 1, which keeps its ranking of clients (the intercept and the scale are the
    calibration's business). A member enters only through its weight: a useless one gets 0. With no signal at
    all (every coefficient 0) the members are weighted equally.
    """
    beta = _stacker(oof, y, l2)[0][1:]
    return beta / beta.sum() if beta.sum() > 0 else np.full(len(beta), 1.0 / len(beta))


def stacked_log_loss(oof: np.ndarray, y: np.ndarray, l2: float = 1.0) -> float:
    """The mean out-of-fold log-loss of `stack`'s logistic regression on these members (intercept and scale
    included): how well the members predict together, whatever their calibration."""
    return _stacker(oof, y, l2)[1]


def _stacker(oof: np.ndarray, y: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """The stacker's coefficients (intercept first, the members' at least 0) and its mean log-loss."""
    z = logit(np.asarray(oof, dtype=np.float64).reshape(len(y), -1))
    z = z - z.mean(axis=0)  # centred: the intercept absorbs each member's offset, the start is well scaled
    y = np.asarray(y, dtype=np.float64)
    k = z.shape[1]

    def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
        eta = theta[0] + z @ theta[1:]
        value = float(np.sum(np.logaddexp(0.0, eta) - y * eta) + 0.5 * l2 * np.sum(theta[1:] ** 2))
        residual = 1.0 / (1.0 + np.exp(-eta)) - y
        return value, np.concatenate([[residual.sum()], z.T @ residual + l2 * theta[1:]])

    prior = float(np.clip(y.mean(), 1e-6, 1 - 1e-6))
    start = np.concatenate([[np.log(prior / (1 - prior))], np.full(k, 1.0 / k)])
    fitted = minimize(loss, start, jac=True, method="L-BFGS-B", bounds=[(None, None)] + [(0.0, None)] * k)
    theta = np.concatenate([fitted.x[:1], np.maximum(fitted.x[1:], 0.0)])
    eta = theta[0] + z @ theta[1:]
    return theta, float(np.mean(np.logaddexp(0.0, eta) - y * eta))


def capped_choice(oofs: dict[str, np.ndarray], candidates: list[str], others: list[str], y: np.ndarray, cap: int,
                  l2: float) -> list[str]:
    """`cap` of the `candidates` to serve beside the `others` members, chosen one at a time: each time the one whose
    stack with those already chosen and the others has the lowest out-of-fold log-loss (`stacked_log_loss`, a
    proper scoring rule) on these clients. Ties go to the first in `candidates`' order.

    A member's weight in the stack of every candidate is not this criterion: it measures what the member adds to
    the others, and a member that mostly corrects them (an undersampled LightGBM beside two others) can be the
    weakest alone."""
    chosen: list[str] = []
    while len(chosen) < min(cap, len(candidates)):
        losses = {n: stacked_log_loss(np.column_stack([oofs[m] for m in [*chosen, n, *others]]), y, l2)
                  for n in candidates if n not in chosen}
        chosen.append(min(losses, key=losses.get))
    return chosen


def log_loss(y: np.ndarray, proba: np.ndarray) -> float:
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1 - 1e-15)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def stack_members(oofs: dict[str, np.ndarray], y: np.ndarray, min_weight: float,
                  l2: float) -> tuple[list[str], np.ndarray]:
    """The members kept and their weights: `stack` on their out-of-fold predictions, then any member below
    `min_weight` dropped and the others stacked again, until every weight is at least `min_weight` (or one member
    is left)."""
    kept = list(oofs)
    while True:
        weights = stack(np.column_stack([oofs[n] for n in kept]), y, l2)
        if weights.min() >= min_weight or len(kept) == 1:
            return kept, weights
        kept = [n for n, w in zip(kept, weights) if w >= min_weight] or [kept[int(np.argmax(weights))]]


def ensemble(results: dict[str, dict], y: np.ndarray, params: Train, cost: dict) -> dict:
    """The served candidate: every servable candidate (`SERVABLE` kinds) stacked on its out-of-fold predictions.

    The weights are `stack`'s; a member below `train.ensemble.min_weight` is dropped and the others stacked
    again, so that the served model carries no fold models that barely count. The result's `oof` is the
    ensemble's out-of-fold prediction (each client scored by the fold models that did not see it), and its
    `fold_models` build the served `CrossFitEnsemble`. No candidate is picked by a figure: one that adds
    nothing gets a weight of 0.
    """
    spec = params.ensemble
    names = sorted(n for n, r in results.items() if r["model"] in SERVABLE)
    if not names:
        raise ParamsError(f"train.models: none of {sorted(results)} is a model the ensemble is built from "
                         f"({' or '.join(SERVABLE)})")
    kept, weights = stack_members({n: results[n]["oof"] for n in names}, y, spec.min_weight, spec.l2)
    proba = stacked_proba(np.column_stack([results[n]["oof"] for n in kept]), weights)
    members = {n: results[n] for n in kept}
    return {**score(y, proba, cost, params.fbeta), "model": "ensemble", "strategy": "none",
            "fit_seconds": round(sum(m["fit_seconds"] for m in members.values()), 2),
            "params": {"members": kept, "weights": [round(float(w), 6) for w in weights], "folds": params.folds,
                       "settings": [m["params"] for m in members.values()]},
            "oof": proba, "fold_models": [m["fold_models"] for m in members.values()],
            "log_loss": log_loss(y, proba),
            "stacked": {n: {"weight": round(float(w), 6), "auc": round(results[n]["auc"], 5),
                            "log_loss": round(log_loss(y, results[n]["oof"]), 5)} for n, w in zip(kept, weights)}}
