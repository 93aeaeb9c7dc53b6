"""Similar clients: a group of training clients picked by filters, summarised so that no person's row leaves.

The reference stage summarises the training clients once (`summarise`): for every combination of filter levels
(contract type, gender, age band, income band, family status) holding at least `MIN_GROUP` clients, the share
the model grants (out-of-fold scores), each compared feature's quantiles, and a two-feature grid of counts for
each pair of key fields. Only these aggregates are served: quantiles are of at least `MIN_GROUP` values, a
cell of the grid with fewer than `MIN_CELL` clients is left empty, and a smaller group is refused. Day counts
are said in years.
"""
from __future__ import annotations

import itertools
import os
from concurrent.futures import ThreadPoolExecutor

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
COLUMN_CHUNK = 32


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


def _edges(values: np.ndarray) -> np.ndarray | None:
    present = values[~np.isnan(values)]
    if len(present) < MIN_GROUP:
        return None
    lo, hi = np.quantile(present, [0.02, 0.98])
    return np.linspace(lo, hi if hi > lo else lo + 1.0, GRID + 1)


def _cells(x: np.ndarray, y: np.ndarray, x_edges: np.ndarray, y_edges: np.ndarray,
           refused: np.ndarray) -> np.ndarray:
    """Each client's cell of the two-feature grid (y bin, x bin, refused), -1 where either value is missing."""
    xi = np.clip(np.searchsorted(x_edges, x, side="right") - 1, 0, GRID - 1)
    yi = np.clip(np.searchsorted(y_edges, y, side="right") - 1, 0, GRID - 1)
    return np.where(np.isnan(x) | np.isnan(y), -1, (yi * GRID + xi) * 2 + refused)


def _column_quantiles(block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column of `block` (a group's clients x features): how many values are present and, with at least
    `MIN_GROUP` of them, `np.quantile` of those values (NaN otherwise).

    The values are those of `np.quantile(column[~np.isnan(column)], QUANTILES)` to the bit: the columns with the
    same number of present values are computed in one call along the rows, each column's present values moved
    first in their own order (a stable sort of the missing flags), which is the one-dimensional call's input.
    """
    missing = np.isnan(block)
    present = (len(block) - missing.sum(axis=0)).astype(np.int32)
    out = np.full((block.shape[1], len(QUANTILES)), np.nan)
    for count in np.unique(present[present >= MIN_GROUP]):
        columns = np.flatnonzero(present == count)
        values = block[:, columns]
        if count < len(block):
            first = np.argsort(missing[:, columns], axis=0, kind="stable")[:count]
            values = np.take_along_axis(values, first, axis=0)
        out[columns] = np.quantile(values, QUANTILES, axis=0).T
    return present, out


def group_quantiles(values: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`_column_quantiles` of the `rows` of `values`, `COLUMN_CHUNK` columns at a time (the copy of a group's rows
    stays small when the group is every client)."""
    parts = [_column_quantiles(values[rows, lo:lo + COLUMN_CHUNK]) for lo in range(0, values.shape[1], COLUMN_CHUNK)]
    return np.concatenate([p for p, _ in parts]), np.concatenate([q for _, q in parts])


def every_group_quantiles(values: np.ndarray, rows_of: list[np.ndarray],
                          threads: int | None = None) -> list[tuple[np.ndarray, np.ndarray]]:
    """`group_quantiles` of every group, in their order, on `threads` threads (default: one per core this process
    may run on).

    NumPy releases the GIL while it gathers, sorts and partitions, so the groups run side by side; each result is
    the one the group gives alone, to the bit. Each thread holds its group's temporaries: at full scale one more
    thread raised the reference stage's peak by 146 MiB.
    """
    workers = threads or len(os.sched_getaffinity(0)) or 1
    if workers == 1 or len(rows_of) < 2:
        return [group_quantiles(values, rows) for rows in rows_of]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda rows: group_quantiles(values, rows), rows_of))


def summarise(attributes: dict[str, np.ndarray], names: list[str], values: np.ndarray, granted: np.ndarray,
              grid_names: list[str]) -> dict:
    """The aggregates every comparison is answered from, with no row of any client.

    For every combination of filter levels (a filter absent: any level) that holds at least `MIN_GROUP`
    clients: their number, how many the model grants, and per feature (in human units) how many have a value
    and, with at least `MIN_GROUP` values, the quantiles; per pair of `grid_names`, the clients and the refused
    clients in each cell of the `GRID` x `GRID` grid, with a cell of fewer than `MIN_CELL` clients left at 0.
    The grid's edges are everyone's 2% and 98% quantiles. Smaller combinations keep only their size, so that
    a refusal can say how many clients the filters leave.
    """
    granted = np.asarray(granted, dtype=bool)
    levels = {f: sorted(set(attributes[f].tolist())) for f in FILTERS}
    codes = np.column_stack([np.searchsorted(np.array(levels[f], dtype=object), attributes[f]) for f in FILTERS])
    dims = [len(levels[f]) for f in FILTERS]
    cell = np.ravel_multi_index(codes.T, dims) if len(codes) else np.zeros(0, dtype=np.int64)
    order = np.argsort(cell, kind="stable")
    cells, starts, counts = np.unique(cell[order], return_index=True, return_counts=True)
    cell_codes = np.column_stack(np.unravel_index(cells, dims)) if len(cells) else np.zeros((0, len(FILTERS)), int)
    human_values = np.column_stack([human(n, values[order, i])[0] for i, n in enumerate(names)])
    refused = (~granted[order]).astype(np.int64)
    grid_index = [names.index(n) for n in grid_names]
    edges = {n: _edges(human_values[:, i]) for n, i in zip(grid_names, grid_index)}
    pairs = [(a, b) for a in range(len(grid_names)) for b in range(a, len(grid_names))]
    pair_cells = [None if edges[grid_names[a]] is None or edges[grid_names[b]] is None else
                  _cells(human_values[:, grid_index[a]], human_values[:, grid_index[b]], edges[grid_names[a]],
                         edges[grid_names[b]], refused) for a, b in pairs]
    sizes, index, rows_of = {}, {}, []
    for combo in itertools.product(*[[-1, *range(d)] for d in dims]):
        matched = np.all((cell_codes == combo) | (np.asarray(combo) < 0), axis=1)
        size = int(counts[matched].sum())
        if size:
            sizes[combo] = size
        if size >= MIN_GROUP:
            index[combo] = len(rows_of)
            rows_of.append(np.concatenate([np.arange(s, s + c) for s, c in zip(starts[matched], counts[matched])]))
    n_groups, n_names = len(rows_of), len(names)
    present = np.zeros((n_groups, n_names), dtype=np.int32)
    quantiles = np.full((n_groups, n_names, len(QUANTILES)), np.nan, dtype=np.float32)
    grid_total = np.zeros((n_groups, len(pairs), GRID, GRID), dtype=np.uint32)
    grid_refused = np.zeros_like(grid_total)
    granted_count = np.zeros(n_groups, dtype=np.int64)
    # every pair's cell in one matrix, each pair's cells offset past the one before: one count per group
    width = 2 * GRID * GRID
    drawn = [p for p, codes_p in enumerate(pair_cells) if codes_p is not None]
    offset_cells = (np.column_stack([np.where(pair_cells[p] >= 0, pair_cells[p] + j * width, -1)
                                     for j, p in enumerate(drawn)]) if drawn else None)
    for k, (group_present, group_quantiles_k) in enumerate(every_group_quantiles(human_values, rows_of)):
        present[k], quantiles[k] = group_present, group_quantiles_k
    for k, rows in enumerate(rows_of):
        granted_count[k] = int(len(rows) - refused[rows].sum())
        if offset_cells is not None:
            chosen = offset_cells[rows].ravel()
            both = np.bincount(chosen[chosen >= 0], minlength=len(drawn) * width).reshape(len(drawn), GRID, GRID, 2)
            total = both.sum(axis=3)
            thick = total >= MIN_CELL
            grid_total[k, drawn] = np.where(thick, total, 0)
            grid_refused[k, drawn] = np.where(thick, both[..., 1], 0)
    small = np.uint16 if grid_total.size == 0 or grid_total.max() < 2**16 else np.uint32
    return {"levels": levels, "names": list(names), "grid_names": list(grid_names), "sizes": sizes, "index": index,
            "clients": np.array([len(r) for r in rows_of], dtype=np.int64), "granted": granted_count,
            "present": present, "quantiles": quantiles,
            "edges": {n: None if e is None else [round(float(v), 6) for v in e] for n, e in edges.items()},
            "pairs": {(grid_names[a], grid_names[b]): p for p, (a, b) in enumerate(pairs)},
            "grid_total": grid_total.astype(small), "grid_refused": grid_refused.astype(small)}


def _summary(population: dict, k: int, i: int) -> dict:
    clients, present = int(population["clients"][k]), int(population["present"][k, i])
    enough = present >= MIN_GROUP
    return {"clients": clients, "missing_share": round(1 - present / clients, 4),
            "quantiles": [round(float(q), 6) for q in population["quantiles"][k, i]] if enough else None}


def _group(population: dict, filters: dict[str, str]) -> tuple[int, int]:
    """The index of the combination the filters pick, and its number of clients."""
    combo = []
    for name in FILTERS:
        if name not in filters:
            combo.append(-1)
        elif filters[name] in population["levels"][name]:
            combo.append(population["levels"][name].index(filters[name]))
        else:
            return -1, 0
    combo = tuple(combo)
    return population["index"].get(combo, -1), population["sizes"].get(combo, 0)


def compare(population: dict, filters: dict[str, str], feature: str, versus: str | None, client: dict) -> dict:
    """The group picked by `filters` (absent: any) against everyone, for `feature` (and the grid with `versus`).

    `population`: the aggregates of `summarise`; `client`: the client's value of every name. Raises KeyError for
    an unknown filter or feature (or a `versus` without a grid with `feature`), and GroupTooSmall for a group of
    fewer than MIN_GROUP clients.
    """
    names = population["names"]
    for f in (feature, versus):
        if f is not None and f not in names:
            raise KeyError(f)
    if versus is not None and (feature, versus) not in population["pairs"] and (
            versus, feature) not in population["pairs"]:
        raise KeyError(versus if feature in population["grid_names"] else feature)
    for name in filters:
        if name not in FILTERS:
            raise KeyError(name)
    k, size = _group(population, filters)
    if k < 0:
        raise GroupTooSmall(f"the filters leave {size} clients; at least {MIN_GROUP} are needed to show "
                            "a group without revealing individuals")
    everyone = population["index"][(-1,) * len(FILTERS)]
    i = names.index(feature)
    client_x = human(feature, np.array([client.get(feature, np.nan)], dtype=np.float64))[0][0]
    clients, granted = population["clients"], population["granted"]
    out = {"group": {"filters": dict(filters), "clients": int(clients[k]),
                     "granted_share": round(float(granted[k] / clients[k]), 4)},
           "everyone": {"clients": int(clients[everyone]),
                        "granted_share": round(float(granted[everyone] / clients[everyone]), 4)},
           "feature": {"name": feature, "unit": human(feature, np.zeros(1))[1],
                       "client": None if np.isnan(client_x) else float(client_x),
                       "group": _summary(population, k, i), "everyone": _summary(population, everyone, i)}}
    if versus is not None:
        j = names.index(versus)
        client_y = human(versus, np.array([client.get(versus, np.nan)], dtype=np.float64))[0][0]
        swapped = (feature, versus) not in population["pairs"]
        p = population["pairs"][(versus, feature) if swapped else (feature, versus)]
        grid = None
        x_edges, y_edges = population["edges"][feature], population["edges"][versus]
        if x_edges is not None and y_edges is not None:
            total, refused = population["grid_total"][k, p], population["grid_refused"][k, p]
            if swapped:  # stored with the other feature across
                total, refused = total.T, refused.T
            grid = {"x_edges": x_edges, "y_edges": y_edges,
                    "clients": [[int(t) if t >= MIN_CELL else None for t in r] for r in total],
                    "refused_share": [[round(float(r / t), 4) if t >= MIN_CELL else None for r, t in zip(rr, tt)]
                                      for rr, tt in zip(refused, total)]}
        out["versus"] = {"name": versus, "unit": human(versus, np.zeros(1))[1],
                         "client": None if np.isnan(client_y) else float(client_y),
                         "group": _summary(population, k, j), "everyone": _summary(population, everyone, j)}
        out["grid"] = grid
    return out


def options(population: dict) -> dict[str, list[str]]:
    """Each filter's levels (sorted), for the dashboard's selects."""
    return {name: list(population["levels"][name]) for name in FILTERS}
