"""The model card (methodology note), rendered from params.yaml and the metrics of the current run."""
from __future__ import annotations

import os
from pathlib import Path

from creditscore.decision.portfolio import level_key
from creditscore.explanation.fairness import group_key
from creditscore.params import Params


def _fmt(value, digits: int = 4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _fairness(title: str, block: dict) -> str:
    rows = [[g, block["groups"][g]["clients"], block["groups"][g]["approval_rate"],
             block["groups"][g].get("adverse_impact_ratio"), block["groups"][g]["false_negative_rate"],
             block["groups"][g]["false_positive_rate"]]
            for g in sorted(block["groups"], key=group_key)]
    flagged = block.get("adverse_impact_flagged") or []
    gaps = (f"Gaps (max - min over groups of 30+ clients): approval {_fmt(block['approval_rate_gap'])}, "
            f"false-negative rate {_fmt(block['false_negative_rate_gap'])}, "
            f"false-positive rate {_fmt(block['false_positive_rate_gap'])}; equalised-odds difference "
            f"{_fmt(block.get('equalized_odds_difference'))}. Adverse impact ratio below 0.8 (the four-fifths rule): "
            f"{', '.join(flagged) if flagged else 'none'}.")
    return (f"**By {title}**\n\n" + _table(["group", "clients", "approval rate", "adverse impact ratio", "FNR", "FPR"],
                                           rows) + "\n\n" + gaps)


def _older(block: dict | None, monotone: dict) -> str:
    """The 62+ check: are older applicants scored worse for their age alone?"""
    if not block:
        return ""
    constrained = (f"`train.monotone` constrains {', '.join(f'`{k}`' for k in monotone)}." if monotone else
                   "`train.monotone` is empty: no monotone constraint was asked for.")
    if not block["clients"]:
        return f"**Older applicants.** No hold-out client is {block['min_age']:g} or older. {constrained}"
    return (f"**Older applicants ({block['min_age']:g}+).** Each of the {block['clients']} hold-out clients aged "
            f"{block['min_age']:g} or more is scored again with only the age set to {block['reference_age']:g} (every "
            f"feature built from the age recomputed): {block['worse_for_age']} "
            f"({_fmt(block['share_worse'])}) are scored worse at their real age; the mean change of the calibrated "
            f"probability is {_fmt(block['mean_change'], 5)}, the largest {_fmt(block['max_change'], 5)}. {constrained}")


def _ensemble(train: dict) -> str:
    """What the served ensemble is made of and how its weights were learned."""
    e = train["ensemble"]
    members = ", ".join(f"`{n}` {m['weight']:g} (out-of-fold AUC {_fmt(m['auc'])})" for n, m in e["members"].items())
    return (f" It is a cross-fitted ensemble of {e['fold_models']} fold models: each member's {e['folds']} fold models "
            "averaged in log-odds, the members mixed at weights learned by a non-negative logistic regression on "
            f"their out-of-fold log-odds: {members}. Its explanations are the same weighted sum of its fold models' "
            "contributions.")


def _uncertainty(train: dict, threshold: dict) -> str:
    """The hold-out figures' intervals and the bands' rank-ordering test."""
    u = threshold["validation"]["holdout"]["uncertainty"]
    r = u["rank_ordering"]
    inversions = ", ".join(f"bands {i['bands'][0]}-{i['bands'][1]} ({_fmt(i['default_rates'][0])} then "
                           f"{_fmt(i['default_rates'][1])}, adjusted p {_fmt(i['p_adjusted'])})" for i in r["inversions"])
    order = ("The hold-out default rate rises with every band." if r["rank_ordered"] else
             f"Inversions of the default rate between adjacent bands: {inversions}; "
             f"{r['significant_inversions']} of them significant at {r['alpha']} ({r['test']}).")
    a = u["auc"]
    return (f"Hold-out AUC {_fmt(a['auc'])} (95% DeLong interval {_fmt(a['low'])} to {_fmt(a['high'])}), Gini "
            f"{_fmt(u['gini']['value'])} ({_fmt(u['gini']['low'])} to {_fmt(u['gini']['high'])}), KS "
            f"{_fmt(u['ks']['value'])} ({_fmt(u['ks']['low'])} to {_fmt(u['ks']['high'])}; stratified bootstrap). "
            f"{order} Rank correlation of band and default rate: {_fmt(r['spearman'])}.")


def _validation(threshold: dict) -> str:
    """Gini, KS, Brier and ECE of the served calibrated score and of the scorecard challenger, and their bands."""
    models = [("served (calibrated)", threshold["validation"])]
    if "challenger" in threshold:
        models.append(("scorecard challenger", threshold["challenger"]["validation"]))
    header = ["figure"] + [f"{name}, {part}" for name, _ in models for part in ("hold-out", "out of fold")]
    rows = []
    for label, key, digits in (("AUC", "auc", 4), ("Gini (2·AUC − 1)", "gini", 4), ("KS", "ks", 4),
                               ("KS reached at P(default)", "ks_probability", 4), ("KS reached at points", "ks_points", 1),
                               ("Brier score", "brier", 5), ("expected calibration error (10 equal-count bands)", "ece", 5)):
        rows.append([label] + [_fmt(v[part].get(key), digits) for _, v in models for part in ("holdout", "out_of_fold")])
    parts = [_table(header, rows), "The out-of-fold figures are those of the training clients, on which the served model's "
             "calibration and both thresholds were chosen."]
    for name, v in models:
        bands = v["holdout"]["bands"]
        parts.append(f"Score bands of the {name} on the hold-out (equal-count, band 1 the lowest probability of "
                     "default, so the most points):")
        parts.append(_table(["band", "clients", "defaults", "default rate", "P(default) from", "to", "points from",
                             "to", "approval rate if granted up to here", "default rate among them"],
                            [[b["band"], b["clients"], b["defaults"], b["default_rate"], b["min_proba"], b["max_proba"],
                              b.get("min_points"), b.get("max_points"), b["cumulative_approval_rate"],
                              b["cumulative_default_rate"]] for b in bands]))
    return "\n\n".join(parts)


def _scorecard(params: Params, train: dict, threshold: dict, table: list[dict]) -> str:
    """The challenger: what it is, how it did beside the served model, its information values and its card."""
    if "scorecard" not in train:
        return "The scorecard challenger is not among `train.models` in this run."
    sc, p, points = train["scorecard"], params.train.scorecard, params.points
    ch = threshold.get("challenger", {})
    text = (f"A points scorecard (optbinning: optimal bins of at least {p.min_bin_size:.0%} of the clients, a bin "
            f"for missing values, monotonic trends where `train.scorecard.trends` sets them; the {sc['n_features']} "
            f"features of highest information value whose weights of evidence correlate at most "
            f"{p.max_correlation} with one kept before; a logistic regression on the weights of evidence) is scored "
            f"on the same folds and cost as every candidate. {points.base_points:g} points at good:bad odds of "
            f"{points.base_odds:g}:1, {points.pdo:g} more points each time the odds double. "
            f"Cross-validated AUC {_fmt(sc['cv_auc'])}, hold-out AUC {_fmt(sc['holdout_auc'])} (the served model: "
            f"{_fmt(train['cv_auc'])} and {_fmt(train['holdout_auc'])}); "
            + "it is reported as the challenger, never served (the API does not carry optbinning). "
            + (f"At its own least-cost threshold (chosen out of fold) its hold-out cost per client is "
               f"{_fmt(ch['holdout_cost_per_client'])}, against {_fmt(threshold['holdout_cost_per_client'])} for the "
               "served model. " if ch else "")
            + "Its table is `data/scorecard/table.csv`, every feature's information value "
              "`data/scorecard/information_values.csv`, and every client's points per feature "
              "`data/scorecard/points.parquet`.")
    ivs = _table(["rank", "feature", "information value"],
                 [[i + 1, f"`{r['feature']}`", r["iv"]] for i, r in enumerate(sc["information_value_top"])])
    card = _table(["feature", "bin", "clients", "default rate", "WoE", "points"],
                  [[f"`{r['feature']}`", r["bin"], r["clients"], r["default_rate"], r["woe"], _fmt(r["points"], 1)]
                   for r in table])
    return f"{text}\n\nInformation value, highest first:\n\n{ivs}\n\nThe card:\n\n{card}"


def _bases(threshold: dict) -> str:
    """Both cost bases side by side: the threshold each would serve, and what it costs on either basis."""
    bases = threshold.get("by_cost_basis")
    if not bases:
        return ""
    return (f"The served threshold minimises the cost counted on the `{threshold['cost_basis']}` basis "
            "(`params.yaml: cost.basis`). Counted per error, a missed defaulter costs the same on any loan; weighted "
            "by the credit amount, each error costs that many times as much. Each basis's threshold, chosen out of "
            "fold, on the hold-out:\n\n" + _table(
                ["basis", "threshold", "cost per client (counted)", "cost per client (amount-weighted)",
                 "approval rate"],
                [[b, v["threshold"], v["holdout_cost_per_client"], f"{v['holdout_amount_cost_per_client']:,.2f}",
                  v["approval_rate"]] for b, v in bases.items()]))


def _monitoring(drift: dict | None, performance: dict | None) -> str:
    """The characteristic stability table (drift stage) and the matured outcomes against the estimate."""
    parts = []
    if drift and "stability" in drift:
        parts.append(f"Population stability, training clients against {drift['current_source']} (PSI: below 0.1 "
                     "stable, to 0.25 watch, above act):\n\n" + _table(
                         ["characteristic", "PSI", "band", "missing (training)", "missing (current)"],
                         [[f"`{r['characteristic']}`", r["psi"], r["band"], r["missing_reference"],
                           r["missing_current"]] for r in drift["stability"]]))
    if performance:
        e, r = performance["estimated"], performance["realised"]
        text = (f"Before outcomes mature, the calibrated probabilities expect an AUC of {_fmt(e['auc'])} on the "
                f"{performance['clients_scored']} scored clients (confidence-based estimate). ")
        text += (f"Realised on the {performance['matured']} matured outcomes ({performance['outcomes_source']}): AUC "
                 f"{_fmt(r['auc'])} (estimated {_fmt(r['estimated_auc'])}), default rate {_fmt(r['default_rate'])} "
                 f"against {_fmt(r['predicted_default_rate'])} predicted; by month in `reports/performance.md`."
                 if r else "No outcome has matured yet.")
        parts.append(text)
    return "\n\n".join(parts) or "Not computed in this run."


SEGMENT_TITLES = {"contract_type": "contract type", "client": "new or repeat client (a previous application with "
                  "the lender)", "income_band": "income band"}


def _money(explain: dict, params: Params) -> str:
    """The target's definition, the approved book's expected loss and the figures by segment."""
    if "portfolio" not in explain:
        return "Not computed in this run."
    b = explain["portfolio"]
    parts = [
        "The target is Kaggle's `TARGET`: a client with payment difficulties (a payment late by more than a number of "
        "days on at least one of the first instalments of the loan; Home Credit does not publish the horizon). The "
        "probability of default is the calibrated probability of that event, so the expected loss below (PD × "
        f"exposure × LGD, the exposure being the credit amount, LGD {b['lgd']} from `params.yaml: portfolio.lgd`) is "
        "an upper reading: not every client with payment difficulties defaults for good.",
        _table(["figure", "value"], [
            ["approved clients", f"{b['approved']} of {b['clients']}"],
            ["exposure of the approved book", f"{b['exposure_approved']:,.0f}"],
            ["expected loss of the approved book", f"{b['expected_loss_approved']:,.0f}"],
            ["expected loss rate (of the exposure)", _fmt(b["expected_loss_rate_approved"])],
            ["loss the hold-out's labels give on the same book", f"{b['observed_loss_approved']:,.0f}"],
            ["expected loss of every applicant (no threshold)", f"{b['expected_loss_all_applicants']:,.0f}"]])]
    for name, levels in explain["segments"].items():
        rows = [[level, v["clients"], v["defaulters"], v["default_rate"], v["approval_rate"], v["auc"], v["gini"],
                 f"{v['expected_loss_approved']:,.0f}", "too small to judge" if v["too_small"] else ""]
                for level, v in sorted(levels.items(), key=lambda kv: level_key(kv[0]))]
        parts.append(f"By {SEGMENT_TITLES.get(name, name)} (a segment with fewer than "
                     f"{params.portfolio.segment_min_defaults} defaulters or good clients is too small to judge):\n\n"
                     + _table(["segment", "clients", "defaulters", "default rate", "approval rate", "AUC", "Gini",
                               "expected loss (approved)", ""], rows))
    return "\n\n".join(parts)


def _registry(register: dict, params: Params) -> str:
    gates = register["gates"]
    rows = [[name, _fmt(g["value"]), f"≥ {g['min']}" if "min" in g else f"≤ {g['max']}", "pass" if g["passed"]
             else "**fail**"] for name, g in sorted(gates.items())]
    comparison = register.get("comparison")
    compared = (f" Against the champion on the same hold-out: its cost per client {_fmt(comparison['champion_cost_per_client'])}, "
                f"this model's {_fmt(comparison['cost_per_client'])} (saving {_fmt(comparison['saving'], 5)}, margin "
                f"{comparison['margin']})." if comparison else "")
    return (f"This model is `{register['registered_model']}` version {register['version']} in MLflow, with the alias "
            f"**`{register['alias']}`**: {register['reason']}.{compared} The gates (`params.yaml: register`; the "
            f"fairness gap is the largest equalised-odds difference over "
            f"{', '.join(params.register_.gates.fairness_attributes)}):\n\n"
            + _table(["gate", "value", "limit", "result"], rows))


def render_model_card(params: Params, metrics: dict, figures_dir: Path, card_dir: Path) -> str:
    """Markdown model card; `metrics` maps a stage name to its metrics JSON (prepare ... register), and
    `scorecard_table` to the rows of the challenger's card."""
    prepare, engineer, probe = metrics["prepare"], metrics["engineer"], metrics["probe"]
    train, threshold, explain = metrics["train"], metrics["threshold"], metrics["explain"]
    fig = Path(os.path.relpath(figures_dir, card_dir)).as_posix()
    data = params.data
    split = prepare["split"]
    source = ("synthetic data from the embedded generator (Kaggle format; `data.n_clients` = "
              f"{data.n_clients}, drift knob {data.drift})" if prepare["source"] == "synthetic"
              else f"the Kaggle Home Credit Default Risk files in `{data.raw_dir}`")
    candidates = sorted(train["candidates"].items(), key=lambda kv: (-(kv[1]["auc"] or 0), kv[0]))
    cand_rows = [[name, v["auc"], v["cost_per_client"], v["recall"], v["precision"], v["fbeta"]]
                 for name, v in candidates]
    top = explain["global"][:10]
    local_rows = [[r["client"], r["kind"], r["proba"], r["decision"], r["agreement"], "; ".join(r["reasons"][:2])]
                  for r in explain["local"]]
    cost = params.cost
    sections = [
        "# Model card: probability of default for Prêt à dépenser",
        "_Generated by the `register` stage from `params.yaml` and `metrics/*.json` at every `dvc repro`; "
        "do not edit by hand._",
        "## Data",
        f"Source: {source}. Labelled clients: {split['application_train']['clients']} for training "
        f"(default rate {_fmt(split['application_train'].get('target_rate'))}) and "
        f"{split['application_holdout']['clients']} kept apart as a hold-out (stratified, share "
        f"{data.holdout_size}); {split['application_test']['clients']} unlabelled application_test clients are scored. "
        f"The `prepare` stage validates every table against the Kaggle schema, turns the 365243 sentinel and XNA "
        f"into missing values and drops orphan history rows.",
        "## Features and selection",
        f"The `engineer` stage builds {engineer['n_features']} features from the application row and the six "
        f"history tables (groups: {', '.join(f'{g} {n}' for g, n in engineer['features_per_group'].items())}). "
        + (f"No feature reads the protected field(s) {', '.join(f'`{c}`' for c in params.protected)} "
           "(`params.yaml: protected`): the selection, the models and this card never see them; the fairness "
           "checks below read them from the raw application. " if params.protected else "")
        + f"Probe feature selection (random probes, {probe['runs']} LightGBM runs on training folds, rule "
        f"`{probe['rule']}`) keeps {probe['n_features_probe']} of {probe['n_features_in']}. A selection is only served "
        f"when it costs at most {probe['tolerance']} AUC out of sample against the best candidate set: the whole "
        f"procedure was repeated on the training part of {probe['validation_folds']} outer folds and scored on the fold it never saw "
        f"(AUC {_fmt(probe['oos_auc']['probe'])} with the probe selection, {_fmt(probe['oos_auc']['used'])} with the "
        f"{probe['n_features_used']} features that earned gain, {_fmt(probe['oos_auc']['all'])} with all). "
        f"The model is trained on the **{probe['served_set']}** set: {probe['n_features_kept']} features.",
        "## Training methodology",
        f"Every candidate (model × imbalance strategy) is scored with the same {params.train.folds}-fold "
        f"stratified cross-validation on every training client (a stratified sample only above "
        f"{params.train.benchmark_sample} clients); imputation, scaling and resampling sit inside an "
        "imbalanced-learn pipeline, so they only ever see training folds. LightGBM's number of trees comes from "
        f"early stopping inside the cross-validation (patience {params.train.early_stopping_rounds} trees; the "
        "count of best mean validation AUC over the folds), and a seeded random search tries "
        f"{params.train.search_budget} more configurations. **No candidate is picked by a figure.** Every "
        "LightGBM and logistic regression candidate enters the served ensemble at a weight learned on its out-of-fold "
        "predictions; one that adds nothing gets 0. The served model is the ensemble of the very fold models that "
        f"scored the {train['clients']['train']} training clients out of fold: its calibration and threshold are "
        "learned on those out-of-fold predictions, it scores the hold-out once, and it is not refitted afterwards, "
        "so every hold-out figure below is the served model's own.",
        f"**Imbalance treatment.** The default rate is about 8%. Candidates compare no treatment, class weights, "
        f"random undersampling and SMOTE; the served model is `{train['model']}`." + _ensemble(train)
        + f" A rule taking the candidate of least cost at its own threshold would have served "
        f"`{train['least_cost_candidate']['name']}` (out-of-fold AUC {_fmt(train['least_cost_candidate']['auc'])}): "
        "between candidates this close that cost is noise.",
        "**Benchmark of every candidate** (a report, not the selector; cross-validated; cost per client at each "
        "candidate's own best threshold):",
        _table(["candidate", "AUC", "cost/client", "recall", "precision", f"F{params.train.fbeta}"], cand_rows),
        "## Cost function and threshold",
        f"A granted defaulter costs {cost.fn_cost}, a refused good client costs {cost.fp_cost}. Scores are "
        f"calibrated ({threshold['calibration']}) on out-of-fold predictions of the training clients, and the "
        "threshold minimising the total cost on those same out-of-fold predictions is chosen; the hold-out is only "
        "reported on.",
        _table(["metric", "value"], [
            ["served model", train["model"]], ["features", train["n_features"]], ["CV AUC", train["cv_auc"]],
            ["hold-out AUC", train["holdout_auc"]],
            ["hold-out AUC, 95% interval", f"{train['holdout_auc_interval']['low']} to "
                                           f"{train['holdout_auc_interval']['high']}"], ["threshold (calibrated P(default))", threshold["threshold"]],
            ["hold-out cost per client", threshold["holdout_cost_per_client"]],
            ["cost vs accepting everyone", threshold["holdout_cost_vs_accept_all"]],
            ["cost vs refusing everyone", threshold["holdout_cost_vs_refuse_all"]],
            ["approval rate", threshold["approval_rate"]], ["recall of defaulters", threshold["holdout_recall"]],
            ["precision", threshold["holdout_precision"]]]),
        _bases(threshold),
        "## Calibration",
        f"Hold-out Brier score {_fmt(threshold['holdout_brier_raw'], 5)} before and "
        f"{_fmt(threshold['holdout_brier_calibrated'], 5)} after {threshold['calibration']} calibration, expected "
        f"calibration error {_fmt(threshold['holdout_ece_raw'], 5)} before and "
        f"{_fmt(threshold['holdout_ece_calibrated'], 5)} after (`plots/threshold/reliability.json`; `dvc plots "
        f"show`). Every probability of default is kept within [{threshold['pd_bounds']['floor']}, "
        f"{threshold['pd_bounds']['ceiling']}] (`threshold.pd_floor`, `threshold.pd_ceiling`): no applicant is "
        "scored certain to repay or to default.",
        "## Validation figures",
        _validation(threshold),
        _uncertainty(train, threshold),
        "## The points scorecard challenger",
        _scorecard(params, train, threshold, metrics.get("scorecard_table", [])),
        "## Global interpretability",
        f"Method: {explain['method']}; contributions plus the base value equal the model score (largest error "
        f"{explain['additivity_max_error']}), and they match the `shap` library to {explain['shap_library_max_abs_diff']}. "
        f"Beside them, the model's own importance ({explain['native_importance']}).",
        _table(["rank", "feature", "meaning", "mean abs SHAP"],
               [[i + 1, f"`{r['feature']}`", r["label"], r["mean_abs_shap"]] for i, r in enumerate(top)]),
        f"![Mean absolute SHAP per feature on the hold-out]({fig}/shap_bar.png)\n\n"
        f"![SHAP beeswarm: each dot is a hold-out client]({fig}/shap_beeswarm.png)\n\n"
        f"![Mean absolute SHAP beside the model's own importance]({fig}/importance.png)",
        "## Local interpretability",
        f"Hold-out clients chosen by `explain.clients`, explained by SHAP (waterfall figures) and by seeded LIME "
        f"(top-{params.explain.top_k} agreement below; mean {_fmt(explain['mean_agreement'])}). Reasons are "
        "given by source field (a derived feature is attributed to the fields it is built from), in human units: "
        "a refusal's 4 main reasons, a grant's 4 main strengths, with the value of a typical granted client; the "
        "API and the dashboard use the same function.",
        _table(["client", "chosen as", "P(default)", "decision", "SHAP/LIME agreement", "first reasons"], local_rows),
        "\n".join(f"- client {r['client']}: [SHAP waterfall]({fig}/waterfall_{r['client']}.png), "
                  f"[LIME]({fig}/lime_{r['client']}.png)" for r in explain["local"]),
        "## Fairness (hold-out, at the chosen threshold)",
        _fairness("gender (CODE_GENDER)", explain["fairness"]["gender"]),
        _fairness("age band", explain["fairness"]["age_band"]),
        _older(explain["fairness"].get("older_applicants"), dict(params.train.monotone)),
        "## Expected loss and segments (hold-out, at the chosen threshold)",
        _money(explain, params),
        "## Stability and performance after the decision",
        _monitoring(metrics.get("drift"), metrics.get("performance")),
        "## Registry",
        _registry(metrics["register"], params) if "register" in metrics else "Not registered in this run.",
        "## Limits and possible improvements",
        "- " + "\n- ".join([
            "The synthetic population's risk is a sum of non-linear single-feature shapes fitted to real default "
            "rates, so models rank on it as on real rows (LightGBM ahead of logistic regression); the figures of a "
            "synthetic run are still not those of real clients. Read the benchmark table of your own run.",
            "The served model never sees the hold-out clients: they measure it, and it does not learn from them "
            "(about a fifth of the labelled clients). A lender with few labels can lower `data.holdout_size`.",
            ("Age is an input (one of the strongest predictors) and other inputs may proxy a protected field; the "
             "gaps above should be reviewed against the lender's legal obligations before use."
             if params.protected else "Gender and age are inputs or proxies (age is one of the strongest "
             "predictors); the gaps above should be reviewed against the lender's legal obligations before use."),
            "The cost matrix (10:1) is a business assumption; the threshold moves with it (`params.yaml: cost`).",
            "Explanations describe the model, not causes: a reason code says what moved the score, not what the "
            "client should change.",
            "The scorecard challenger bins the project's features, derived ones included (products of the external "
            "scores and age): its card is exact but less readable than one built on raw fields only.",
            "Improvements: monotone constraints on the business ratios, stronger history features on the real "
            "data, calibration monitored per month, and drift checks on new applications (`drift` stage)."]),
    ]
    return "\n\n".join(sections) + "\n"
