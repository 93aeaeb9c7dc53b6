"""Similar clients: a group of training clients picked by filters, summarised so that no person's row leaves.

The explain stage stores the training clients' filter attributes (contract type, gender, age band, income
band, family status), their feature values and whether the model grants them (out-of-fold scores) in the
serving reference. The API answers a comparison with aggregates only: a group of fewer than `MIN_GROUP`
clients is refused, quantiles are of at least `MIN_GROUP` values, and a cell of the two-feature grid with
fewer than `MIN_CELL` clients is left empty. Day counts are said in years.
"""
from __future__ import annotations

import numpy as np

from creditscore.explanation.fairness import age_bands

FILTERS = ("NAME_CONTRACT_TYPE", "CODE_GENDER", "AGE_BAND", "INCOME_BAND", "NAME_FAMILY_STATUS")
FILTER_LABELS = {"NAME_CONTRACT_TYPE": "contract type", "CODE_GENDER": "gender", "AGE_BAND": "age band",
                 "INCOME_BAND": "income band", "NAME_FAMILY_STATUS": "family status"}
INCOME_EDGES = (100_000, 150_000, 200_000, 300_000)
MIN_GROUP = 20
MIN_CELL = 5
GRID = 8
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


class GroupTooSmall(ValueError):
    """The filters leave too few clients to show anything without revealing individuals."""


def income_bands(income) -> np.ndarray:
    """'<100,000', '100,000-149,999', ..., '300,000+' from the yearly income; missing: 'unknown'."""
    income = np.asarray(income, dtype=np.float64)
    names = [f"<{INCOME_EDGES[0]:,}"] + [f"{lo:,}-{hi - 1:,}" for lo, hi in zip(INCOME_EDGES, INCOME_EDGES[1:])] + [
        f"{INCOME_EDGES[-1]:,}+"]
    labels = np.array(names, dtype=object)[np.searchsorted(INCOME_EDGES, np.nan_to_num(income, nan=-1.0),
                                                             side="right")]
    labels[np.isnan(income)] = "unknown"
    return labels


def attributes(columns: dict, age_edges: list[int]) -> dict[str, np.ndarray]:
    """The filter attributes of clients from their application fields (CODE_GENDER, ..., DAYS_BIRTH, income)."""
    text = {c: np.array(["unknown" if v is None else str(v) for v in columns[c]], dtype=object)
            for c in ("NAME_CONTRACT_TYPE", "CODE_GENDER", "NAME_FAMILY_STATUS")}
    return {**text, "AGE_BAND": age_bands(np.asarray(columns["DAYS_BIRTH"], dtype=np.float64), age_edges),
            "INCOME_BAND": income_bands(columns["AMT_INCOME_TOTAL"])}


def human(name: str, values: np.ndarray) -> tuple[np.ndarray, str]:
    """Values as a person reads them: a day count (negative, before the application) in years."""
    values = np.asarray(values, dtype=np.float64)
    if name.startswith("DAYS_"):
        return np.abs(values) / 365.25, "years"
    return values, ""


def _summary(values: np.ndarray) -> dict:
    present = values[~np.isnan(values)]
    enough = len(present) >= MIN_GROUP
    return {"clients": int(len(values)), "missing_share": round(1 - len(present) / len(values), 4) if len(values)
            else None, "quantiles": [round(float(q), 6) for q in np.quantile(present, QUANTILES)] if enough else None}


def _edges(values: np.ndarray) -> np.ndarray | None:
    present = values[~np.isnan(values)]
    if len(present) < MIN_GROUP:
        return None
    lo, hi = np.quantile(present, [0.02, 0.98])
    return np.linspace(lo, hi if hi > lo else lo + 1.0, GRID + 1)


def compare(population: dict, filters: dict[str, str], feature: str, versus: str | None, client: dict) -> dict:
    """The group picked by `filters` (absent: any) against everyone, for `feature` (and the grid with `versus`).

    `population`: {"attributes": {filter: labels}, "names": [...], "values": matrix, "granted": bools};
    `client`: the client's value of every name. Raises KeyError for an unknown filter or feature, and
    GroupTooSmall for a group of fewer than MIN_GROUP clients.
    """
    names = population["names"]
    for f in (feature, versus):
        if f is not None and f not in names:
            raise KeyError(f)
    mask = np.ones(len(population["granted"]), dtype=bool)
    for name, value in filters.items():
        if name not in FILTERS:
            raise KeyError(name)
        mask &= population["attributes"][name] == value
    if mask.sum() < MIN_GROUP:
        raise GroupTooSmall(f"the filters leave {int(mask.sum())} clients; at least {MIN_GROUP} are needed to show "
                            "a group without revealing individuals")
    granted = np.asarray(population["granted"], dtype=bool)

    def column(name: str) -> tuple[np.ndarray, str]:
        return human(name, population["values"][:, names.index(name)])

    x, unit = column(feature)
    client_x = human(feature, np.array([client.get(feature, np.nan)], dtype=np.float64))[0][0]
    out = {"group": {"filters": dict(filters), "clients": int(mask.sum()),
                     "granted_share": round(float(granted[mask].mean()), 4)},
           "everyone": {"clients": int(len(mask)), "granted_share": round(float(granted.mean()), 4)},
           "feature": {"name": feature, "unit": unit, "client": None if np.isnan(client_x) else float(client_x),
                       "group": _summary(x[mask]), "everyone": _summary(x)}}
    if versus is not None:
        y, y_unit = column(versus)
        client_y = human(versus, np.array([client.get(versus, np.nan)], dtype=np.float64))[0][0]
        x_edges, y_edges = _edges(x), _edges(y)
        grid = None
        if x_edges is not None and y_edges is not None:
            both = mask & ~np.isnan(x) & ~np.isnan(y)
            xi = np.clip(np.searchsorted(x_edges, x[both], side="right") - 1, 0, GRID - 1)
            yi = np.clip(np.searchsorted(y_edges, y[both], side="right") - 1, 0, GRID - 1)
            counts = {k: np.zeros((GRID, GRID), dtype=int) for k in ("granted", "refused")}
            np.add.at(counts["granted"], (yi[granted[both]], xi[granted[both]]), 1)
            np.add.at(counts["refused"], (yi[~granted[both]], xi[~granted[both]]), 1)
            total = counts["granted"] + counts["refused"]
            grid = {"x_edges": [round(float(e), 6) for e in x_edges], "y_edges": [round(float(e), 6) for e in y_edges],
                    "clients": [[int(t) if t >= MIN_CELL else None for t in r] for r in total],
                    "refused_share": [[round(float(r / t), 4) if t >= MIN_CELL else None for r, t in zip(rr, tt)]
                                      for rr, tt in zip(counts["refused"], total)]}
        out["versus"] = {"name": versus, "unit": y_unit, "client": None if np.isnan(client_y) else float(client_y),
                         "group": _summary(y[mask]), "everyone": _summary(y)}
        out["grid"] = grid
    return out


def options(population: dict) -> dict[str, list[str]]:
    """Each filter's levels (sorted), for the dashboard's selects."""
    return {name: sorted(set(population["attributes"][name].tolist())) for name in FILTERS}
