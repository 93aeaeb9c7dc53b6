"""Similar clients: groups from filters, in aggregates only, on hand-built clients."""
from __future__ import annotations

import numpy as np
import pytest

from creditscore.explanation import groups


def _population(n: int = 100) -> dict:
    """n clients: the first 60 'Cash loans', the rest 'Revolving loans'; A = 0..n-1; DAYS_EMPLOYED -365.25 * A."""
    a = np.arange(n, dtype=np.float64)
    attributes = groups.attributes({"NAME_CONTRACT_TYPE": ["Cash loans"] * 60 + ["Revolving loans"] * (n - 60),
                                    "CODE_GENDER": ["F", "M"] * (n // 2), "NAME_FAMILY_STATUS": [None] * n,
                                    "DAYS_BIRTH": [-365.25 * 45] * n, "AMT_INCOME_TOTAL": [120_000.0] * n},
                                   [30, 40, 50, 60])
    return groups.summarise(attributes, ["A", "DAYS_EMPLOYED"], np.column_stack([a, -365.25 * a]).astype(np.float32),
                            a % 4 != 0, ["A", "DAYS_EMPLOYED"])


def test_income_bands_and_attributes():
    assert groups.income_bands([50_000, 100_000, 149_999, 250_000, 300_000, np.nan]).tolist() == [
        "<100,000", "100,000-149,999", "100,000-149,999", "200,000-299,999", "300,000+", "unknown"]
    attributes = groups.attributes({"NAME_CONTRACT_TYPE": ["Cash loans"], "CODE_GENDER": ["F"],
                                    "NAME_FAMILY_STATUS": [None], "DAYS_BIRTH": [-365.25 * 45],
                                    "AMT_INCOME_TOTAL": [120_000.0]}, [30, 40, 50, 60])
    assert attributes["AGE_BAND"][0] == "40-49" and attributes["NAME_FAMILY_STATUS"][0] == "unknown"
    assert groups.options(_population())["NAME_CONTRACT_TYPE"] == ["Cash loans", "Revolving loans"]


def test_a_group_against_everyone_in_quantiles_and_shares():
    out = groups.compare(_population(), {"NAME_CONTRACT_TYPE": "Cash loans"}, "A", None, {"A": 70.0})
    assert out["group"] == {"filters": {"NAME_CONTRACT_TYPE": "Cash loans"}, "clients": 60, "granted_share": 0.75}
    assert out["feature"]["group"]["quantiles"] == pytest.approx(list(np.quantile(np.arange(60), groups.QUANTILES)))
    assert out["feature"]["everyone"]["clients"] == 100 and out["feature"]["client"] == 70.0
    days = groups.compare(_population(), {}, "DAYS_EMPLOYED", None, {"DAYS_EMPLOYED": -730.5})
    assert days["feature"]["unit"] == "years" and days["feature"]["client"] == pytest.approx(2.0)  # said in years
    assert days["feature"]["everyone"]["quantiles"][2] == pytest.approx(49.5, abs=1e-3)


def test_a_small_group_or_a_thin_cell_shows_nothing():
    assert groups.compare(_population(), {"NAME_CONTRACT_TYPE": "Revolving loans", "CODE_GENDER": "F"}, "A", None,
                          {})["group"]["clients"] == 20   # the smallest group shown
    with pytest.raises(groups.GroupTooSmall, match="the filters leave 19 clients; at least 20"):
        population = _population(98)   # 38 revolving loans: 19 of each gender
        groups.compare(population, {"NAME_CONTRACT_TYPE": "Revolving loans", "CODE_GENDER": "F"}, "A", None, {})
    out = groups.compare(_population(), {}, "A", "DAYS_EMPLOYED", {"A": 3.0, "DAYS_EMPLOYED": -1000.0})
    grid = out["grid"]
    counts = [c for row in grid["clients"] for c in row if c is not None]
    assert all(c >= groups.MIN_CELL for c in counts) and sum(counts) <= 100
    for row, shares in zip(grid["clients"], grid["refused_share"]):
        assert [s is None for s in shares] == [c is None for c in row]  # a thin cell shows neither count nor share
    with pytest.raises(KeyError):
        groups.compare(_population(), {}, "NOT_A_FEATURE", None, {})
    with pytest.raises(KeyError):
        groups.compare(_population(), {"NOT_A_FILTER": "x"}, "A", None, {})
    with pytest.raises(groups.GroupTooSmall, match="the filters leave 0 clients"):
        groups.compare(_population(), {"NAME_CONTRACT_TYPE": "no such contract"}, "A", None, {})


def _rows(n: int, seed: int) -> tuple[dict, list[str], np.ndarray, np.ndarray]:
    """n random clients: filter attributes, three features (one with missing values, one a day count), decisions."""
    rng = np.random.default_rng(seed)
    attributes = groups.attributes({"NAME_CONTRACT_TYPE": rng.choice(["Cash loans", "Revolving loans"], n).tolist(),
                                    "CODE_GENDER": rng.choice(["F", "M"], n).tolist(),
                                    "NAME_FAMILY_STATUS": rng.choice(["Married", "Single / not married", None], n).tolist(),
                                    "DAYS_BIRTH": rng.uniform(-25_000, -7_000, n),
                                    "AMT_INCOME_TOTAL": rng.choice([90_000.0, 135_000.0, 400_000.0], n)}, [30, 40, 50, 60])
    b = rng.normal(size=n)
    b[rng.random(n) < 0.3] = np.nan
    values = np.column_stack([rng.gamma(2.0, 50_000.0, n), b, -rng.uniform(0, 10_000, n)]).astype(np.float32)
    return attributes, ["AMT_CREDIT", "B", "DAYS_EMPLOYED"], values, rng.random(n) < 0.8


@pytest.mark.parametrize("seed", [0, 1])
def test_the_aggregates_answer_what_the_rows_would(seed):
    """Every group of every filter combination, from the aggregates, against the same figures computed on the rows."""
    attributes, names, values, granted = _rows(3_000, seed)
    population = groups.summarise(attributes, names, values, granted, ["AMT_CREDIT", "B", "DAYS_EMPLOYED"])
    rng = np.random.default_rng(seed)
    everyone_edges = {n: groups._edges(groups.human(n, values[:, i])[0]) for i, n in enumerate(names)}
    checked = 0
    for _ in range(60):
        filters = {f: str(rng.choice(sorted(set(attributes[f].tolist())))) for f in groups.FILTERS if rng.random() < 0.4}
        mask = np.ones(len(granted), dtype=bool)
        for f, level in filters.items():
            mask &= attributes[f] == level
        feature, versus = rng.choice(names, 2)
        if mask.sum() < groups.MIN_GROUP:
            with pytest.raises(groups.GroupTooSmall, match=f"leave {int(mask.sum())} clients"):
                groups.compare(population, filters, feature, None, {})
            continue
        out = groups.compare(population, filters, feature, versus, {})
        x = groups.human(feature, values[:, names.index(feature)])[0]
        y = groups.human(versus, values[:, names.index(versus)])[0]
        present = x[mask & ~np.isnan(x)]
        assert out["group"]["clients"] == mask.sum()
        assert out["group"]["granted_share"] == round(float(granted[mask].mean()), 4)
        assert out["feature"]["group"]["missing_share"] == round(1 - len(present) / mask.sum(), 4)
        assert out["feature"]["group"]["quantiles"] == pytest.approx(np.quantile(present, groups.QUANTILES), rel=1e-6, abs=1e-6)
        xi = np.clip(np.searchsorted(everyone_edges[feature], x, side="right") - 1, 0, groups.GRID - 1)
        yi = np.clip(np.searchsorted(everyone_edges[versus], y, side="right") - 1, 0, groups.GRID - 1)
        both = mask & ~np.isnan(x) & ~np.isnan(y)
        total, refused = np.zeros((groups.GRID, groups.GRID), int), np.zeros((groups.GRID, groups.GRID), int)
        np.add.at(total, (yi[both], xi[both]), 1)
        np.add.at(refused, (yi[both & ~granted], xi[both & ~granted]), 1)
        assert out["grid"]["clients"] == [[int(t) if t >= groups.MIN_CELL else None for t in r] for r in total]
        assert out["grid"]["refused_share"] == [[round(r / t, 4) if t >= groups.MIN_CELL else None
                                                 for r, t in zip(rr, tt)] for rr, tt in zip(refused, total)]
        checked += 1
    assert checked > 20


def test_no_aggregate_holds_a_row_per_client():
    attributes, names, values, granted = _rows(3_000, 0)
    population = groups.summarise(attributes, names, values, granted, ["AMT_CREDIT", "B"])
    arrays = [v for v in population.values() if isinstance(v, np.ndarray)]
    assert arrays and all(3_000 not in a.shape for a in arrays)
    assert all(len(v) < 3_000 for v in population.values() if isinstance(v, (dict, list)))
    with pytest.raises(KeyError):  # no grid is kept for a feature outside the grid's names
        groups.compare(population, {}, "AMT_CREDIT", "DAYS_EMPLOYED", {})


def test_column_quantiles_are_numpy_s_on_each_column_s_present_values_to_the_bit():
    """Columns of every kind at once: complete, with ties and signed zeros, missing in different rows with the
    same count, too few values (no quantiles), and nothing present."""
    rng = np.random.default_rng(5)
    n = 40
    block = np.column_stack([rng.normal(size=n), np.round(rng.normal(size=n)) * 0.0 * rng.choice([-1, 1], n),
                             rng.normal(size=n), rng.normal(size=n), rng.normal(size=n), np.full(n, np.nan)])
    block[rng.permutation(n)[:7], 2] = np.nan
    block[rng.permutation(n)[:7], 3] = np.nan   # the same count as column 2, other rows
    block[rng.permutation(n)[:25], 4] = np.nan  # 15 values: fewer than MIN_GROUP
    present, quantiles = groups._column_quantiles(block)
    assert present.tolist() == [40, 40, 33, 33, 15, 0]
    for i in range(4):
        column = block[:, i]
        assert quantiles[i].tobytes() == np.quantile(column[~np.isnan(column)], groups.QUANTILES).tobytes()
    assert np.isnan(quantiles[4:]).all()


def test_group_quantiles_in_chunks_of_columns_are_those_of_the_whole_block():
    rng = np.random.default_rng(6)
    values = rng.normal(size=(300, 2 * groups.COLUMN_CHUNK + 5))
    values[rng.random(values.shape) < 0.2] = np.nan
    rows = np.sort(rng.choice(300, 120, replace=False))
    present, quantiles = groups.group_quantiles(values, rows)
    whole_present, whole = groups._column_quantiles(values[rows])
    assert present.tobytes() == whole_present.tobytes() and quantiles.tobytes() == whole.tobytes()
    assert present.shape == (values.shape[1],) and quantiles.shape == (values.shape[1], len(groups.QUANTILES))


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_every_group_on_threads_gives_each_group_s_own_quantiles_in_order(threads):
    """Groups of different sizes (one of every row, one too small for quantiles, overlapping ones): the threads'
    results are each group's own, to the bit, in the groups' order."""
    rng = np.random.default_rng(7)
    values = rng.normal(size=(400, groups.COLUMN_CHUNK + 3))
    values[rng.random(values.shape) < 0.3] = np.nan
    rows_of = [np.arange(400), np.sort(rng.choice(400, 10, replace=False))] + [
        np.sort(rng.choice(400, size, replace=False)) for size in (50, 200, 37, 399, 120)]
    results = groups.every_group_quantiles(values, rows_of, threads=threads)
    assert len(results) == len(rows_of)
    for rows, (present, quantiles) in zip(rows_of, results):
        alone_present, alone = groups.group_quantiles(values, rows)
        assert present.tobytes() == alone_present.tobytes() and quantiles.tobytes() == alone.tobytes()
    assert np.isnan(results[1][1]).all() and results[0][0].max() <= 400  # 10 clients: counts, no quantiles
