"""Decision rates by group (approval, false-negative and false-positive rates) and the gaps between groups."""
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


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 5) if denominator else None


def group_rates(y: np.ndarray, refused: np.ndarray, groups: np.ndarray, min_clients: int = 30) -> dict:
    """Per group: clients, approval rate, FNR (defaulters granted / defaulters), FPR (good refused / good).

    A default is the positive class, so a false negative is a granted defaulter (cost 10) and a false
    positive a refused good client (cost 1). Gaps are max - min over groups of at least `min_clients`
    clients where the rate is defined (a handful of clients gives no usable rate).
    """
    y = np.asarray(y).astype(bool)
    refused = np.asarray(refused).astype(bool)
    groups = np.asarray(groups).astype(str)
    out: dict = {"groups": {}}
    for group in sorted(set(groups.tolist()), key=group_key):
        m = groups == group
        out["groups"][group] = {
            "clients": int(m.sum()),
            "approval_rate": _rate(int((m & ~refused).sum()), int(m.sum())),
            "false_negative_rate": _rate(int((m & y & ~refused).sum()), int((m & y).sum())),
            "false_positive_rate": _rate(int((m & ~y & refused).sum()), int((m & ~y).sum())),
        }
    for metric in ("approval_rate", "false_negative_rate", "false_positive_rate"):
        values = [g[metric] for g in out["groups"].values() if g[metric] is not None and g["clients"] >= min_clients]
        out[f"{metric}_gap"] = round(max(values) - min(values), 5) if values else None
    return out
