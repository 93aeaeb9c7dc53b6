"""The explain stage's figures and local explanations: SHAP bar, beeswarm and waterfalls, LIME, and the check
of our contributions against the `shap` library. Matplotlib draws headlessly; `shap` and `lime` are imported
here only, never by the API.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # figures are written headlessly
import lightgbm as lgb  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from creditscore.explanation.contributions import contributions, preprocess  # noqa: E402
from creditscore.modelling.models import members, model_kind  # noqa: E402


def native_importance(pipeline, n: int) -> tuple[str, np.ndarray]:
    """The model's own importance: LightGBM gain, |standardised coefficient|, or impurity decrease.

    The ensemble's is its LightGBM fold models' gain, averaged (a logistic regression has no gain to add to it);
    an ensemble of logistic regressions only, their mean |standardised coefficient|.
    """
    model = pipeline.steps[-1][1]
    kind = model_kind(pipeline)
    if kind == "ensemble":
        parts = [(model_kind(m), native_importance(m, n)[1]) for m, _ in members(pipeline)]
        name = "lightgbm" if any(k == "lightgbm" for k, _ in parts) else "logistic_regression"
        values = np.mean([v for k, v in parts if k == name], axis=0)
        return ("lightgbm_gain_mean_over_fold_models" if name == "lightgbm"
                else "abs_standardised_coefficient_mean_over_fold_models"), values
    if kind == "lightgbm":
        return "lightgbm_gain", model.booster_.feature_importance(importance_type="gain").astype(float)
    if kind == "logistic_regression":
        return "abs_standardised_coefficient", np.abs(model.coef_[0])
    if kind == "random_forest":
        return "impurity_decrease", model.feature_importances_.astype(float)
    if kind == "scorecard":  # the information value of the features on the card, 0 for the others
        iv = np.zeros(n)
        ivs = dict(zip(*model.information_values()[["feature", "iv"]].to_numpy().T))
        iv[model.index_] = [ivs[f] for f in model.selected_]
        return "information_value", iv
    return "none", np.zeros(n)


def shap_library_check(pipeline, x_sample: np.ndarray, x_background: np.ndarray) -> float:
    """Largest difference between our contributions and the `shap` library's on a sample.

    For the ensemble, the first fold model of each kind (LightGBM, logistic regression) is checked against the
    library, and the largest difference, weighted as the fold model is in the ensemble, is returned: the other
    fold models go through the same code (`tests/test_explain.py` checks the ensemble's sum against its members').
    A logistic regression's linear SHAP values are taken against its own scaler's centre (the mean of the rows
    it was fitted on, 0 once standardised), which is where our contributions centre them.
    """
    import shap
    kind = model_kind(pipeline)
    if kind == "ensemble":
        first = {}
        for m, w in members(pipeline):
            first.setdefault(model_kind(m), (m, w))
        return max(w * shap_library_check(m, x_sample, x_background) for m, w in first.values())
    ours = contributions(pipeline, x_sample)
    xt = preprocess(pipeline, x_sample)
    if kind == "lightgbm":
        with warnings.catch_warnings():  # shap's notice that it returns one array for a binary LightGBM: we use that
            warnings.filterwarnings("ignore", message="LightGBM binary classifier with TreeExplainer",
                                    category=UserWarning)
            # the trees it predicts with: a fold model holds the common count of trees, its `best_iteration`
            booster = pipeline.steps[-1][1].booster_
            theirs = np.asarray(shap.TreeExplainer(lgb.Booster(model_str=booster.model_to_string())).shap_values(xt))
    elif kind == "logistic_regression":
        background = np.zeros((1, xt.shape[1]))  # the scaler's centre, in the standardised space of `xt`
        explainer = shap.LinearExplainer(pipeline.steps[-1][1],
                                         shap.maskers.Independent(background, max_samples=len(background)))
        theirs = np.asarray(explainer.shap_values(xt))
    elif kind == "scorecard":  # the library's linear SHAP on the weights of evidence, every training row as background
        model = pipeline.steps[-1][1]
        background = model._woe(x_background)
        explainer = shap.LinearExplainer((model.coef_, model.intercept_),
                                         shap.maskers.Independent(background, max_samples=len(background)))
        theirs = np.zeros_like(ours.values)
        theirs[:, model.index_] = np.asarray(explainer.shap_values(model._woe(x_sample)))
    else:
        return 0.0  # the forest's contributions come from shap itself; the dummy has none
    return float(np.max(np.abs(theirs - ours.values)))


def global_figures(out: Path, contrib, x: np.ndarray, names: list[str], importance: np.ndarray,
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


def pick_clients(proba: np.ndarray, threshold: float, counts: dict) -> list[tuple[str, int]]:
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


def local_explanations(out: Path, pipeline, x_hold, ids, proba, threshold, x_train, names, say_reasons,
                       params, seed: int) -> list[dict]:
    """SHAP waterfall and LIME figures and reason codes of the clients `explain.clients` picks (`params`: the
    typed `explain` section);
    `say_reasons(row, contributions, refused)` gives a client's reasons (`creditscore.explanation.reasons`)."""
    import shap
    from lime.lime_tabular import LimeTabularExplainer
    fill = np.nan_to_num(np.nanmedian(x_train, axis=0), nan=0.0)
    train_filled = np.where(np.isnan(x_train), fill, x_train)
    # "highest_weights": the top_k of one weighted ridge on every feature. LIME's "auto" would switch to forward
    # selection for top_k <= 6, one ridge per remaining feature per step (20,736 fits for 6 clients on 773 features,
    # 110 of the e2e run's 128 explain seconds); it uses "highest_weights" itself above 6.
    lime = LimeTabularExplainer(train_filled, feature_names=names, class_names=["repaid", "default"],
                                discretize_continuous=True, random_state=seed, mode="classification",
                                feature_selection="highest_weights")
    k = params.top_k
    rows = []
    for kind, row in pick_clients(proba, threshold, params.clients.model_dump()):
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
                                         num_samples=params.lime_samples)
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
                     "reasons": [r["text"] for r in say_reasons(row, c.values[0], bool(proba[row] >= threshold))]})
    return rows
