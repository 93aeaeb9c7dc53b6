"""DVC stage `explain`: global and local explanations, reason codes, fairness and the serving reference."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import polars as pl

from creditscore.config import load_params, resolve
from creditscore.decision.calibration import calibrate
from creditscore.explanation import fairness, groups, reasons
from creditscore.explanation.contributions import (
    Contributions,
    contributions,
    labels_from_manifest,
    raw_score,
    typical_values,
)
from creditscore.explanation.figures import global_figures, local_explanations, native_importance, shap_library_check
from creditscore.features.serving import model_values, serving_plan
from creditscore.io import atomic_outputs, write_json
from creditscore.modelling.models import model_kind
from creditscore.serving.artifacts import checksum_path
from creditscore.serving.bundle import QUANTILES, Bundle, Reference, load, save
from creditscore.stage import logger
from creditscore.stage import run as run_stage

_log = logger("explain")


def load_matrix(folder: Path, split: str, names: list[str], extra: list[str] = ()) -> tuple[pl.DataFrame, np.ndarray]:
    columns = list(dict.fromkeys(["SK_ID_CURR", *extra, *names]))
    frame = pl.read_parquet(folder / f"{split}.parquet", columns=columns)
    return frame, frame.select(names).to_numpy().astype(np.float64)


def aligned(keys: pl.DataFrame, path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """The rows of `path` for the clients of `keys` (SK_ID_CURR and any columns to keep), in their order."""
    return keys.join(pl.read_parquet(path, columns=columns), on="SK_ID_CURR", how="left", maintain_order="left")


def distributions(frame: pl.DataFrame, granted: np.ndarray, fields: list[str]) -> dict:
    """Quantiles of key fields among granted and refused training clients, for the dashboard."""
    out = {}
    for field in fields:
        values = frame[field].to_numpy().astype(np.float64)
        out[field] = {}
        for group, mask in (("granted", granted), ("refused", ~granted)):
            v = values[mask & ~np.isnan(values)]
            out[field][group] = [round(float(q), 6) for q in np.quantile(v, QUANTILES)] if len(v) else []
    return out


def explain(features: Path, predictions: Path, prepared: Path, bundle: Bundle, params: dict, seed: int,
            figures: Path) -> tuple[dict, Reference]:
    names, pipeline, threshold = bundle.features, bundle.pipeline, float(bundle.threshold)
    labels = labels_from_manifest(bundle.manifest)
    key_fields = list(params["key_fields"])
    top = params["top_features"]
    # typical values: training clients the model grants (out-of-fold scores, so no client scores itself)
    train_frame, x_train = load_matrix(features, "train", names, key_fields)
    oof = aligned(train_frame.select("SK_ID_CURR"), predictions / "oof.parquet")
    granted = calibrate(oof["proba"].to_numpy(), bundle.calibration) < threshold
    typical = typical_values(x_train[granted])
    _log(f"typical values from {int(granted.sum())} granted training clients")
    # global: contributions on the whole hold-out (on a seeded sample of explain.global_sample rows above it, for scale)
    hold_frame, x_hold = load_matrix(features, "holdout", names, ["TARGET"])
    n_global = min(params["global_sample"], len(x_hold))
    rows = (np.arange(len(x_hold)) if n_global == len(x_hold)
            else np.sort(np.random.default_rng(seed).choice(len(x_hold), size=n_global, replace=False)))
    x_global = x_hold[rows]
    contrib = contributions(pipeline, x_global)
    additivity = float(np.max(np.abs(contrib.score - raw_score(pipeline, x_global))))
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(x_global), size=min(params["sample"], len(x_global)), replace=False))
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
    fields = sorted({f for fs in sources.values() for f in fs if not f.startswith("history:")})
    train_app = aligned(train_frame.select("SK_ID_CURR"), prepared / "application_train.parquet")
    typical_fields = reasons.typical_fields(train_app.filter(pl.Series(granted)), fields)
    hold_raw = aligned(hold_frame.select("SK_ID_CURR"), prepared / "application_holdout.parquet")

    def say_reasons(row: int, contrib_row, refused: bool) -> list[dict]:
        return reasons.reasons(contrib_row, names, sources, hold_raw.row(row, named=True), x_hold[row], refused,
                               typical_fields, labels)

    local = local_explanations(figures, pipeline, x_hold, ids, proba, threshold, x_train, names, say_reasons,
                               params, seed)
    _log(f"local: {len(local)} clients, mean SHAP/LIME top-{params['top_k']} agreement "
         f"{np.mean([r['agreement'] for r in local]):.2f}")
    # fairness on the hold-out at the chosen threshold
    hold_app = aligned(hold_frame.select("SK_ID_CURR", "TARGET"), prepared / "application_holdout.parquet",
                       ["SK_ID_CURR", "CODE_GENDER", "DAYS_BIRTH"])
    refused = proba >= threshold
    fair = {"gender": fairness.group_rates(hold_app["TARGET"].to_numpy(), refused,
                                           hold_app["CODE_GENDER"].fill_null("unknown").to_numpy()),
            "age_band": fairness.group_rates(hold_app["TARGET"].to_numpy(), refused,
                                             fairness.age_bands(hold_app["DAYS_BIRTH"].to_numpy(), params["age_bands"]))}
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
               "fairness": fair}
    # the serving reference: what the API needs beside the bundle
    test_frame, x_test = load_matrix(features, "test", names, key_fields)
    test_pred = aligned(test_frame.select("SK_ID_CURR"), predictions / "test.parquet")
    test_app = aligned(test_frame.select("SK_ID_CURR"), prepared / "application_test.parquet")
    # similar clients: the training clients' filter attributes and values (the API answers with aggregates only)
    compared = list(dict.fromkeys([*names, *key_fields]))
    population = {"attributes": groups.attributes({c: train_app[c].to_list() for c in (
                      "NAME_CONTRACT_TYPE", "CODE_GENDER", "NAME_FAMILY_STATUS", "DAYS_BIRTH", "AMT_INCOME_TOTAL")},
                      params["age_bands"]),
                  "names": compared, "values": train_frame.select(compared).to_numpy().astype(np.float32),
                  "granted": granted}
    reference = Reference(typical=typical, typical_fields=typical_fields, labels={n: labels.get(n, n) for n in compared},
                          ranking=ranking, key_fields=key_fields, drivers=drivers, population=population,
                          distributions=distributions(train_frame, granted, key_fields),
                          clients={"ids": test_frame["SK_ID_CURR"].to_numpy(), "features": x_test,
                                   "key_values": test_frame.select(key_fields).to_numpy().astype(np.float64),
                                   "proba": calibrate(test_pred["proba"].to_numpy(), bundle.calibration),
                                   "application": test_app})
    return metrics, reference


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True)
    parser.add_argument("--predictions", required=True)
    parser.add_argument("--prepared", required=True)
    parser.add_argument("--bundle", required=True)
    parser.add_argument("--figures", required=True, help="folder for the PNG figures")
    parser.add_argument("--reference", required=True, help="serving reference for the API (joblib)")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    bundle = load(resolve(args.bundle), Bundle)
    path = resolve(args.reference)
    with atomic_outputs(resolve(args.figures), path, checksum_path(path), resolve(args.metrics)) as (
            figures, served, digest, metrics_path):
        figures.mkdir()
        metrics, reference = explain(resolve(args.features), resolve(args.predictions), resolve(args.prepared),
                                     bundle, params["explain"], params["seed"], figures)
        save(reference, served, checksum_at=digest)
        write_json(metrics_path, metrics)
    _log(f"wrote {args.figures}, {args.reference}, {resolve(args.metrics).name} (the register stage writes the model "
         "card)")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("explain", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
