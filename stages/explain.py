"""DVC stage `explain`: global and local explanations, reason codes and fairness; the complete global importance
for the `reference` stage."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.config import load_params, resolve
from creditscore.decision.calibration import calibrate
from creditscore.decision.portfolio import book, segment_figures
from creditscore.explanation import fairness, groups, reasons
from creditscore.explanation.contributions import Contributions, contributions, labels_from_manifest, raw_score
from creditscore.explanation.figures import global_figures, local_explanations, native_importance, shap_library_check
from creditscore.explanation.reference import aligned, granted_training, load_matrix, reason_fields
from creditscore.features.serving import model_values, serving_plan
from creditscore.io import atomic_outputs, write_json
from creditscore.modelling.models import model_kind
from creditscore.params import Explain, Portfolio
from creditscore.serving.bundle import Bundle, load
from creditscore.stage import logger
from creditscore.stage import run as run_stage

_log = logger("explain")


def hold_money(prepared: Path, hold_raw: pl.DataFrame, y: np.ndarray, proba: np.ndarray, refused: np.ndarray,
               portfolio: Portfolio) -> dict:
    """The approved book's expected loss, and the figures by segment: contract type, new or repeat client (a
    previous application with the lender or not), income band."""
    previous = pl.read_parquet(prepared / "previous_application.parquet", columns=["SK_ID_CURR"])["SK_ID_CURR"]
    segments = {"contract_type": hold_raw["NAME_CONTRACT_TYPE"].fill_null("unknown").to_numpy(),
                "client": np.where(hold_raw["SK_ID_CURR"].is_in(previous.unique().implode()).to_numpy(), "repeat",
                                   "new"),
                "income_band": groups.income_bands(hold_raw["AMT_INCOME_TOTAL"].to_list())}
    ead = hold_raw["AMT_CREDIT"].to_numpy().astype(np.float64)
    return {"portfolio": book(y, proba, ead, refused, portfolio.lgd),
            "segments": segment_figures(y, proba, refused, ead, portfolio.lgd, segments,
                                        portfolio.segment_min_defaults)}


def explain(features: Path, predictions: Path, prepared: Path, bundle: Bundle, params: Explain, seed: int,
            figures: Path, portfolio: Portfolio) -> tuple[dict, dict]:
    """The explain metrics, and the complete global importance (`ranking` by feature, `drivers` by field)."""
    names, pipeline, threshold = bundle.features, bundle.pipeline, float(bundle.threshold)
    labels = labels_from_manifest(bundle.manifest)
    top = params.top_features
    # the reasons compare with training clients the model grants (out-of-fold scores: no client scores itself)
    train_frame, x_train, granted = granted_training(features, predictions, bundle, [])
    _log(f"typical values from {int(granted.sum())} granted training clients")
    # global: contributions on the whole hold-out (on a seeded sample of explain.global_sample rows above it, for scale)
    hold_frame, x_hold = load_matrix(features, "holdout", names, ["TARGET"])
    n_global = min(params.global_sample, len(x_hold))
    rows = (np.arange(len(x_hold)) if n_global == len(x_hold)
            else np.sort(np.random.default_rng(seed).choice(len(x_hold), size=n_global, replace=False)))
    x_global = x_hold[rows]
    contrib = contributions(pipeline, x_global)
    additivity = float(np.max(np.abs(contrib.score - raw_score(pipeline, x_global))))
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(x_global), size=min(params.sample, len(x_global)), replace=False))
    # background of the scorecard's linear SHAP check: every labelled client (a logistic regression is checked
    # against its own scaler's centre)
    library_diff = shap_library_check(pipeline, x_global[sample], np.vstack([x_train, x_hold]))
    importance_name, importance = native_importance(pipeline, len(names))
    mean_abs = np.abs(contrib.values).mean(axis=0)
    ranking = [{"feature": names[i], "label": labels.get(names[i], names[i]), "mean_abs_shap": round(float(mean_abs[i]), 6),
                "native_importance": round(float(importance[i]), 6)}
               for i in np.argsort(-mean_abs, kind="stable")]
    # what drives the model overall, by source field as the reasons are grouped: mean |field contribution|
    sources = reasons.sources_of(bundle.spec, bundle.manifest, names)
    drivers = reasons.drivers(contrib.values, names, sources)
    global_figures(figures, Contributions(contrib.values[sample], contrib.base[sample], contrib.space), x_global[sample],
                   names, importance, importance_name, min(top, len(names)))
    _log(f"global: additivity error {additivity:.2e}, shap library difference {library_diff:.2e}")
    # local
    hold_pred = aligned(hold_frame.select("SK_ID_CURR"), predictions / "holdout.parquet")
    proba = calibrate(hold_pred["proba"].to_numpy(), bundle.calibration)
    ids = hold_frame["SK_ID_CURR"].to_numpy()
    # reasons by source field, in human units, with the typical granted training client's value of each field
    train_app = aligned(train_frame.select("SK_ID_CURR"), prepared / "application_train.parquet")
    typical_fields = reasons.typical_fields(train_app.filter(pl.Series(granted)), reason_fields(bundle))
    hold_raw = aligned(hold_frame.select("SK_ID_CURR"), prepared / "application_holdout.parquet")

    def say_reasons(row: int, contrib_row, refused: bool) -> list[dict]:
        return reasons.reasons(contrib_row, names, sources, hold_raw.row(row, named=True), x_hold[row], refused,
                               typical_fields, labels)

    local = local_explanations(figures, pipeline, x_hold, ids, proba, threshold, x_train, names, say_reasons,
                               params, seed)
    _log(f"local: {len(local)} clients, mean SHAP/LIME top-{params.top_k} agreement "
         f"{np.mean([r['agreement'] for r in local]):.2f}")
    # fairness on the hold-out at the chosen threshold
    hold_app = aligned(hold_frame.select("SK_ID_CURR", "TARGET"), prepared / "application_holdout.parquet",
                       ["SK_ID_CURR", "CODE_GENDER", "DAYS_BIRTH"])
    refused = proba >= threshold
    fair = {"gender": fairness.group_rates(hold_app["TARGET"].to_numpy(), refused,
                                           hold_app["CODE_GENDER"].fill_null("unknown").to_numpy()),
            "age_band": fairness.group_rates(hold_app["TARGET"].to_numpy(), refused,
                                             fairness.age_bands(hold_app["DAYS_BIRTH"].to_numpy(), params.age_bands))}
    # money and segments on the hold-out at the chosen threshold, from the served model's calibrated PD
    money = hold_money(prepared, hold_raw, hold_app["TARGET"].to_numpy(), proba, refused, portfolio)
    # older applicants (62+) scored as they are and with only their age set to 61: the one feature code path
    plan = serving_plan(bundle.spec, names)
    app_index = [names.index(n) for n in plan["app_names"]]

    def features_at(rows: np.ndarray, days_birth: np.ndarray) -> np.ndarray:
        changed = hold_raw[rows].with_columns(pl.Series("DAYS_BIRTH", days_birth, dtype=pl.Float64))
        x = x_hold[rows].copy()
        x[:, app_index] = model_values(changed.select(plan["app_exprs"]))
        return x

    fair["older_applicants"] = fairness.older_for_age_alone(
        lambda x: calibrate(pipeline.predict_proba(x)[:, 1], bundle.calibration), x_hold,
        hold_raw["DAYS_BIRTH"].to_numpy(), features_at)
    _log(f"62+: {fair['older_applicants']['worse_for_age']} of {fair['older_applicants']['clients']} hold-out "
         "clients scored worse at their age than at 61")
    metrics = {"method": f"{model_kind(pipeline)} contributions ({contrib.space})",
               "native_importance": importance_name, "n_holdout": len(x_hold), "n_global": n_global,
               "additivity_max_error": float(f"{additivity:.3g}"),
               "shap_library_max_abs_diff": float(f"{library_diff:.3g}"),
               "global": ranking[:top], "global_by_field": drivers[:top], "local": local,
               "mean_agreement": round(float(np.mean([r["agreement"] for r in local])), 4) if local else None,
               "fairness": fair, **money}
    return metrics, {"ranking": ranking, "drivers": drivers}


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--prepared", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--figures", required=True, help="folder for the PNG figures")
    parser.add_argument("--importance", required=True, help="complete global importance, for the reference stage")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    bundle = load(resolve(args.bundle), Bundle)
    with atomic_outputs(resolve(args.figures), resolve(args.importance), resolve(args.metrics)) as (
            figures, importance_path, metrics_path):
        figures.mkdir()
        metrics, importance = explain(resolve(args.features), resolve(args.predictions), resolve(args.prepared),
                                      bundle, params.explain, params.seed, figures, params.portfolio)
        write_json(importance_path, importance)
        write_json(metrics_path, metrics)
    _log(f"wrote {args.figures}, {args.importance}, {resolve(args.metrics).name} (the register stage writes the model "
         "card)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("explain", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
