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
    return {"attributes": attributes, "names": ["A", "DAYS_EMPLOYED"],
            "values": np.column_stack([a, -365.25 * a]).astype(np.float32), "granted": a % 4 != 0}


def test_income_bands_and_attributes():
    assert groups.income_bands([50_000, 100_000, 149_999, 250_000, 300_000, np.nan]).tolist() == [
        "<100,000", "100,000-149,999", "100,000-149,999", "200,000-299,999", "300,000+", "unknown"]
    attributes = _population()["attributes"]
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
