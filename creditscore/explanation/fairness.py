"""Decision rates by group (fairlearn's MetricFrame): approval, false-negative and false-positive rates, the adverse
impact ratio, the gaps between groups and the equalised-odds difference."""
from __future__ import annotations

import numpy as np


def age_bands(days_birth: np.ndarray, edges: list[int]) -> np.ndarray:
    """'<30', '30-39', ..., '60+' style labels from DAYS_BIRTH (negative days); missing age is 'unknown'."""
    years = -np.asarray(days_birth, dtype=np.float64) / 365.25
    edges = sorted(int(e) for e in edges)
    names = [f"<{edges[0]}"] + [f"{lo}-{hi - 1}" for lo, hi in zip(edges, edges[1:])] + [f"{edges[-1]}+"]
    index = np.searchsorted(edges, np.nan_to_num(years, nan=-1.0), side="right")
    labels = np.array(names, dtype=object)[index]
    labels[np.isnan(years)] = "unknown"
    return labels


def group_key(name: str) -> tuple:
    """Age bands in age order ('<30' first), other groups alphabetically after them."""
    digits = name.lstrip("<").split("-")[0].rstrip("+")
    if digits.isdigit():
        return (0, -1 if name.startswith("<") else int(digits), name)
    return (1, 0, name)


AIR_FLAG = 0.8  # the four-fifths rule: a group approved at less than 80% of the most-approved group's rate


def _rounded(value) -> float | None:
    return None if value is None or np.isnan(value) else round(float(value), 5)


def group_rates(y: np.ndarray, refused: np.ndarray, groups: np.ndarray, min_clients: int = 30) -> dict:
    """Per group: clients, approval rate, FNR, FPR and adverse impact ratio; the gaps and equalised-odds difference.

    The rates come from fairlearn's MetricFrame. A default is the positive class and a refusal the positive
    decision, so a false negative is a granted defaulter (cost 10) and a false positive a refused good client
    (cost 1); a rate with no client to count (no defaulter in the group) is None. The adverse impact ratio of a
    group is its approval rate over the highest approval rate of any group, flagged below 0.8. Gaps (max - min),
    the ratio's reference and the equalised-odds difference (the larger of the gaps in true- and false-positive
    rates, fairlearn's definition) use the groups of at least `min_clients` clients only.
    """
    from fairlearn.metrics import (
        MetricFrame,
        count,
        equalized_odds_difference,
        false_negative_rate,
        false_positive_rate,
        selection_rate,
    )

    y = np.asarray(y).astype(int)
    refused = np.asarray(refused).astype(int)
    groups = np.asarray(groups).astype(str)
    frame = MetricFrame(metrics={"clients": count, "refusal_rate": selection_rate, "defaulters": lambda t, _: t.sum(),
                                 "fnr": false_negative_rate, "fpr": false_positive_rate},
                        y_true=y, y_pred=refused, sensitive_features=groups).by_group
    names = sorted(frame.index.astype(str), key=group_key)
    large = [g for g in names if frame.loc[g, "clients"] >= min_clients]
    approval = {g: 1.0 - float(frame.loc[g, "refusal_rate"]) for g in names}
    best = max((approval[g] for g in large), default=None)
    out: dict = {"groups": {}}
    for g in names:
        clients, defaulters = int(frame.loc[g, "clients"]), int(frame.loc[g, "defaulters"])
        out["groups"][g] = {
            "clients": clients, "approval_rate": _rounded(approval[g]),
            "false_negative_rate": _rounded(frame.loc[g, "fnr"]) if defaulters else None,
            "false_positive_rate": _rounded(frame.loc[g, "fpr"]) if clients > defaulters else None,
            "adverse_impact_ratio": _rounded(approval[g] / best) if best else None}
    for metric in ("approval_rate", "false_negative_rate", "false_positive_rate"):
        values = [out["groups"][g][metric] for g in large if out["groups"][g][metric] is not None]
        out[f"{metric}_gap"] = round(max(values) - min(values), 5) if values else None
    ratios = {g: out["groups"][g]["adverse_impact_ratio"] for g in large}
    out["adverse_impact_ratio_min"] = min(ratios.values()) if ratios else None
    out["adverse_impact_flagged"] = [g for g, r in ratios.items() if r is not None and r < AIR_FLAG]
    keep = np.isin(groups, large)
    out["equalized_odds_difference"] = (_rounded(equalized_odds_difference(y[keep], refused[keep],
                                                                             sensitive_features=groups[keep]))
                                        if len(large) > 1 and y[keep].any() and not y[keep].all() else None)
    return out


def older_for_age_alone(score, x: np.ndarray, days_birth: np.ndarray, features_at, min_age: float = 62.0,
                        reference_age: float = 61.0, tolerance: float = 1e-9) -> dict:
    """Whether applicants aged `min_age`+ are scored worse for their age alone.

    Each such client is scored as they are and again with only their age set to `reference_age` (every feature
    built from the age recomputed by `features_at(rows, days_birth)`, everything else kept); `score(x)` is the
    probability of default. Reports how many are scored worse at their real age than at the reference age
    (by more than `tolerance`), and the mean and largest difference.
    """
    years = -np.asarray(days_birth, dtype=np.float64) / 365.25
    rows = np.flatnonzero(years >= min_age)
    if not len(rows):
        return {"min_age": min_age, "reference_age": reference_age, "clients": 0, "worse_for_age": 0,
                "share_worse": None, "mean_change": None, "max_change": None}
    actual = score(x[rows])
    younger = score(features_at(rows, np.full(len(rows), -reference_age * 365.25)))
    change = actual - younger
    worse = int((change > tolerance).sum())
    return {"min_age": min_age, "reference_age": reference_age, "clients": int(len(rows)), "worse_for_age": worse,
            "share_worse": round(worse / len(rows), 6), "mean_change": round(float(change.mean()), 6),
            "max_change": round(float(change.max()), 6)}
