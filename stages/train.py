"""DVC stage `train`: benchmark candidates out of fold, tune LightGBM, refit, evaluate once on the hold-out.

The model fitted on the training clients is scored once on the hold-out; that is the honest evaluation.
The served and submitted model is then refitted, with the same settings (the same number of trees), on
every labelled client: training and hold-out, nothing else.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from importlib.metadata import version
from pathlib import Path

import numpy as np
import polars as pl
from sklearn.base import clone
from sklearn.metrics import roc_auc_score

from creditscore.compute import Runner, runner
from creditscore.config import load_params, resolve
from creditscore.decision.cost import decision_report
from creditscore.decision.validation import holdout_curves
from creditscore.io import atomic_outputs, write_json, write_rows
from creditscore.modelling import distributed, tracking
from creditscore.modelling.models import describe, make_pipeline, n_trees
from creditscore.modelling.sampling import stratified_sample
from creditscore.modelling.training import add_blend, benchmark, best, evaluate, score, tune_lightgbm
from creditscore.params import ParamsError
from creditscore.serving.bundle import TrainedModel, save
from creditscore.stage import logger, run as run_stage

PACKAGES = ("scikit-learn", "imbalanced-learn", "lightgbm", "numpy", "polars", "pandas", "mlflow")


_log = logger("train")


def load_split(features: Path, split: str, names: list[str]) -> tuple[pl.DataFrame, np.ndarray]:
    """One split's clients and its feature matrix (float32, NaN for missing) in the given column order."""
    frame = pl.read_parquet(features / f"{split}.parquet")
    return frame, frame.select(names).to_numpy().astype(np.float32)


def choose_model(x, y, params: dict, cost: dict, seed: int, log,
                 compute: Runner | None = None) -> tuple[dict, dict, np.ndarray, np.ndarray]:
    """Benchmark every candidate, tune LightGBM; return all results, the winner, its out-of-fold predictions and
    the rows of the benchmark (every training client, or the sample).

    The benchmark uses every training client up to `train.benchmark_sample` (a stratified sample only
    above it, for scale); the winner's out-of-fold predictions on every training client feed the threshold.
    When LightGBM wins, the blend refines it and is served: the same configuration bagged over seeds (which
    only removes variance) mixed with the logistic regression at the weight of best out-of-fold AUC, 0
    included, on the same folds. It does not compete with its own base on the cost at each candidate's best
    threshold: between models this close that cost difference is noise (on real rows it picked the single
    LightGBM in two splits of three, whose hold-out AUC the blend beat in all ten splits measured).
    """
    sample = stratified_sample(len(y), y, params["benchmark_sample"], seed)
    xs, ys = x[sample], y[sample]
    results = benchmark(xs, ys, params, cost, seed, log, compute)
    lightgbm = {k: v for k, v in results.items() if v["model"] == "lightgbm"}
    if lightgbm and params["search_budget"] > 0:
        results.update(tune_lightgbm(xs, ys, params, results[best(lightgbm)]["strategy"], cost, seed, log, compute))
    winner = results[best(results)]
    blended = add_blend(results, best(results), xs, ys, params, cost, seed, log)
    if blended:  # the blend refines a LightGBM winner (see the docstring); it does not compete on a noisy cost
        results.update(blended)
        winner = blended["blend"]
    if len(sample) == len(y):
        return results, winner, winner["oof"], sample  # the same folds on the same clients: no fit is repeated
    settings = dict(winner["params"])
    if winner["model"] == "lightgbm":  # early stopping chooses the count again, on every training client
        settings["n_estimators"] = params["lightgbm"]["n_estimators"]
    # At scale a blend's bag is not refitted out of fold: its first member (early-stopped again, which sets the
    # tree count) and the logistic regression give the out-of-fold predictions that the threshold and calibration
    # learn from; the served model still bags every seed. On 246,008 synthetic clients the out-of-fold bag cost
    # 20 of the stage's fits, and the calibrated hold-out stays as well calibrated (README, "Scale").
    again = evaluate(winner["model"], winner["strategy"], settings, x, y, params, cost, seed, oof_seeds=1)
    return results, {**winner, "params": again["params"], "oof_seeds": again.get("oof_seeds")}, again["oof"], sample


def refit_all_labelled(pipeline, x: np.ndarray, y: np.ndarray, x_hold: np.ndarray, y_hold: np.ndarray,
                       compute: Runner | None = None):
    """The served model: the same settings refitted on the training and hold-out clients, nothing else (its
    LightGBM through `lightgbm.dask` when `compute.scheduler` is a cluster).

    Called only after the model fitted on the training clients has been scored on the hold-out.
    """
    return distributed.fit(pipeline, np.vstack([x, x_hold]), np.concatenate([y, y_hold]), compute)


def scorecard_outputs(result: dict, x, y, x_hold, y_hold, x_test, ids: dict, seed: int,
                      folder: Path) -> tuple[dict, np.ndarray]:
    """The challenger's card, whether or not it won: fitted on the training clients and scored once on the
    hold-out (its validator figures, in the threshold stage), then refitted on every labelled client like the
    winner. Writes its table, information values and every client's points per feature; returns its metrics
    and its hold-out probabilities."""
    pipeline = make_pipeline("scorecard", "none", seed, result["params"])
    p_hold = clone(pipeline).fit(x, y).predict_proba(x_hold)[:, 1]
    card = refit_all_labelled(pipeline, x, y, x_hold, y_hold).steps[-1][1]
    folder.mkdir(parents=True, exist_ok=True)
    card.table().to_csv(folder / "table.csv", index=False)
    values = card.information_values()
    values.to_csv(folder / "information_values.csv", index=False)
    parts = []
    for split, rows in (("train", x), ("holdout", x_hold), ("test", x_test)):
        points = card.points(rows)
        parts.append(pl.DataFrame({"SK_ID_CURR": ids[split], "split": [split] * len(rows),
                                   "points": card.score(rows)}).hstack(pl.from_pandas(points)))
    pl.concat(parts).write_parquet(folder / "points.parquet")
    return {"cv_auc": round(result["auc"], 5), "holdout_auc": round(float(roc_auc_score(y_hold, p_hold)), 5),
            "n_features": len(card.selected_), "features": card.selected_,
            "information_value_top": [{"feature": f, "iv": v} for f, v in
                                      zip(values["feature"][:10], values["iv"][:10])]}, p_hold


def with_feature_settings(params: dict, names: list[str], points: dict | None) -> dict:
    """The settings that need the feature names: `train.monotone` as LightGBM's monotone constraints (one per
    column) and the scorecard's trends, and the scorecard's names and points scaling."""
    monotone = dict(params.get("monotone") or {})
    unknown = sorted(set(monotone) - set(names))
    if unknown:
        raise ParamsError(f"params.yaml: train.monotone: {unknown[0]} is not among the {len(names)} features the "
                        "model is trained on (data/selection/features.json)")
    params = dict(params)
    if monotone and "lightgbm" in params:
        params["lightgbm"] = {**params["lightgbm"], "monotone_constraints": [int(monotone.get(n, 0)) for n in names]}
    if "scorecard" in params:
        trends = {**params["scorecard"].get("trends", {}),
                  **{n: "ascending" if d > 0 else "descending" for n, d in monotone.items()}}
        params["scorecard"] = {**params["scorecard"], "trends": trends, **(points or {}), "feature_names": names}
    return params


def train(features: Path, selection: Path, model_path: Path, out: Path, plots: Path, params: dict, cost: dict,
          seed: int, points: dict | None = None, scorecard_dir: Path | None = None, compute: Runner | None = None) -> dict:
    """Run the benchmark, refit the winner, score the hold-out once; write the model and predictions."""
    names = json.loads(selection.read_text())["features"]
    params = with_feature_settings(params, names, points)
    train_frame, x = load_split(features, "train", names)
    y = train_frame["TARGET"].to_numpy()
    mlflow_params = params["mlflow"]
    tracking.start(mlflow_params["experiment"])
    tags = {"n_features": str(len(names))}
    results, winner, oof, sample = choose_model(
        x, y, params, cost, seed, lambda n, r: (_log(f"{describe(r) if n == 'blend' else n}: AUC {r['auc']:.4f}, fit "
                                                     f"{r['fit_seconds']}s, cost/client {r['cost_per_client']:.4f}"
                                                     + (f", {n_trees(r)} trees" if n_trees(r) else "")),
                                                tracking.log_candidate(n, r, tags)), compute)
    oof_score = score(y, oof, cost, params["fbeta"])
    pipeline = make_pipeline(winner["model"], winner["strategy"], seed, winner["params"])
    fitted = distributed.fit(pipeline, x, y, compute)
    hold_frame, x_hold = load_split(features, "holdout", names)
    y_hold = hold_frame["TARGET"].to_numpy()
    p_hold = fitted.predict_proba(x_hold)[:, 1]  # the only time the hold-out is scored
    hold = decision_report(y_hold, p_hold, oof_score["threshold"], cost["fn_cost"], cost["fp_cost"])
    final = refit_all_labelled(pipeline, x, y, x_hold, y_hold, compute)
    test_frame, x_test = load_split(features, "test", names)
    p_test = final.predict_proba(x_test)[:, 1]
    metrics = {"model": describe(winner), "n_features": len(names),
               "cv_auc": round(float(roc_auc_score(y, oof)), 5), "cv_cost_per_client": round(oof_score["cost_per_client"], 5),
               "holdout_auc": round(float(roc_auc_score(y_hold, p_hold)), 5),
               "holdout_business_cost": hold["cost"], "holdout_cost_per_client": round(hold["cost_per_client"], 5),
               "holdout_threshold_uncalibrated": round(oof_score["threshold"], 5),
               "refit": {"clients": int(len(y) + len(y_hold)), "train_clients": int(len(y)),
                         "holdout_clients": int(len(y_hold))},
               **({"n_estimators": n_trees(winner)} if n_trees(winner) else {}),
               **({"blend": {"seeds": winner["params"]["seeds"], "oof_seeds": winner["oof_seeds"],
                             "weight": winner["params"]["weight"],
                             "lightgbm": f"lightgbm+{winner['params']['lightgbm_strategy']}",
                             "linear": f"logistic_regression+{winner['params']['linear_strategy']}",
                             "oof_auc_by_weight": winner["weight_auc"]}} if winner["model"] == "blend" else {}),
               "candidates": {k: {m: (round(v[m], 5) if isinstance(v[m], float) else v[m])
                                  for m in ("auc", "cost_per_client", "recall", "precision", "fbeta")}
                              for k, v in results.items()}}
    out.mkdir(parents=True, exist_ok=True)
    trained = TrainedModel(pipeline=final, features=names, model=metrics["model"], params=winner["params"],
                           versions={"python": platform.python_version(), **{p: version(p) for p in PACKAGES}})
    save(trained, model_path, checksum=False)  # a DVC output read by the threshold stage only
    pl.DataFrame({"SK_ID_CURR": train_frame["SK_ID_CURR"], "TARGET": y, "proba": oof}).write_parquet(out / "oof.parquet")
    pl.DataFrame({"SK_ID_CURR": hold_frame["SK_ID_CURR"], "TARGET": y_hold, "proba": p_hold}).write_parquet(
        out / "holdout.parquet")
    pl.DataFrame({"SK_ID_CURR": test_frame["SK_ID_CURR"], "proba": p_test}).write_parquet(out / "test.parquet")
    if scorecard_dir is not None:
        scorecard_dir.mkdir(parents=True, exist_ok=True)  # a DVC output, empty when the card is not a candidate
    if "scorecard+none" in results and scorecard_dir is not None:
        # At scale its out-of-fold figures (and its threshold) are the benchmark sample's; the card itself is fitted
        # on every training client, scored once on the hold-out and refitted on every labelled client as below.
        challenger = results["scorecard+none"]
        ids = {"train": train_frame["SK_ID_CURR"], "holdout": hold_frame["SK_ID_CURR"], "test": test_frame["SK_ID_CURR"]}
        metrics["scorecard"], sc_hold = scorecard_outputs(challenger, x, y, x_hold, y_hold, x_test, ids,
                                                          seed, scorecard_dir)
        metrics["scorecard"]["won"] = winner["model"] == "scorecard"
        pl.DataFrame({"SK_ID_CURR": train_frame["SK_ID_CURR"].gather(sample), "TARGET": y[sample],
                      "proba": challenger["oof"]}).write_parquet(out / "scorecard_oof.parquet")
        pl.DataFrame({"SK_ID_CURR": hold_frame["SK_ID_CURR"], "TARGET": y_hold, "proba": sc_hold}).write_parquet(
            out / "scorecard_holdout.parquet")
    for name, rows in holdout_curves(y_hold, p_hold, oof_score["threshold"]).items():
        write_rows(plots / f"{name}.json", rows)
    _log(f"winner {metrics['model']}: CV AUC {metrics['cv_auc']}, hold-out AUC {metrics['holdout_auc']} (the register "
         "stage logs the served model to MLflow and decides its alias)")
    return metrics


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="folder written by the engineer stage")
    parser.add_argument("--selection", required=True, help="selected features (probe-feature-selection)")
    parser.add_argument("--model", required=True, help="the trained model artifact (joblib)")
    parser.add_argument("--predictions", required=True, help="folder for out-of-fold, hold-out and test predictions")
    parser.add_argument("--submission", required=True, help="Kaggle submission CSV (SK_ID_CURR,TARGET)")
    parser.add_argument("--plots", required=True, help="folder for the hold-out plot data")
    parser.add_argument("--scorecard", required=True, help="folder for the scorecard's table, IVs and clients' points")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    finals = (args.model, args.predictions, args.plots, args.scorecard, args.submission, args.metrics)
    with runner(params) as compute, atomic_outputs(*map(resolve, finals)) as (model, predictions, plots, card,
                                                                             submission, metrics_path):
        metrics = train(resolve(args.features), resolve(args.selection), model, predictions, plots, params["train"],
                        params["cost"], params["seed"], params["points"], card, compute)
        test = pl.read_parquet(predictions / "test.parquet")
        test.select("SK_ID_CURR", pl.col("proba").alias("TARGET")).write_csv(submission)
        write_json(metrics_path, metrics)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("train", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
