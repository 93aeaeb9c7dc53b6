"""Does the synthetic population rank models as the real data does? Synthetic and real figures side by side.

Generates the default synthetic population (seed 42, 20,000 labelled clients) into benchmarks/.work/,
computes on application-only kernel features 5-fold AUC of LightGBM, additive LightGBM, standardised
logistic regression and LightGBM on EXT_SOURCE only, the decile curves of the profile's 17 columns, and
the all-tables AUC with the project's own features; the same application figures on the real rows of
../shared when present. Checks each target (creditscore/synthetic/realism.py), prints a table and
writes benchmarks/results/realism.json. One thread for LightGBM.

    nice python -m benchmarks.bench_realism [--clients 20000] [--seed 42] [--also 6000:7]
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import polars as pl

from benchmarks.common import write_results
from creditscore.config import ROOT, load_params
from creditscore.synthetic import realism
from creditscore.synthetic.generate import generate
from stages.engineer import engineer
from stages.prepare import run

SHARED = ROOT.parent / "shared"
PROFILE = SHARED / "home-credit-model-profile.json"
REAL = SHARED / "home-credit-real-applications" / "application_train.csv"
WORK = ROOT / "benchmarks" / ".work" / "realism"
RESULTS = ROOT / "benchmarks" / "results" / "realism.json"


def history_figures(raw: Path, work: Path, folds: int = 5, seed: int = 42) -> dict:
    """LightGBM AUC on the project's own features (prepare + engineer): all tables vs the application group.

    Train and hold-out clients of `prepare` are scored together (every labelled client of `raw`).
    """
    if run(raw, work / "prepared", work / "prepare.json", "synthetic", 0.2, seed) != 0:
        raise RuntimeError(f"prepare failed on {raw}")
    (work / "features").mkdir(parents=True, exist_ok=True)
    engineer(work / "prepared", work / "features", load_params().engineer, seed, load_params().protected)
    frame = pl.concat([pl.read_parquet(work / "features" / f"{s}.parquet") for s in ("train", "holdout")])
    manifest = json.loads((work / "features" / "manifest.json").read_text())
    application = [m["name"] for m in manifest if m["group"] == "application"]
    every = [m["name"] for m in manifest]
    y = frame["TARGET"].to_numpy()
    make_model = realism.lightgbm(realism.LGB)
    auc = {name: round(realism.cv_auc(make_model, frame.select(cols).to_numpy().astype(np.float32), y, folds, seed), 4)
           for name, cols in (("application", application), ("all_tables", every))}
    return {"n_clients": int(len(y)), "n_features": {"application": len(application), "all_tables": len(every)},
            "lightgbm_auc": auc, "history_gain": round(auc["all_tables"] - auc["application"], 4)}


def _log(message: str) -> None:
    print(f"bench_realism: {message}", file=sys.stderr, flush=True)


def synthetic(n_clients: int, seed: int, columns: list[str]) -> dict:
    """Application and all-tables figures of one synthetic population."""
    folder = WORK / f"{n_clients}_{seed}"
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    generate(folder / "raw", n_clients, seed)
    _log(f"generated {n_clients:,} clients, seed {seed} ({time.perf_counter() - start:.0f}s)")
    app = realism.read_applications(folder / "raw" / "application_train.csv")
    figures = realism.model_figures(app, 5, 42, columns)
    _log(f"application figures ({time.perf_counter() - start:.0f}s)")
    figures["history"] = history_figures(folder / "raw", folder, 5, 42)
    _log(f"all-tables figures ({time.perf_counter() - start:.0f}s)")
    shutil.rmtree(folder, ignore_errors=True)
    return figures


def _row(label: str, values: list) -> str:
    return f"{label:34s}" + "".join(f"{v:>16}" for v in values)


def report(columns: dict, checks: dict) -> None:
    """Print the side-by-side table."""
    names = list(columns)
    fmt = lambda v: "-" if v is None else (f"{v:.4f}" if isinstance(v, float) else str(v))  # noqa: E731
    print(_row("", names))
    for key in ("lightgbm", "lightgbm_additive", "logistic_regression", "lightgbm_ext_sources_only"):
        print(_row(f"AUC {key}", [fmt(c["cv_auc"][key]) for c in columns.values()]))
    for key in ("lgb_minus_lr", "additive_gap"):
        print(_row(key, [fmt(c[key]) for c in columns.values()]))
    print(_row("history gain (all tables - app)", [fmt(c.get("history", {}).get("history_gain"))
                                                    for c in columns.values()]))
    deciles = next(iter(columns.values()))["deciles"]
    for col in deciles:
        cells = []
        for name in columns:
            check = checks.get(name, {}).get("deciles", {}).get("columns", {}).get(col)
            cells.append("-" if check is None else f"{check['max_abs_deviation']:.3f}/{check['spearman']:.2f}"
                         + ("" if check["ok"] else " X"))
        print(_row(f"decile {col[:22]} dev/rho", cells))
    for name, c in checks.items():
        failed = [k for k, v in c.items() if not v["ok"]]
        print(f"{name}: " + ("every target met" if not failed else f"not met: {failed} "
                                                                  f"(deciles failed: {c['deciles']['failed']})"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--also", default="6000:7", help="another size:seed to check robustness ('' for none)")
    args = parser.parse_args()
    if not PROFILE.is_file():
        _log(f"{PROFILE} is absent: no real figures to compare with")
        return 1
    profile = json.loads(PROFILE.read_text())
    columns = list(profile["deciles"])
    runs = [(args.clients, args.seed)] + ([tuple(map(int, args.also.split(":")))] if args.also else [])
    figures, checks = {}, {}
    for n, seed in runs:
        name = f"synthetic {n // 1000}k s{seed}"
        figures[name] = synthetic(n, seed, columns)
        checks[name] = realism.check_targets(figures[name], profile, figures[name]["history"]["history_gain"],
                                             realism.decile_tolerance(n))
    if REAL.is_file():
        start = time.perf_counter()
        figures["real rows"] = realism.model_figures(realism.read_applications(REAL), 5, 42, columns)
        checks["real rows"] = realism.check_targets(figures["real rows"], profile)
        _log(f"real figures ({time.perf_counter() - start:.0f}s)")
    else:
        _log(f"{REAL} is absent: the real side is skipped (the profile's figures stand in)")
    figures["real profile"] = {"n_clients": profile["n_clients"], "default_rate": profile["default_rate"],
                               "cv_auc": {k: profile["cv5_auc"][v] for k, v in (
                                   ("lightgbm", "lightgbm_kernel_params"), ("lightgbm_additive", "lightgbm_additive_depth1"),
                                   ("logistic_regression", "logistic_regression_standardised"),
                                   ("lightgbm_ext_sources_only", "lightgbm_ext_sources_only"))},
                               "deciles": profile["deciles"]}
    p = figures["real profile"]["cv_auc"]
    figures["real profile"].update(lgb_minus_lr=round(p["lightgbm"] - p["logistic_regression"], 4),
                                   additive_gap=round(p["lightgbm"] - p["lightgbm_additive"], 4))
    report(figures, checks)
    out = {"targets": realism.TARGETS, "decile_tolerance": {
        "max_abs_deviation_at_20000": realism.DECILE_MAX_ABS, "scaled_below_20000_as": "0.03*sqrt(20000/n)",
        "spearman_min": realism.DECILE_SPEARMAN,
        "spearman_applies_when_real_range_at_least": realism.SHAPED, "missing_direction_when_gap_at_least":
            realism.MISSING_MIN_GAP}, "lightgbm": realism.LGB, "additive": realism.ADDITIVE,
        "figures": figures, "checks": checks}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    write_results(RESULTS, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
