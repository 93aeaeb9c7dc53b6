"""Intervals of the hold-out figures and the bands' rank-ordering test: exact values on hand-built data."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from creditscore.decision.uncertainty import (
    auc_interval,
    band_rank_ordering,
    bootstrap_intervals,
    delong_auc,
    gini_ks_intervals,
    paired_auc_difference,
)
from creditscore.decision.validation import gini, ks


def test_delong_auc_and_variance_by_hand():
    y = np.array([1, 1, 0, 0, 0])
    s = np.array([0.9, 0.4, 0.4, 0.2, 0.1])
    # V10 per defaulter (share of good clients below, ties one half): 0.9 -> 3/3, 0.4 -> 2.5/3
    # V01 per good client (share of defaulters above, ties one half): 0.4 -> 1.5/2, 0.2 -> 1, 0.1 -> 1
    v10, v01 = np.array([1.0, 2.5 / 3]), np.array([0.75, 1.0, 1.0])
    auc, var = delong_auc(y, s)
    assert auc == pytest.approx(v10.mean()) == pytest.approx(roc_auc_score(y, s))
    assert var == pytest.approx(np.var(v10, ddof=1) / 2 + np.var(v01, ddof=1) / 3)


def test_delong_matches_sklearn_with_ties_and_a_bootstrap_variance():
    rng = np.random.default_rng(0)
    y = (rng.random(3000) < 0.1).astype(int)
    s = np.round(y * 0.8 + rng.normal(size=3000), 1)  # many ties
    auc, var = delong_auc(y, s)
    assert auc == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    boots = [roc_auc_score(y[r], s[r]) for r in (rng.integers(0, 3000, 3000) for _ in range(400))]
    assert np.sqrt(var) == pytest.approx(np.std(boots), rel=0.15)
    interval = auc_interval(y, s)
    assert interval["low"] < interval["auc"] < interval["high"]
    assert interval["high"] - interval["low"] == pytest.approx(2 * 1.959964 * interval["se"], abs=2e-5)


def test_a_paired_difference_is_narrower_than_two_separate_intervals():
    rng = np.random.default_rng(1)
    y = (rng.random(4000) < 0.1).astype(int)
    base = y * 0.9 + rng.normal(size=4000)
    same = paired_auc_difference(y, base, base)
    assert same == {"difference": 0.0, "low": 0.0, "high": 0.0, "se": 0.0, "p_value": 1.0}
    other = base + 0.3 * rng.normal(size=4000)  # correlated with it, slightly worse
    paired = paired_auc_difference(y, base, other)
    unpaired = np.sqrt(delong_auc(y, base)[1] + delong_auc(y, other)[1])
    assert paired["se"] < 0.5 * unpaired
    assert paired["difference"] == pytest.approx(roc_auc_score(y, base) - roc_auc_score(y, other), abs=1e-5)


def test_the_paired_interval_covers_the_truth():
    """Two scores of known equal quality: the 95% interval of their difference covers 0 in about 95% of draws."""
    rng = np.random.default_rng(2)
    covered = 0
    for _ in range(100):
        y = (rng.random(1500) < 0.15).astype(int)
        signal = y * 1.0 + rng.normal(size=1500)
        a, b = signal + 0.5 * rng.normal(size=1500), signal + 0.5 * rng.normal(size=1500)
        d = paired_auc_difference(y, a, b)
        covered += d["low"] <= 0.0 <= d["high"]
    assert covered >= 88


def test_bootstrap_is_seeded_stratified_and_brackets_the_value():
    y = np.array([0, 0, 0, 0, 0, 0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.35, 0.9])
    seen = []

    def auc(t, p):
        seen.append(int(t.sum()))
        return roc_auc_score(t, p)  # fails on a replicate without both classes

    out = bootstrap_intervals(y, s, {"auc": auc}, n_boot=200, seed=3)
    assert set(seen) == {2}  # every replicate keeps the two defaulters' count
    assert out == bootstrap_intervals(y, s, {"auc": roc_auc_score}, n_boot=200, seed=3)
    assert out["auc"]["value"] == 0.6875 and out["auc"]["low"] <= 0.6875 <= out["auc"]["high"]


def test_gini_and_ks_by_hand_and_on_the_general_bootstrap_s_draws():
    # defaulters at 0.9 and 0.4, good clients at 0.4, 0.2, 0.1: AUC (3 + 2.5) / 6 = 11/12, Gini 2 AUC - 1 = 5/6;
    # refusing at 0.9 catches half the defaulters and no good client (gap 1/2), at 0.4 all and a third: KS 2/3
    y = np.array([1, 1, 0, 0, 0])
    s = np.array([0.9, 0.4, 0.4, 0.2, 0.1])
    out = gini_ks_intervals(y, s, n_boot=50, seed=0)
    assert out["gini"]["value"] == round(5 / 6, 5) and out["ks"]["value"] == round(2 / 3, 5)
    rng = np.random.default_rng(2)
    for n, decimals in ((400, 1), (3_000, None)):   # many ties, then none
        y = (rng.random(n) < 0.12).astype(int)
        s = rng.normal(size=n) + y
        s = np.round(s, decimals) if decimals is not None else s
        general = bootstrap_intervals(y, s, {"gini": gini, "ks": lambda t, p: ks(t, p)[0]}, n_boot=300, seed=7)
        assert gini_ks_intervals(y, s, n_boot=300, seed=7) == general
        assert gini_ks_intervals(y, s, n_boot=300, seed=8) != general


def _bands(rates: list[tuple[int, int]]) -> list[dict]:
    return [{"band": i + 1, "clients": n, "defaults": d, "default_rate": d / n} for i, (d, n) in enumerate(rates)]


def test_rank_ordering_tells_an_inversion_from_noise():
    ordered = band_rank_ordering(_bands([(1, 100), (2, 100), (4, 100), (9, 100)]))
    assert ordered["rank_ordered"] and ordered["inversions"] == [] and ordered["spearman"] == 1.0
    noisy = band_rank_ordering(_bands([(1, 100), (3, 100), (2, 100), (9, 100)]))
    assert not noisy["rank_ordered"] and noisy["significant_inversions"] == 0
    assert [i["bands"] for i in noisy["inversions"]] == [[2, 3]] and not noisy["inversions"][0]["significant"]
    glaring = band_rank_ordering(_bands([(1, 100), (40, 100), (5, 100), (50, 100)]))
    assert glaring["significant_inversions"] == 1 and glaring["inversions"][0]["bands"] == [2, 3]


def test_holm_adjustment_by_hand():
    from scipy.stats import fisher_exact

    rates = [(10, 100), (2, 100), (30, 100), (20, 100), (50, 100), (38, 100), (60, 100)]
    out = band_rank_ordering(_bands(rates))
    raw = [fisher_exact([[a, 100 - a], [b, 100 - b]], alternative="greater").pvalue
           for a, b in ((10, 2), (30, 20), (50, 38))]
    order = np.argsort(raw)
    m = 6  # adjacent pairs
    adjusted, running = [0.0] * 3, 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * raw[i]))
        adjusted[i] = running
    assert [i["bands"] for i in out["inversions"]] == [[1, 2], [3, 4], [5, 6]]
    assert [i["p_adjusted"] for i in out["inversions"]] == [round(a, 6) for a in adjusted]
    assert [i["p_value"] for i in out["inversions"]] == [round(p, 6) for p in raw]
