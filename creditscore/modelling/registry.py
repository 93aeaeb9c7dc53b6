"""The gated registry: a new model becomes `champion` only when it passes every gate and beats the champion.

The gates (`params.yaml: register.gates`) read the figures of the served model, trained without the
hold-out and scored once on it: a floor on the hold-out AUC, a ceiling on the hold-out expected calibration
error of the calibrated score, and a ceiling on the largest equalised-odds difference over the attributes
listed. The champion is not scored again on a later run's hold-out: its own hold-out cost per client is kept as a tag of its registry version, with a fingerprint of the hold-out
(the clients and their labels). A candidate that passes the gates becomes champion when there is none, when
the champion was measured on another hold-out (the figures cannot be compared; the decision says so), or
when it saves at least `register.margin` per client against the champion's cost on the same hold-out.
Otherwise it is registered as `challenger`. The same bundle is never registered twice: a rerun of an
unchanged pipeline finds its version and keeps the decision made then.
"""
from __future__ import annotations

import hashlib

import numpy as np


def fingerprint(ids: np.ndarray, target: np.ndarray) -> str:
    """SHA-256 of the hold-out's (client, label) pairs in client order: equal exactly when the hold-out is."""
    order = np.argsort(np.asarray(ids), kind="stable")
    pairs = np.column_stack([np.asarray(ids, dtype=np.int64)[order], np.asarray(target, dtype=np.int64)[order]])
    return hashlib.sha256(np.ascontiguousarray(pairs).tobytes()).hexdigest()


def gate_figures(train: dict, threshold: dict, explain: dict, attributes: list[str]) -> dict:
    """The candidate's figures the gates read, from the train, threshold and explain metrics."""
    gaps = {a: float(explain["fairness"][a]["equalized_odds_difference"]) for a in attributes}
    return {"holdout_auc": float(train["holdout_auc"]),
            "holdout_ece": float(threshold["validation"]["holdout"]["ece"]),
            "fairness_gap": max(gaps.values()) if gaps else 0.0, "fairness_gap_by_attribute": gaps,
            "holdout_cost_per_client": float(threshold["holdout_cost_per_client"])}


def check_gates(figures: dict, gates: dict) -> dict[str, dict]:
    """Each gate: the figure, its limit and whether it passes (limits are inclusive)."""
    return {"holdout_auc": {"value": figures["holdout_auc"], "min": gates["min_holdout_auc"],
                            "passed": figures["holdout_auc"] >= gates["min_holdout_auc"]},
            "holdout_ece": {"value": figures["holdout_ece"], "max": gates["max_ece"],
                            "passed": figures["holdout_ece"] <= gates["max_ece"]},
            "fairness_gap": {"value": figures["fairness_gap"], "max": gates["max_fairness_gap"],
                             "attributes": list(figures["fairness_gap_by_attribute"]),
                             "passed": figures["fairness_gap"] <= gates["max_fairness_gap"]}}


def decide(figures: dict, gates: dict, margin: float, holdout: str, champion: dict | None) -> dict:
    """`champion` or `challenger`, and why. `champion` is None in a fresh store, else its version's tags:
    `holdout_cost_per_client` and `holdout_fingerprint`."""
    checks = check_gates(figures, gates)
    failed = [name for name, c in checks.items() if not c["passed"]]
    comparison = None
    if failed:
        alias, reason = "challenger", f"failed the gate(s) {', '.join(failed)}"
    elif champion is None:
        alias, reason = "champion", "passed every gate; there was no champion"
    elif champion.get("holdout_fingerprint") != holdout:
        alias, reason = "champion", ("passed every gate; the champion was measured on another hold-out, so their "
                                     "costs cannot be compared")
    else:
        saving = float(champion["holdout_cost_per_client"]) - figures["holdout_cost_per_client"]
        comparison = {"champion_cost_per_client": float(champion["holdout_cost_per_client"]),
                      "cost_per_client": figures["holdout_cost_per_client"], "saving": round(saving, 6),
                      "margin": margin}
        if saving >= margin:
            alias, reason = "champion", f"passed every gate and saves {saving:.5f} per client against the champion"
        else:
            alias, reason = "challenger", (f"passed every gate but saves {saving:.5f} per client against the champion, "
                                           f"less than the margin {margin}")
    return {"alias": alias, "reason": reason, "gates": checks, "comparison": comparison}
