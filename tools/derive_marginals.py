"""Derive the generator's marginals from the shared profile of real Home Credit rows.

Run once by a maintainer who has `../shared/home-credit-profile.json`; the output,
`creditscore/synthetic/marginals.json`, holds statistics only (quantiles, category
shares, missing shares, rows per parent) so a user's clone generates data without it.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROFILE = ROOT.parent / "shared" / "home-credit-profile.json"
OUT = ROOT / "creditscore" / "synthetic" / "marginals.json"
TABLES = ["application_train", "bureau", "bureau_balance", "previous_application",
          "POS_CASH_balance", "installments_payments", "credit_card_balance"]
KEEP = ("kind", "missing", "integer_valued", "share_365243",
        "univariate_auc_vs_target", "higher_means_riskier", "target_rate_by_decile")


def _column(stats: dict) -> dict:
    out = {k: stats[k] for k in KEEP if k in stats}
    if "quantiles" in stats:
        q = stats["quantiles"]
        out["quantiles"] = [[float(p), float(v)] for p, v in q.items()]
    if "values" in stats:
        vals = stats["values"]
        total = sum(vals.values())
        out["values"] = [[k, round(v / total, 6)] for k, v in vals.items()]
    return out


def derive(profile: dict) -> dict:
    """Return the reduced marginals for every table of the profile."""
    spec = {"full_scale": profile["full_scale"], "target_rate": profile["application_train"]["target_rate"]}
    for table in TABLES:
        src = profile[table]
        entry = {"columns": {c: _column(s) for c, s in src["columns"].items()}}
        for k, v in src.items():
            if k.startswith("rows_per_"):
                entry[k] = [[float(p), float(x)] for p, x in v.items()]
        spec[table] = entry
    return spec


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else PROFILE
    OUT.write_text(json.dumps(derive(json.loads(path.read_text())), indent=1) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
