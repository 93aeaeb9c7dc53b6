"""Fit the generator's single-feature risk shapes to the real default rate by decile and by category.

Run once by a maintainer who has `../shared/home-credit-model-profile.json`; the output,
`creditscore/synthetic/shapes.json`, holds log-odds at value knots (no rows). The fit is a damped
backfitting on a large synthetic sample: each shape is moved, in log-odds, by the gap between the
real default rate of its decile (or category) and the mean synthetic probability there, with the
history part of the risk in place, until the synthetic curves match the real ones.

    python tools/fit_shapes.py [--clients 150000] [--iterations 40]
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.special import expit, logit
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from creditscore.synthetic.application import application_rows, application_score  # noqa: E402
from creditscore.synthetic.latent import draw_factors, history_score, solve_intercept  # noqa: E402
from creditscore.synthetic.marginals import load_marginals  # noqa: E402
from creditscore.synthetic.shapes import SHAPES, category_codes, column_values  # noqa: E402

PROFILE = ROOT.parent / "shared" / "home-credit-model-profile.json"
# Columns given a shape; the other profiled columns (AMT_ANNUITY, the other ratios) follow from them.
NUMERIC = ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3", "DAYS_BIRTH", "DAYS_EMPLOYED", "AMT_CREDIT",
           "AMT_GOODS_PRICE", "AMT_INCOME_TOTAL", "DAYS_ID_PUBLISH", "DAYS_REGISTRATION", "DAYS_LAST_PHONE_CHANGE",
           "REGION_POPULATION_RELATIVE", "PAYMENT_RATE", "OWN_CAR_AGE")
CATEGORIES = ("CODE_GENDER", "NAME_EDUCATION_TYPE", "NAME_INCOME_TYPE", "OCCUPATION_TYPE", "NAME_FAMILY_STATUS",
              "NAME_CONTRACT_TYPE", "REGION_RATING_CLIENT_W_CITY", "NAME_HOUSING_TYPE")
MIN_SHARE = 0.005  # category levels rarer than this keep no effect
END = 0.5  # the end knots extrapolate half a decile step beyond the first and last deciles
DAMPING = 0.6
# The real weak columns overlap: fitted one by one at their full univariate amplitude, independent
# shapes add up to an application-only LightGBM AUC of 0.86 (real: 0.75-0.77). Their target curves are
# shrunk towards the mean default rate (in log-odds) by this factor; the curves of the EXT_SOURCE columns and
# of age and of the non-linear shapes (amounts, employment, car age) are kept whole.
WEAK_AMPLITUDE = 0.25
FULL_AMPLITUDE = ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3", "DAYS_BIRTH", "DAYS_EMPLOYED", "AMT_CREDIT", "AMT_GOODS_PRICE",
                  "OWN_CAR_AGE")
HALF_AMPLITUDE = {"PAYMENT_RATE": 0.45, "REGION_POPULATION_RELATIVE": 0.45}  # jagged shapes, partly kept


def _bins(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Decile bin of each present value (tied edges merged, as pandas.qcut) and the bins' median values."""
    present = ~np.isnan(x)
    edges = np.unique(np.quantile(x[present], np.linspace(0, 1, 11)))
    bins = np.full(x.shape[0], -1)
    bins[present] = np.searchsorted(edges[1:-1], x[present], side="left")
    medians = np.array([np.median(x[bins == b]) for b in range(bins.max() + 1)])
    return bins, medians


def _knots(medians: np.ndarray, mids: np.ndarray) -> tuple[list[float], list[float]]:
    """Value and log-odds knots: one per decile at its median value, plus an extrapolated knot at each end."""
    lo = medians[0] - END * (medians[1] - medians[0])
    hi = medians[-1] + END * (medians[-1] - medians[-2])
    values = np.concatenate([[lo], medians, [hi]])
    logodds = np.concatenate([[mids[0] + END * (mids[0] - mids[1])], mids, [mids[-1] + END * (mids[-1] - mids[-2])]])
    return [float(v) for v in values], [round(float(v), 4) for v in logodds]


def fit(clients: int, iterations: int, seed: int, amplitude: float) -> dict:
    profile = json.loads(PROFILE.read_text())
    rate = load_marginals()["full_scale"]["target_rate_train"]
    shift = logit(rate) - logit(profile["default_rate"])  # real curves moved to the generator's default rate

    def aim(real_rate, column):  # the target log-odds: the real one, moved and (weak columns) shrunk
        scale = 1.0 if column in FULL_AMPLITUDE else HALF_AMPLITUDE.get(column, amplitude)
        return logit(rate) + scale * (logit(real_rate) + shift - logit(rate))
    rng = np.random.default_rng(seed)
    factors = draw_factors(clients, rng)
    frame = application_rows(factors, np.arange(clients), rng)
    base = history_score(factors) + application_score(frame, {"numeric": {}, "categories": {}})
    numeric = {}
    for c in NUMERIC:
        x = column_values(frame, c)
        bins, medians = _bins(x)
        real = profile["deciles"][c]
        curve = np.asarray(real["default_rate_by_decile"])
        target = aim(np.interp(np.linspace(0, 1, len(medians)), np.linspace(0, 1, len(curve)), curve), c)
        missing = real["default_rate_when_missing"] if (np.isnan(x).any() and real["missing_share"] > 0) else None
        numeric[c] = {"bins": bins, "medians": medians, "target": target, "mids": target - logit(rate),
                      "missing_target": None if missing is None else aim(missing, c),
                      "missing": 0.0 if missing is None else aim(missing, c) - logit(rate)}
    categories = {}
    for c in CATEGORIES:
        codes = category_codes(frame, c)
        levels = {k: v for k, v in profile["categories"][c].items() if v["share"] >= MIN_SHARE}
        categories[c] = {"codes": codes, "target": {k: aim(v["default_rate"], c) for k, v in levels.items()},
                         "effect": {k: aim(v["default_rate"], c) - logit(rate) for k, v in levels.items()}}

    def shapes() -> dict:
        out = {"numeric": {}, "categories": {}}
        for c, s in numeric.items():
            values, logodds = _knots(s["medians"], s["mids"])
            out["numeric"][c] = {"values": values, "logodds": logodds, "missing": round(float(s["missing"]), 4)}
        for c, s in categories.items():
            out["categories"][c] = {k: round(float(v), 4) for k, v in s["effect"].items()}
        return out

    for it in range(iterations + 1):
        current = shapes()
        score = base + application_score(frame, current) - application_score(frame, {"numeric": {}, "categories": {}})
        p = expit(solve_intercept(score, rate) + score)
        worst = 0.0
        for s in numeric.values():
            synth = np.array([p[s["bins"] == b].mean() for b in range(len(s["medians"]))])
            gap = s["target"] - logit(synth)
            worst = max(worst, float(np.max(np.abs(expit(s["target"]) - synth))))
            s["mids"] = s["mids"] + DAMPING * gap
            if s["missing_target"] is not None:
                s["missing"] += DAMPING * (s["missing_target"] - logit(p[s["bins"] < 0].mean()))
        for s in categories.values():
            for k, t in s["target"].items():
                mask = s["codes"] == k
                if mask.any():
                    s["effect"][k] += DAMPING * (t - logit(p[mask].mean()))
        if it % 10 == 0 or it == iterations:
            auc = roc_auc_score(rng.random(clients) < p, score - history_score(factors))
            print(f"iteration {it}: largest decile gap {worst:.4f}, application-only oracle AUC {auc:.4f}",
                  file=sys.stderr)
    return current


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=150_000)
    parser.add_argument("--iterations", type=int, default=40)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--amplitude", type=float, default=WEAK_AMPLITUDE)
    args = parser.parse_args()
    if not PROFILE.is_file():
        print(f"fit_shapes: {PROFILE} is absent", file=sys.stderr)
        return 1
    out = fit(args.clients, args.iterations, args.seed, args.amplitude)
    SHAPES.write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
