"""DVC stage `train`: benchmark candidates out of fold, stack them into the served ensemble, score the hold-out once.

The served model is a cross-fitted ensemble (`CrossFitEnsemble`): the fold models of the candidates it is made
of, averaged, at weights learned on their out-of-fold predictions. Its out-of-fold predictions (which the
threshold stage calibrates and thresholds), its one score of the hold-out and the submission all come from
that same model; nothing is refitted after the evaluation.
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
from imblearn.pipeline import Pipeline
from sklearn.metrics import roc_auc_score

from creditscore.compute import Runner, runner
from creditscore.config import load_params, resolve
from creditscore.decision.cost import decision_report
from creditscore.decision.uncertainty import auc_interval
from creditscore.decision.validation import holdout_curves
from creditscore.errors import ParamsError
from creditscore.io import atomic_outputs, write_json, write_rows
from creditscore.modelling import tracking
from creditscore.modelling.models import (
    SERVABLE,
    CrossFitEnsemble,
    describe,
    make_pipeline,
    members,
    model_kind,
    n_trees,
    stacked_proba,
)
from creditscore.modelling.sampling import stratified_sample
from creditscore.modelling.training import (
    benchmark,
    capped_choice,
    card_ineligible,
    ensemble,
    evaluate,
    highest_auc,
    least_cost,
    log_loss,
    model_settings,
    score,
    stack_members,
    tune_lightgbm,
)
from creditscore.params import Train
from creditscore.serving.bundle import TrainedModel, save
from creditscore.stage import logger
from creditscore.stage import run as run_stage

PACKAGES = ("scikit-learn", "imbalanced-learn", "lightgbm", "numpy", "polars", "pandas", "mlflow")


_log = logger("train")


def load_split(features: Path, split: str, names: list[str]) -> tuple[pl.DataFrame, np.ndarray]:
    """One split's clients and its feature matrix (float32, NaN for missing) in the given column order."""
    frame = pl.read_parquet(features / f"{split}.parquet")
    return frame, frame.select(names).to_numpy().astype(np.float32)


def choose_model(x, y, params: Train, settings: dict[str, dict], cost: dict, seed: int, log,
                 compute: Runner | None = None) -> tuple[dict, dict, np.ndarray]:
    """Benchmark every candidate, tune LightGBM, stack the servable candidates; return every result (the
    benchmark table), the ensemble and the rows of the benchmark (every training client, or the sample).

    The benchmark uses every training client up to `train.benchmark_sample` (a stratified sample only above
    it, for scale). No candidate is picked by its cost at its own threshold (between models this close it is
    noise; on real rows it served a logistic regression or the scorecard, each about 0.01 AUC below the
    ensemble): every servable candidate enters the stacker, and one that adds nothing gets a weight of 0.
    Above the sample size, the LightGBM candidates learn at `train.ensemble.sample_learning_rate` when it is set,
    and the members the stacker kept, or those chosen under `train.ensemble.refit_lightgbm`, are cross-fitted again on
    every training client (`cross_fit_again`).
    """
    sample = stratified_sample(len(y), y, params.benchmark_sample, seed)
    xs, ys = x[sample], y[sample]
    rate = params.ensemble.sample_learning_rate
    if rate is not None and len(sample) < len(y):  # the sample only chooses the members cross-fitted again
        settings = {**settings, "lightgbm": {**settings["lightgbm"], "learning_rate": rate}}
    results = benchmark(xs, ys, params, cost, seed, log, compute, settings)
    lightgbm = {k: v for k, v in results.items() if v["model"] == "lightgbm"}
    if lightgbm and params.search_budget > 0:  # the grid around the LightGBM strategy of best AUC
        strategy = results[highest_auc(lightgbm)]["strategy"]
        results.update(tune_lightgbm(xs, ys, params, strategy, cost, seed, log, compute, settings))
    served = ensemble(results, ys, params, cost)
    if len(sample) < len(y):
        served = cross_fit_again(served, results, x, y, sample, params, cost, seed)
    log("ensemble", served)
    return results, served, sample


def sample_fitted(member: dict, x, y, sample: np.ndarray, params: Train, cost: dict) -> dict:
    """A member kept as the benchmark sample fitted it, scored out of fold on every training client: a client of
    the sample by the fold model that did not see it (its benchmark prediction), every other client as the served
    ensemble scores it, by the mean log-odds of the fold models, none of which saw it."""
    oof = np.empty(len(y))
    oof[sample] = member["oof"]
    rest = np.setdiff1d(np.arange(len(y)), sample, assume_unique=True)
    if len(rest):  # the served ensemble's own scoring of this member alone
        oof[rest] = CrossFitEnsemble([member["fold_models"]], [1.0]).predict_proba(x[rest])[:, 1]
    return {**member, **score(y, oof, cost, params.fbeta), "oof": oof}


def cross_fit_again(served: dict, results: dict, x, y, sample: np.ndarray, params: Train, cost: dict,
                    seed: int) -> dict:
    """The ensemble stacked on the benchmark sample (rows `sample` of x), its LightGBM members (and, with
    `train.ensemble.refit_logistic_regression`, its logistic regression members) cross-fitted again on every training
    client. Under the cap, the LightGBM members fitted again may include a candidate that the sample's stack of all
    dropped: they are chosen for the stack they will be in.

    LightGBM members early-stop again, at `train.ensemble.refit_learning_rate` when it is set (more clients need
    more trees at the same rate), else at `train.lightgbm`'s rate when the sample's candidates learnt at
    `train.ensemble.sample_learning_rate`, else at their own. `train.ensemble.refit_lightgbm` caps the LightGBM members fitted again
    (null: every one). When the sample's stack holds more, the cap's members are chosen among every LightGBM
    candidate by `capped_choice`: the out-of-fold log-loss on the sample of their stack with the other members
    (a cap the stack does not exceed keeps its LightGBM members, as the stack of all weighed them).
    The stacker is then fitted again on every client's out-of-fold predictions of the members kept, and a member
    then below `train.ensemble.min_weight` is dropped as on the sample; otherwise the sample's weights are kept. With
    `train.ensemble.refit_logistic_regression` false, the logistic regression members keep their fold models of
    the sample (`sample_fitted`) instead of being fitted again.
    """
    names, weights = served["params"]["members"], served["params"]["weights"]
    cap = params.ensemble.refit_lightgbm
    boosted = [n for n in names if results[n]["model"] == "lightgbm"]
    kept = names
    if cap is not None and len(boosted) > cap:  # the cap's members, by the log-loss of the stack they would be in
        others = [n for n in names if n not in boosted]
        lightgbm = sorted(n for n, r in results.items() if r["model"] == "lightgbm")
        chosen = capped_choice({n: results[n]["oof"] for n in [*lightgbm, *others]}, lightgbm, others, y[sample],
                               cap, params.ensemble.l2)
        kept = [*chosen, *others]
    again = {}
    for name in kept:
        member, member_settings = results[name], results[name]["params"]
        if member["model"] == "logistic_regression" and not params.ensemble.refit_logistic_regression:
            again[name] = sample_fitted(member, x, y, sample, params, cost)
            continue
        if member["model"] == "lightgbm":  # early stopping chooses the count again, on every training client
            member_settings = {**member_settings, "n_estimators": params.lightgbm["n_estimators"]}
            if params.ensemble.refit_learning_rate is not None:
                member_settings["learning_rate"] = params.ensemble.refit_learning_rate
            elif params.ensemble.sample_learning_rate is not None:  # the sample's rate only chose the member
                member_settings.pop("learning_rate", None)  # train.lightgbm's, else the library's default
                if "learning_rate" in params.lightgbm:
                    member_settings["learning_rate"] = params.lightgbm["learning_rate"]
        again[name] = evaluate(member["model"], member["strategy"], member_settings, x, y, params, cost, seed)
    if kept != names:  # stacked again, with the same floor on the weights as on the sample
        kept, stacked_weights = stack_members({n: again[n]["oof"] for n in kept}, y, params.ensemble.min_weight,
                                              params.ensemble.l2)
        weights = [round(float(w), 6) for w in stacked_weights]
    else:
        weights = [weights[names.index(n)] for n in kept]
    proba = stacked_proba(np.column_stack([again[n]["oof"] for n in kept]), weights)
    stacked = {n: {"weight": w, "auc": round(float(roc_auc_score(y, again[n]["oof"])), 5),
                   "log_loss": round(log_loss(y, again[n]["oof"]), 5)} for n, w in zip(kept, weights)}
    # the served members' fits: those cross-fitted again, and those kept from the sample (their fits on it)
    seconds = round(sum(again[n]["fit_seconds"] for n in kept), 2)
    return {**served, **score(y, proba, cost, params.fbeta), "oof": proba, "log_loss": log_loss(y, proba),
            "fit_seconds": seconds, "fold_models": [again[n]["fold_models"] for n in kept], "stacked": stacked,
            "params": {**served["params"], "members": kept, "weights": weights,
                       "settings": [again[n]["params"] for n in kept]}}


def scorecard_outputs(result: dict, x, y, x_hold, y_hold, x_test, ids: dict, seed: int,
                      folder: Path) -> tuple[dict, np.ndarray]:
    """The challenger's card: fitted on the training clients and scored once on the hold-out (its validator
    figures, in the threshold stage); the card written is that card. Writes its table, information values and
    every client's points per feature; returns its metrics and its hold-out probabilities."""
    fitted = make_pipeline("scorecard", "none", seed, result["params"]).fit(x, y)
    p_hold = fitted.predict_proba(x_hold)[:, 1]
    card = fitted.steps[-1][1]
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


def candidate_table(results: dict) -> dict:
    """The benchmark table: every candidate's out-of-fold figures (a report; the ensemble is not chosen from it)."""
    return {k: {m: (round(v[m], 5) if isinstance(v[m], float) else v[m])
                for m in ("auc", "cost_per_client", "recall", "precision", "fbeta")} for k, v in results.items()}


def train(features: Path, selection: Path, model_path: Path, out: Path, plots: Path, params: Train, cost: dict,
          seed: int, points: dict | None = None, scorecard_dir: Path | None = None, compute: Runner | None = None) -> dict:
    """Run the benchmark, stack the served ensemble, score the hold-out once; write the model and predictions."""
    names = json.loads(selection.read_text())["features"]
    manifest = json.loads((features / "manifest.json").read_text())
    settings = model_settings(params, names, points, card_ineligible(manifest))
    train_frame, x = load_split(features, "train", names)
    y = train_frame["TARGET"].to_numpy()
    tracking.start(params.mlflow.experiment)
    tags = {"n_features": str(len(names))}

    def told(name: str, result: dict) -> None:
        _log(f"{describe(result) if name == 'ensemble' else name}: AUC {result['auc']:.4f}, fit "
             f"{result['fit_seconds']}s, cost/client {result['cost_per_client']:.4f}"
             + (f", {n_trees(result)} trees" if n_trees(result) and name != "ensemble" else ""))
        tracking.log_candidate(name, result, tags)

    results, served, sample = choose_model(x, y, params, settings, cost, seed, told, compute)
    oof = served["oof"]
    oof_score = score(y, oof, cost, params.fbeta)
    pipeline = Pipeline([("model", CrossFitEnsemble(served["fold_models"], served["params"]["weights"],
                                                    served["params"]["members"]))])
    refuse_unservable(pipeline)
    hold_frame, x_hold = load_split(features, "holdout", names)
    y_hold = hold_frame["TARGET"].to_numpy()
    p_hold = pipeline.predict_proba(x_hold)[:, 1]  # the only time the hold-out is scored
    hold = decision_report(y_hold, p_hold, oof_score["threshold"], cost["fn_cost"], cost["fp_cost"])
    test_frame, x_test = load_split(features, "test", names)
    p_test = pipeline.predict_proba(x_test)[:, 1]
    old_rule = least_cost(results)
    metrics = {"model": describe(served), "n_features": len(names),
               "cv_auc": round(float(roc_auc_score(y, oof)), 5), "cv_log_loss": round(served["log_loss"], 5),
               "cv_cost_per_client": round(oof_score["cost_per_client"], 5),
               "holdout_auc": round(float(roc_auc_score(y_hold, p_hold)), 5),
               "holdout_auc_interval": auc_interval(y_hold, p_hold),
               "holdout_business_cost": hold["cost"], "holdout_cost_per_client": round(hold["cost_per_client"], 5),
               "holdout_threshold_uncalibrated": round(oof_score["threshold"], 5),
               "clients": {"train": int(len(y)), "holdout": int(len(y_hold)), "benchmark": int(len(sample))},
               **({"n_estimators": n_trees(served)} if n_trees(served) else {}),
               "ensemble": {"members": served["stacked"], "folds": served["params"]["folds"],
                            "fold_models": sum(len(m) for m in served["fold_models"]),
                            "stacker": "non-negative logistic regression on the out-of-fold log-odds (log-loss), "
                                       "weights scaled to add up to 1"},
               "least_cost_candidate": {"name": old_rule, "auc": round(results[old_rule]["auc"], 5),
                                        "cost_per_client": round(results[old_rule]["cost_per_client"], 5)},
               "candidates": candidate_table(results)}
    out.mkdir(parents=True, exist_ok=True)
    trained = TrainedModel(pipeline=pipeline, features=names, model=metrics["model"],
                           params={k: v for k, v in served["params"].items()},
                           versions={"python": platform.python_version(), **{p: version(p) for p in PACKAGES}})
    save(trained, model_path, checksum=False)  # a DVC output read by the threshold stage only
    pl.DataFrame({"SK_ID_CURR": train_frame["SK_ID_CURR"], "TARGET": y, "proba": oof}).write_parquet(out / "oof.parquet")
    pl.DataFrame({"SK_ID_CURR": hold_frame["SK_ID_CURR"], "TARGET": y_hold, "proba": p_hold}).write_parquet(
        out / "holdout.parquet")
    pl.DataFrame({"SK_ID_CURR": test_frame["SK_ID_CURR"], "proba": p_test}).write_parquet(out / "test.parquet")
    if scorecard_dir is not None:
        scorecard_dir.mkdir(parents=True, exist_ok=True)  # a DVC output
    if "scorecard+none" in results and scorecard_dir is not None:
        # At scale its out-of-fold figures (and its threshold) are the benchmark sample's; the card itself is fitted
        # on every training client and scored once on the hold-out.
        challenger = results["scorecard+none"]
        ids = {"train": train_frame["SK_ID_CURR"], "holdout": hold_frame["SK_ID_CURR"], "test": test_frame["SK_ID_CURR"]}
        metrics["scorecard"], sc_hold = scorecard_outputs(challenger, x, y, x_hold, y_hold, x_test, ids,
                                                          seed, scorecard_dir)
        pl.DataFrame({"SK_ID_CURR": train_frame["SK_ID_CURR"].gather(sample), "TARGET": y[sample],
                      "proba": challenger["oof"]}).write_parquet(out / "scorecard_oof.parquet")
        pl.DataFrame({"SK_ID_CURR": hold_frame["SK_ID_CURR"], "TARGET": y_hold, "proba": sc_hold}).write_parquet(
            out / "scorecard_holdout.parquet")
    for name, rows in holdout_curves(y_hold, p_hold, oof_score["threshold"]).items():
        write_rows(plots / f"{name}.json", rows)
    interval = metrics["holdout_auc_interval"]
    _log(f"served {metrics['model']}: CV AUC {metrics['cv_auc']}, hold-out AUC {metrics['holdout_auc']} "
         f"[{interval['low']}, {interval['high']}] (a least-cost rule would have served {old_rule})")
    return metrics


def refuse_unservable(pipeline) -> None:
    """Stop before any artifact is written when the served model needs what requirements-serving.txt lacks."""
    kinds = sorted({model_kind(m) for m, _ in members(pipeline)} if model_kind(pipeline) == "ensemble"
                   else {model_kind(pipeline)})
    unservable = [k for k in kinds if k not in SERVABLE]
    if unservable:
        raise ParamsError(f"train: the served model would contain {', '.join(unservable)}, which the API cannot load "
                          f"from requirements-serving.txt (it serves {' and '.join(SERVABLE)})")


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
        # the cost and the points scaling travel as the plain mappings the served bundle carries
        metrics = train(resolve(args.features), resolve(args.selection), model, predictions, plots, params.train,
                        params.cost.matrix(), params.seed, params.points.model_dump(), card, compute)
        test = pl.read_parquet(predictions / "test.parquet")
        test.select("SK_ID_CURR", pl.col("proba").alias("TARGET")).write_csv(submission)
        write_json(metrics_path, metrics)
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("train", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
