"""The lender's business cost and the decision threshold that minimises it.

A missed defaulter (false negative: granted, then defaults) costs `fn_cost`; a refused good client
(false positive) costs `fp_cost`. A client is refused when the probability of default is at least
the threshold.
"""
from __future__ import annotations

import numpy as np


def confusion(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, int]:
    """Counts of the decision `refuse if proba >= threshold` against the truth (1 = default)."""
    refused = proba >= threshold
    y = y.astype(bool)
    return {"tp": int((refused & y).sum()), "fp": int((refused & ~y).sum()),
            "fn": int((~refused & y).sum()), "tn": int((~refused & ~y).sum())}


def business_cost(y: np.ndarray, proba: np.ndarray, threshold: float, fn_cost: float, fp_cost: float) -> float:
    """fn_cost · FN + fp_cost · FP at the threshold: the definition `cost_curve` is tested against."""
    c = confusion(y, proba, threshold)
    return fn_cost * c["fn"] + fp_cost * c["fp"]


def cost_curve(y: np.ndarray, proba: np.ndarray, fn_cost: float, fp_cost: float,
               weights: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Total cost at every distinct candidate threshold (each score, plus one above all: accept everyone).

    Sorting once makes this O(n log n): refusing everyone scored at least t costs fp_cost for every
    good client among them and fn_cost for every defaulter below t. With `weights` (a client's credit amount,
    for a cost in money), each client's error costs that many times as much.
    """
    order = np.argsort(-proba, kind="stable")
    w = np.ones(len(y)) if weights is None else np.nan_to_num(np.asarray(weights, dtype=np.float64))[order]
    scores, truth = proba[order], y[order].astype(float)
    refused_bad = np.cumsum(truth * w)
    refused_good = np.cumsum((1 - truth) * w)
    bad = float((truth * w).sum())
    last_of_tie = np.r_[scores[1:] != scores[:-1], True]  # a threshold refuses every client tied with it
    thresholds = np.r_[scores[last_of_tie], np.nextafter(scores[0], np.inf)]
    costs = np.r_[fn_cost * (bad - refused_bad[last_of_tie]) + fp_cost * refused_good[last_of_tie], fn_cost * bad]
    return thresholds, costs


def money_cost(y: np.ndarray, proba: np.ndarray, threshold: float, fn_cost: float, fp_cost: float,
               amount: np.ndarray) -> float:
    """fn_cost · (credit of the granted defaulters) + fp_cost · (credit of the refused good clients)."""
    refused, y, amount = proba >= threshold, y.astype(bool), np.nan_to_num(np.asarray(amount, dtype=np.float64))
    return float(fn_cost * amount[~refused & y].sum() + fp_cost * amount[refused & ~y].sum())


def choose_threshold(y: np.ndarray, proba: np.ndarray, fn_cost: float, fp_cost: float,
                     weights: np.ndarray | None = None) -> float:
    """The threshold of least total cost (the highest of tied thresholds: fewer refusals); in money with
    `weights`."""
    thresholds, costs = cost_curve(y, proba, fn_cost, fp_cost, weights)
    best = np.flatnonzero(costs == costs.min())
    return float(thresholds[best].max())


def decision_report(y: np.ndarray, proba: np.ndarray, threshold: float, fn_cost: float, fp_cost: float) -> dict:
    """Cost (total, per client, against accept-all and refuse-all), recall, precision, approval rate."""
    c = confusion(y, proba, threshold)
    n, bad = len(y), int(y.sum())
    cost = fn_cost * c["fn"] + fp_cost * c["fp"]
    accept_all, refuse_all = fn_cost * bad, fp_cost * (n - bad)
    return {"threshold": threshold, "cost": cost, "cost_per_client": cost / n,
            "cost_vs_accept_all": cost / accept_all if accept_all else None,
            "cost_vs_refuse_all": cost / refuse_all if refuse_all else None,
            "recall": c["tp"] / bad if bad else None,
            "precision": c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else None,
            "approval_rate": (c["tn"] + c["fn"]) / n, **c}
