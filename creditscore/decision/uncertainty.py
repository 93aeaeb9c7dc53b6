"""What a hold-out figure is worth: intervals for AUC, Gini and KS, paired AUC differences, band rank-ordering.

- `delong_auc`, `auc_interval`: the AUC and its DeLong variance (the fast algorithm of Sun and Xu, 2014,
  on midranks, so ties count one half), and a normal interval.
- `paired_auc_difference`: DeLong's test of two scores on the same clients; the covariance of the two AUCs
  is what makes a paired interval much narrower than two separate ones.
- `bootstrap_intervals`: seeded stratified bootstrap (defaulters and good clients resampled separately, so
  every replicate has both), percentile intervals of any statistic.
- `gini_ks_intervals`: the same draws for Gini and KS, each draw counted on the scores sorted once (a
  replicate is a count per distinct score: no sort per draw).
- `band_rank_ordering`: whether an inversion of the default rate between adjacent score bands is more than
  noise (one-sided Fisher exact test per inverted pair, Holm-adjusted over the adjacent pairs).

Labels are 1 for a default; a higher score means riskier.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy.stats import fisher_exact, norm, rankdata, spearmanr

from creditscore.decision.validation import gini, ks


def _components(y: np.ndarray, score: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """AUC and the structural components: V10 per defaulter, V01 per good client."""
    y = np.asarray(y).astype(bool)
    score = np.asarray(score, dtype=np.float64)
    pos, neg = score[y], score[~y]
    m, n = len(pos), len(neg)
    if m == 0 or n == 0:
        raise ValueError("an AUC needs at least one defaulter and one good client")
    all_ranks = rankdata(np.concatenate([pos, neg]))
    pos_ranks, neg_ranks = rankdata(pos), rankdata(neg)
    v10 = (all_ranks[:m] - pos_ranks) / n  # share of good clients scored below each defaulter (ties: one half)
    v01 = 1.0 - (all_ranks[m:] - neg_ranks) / m  # share of defaulters scored above each good client
    return float(v10.mean()), v10, v01


def delong_auc(y, score) -> tuple[float, float]:
    """The AUC and its DeLong variance."""
    auc, v10, v01 = _components(y, score)
    var = (np.var(v10, ddof=1) / len(v10) if len(v10) > 1 else 0.0) + \
          (np.var(v01, ddof=1) / len(v01) if len(v01) > 1 else 0.0)
    return auc, float(var)


def auc_interval(y, score, level: float = 0.95) -> dict:
    """The AUC with its DeLong standard error and normal interval (clipped to [0, 1])."""
    auc, var = delong_auc(y, score)
    se = float(np.sqrt(var))
    z = float(norm.ppf(0.5 + level / 2))
    return {"auc": round(auc, 5), "low": round(max(0.0, auc - z * se), 5), "high": round(min(1.0, auc + z * se), 5),
            "se": round(se, 5)}


def paired_auc_difference(y, score_a, score_b, level: float = 0.95) -> dict:
    """AUC(a) − AUC(b) on the same clients: the difference, its paired DeLong interval, standard error and
    two-sided p-value."""
    auc_a, v10a, v01a = _components(y, score_a)
    auc_b, v10b, v01b = _components(y, score_b)
    s10 = np.cov(np.vstack([v10a, v10b])) if len(v10a) > 1 else np.zeros((2, 2))
    s01 = np.cov(np.vstack([v01a, v01b])) if len(v01a) > 1 else np.zeros((2, 2))
    cov = s10 / len(v10a) + s01 / len(v01a)
    d = auc_a - auc_b
    var = max(0.0, float(cov[0, 0] + cov[1, 1] - 2 * cov[0, 1]))
    se = float(np.sqrt(var))
    if se < 1e-12:
        return {"difference": round(d, 5), "low": round(d, 5), "high": round(d, 5), "se": 0.0, "p_value": 1.0}
    z = float(norm.ppf(0.5 + level / 2))
    return {"difference": round(d, 5), "low": round(d - z * se, 5), "high": round(d + z * se, 5), "se": round(se, 5),
            "p_value": round(float(2 * norm.sf(abs(d) / se)), 6)}


def bootstrap_intervals(y, score, statistics: dict[str, Callable[[np.ndarray, np.ndarray], float]],
                        n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Each statistic's value and its percentile interval over a seeded stratified bootstrap."""
    y = np.asarray(y).astype(np.int64)
    score = np.asarray(score, dtype=np.float64)
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    draws = {name: np.empty(n_boot) for name in statistics}
    for b in range(n_boot):
        rows = np.concatenate([rng.choice(pos, len(pos)), rng.choice(neg, len(neg))])
        for name, f in statistics.items():
            draws[name][b] = f(y[rows], score[rows])
    tail = (1 - level) / 2
    return {name: {"value": round(float(f(y, score)), 5), "low": round(float(np.quantile(draws[name], tail)), 5),
                   "high": round(float(np.quantile(draws[name], 1 - tail)), 5)} for name, f in statistics.items()}


def gini_ks_intervals(y, score, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> dict:
    """Gini and KS with their percentile intervals over the draws of `bootstrap_intervals` (same seed, same
    replicates). A replicate is a count of defaulters and good clients per distinct score, its ROC curve the
    running sums of those counts from the highest score down. KS is the largest gap between the two running
    shares, as `roc_curve` gives it; Gini comes from the exact Mann-Whitney count (ties one half), where
    `roc_auc_score`'s trapezoids may differ in the last bits, so a rounded bound can only differ when it falls
    exactly half-way between two fifth decimals."""
    y = np.asarray(y).astype(np.int64)
    score = np.asarray(score, dtype=np.float64)
    group = np.unique(-score, return_inverse=True)[1].ravel()  # 0: the highest score
    n_groups = int(group.max()) + 1 if len(group) else 0
    rng = np.random.default_rng(seed)
    pos, neg = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    n_pos, n_neg = len(pos), len(neg)
    draws = {"gini": np.empty(n_boot), "ks": np.empty(n_boot)}
    for b in range(n_boot):
        tp = np.bincount(group[rng.choice(pos, n_pos)], minlength=n_groups)
        fp = np.bincount(group[rng.choice(neg, n_neg)], minlength=n_groups)
        tps, fps = np.cumsum(tp), np.cumsum(fp)
        # twice the Mann-Whitney count: per good client, the defaulters scored above it twice, those tied once
        twice_u = int(np.dot(fp, 2 * (tps - tp) + tp))
        draws["gini"][b] = 2.0 * (twice_u / (2 * n_pos * n_neg)) - 1.0
        draws["ks"][b] = max(0.0, float(np.max(tps / n_pos - fps / n_neg)))
    tail = (1 - level) / 2
    values = {"gini": gini(y, score), "ks": ks(y, score)[0]}
    return {name: {"value": round(float(values[name]), 5), "low": round(float(np.quantile(draws[name], tail)), 5),
                   "high": round(float(np.quantile(draws[name], 1 - tail)), 5)} for name in draws}


def band_rank_ordering(bands: list[dict], alpha: float = 0.05) -> dict:
    """Inversions of the default rate between adjacent bands (band 1 the lowest risk), each tested one-sided
    (is the lower band's rate really higher?) by Fisher's exact test, Holm-adjusted over the n − 1 pairs."""
    rows = [b for b in bands if b["clients"]]
    pairs = list(zip(rows[:-1], rows[1:]))
    found = []
    for lower, upper in pairs:
        r_lo, r_up = lower["defaults"] / lower["clients"], upper["defaults"] / upper["clients"]
        if r_up < r_lo:
            table = [[lower["defaults"], lower["clients"] - lower["defaults"]],
                     [upper["defaults"], upper["clients"] - upper["defaults"]]]
            found.append({"bands": [lower["band"], upper["band"]], "default_rates": [round(r_lo, 6), round(r_up, 6)],
                          "p_value": float(fisher_exact(table, alternative="greater").pvalue)})
    # Holm over every adjacent pair: a pair that is not inverted has p = 1 and sorts last
    m = len(pairs)
    order = sorted(range(len(found)), key=lambda i: found[i]["p_value"])
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * found[i]["p_value"]))
        found[i]["p_adjusted"] = running
    for item in found:
        item["significant"] = bool(item["p_adjusted"] < alpha)
        item["p_value"], item["p_adjusted"] = round(item["p_value"], 6), round(item["p_adjusted"], 6)
    rates = [b["defaults"] / b["clients"] for b in rows]
    rho = spearmanr([b["band"] for b in rows], rates).statistic if len(rows) > 1 and len(set(rates)) > 1 else 1.0
    return {"rank_ordered": not found, "inversions": found,
            "significant_inversions": sum(i["significant"] for i in found),
            "alpha": alpha, "spearman": round(float(rho), 5),
            "test": "one-sided Fisher exact per adjacent inverted pair, Holm-adjusted over the n-1 pairs"}
