"""DVC stage `explain`: global and local explanations, reason codes, fairness, the model card and the serving reference."""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are written headlessly
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import polars as pl  # noqa: E402

from creditscore.config import load_params, resolve  # noqa: E402
from creditscore.decision.calibration import calibrate  # noqa: E402
from creditscore.explanation import fairness  # noqa: E402
from creditscore.explanation.contributions import (Contributions, contributions, labels_from_manifest,  # noqa: E402
                                                   preprocess, raw_score, reason_codes, typical_values)
from creditscore.explanation.modelcard import render_model_card  # noqa: E402
from creditscore.io import atomic_dir, write_json  # noqa: E402
from creditscore.modelling.models import members, model_kind  # noqa: E402
from creditscore.serving.bundle import Bundle, Reference, load, save  # noqa: E402
from creditscore.stage import logger, run as run_stage  # noqa: E402

CARD_METRICS = ("prepare", "engineer", "probe", "train", "threshold", "explain")  # declared deps
QUANTILES = [round(q, 2) for q in np.linspace(0.05, 0.95, 19)]


_log = logger("explain")


def load_matrix(folder: Path, split: str, names: list[str], extra: list[str] = ()) -> tuple[pl.DataFrame, np.ndarray]:
    columns = list(dict.fromkeys(["SK_ID_CURR", *extra, *names]))
    frame = pl.read_parquet(folder / f"{split}.parquet", columns=columns)
    return frame, frame.select(names).to_numpy().astype(np.float64)


def aligned(keys: pl.DataFrame, path: Path, columns: list[str] | None = None) -> pl.DataFrame:
    """The rows of `path` for the clients of `keys` (SK_ID_CURR and any columns to keep), in their order."""
    return keys.join(pl.read_parquet(path, columns=columns), on="SK_ID_CURR", how="left", maintain_order="left")


def native_importance(pipeline, n: int) -> tuple[str, np.ndarray]:
    """The model's own importance: LightGBM gain, |standardised coefficient|, or impurity decrease.

    A blend's is its LightGBM members' gain, averaged (the logistic regression has no gain to add to it).
    """
    model = pipeline.steps[-1][1]
    kind = model_kind(pipeline)
    if kind == "blend":
        gains = [native_importance(m, n)[1] for m, _ in members(pipeline) if model_kind(m) == "lightgbm"]
        return "lightgbm_gain_mean_over_seeds", np.mean(gains, axis=0)
    if kind == "lightgbm":
        return "lightgbm_gain", model.booster_.feature_importance(importance_type="gain").astype(float)
    if kind == "logistic_regression":
        return "abs_standardised_coefficient", np.abs(model.coef_[0])
    if kind == "random_forest":
        return "impurity_decrease", model.feature_importances_.astype(float)
    return "none", np.zeros(n)


def shap_library_check(pipeline, x_sample: np.ndarray, x_background: np.ndarray) -> float:
    """Largest difference between our contributions and the `shap` library's on a sample.

    For a blend, each member is checked against the library and the largest difference, weighted as the
    member is in the blend, is returned.
    """
    import shap
    kind = model_kind(pipeline)
    if kind == "blend":
        return max(w * shap_library_check(m, x_sample, x_background) for m, w in members(pipeline))
    ours = contributions(pipeline, x_sample)
    xt = preprocess(pipeline, x_sample)
    if kind == "lightgbm":
        with warnings.catch_warnings():  # shap's notice that it returns one array for a binary LightGBM: we use that
            warnings.filterwarnings("ignore", message="LightGBM binary classifier with TreeExplainer", category=UserWarning)
            theirs = np.asarray(shap.TreeExplainer(pipeline.steps[-1][1].booster_).shap_values(xt))
    elif kind == "logistic_regression":
        background = preprocess(pipeline, x_background)  # every row, not the masker's default 100-row sample
        explainer = shap.LinearExplainer(pipeline.steps[-1][1],
                                         shap.maskers.Independent(background, max_samples=len(background)))
        theirs = np.asarray(explainer.shap_values(xt))
    else:
        return 0.0  # the forest's contributions come from shap itself; the dummy has none
    return float(np.max(np.abs(theirs - ours.values)))


def global_figures(out: Path, contrib, x: np.ndarray, names: list[str], labels: dict, importance: np.ndarray,
                   importance_name: str, top: int) -> None:
    import shap
    explanation = shap.Explanation(values=contrib.values, base_values=contrib.base, data=x, feature_names=names)
    for kind, plot in (("bar", shap.plots.bar), ("beeswarm", shap.plots.beeswarm)):
        plt.figure()
        np.random.seed(0)  # the beeswarm jitters overlapping dots with numpy's global generator
        plot(explanation, max_display=top, show=False)
        plt.title(f"SHAP on the hold-out ({contrib.space}), top {top}")
        plt.tight_layout()
        plt.savefig(out / f"shap_{kind}.png", dpi=90)
        plt.close("all")
    mean_abs = np.abs(contrib.values).mean(axis=0)
    order = np.argsort(-mean_abs, kind="stable")[:top][::-1]
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.32 * top + 1.5), sharey=True)
    axes[0].barh([names[i] for i in order], mean_abs[order], color="#3465a4")
    axes[0].set_title("mean |SHAP| on the hold-out")
    axes[1].barh([names[i] for i in order], importance[order], color="#8f5902", hatch="//")
    axes[1].set_title(f"model's own importance ({importance_name})")
    fig.tight_layout()
    fig.savefig(out / "importance.png", dpi=90)
    plt.close("all")


def pick_clients(ids: np.ndarray, proba: np.ndarray, threshold: float, counts: dict) -> list[tuple[str, int]]:
    """Hold-out rows to explain locally: highest risk, lowest risk, closest to the threshold (stable order)."""
    order = np.argsort(proba, kind="stable")
    chosen: list[tuple[str, int]] = []
    seen: set[int] = set()
    candidates = {"highest": order[::-1], "lowest": order,
                  "closest": np.argsort(np.abs(proba - threshold), kind="stable")}
    for kind in ("highest", "lowest", "closest"):
        taken = 0
        for row in candidates[kind]:
            if taken >= int(counts.get(kind, 0)):
                break
            if int(row) not in seen:
                seen.add(int(row))
                chosen.append((kind, int(row)))
                taken += 1
    return chosen


def local_explanations(out: Path, pipeline, x_hold, ids, proba, threshold, x_train, names, labels, typical,
                       params: dict, seed: int) -> list[dict]:
    import shap
    from lime.lime_tabular import LimeTabularExplainer
    fill = np.nan_to_num(np.nanmedian(x_train, axis=0), nan=0.0)
    train_filled = np.where(np.isnan(x_train), fill, x_train)
    lime = LimeTabularExplainer(train_filled, feature_names=names, class_names=["repaid", "default"],
                                discretize_continuous=True, random_state=seed, mode="classification")
    k = int(params["top_k"])
    rows = []
    for kind, row in pick_clients(ids, proba, threshold, params["clients"]):
        client = int(ids[row])
        c = contributions(pipeline, x_hold[row:row + 1])
        explanation = shap.Explanation(values=c.values[0], base_values=c.base[0], data=x_hold[row], feature_names=names)
        plt.figure()
        shap.plots.waterfall(explanation, max_display=12, show=False)
        plt.title(f"client {client} ({kind}): calibrated P(default) {proba[row]:.3f}")
        plt.tight_layout()
        plt.savefig(out / f"waterfall_{client}.png", dpi=90)
        plt.close("all")
        lime_row = np.where(np.isnan(x_hold[row]), fill, x_hold[row])
        lime_exp = lime.explain_instance(lime_row, pipeline.predict_proba, num_features=k,
                                         num_samples=int(params["lime_samples"]))
        fig = lime_exp.as_pyplot_figure()
        fig.suptitle(f"LIME, client {client} ({kind})")
        fig.tight_layout()
        fig.savefig(out / f"lime_{client}.png", dpi=90)
        plt.close("all")
        shap_top = [names[i] for i in np.argsort(-np.abs(c.values[0]), kind="stable")[:k]]
        lime_top = [names[i] for i, _ in sorted(lime_exp.as_map()[1], key=lambda t: (-abs(t[1]), t[0]))[:k]]
        rows.append({"client": client, "kind": kind, "proba": round(float(proba[row]), 6),
                     "decision": "refused" if proba[row] >= threshold else "granted",
                     "shap_top": shap_top, "lime_top": lime_top,
                     "agreement": round(len(set(shap_top) & set(lime_top)) / k, 4),
                     "reasons": [r["text"] for r in reason_codes(x_hold[row], c.values[0], names, labels, typical)]})
    return rows


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
    top = int(params["top_features"])
    # typical values: training clients the model grants (out-of-fold scores, so no client scores itself)
    train_frame, x_train = load_matrix(features, "train", names, key_fields)
    oof = aligned(train_frame.select("SK_ID_CURR"), predictions / "oof.parquet")
    granted = calibrate(oof["proba"].to_numpy(), bundle.calibration) < threshold
    typical = typical_values(x_train[granted])
    _log(f"typical values from {int(granted.sum())} granted training clients")
    # global: contributions on the whole hold-out
    hold_frame, x_hold = load_matrix(features, "holdout", names, ["TARGET"])
    contrib = contributions(pipeline, x_hold)
    additivity = float(np.max(np.abs(contrib.score - raw_score(pipeline, x_hold))))
    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(len(x_hold), size=min(int(params["sample"]), len(x_hold)), replace=False))
    library_diff = shap_library_check(pipeline, x_hold[sample], x_train)  # background: every training client
    importance_name, importance = native_importance(pipeline, len(names))
    mean_abs = np.abs(contrib.values).mean(axis=0)
    ranking = [{"feature": names[i], "label": labels.get(names[i], names[i]), "mean_abs_shap": round(float(mean_abs[i]), 6),
                "native_importance": round(float(importance[i]), 6)}
               for i in np.argsort(-mean_abs, kind="stable")]
    global_figures(figures, Contributions(contrib.values[sample], contrib.base[sample], contrib.space), x_hold[sample], names, labels, importance,
                   importance_name, min(top, len(names)))
    _log(f"global: additivity error {additivity:.2e}, shap library difference {library_diff:.2e}")
    # local
    hold_pred = aligned(hold_frame.select("SK_ID_CURR"), predictions / "holdout.parquet")
    proba = calibrate(hold_pred["proba"].to_numpy(), bundle.calibration)
    ids = hold_frame["SK_ID_CURR"].to_numpy()
    local = local_explanations(figures, pipeline, x_hold, ids, proba, threshold, x_train, names, labels, typical,
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
    metrics = {"method": f"{model_kind(pipeline)} contributions ({contrib.space})",
               "native_importance": importance_name, "n_holdout": len(x_hold),
               "additivity_max_error": float(f"{additivity:.3g}"),
               "shap_library_max_abs_diff": float(f"{library_diff:.3g}"),
               "global": ranking[:top], "local": local,
               "mean_agreement": round(float(np.mean([r["agreement"] for r in local])), 4) if local else None,
               "fairness": fair}
    # the serving reference: what the API needs beside the bundle
    test_frame, x_test = load_matrix(features, "test", names, key_fields)
    test_pred = aligned(test_frame.select("SK_ID_CURR"), predictions / "test.parquet")
    test_app = aligned(test_frame.select("SK_ID_CURR"), prepared / "application_test.parquet")
    reference = Reference(typical=typical, labels={n: labels.get(n, n) for n in dict.fromkeys([*names, *key_fields])},
                          ranking=ranking, key_fields=key_fields,
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
    parser.add_argument("--card", required=True, help="model card (markdown)")
    parser.add_argument("--metrics", required=True)
    args = parser.parse_args(argv)
    params = load_params()
    bundle = load(resolve(args.bundle), Bundle)
    figures = resolve(args.figures)
    with atomic_dir(figures) as scratch:
        metrics, reference = explain(resolve(args.features), resolve(args.predictions), resolve(args.prepared),
                                     bundle, params["explain"], int(params["seed"]), scratch)
    path = resolve(args.reference)
    save(reference, path)
    write_json(resolve(args.metrics), metrics)
    folder = resolve(args.metrics).parent
    all_metrics = {name: json.loads((folder / f"{name}.json").read_text()) for name in CARD_METRICS}
    card = resolve(args.card)
    card.parent.mkdir(parents=True, exist_ok=True)
    card.write_text(render_model_card(params, all_metrics, figures_dir=Path(args.figures), card_dir=Path(args.card).parent),
                    encoding="utf-8")
    _log(f"wrote {args.figures}, {args.reference}, {args.card}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return run_stage("explain", _main, argv)


if __name__ == "__main__":
    sys.exit(main())
