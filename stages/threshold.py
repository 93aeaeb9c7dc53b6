"""DVC stage `threshold`: calibrate on out-of-fold predictions, choose the cost-minimising threshold, report on the hold-out."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.metrics import brier_score_loss

from creditscore.config import load_params, resolve
from creditscore.decision.calibration import calibrate, fit_calibration, reliability
from creditscore.decision.cost import choose_threshold, cost_curve, decision_report, money_cost
from creditscore.decision.uncertainty import auc_interval, band_rank_ordering, gini_ks_intervals
from creditscore.decision.validation import expected_calibration_error, validator_figures
from creditscore.errors import DataError
from creditscore.io import atomic_outputs, write_json, write_rows
from creditscore.params import Threshold
from creditscore.serving.artifacts import checksum_path
from creditscore.serving.bundle import Bundle, TrainedModel, load, save
from creditscore.stage import logger
from creditscore.stage import run as run_stage


def _predictions(folder: Path, name: str) -> tuple[np.ndarray, np.ndarray]:
    frame = pl.read_parquet(folder / f"{name}.parquet")
    return frame["TARGET"].to_numpy(), frame["proba"].to_numpy()


def credit_amounts(predictions: Path, name: str, features: Path, split: str) -> np.ndarray:
    """AMT_CREDIT of the clients of a predictions file, in its order (the exposure a money-weighted cost uses)."""
    keys = pl.read_parquet(predictions / f"{name}.parquet", columns=["SK_ID_CURR"])
    path = features / f"{split}.parquet"
    if "AMT_CREDIT" not in pl.read_parquet_schema(path):
        raise DataError(f"{path}: no column AMT_CREDIT, which cost.basis: amount weighs the errors by")
    amounts = keys.join(pl.read_parquet(path, columns=["SK_ID_CURR", "AMT_CREDIT"]), on="SK_ID_CURR", how="left",
                        maintain_order="left")
    return amounts["AMT_CREDIT"].to_numpy().astype(np.float64)


def by_basis(oof_y, oof_cal, hold_y, hold_cal, cost: dict, amounts: tuple[np.ndarray, np.ndarray]) -> dict:
    """The least-cost threshold on each basis (errors counted, errors weighted by credit amount), each chosen out
    of fold, with the hold-out's cost on both bases and its approval rate: what either choice means."""
    out = {}
    for basis, weights in (("count", None), ("amount", amounts[0])):
        threshold = choose_threshold(oof_y, oof_cal, cost["fn_cost"], cost["fp_cost"], weights)
        report = decision_report(hold_y, hold_cal, threshold, cost["fn_cost"], cost["fp_cost"])
        money = money_cost(hold_y, hold_cal, threshold, cost["fn_cost"], cost["fp_cost"], amounts[1])
        out[basis] = {"threshold": round(threshold, 6), "holdout_cost_per_client": round(report["cost_per_client"], 5),
                      "holdout_amount_cost_per_client": round(money / len(hold_y), 2),
                      "approval_rate": round(report["approval_rate"], 5)}
    return out


def holdout_uncertainty(y: np.ndarray, proba: np.ndarray, bands: list[dict], seed: int) -> dict:
    """What the hold-out's figures are worth: AUC (DeLong), Gini and KS (stratified bootstrap) intervals, and
    whether an inversion of the bands' default rates is more than noise."""
    boot = gini_ks_intervals(y, proba, seed=seed)
    return {"auc": auc_interval(y, proba), **boot, "level": 0.95, "rank_ordering": band_rank_ordering(bands)}


def choose(oof_y, oof_p, hold_y, hold_p, cost: dict, settings: Threshold, scale: dict | None = None,
           seed: int = 0, basis: str = "count", amounts: tuple[np.ndarray, np.ndarray] | None = None
           ) -> tuple[dict, dict, dict]:
    """Calibration and threshold from the out-of-fold predictions only; the hold-out is only reported on. With
    `amounts` (the out-of-fold and hold-out clients' credit amounts) both bases are reported, and `basis` sets the
    served threshold."""
    method = settings.calibration
    calibration = fit_calibration(oof_p, oof_y, method, settings.pd_floor, settings.pd_ceiling)
    oof_cal = calibrate(oof_p, calibration)
    hold_cal = calibrate(hold_p, calibration)
    bases = by_basis(oof_y, oof_cal, hold_y, hold_cal, cost, amounts) if amounts is not None else None
    threshold = (choose_threshold(oof_y, oof_cal, cost["fn_cost"], cost["fp_cost"],
                                  amounts[0] if basis == "amount" else None))
    report = decision_report(hold_y, hold_cal, threshold, cost["fn_cost"], cost["fp_cost"])
    metrics = {"threshold": round(threshold, 6), "calibration": method,
               "holdout_cost": report["cost"], "holdout_cost_per_client": round(report["cost_per_client"], 5),
               "holdout_cost_vs_accept_all": round(report["cost_vs_accept_all"], 5),
               "holdout_cost_vs_refuse_all": round(report["cost_vs_refuse_all"], 5),
               "holdout_recall": round(report["recall"], 5), "holdout_precision": round(report["precision"], 5),
               "approval_rate": round(report["approval_rate"], 5),
               "holdout_brier_raw": round(float(brier_score_loss(hold_y, hold_p)), 6),
               "holdout_brier_calibrated": round(float(brier_score_loss(hold_y, hold_cal)), 6),
               "holdout_ece_raw": round(expected_calibration_error(hold_y, hold_p), 6),
               "holdout_ece_calibrated": round(expected_calibration_error(hold_y, hold_cal), 6),
               "pd_bounds": {"floor": calibration["floor"], "ceiling": calibration["ceiling"],
                             "holdout_min": round(float(hold_cal.min()), 6),
                             "holdout_max": round(float(hold_cal.max()), 6)},
               "oof_cost_per_client": round(decision_report(oof_y, oof_cal, threshold, cost["fn_cost"],
                                                            cost["fp_cost"])["cost_per_client"], 5)}
    thresholds, costs = cost_curve(oof_y, oof_cal, cost["fn_cost"], cost["fp_cost"])
    keep = np.unique(np.linspace(0, len(thresholds) - 1, 300).astype(int))
    plots = {"cost": [{"threshold": float(min(t, 1.0)), "cost_per_client": float(c / len(oof_y))}
                      for t, c in zip(thresholds[keep], costs[keep])],
             "reliability": reliability(hold_y, hold_cal)}
    # what a validator reads: Gini, KS, Brier, ECE and 10 score bands of the calibrated score, hold-out and out of fold
    metrics["validation"] = {"holdout": validator_figures(hold_y, hold_cal, scale=scale),
                             "out_of_fold": validator_figures(oof_y, oof_cal, scale=scale)}
    metrics["validation"]["holdout"]["uncertainty"] = holdout_uncertainty(
        hold_y, hold_cal, metrics["validation"]["holdout"]["bands"], seed)
    plots["bands"] = [{"band": row["band"], "default_rate": row["default_rate"]}
                      for row in metrics["validation"]["holdout"]["bands"]]
    if bases is not None:
        metrics["cost_basis"], metrics["by_cost_basis"] = basis, bases
    return calibration, metrics, plots


def challenger(oof_y, oof_p, hold_y, hold_p, cost: dict, scale: dict) -> dict:
    """The scorecard challenger's figures, beside the winner's: its own probabilities (its points are defined on
    them), its least-cost threshold chosen out of fold, and its cost and validator figures on the hold-out."""
    threshold = choose_threshold(oof_y, oof_p, cost["fn_cost"], cost["fp_cost"])
    report = decision_report(hold_y, hold_p, threshold, cost["fn_cost"], cost["fp_cost"])
    return {"model": "scorecard", "threshold": round(threshold, 6), "holdout_cost": report["cost"],
            "holdout_cost_per_client": round(report["cost_per_client"], 5),
            "approval_rate": round(report["approval_rate"], 5),
            "validation": {"holdout": validator_figures(hold_y, hold_p, scale=scale),
                           "out_of_fold": validator_figures(oof_y, oof_p, scale=scale)}}


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--model", required=True, help="the train stage's artifact")
    parser.add_argument("--features", required=True, help="engineer output (spec.json, manifest.json)")
    parser.add_argument("--bundle", required=True, help="the served artifact: model, features, calibration, threshold")
    parser.add_argument("--plots", required=True)
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    cost, points = params.cost.matrix(), params.points.model_dump()  # as the bundle carries them
    predictions, features = resolve(args.predictions), resolve(args.features)
    amounts = (credit_amounts(predictions, "oof", features, "train"),
               credit_amounts(predictions, "holdout", features, "holdout"))
    calibration, metrics, plots = choose(*_predictions(predictions, "oof"), *_predictions(predictions, "holdout"),
                                         cost, params.threshold, points, params.seed, params.cost.basis, amounts)
    if (predictions / "scorecard_holdout.parquet").exists():
        metrics["challenger"] = challenger(*_predictions(predictions, "scorecard_oof"),
                                           *_predictions(predictions, "scorecard_holdout"), cost, points)
        plots["bands_challenger"] = [{"band": row["band"], "default_rate": row["default_rate"]}
                                     for row in metrics["challenger"]["validation"]["holdout"]["bands"]]
    bundle = Bundle.from_trained(load(resolve(args.model), TrainedModel, checksum=False), calibration=calibration,
                                 threshold=metrics["threshold"], cost=cost,
                                 spec=json.loads((features / "spec.json").read_text()),
                                 manifest=json.loads((features / "manifest.json").read_text()), metrics=metrics,
                                 points=points)
    served_path = resolve(args.bundle)
    with atomic_outputs(served_path, checksum_path(served_path), resolve(args.plots),
                        resolve(args.metrics)) as (served, digest, folder, path):
        save(bundle, served, checksum_at=digest)
        for name, rows in plots.items():
            write_rows(folder / f"{name}.json", rows)
        write_json(path, metrics)
    logger("threshold")(f"refuse when the calibrated probability of default >= {metrics['threshold']:.4f}; hold-out "
                        f"cost per client {metrics['holdout_cost_per_client']} ({metrics['holdout_cost_vs_accept_all']:.2f}"
                        f" x accepting everyone), approval rate {metrics['approval_rate']:.1%}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("threshold", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
