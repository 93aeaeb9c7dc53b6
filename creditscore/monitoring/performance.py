"""Performance once loans mature, and before: the realised AUC and calibration of what was scored, by monthly
cohort, beside an estimate from the calibrated probabilities alone.

The estimate is confidence-based (the idea of NannyML's CBPE): if the calibrated probabilities are right, client
i defaults with probability p_i, so the expected AUC is the expected share of (defaulter, good client) pairs the
score orders correctly. With the score being p itself:

    E[AUC] ≈ Σ_{i≠j} p_i (1 - p_j) [p_i > p_j] / Σ_{i≠j} p_i (1 - p_j)   (a tie counts one half)

computed exactly in O(n log n). NannyML itself needs LightGBM below 4.6, which the pinned stack is not.
"""
from __future__ import annotations

import numpy as np
import polars as pl
from sklearn.metrics import roc_auc_score

DIGITS = 5


def expected_auc(proba: np.ndarray) -> float | None:
    """The AUC the calibrated probabilities `proba` expect of themselves (None for fewer than two clients)."""
    p = np.asarray(proba, dtype=np.float64)
    if p.size < 2:
        return None
    order = np.argsort(p, kind="stable")
    p = p[order]
    good = 1.0 - p
    values, starts = np.unique(p, return_index=True)
    ends = np.append(starts[1:], p.size)
    below = np.concatenate([[0.0], np.cumsum(good)])[starts]  # good mass strictly below each tie group
    tie_good = np.add.reduceat(good, starts)
    numerator = 0.0
    for start, end, under, tied in zip(starts, ends, below, tie_good):
        group = p[start:end]
        # pairs with a lower score, then half of the pairs within the tie (a client is not paired with itself)
        numerator += group.sum() * under + 0.5 * (group.sum() * tied - (group * (1.0 - group)).sum())
    denominator = p.sum() * good.sum() - (p * good).sum()
    return float(numerator / denominator) if denominator > 0 else None


def _realised(y: np.ndarray, p: np.ndarray) -> dict:
    auc = float(roc_auc_score(y, p)) if 0 < y.sum() < len(y) else None
    return {"clients": int(len(y)), "defaulters": int(y.sum()), "default_rate": round(float(y.mean()), DIGITS),
            "predicted_default_rate": round(float(p.mean()), DIGITS),
            "auc": None if auc is None else round(auc, DIGITS),
            "estimated_auc": None if (e := expected_auc(p)) is None else round(e, DIGITS)}


def performance(scored: pl.DataFrame, outcomes: pl.DataFrame | None, min_cohort: int) -> dict:
    """`scored`: SK_ID_CURR and `proba` (calibrated) of every client scored; `outcomes`: SK_ID_CURR, TARGET and
    APPLICATION_MONTH of those whose loans matured (None: none yet). The estimate over every client scored, the
    realised figures over the matured ones, and both by monthly cohort (a cohort under `min_cohort` clients gets
    no AUC)."""
    p = scored["proba"].to_numpy().astype(np.float64)
    out = {"clients_scored": scored.height,
           "estimated": {"auc": round(expected_auc(p), DIGITS), "default_rate": round(float(p.mean()), DIGITS),
                         "method": "confidence-based: the AUC the calibrated probabilities expect of themselves"},
           "matured": 0, "realised": None, "cohorts": []}
    if outcomes is None or outcomes.height == 0:
        return out
    joined = scored.join(outcomes, on="SK_ID_CURR", how="inner", maintain_order="left")
    out["matured"] = joined.height
    out["unmatched_outcomes"] = outcomes.height - joined.height
    y, pm = joined["TARGET"].to_numpy().astype(int), joined["proba"].to_numpy().astype(np.float64)
    out["realised"] = _realised(y, pm)
    if out["realised"]["auc"] is not None:
        out["estimated_minus_realised_auc"] = round(out["realised"]["estimated_auc"] - out["realised"]["auc"], DIGITS)
    for month in sorted(joined["APPLICATION_MONTH"].unique().to_list()):
        rows = (joined["APPLICATION_MONTH"] == month).to_numpy()
        cohort = {"month": month, **_realised(y[rows], pm[rows])}
        if rows.sum() < min_cohort:
            cohort["auc"] = cohort["estimated_auc"] = None
        out["cohorts"].append(cohort)
    return out


def report(metrics: dict) -> str:
    """The performance report in Markdown."""
    e, r = metrics["estimated"], metrics["realised"]
    lines = ["# Performance of the scored clients", "",
             f"{metrics['clients_scored']:,} clients scored; {metrics['matured']:,} with a matured outcome.", "",
             f"Before outcomes mature (every scored client): estimated AUC {e['auc']:.4f}, expected default rate "
             f"{e['default_rate']:.4f} ({e['method']}).", ""]
    if r is None:
        return "\n".join(lines + ["No matured outcome yet: the estimate is all there is.", ""])
    lines += [f"Realised on the matured clients: AUC {r['auc']}, estimated beforehand {r['estimated_auc']}; default "
              f"rate {r['default_rate']:.4f} against a predicted {r['predicted_default_rate']:.4f}.", "",
              "| cohort | clients | defaulters | default rate | predicted | AUC | estimated AUC |",
              "|---|---|---|---|---|---|---|"]
    lines += [f"| {c['month']} | {c['clients']} | {c['defaulters']} | {c['default_rate']:.4f} | "
              f"{c['predicted_default_rate']:.4f} | {c['auc'] if c['auc'] is not None else 'n/a'} | "
              f"{c['estimated_auc'] if c['estimated_auc'] is not None else 'n/a'} |" for c in metrics["cohorts"]]
    return "\n".join(lines) + "\n"
