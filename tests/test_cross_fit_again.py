"""Above the benchmark sample: the served ensemble's members cross-fitted again on every training client
(`stages.train.cross_fit_again`), the cap's restack and the members kept from the sample."""
from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from creditscore.config import load_params
from creditscore.params import overridden
from tests.test_modelling import COST, _weak_signal


def _sample_results(x: np.ndarray, names: list[str], settings: list[dict]) -> dict:
    """Benchmark results on the sample (every second client) with hand-made out-of-fold predictions: the first
    LightGBM candidate sees the true signal, the second only noise, the logistic regression the linear part."""
    rows = x[::2]
    noise = np.random.default_rng(7).normal(size=len(rows))
    logits = {names[0]: -2.2 + 0.8 * rows[:, 0] - 0.5 * rows[:, 1] ** 2, names[1]: -2.2 + noise,
              names[2]: -2.2 + 0.8 * rows[:, 0]}
    return {n: {"model": n.split("+")[0], "strategy": "none", "params": s, "oof": 1 / (1 + np.exp(-logits[n]))}
            for n, s in zip(names, settings)}


def test_the_cap_chooses_by_the_log_loss_of_the_stack_not_by_the_weight():
    """Two near copies of a strong member split their weight, and a weaker member on a small scale gets the largest
    weight in the stack of all; alone beside the others it is the worst choice, and `capped_choice` does not make it.
    With a cap of 2 the second choice is made beside the first."""
    from creditscore.modelling.training import capped_choice, stack, stacked_log_loss

    rng = np.random.default_rng(0)
    n = 20000
    f, g, h = rng.normal(size=n), rng.normal(size=n), rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-1.5 + 1.2 * f + 0.6 * g + 0.3 * h)))).astype(np.int64)
    # a1 and a2: the strong signal, near copies; u: a weaker signal on a small scale (a large coefficient)
    logits = {"a1": 1.2 * f + 0.05 * rng.normal(size=n), "a2": 1.2 * f + 0.05 * rng.normal(size=n), "u": 0.1 * g,
              "lr": 0.3 * h}
    oofs = {k: 1 / (1 + np.exp(-(v - 1.5))) for k, v in logits.items()}
    weights = dict(zip(oofs, stack(np.column_stack(list(oofs.values())), y)))
    # the premise: among the LightGBM members, the weight ranks the correcting one first
    assert max(["a1", "a2", "u"], key=weights.get) == "u"
    alone = {k: stacked_log_loss(np.column_stack([oofs[k], oofs["lr"]]), y) for k in ("a1", "a2", "u")}
    assert alone["u"] > max(alone["a1"], alone["a2"])
    first = min(alone, key=alone.get)
    assert capped_choice(oofs, ["a1", "a2", "u"], ["lr"], y, 1, 1.0) == [first]
    # beside the first strong member, the correcting one adds more than the other near copy
    assert capped_choice(oofs, ["a1", "a2", "u"], ["lr"], y, 2, 1.0) == [first, "u"]
    assert capped_choice(oofs, ["a1"], ["lr"], y, 3, 1.0) == ["a1"]  # no more than the candidates


def test_the_stacked_log_loss_is_the_stacker_s_own_fit():
    """By hand: one member whose log-odds are the truth's, shifted; the stacker's intercept and scale undo the shift,
    so its log-loss is the truth's, and a constant member cannot do better than the base rate."""
    from creditscore.modelling.training import stacked_log_loss

    rng = np.random.default_rng(3)
    eta = rng.normal(size=50000)
    y = (rng.random(len(eta)) < 1 / (1 + np.exp(-eta))).astype(np.int64)
    truth = float(np.mean(np.logaddexp(0.0, eta) - y * eta))
    shifted = 1 / (1 + np.exp(-(eta + 2.0)))
    assert stacked_log_loss(shifted[:, None], y, l2=0.0) == pytest.approx(truth, abs=2e-4)
    rate = y.mean()
    base = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    assert stacked_log_loss(np.full((len(y), 1), 0.3), y, l2=0.0) == pytest.approx(base, abs=1e-9)


@pytest.mark.parametrize("cap", [None, 1])
def test_above_the_sample_the_members_are_cross_fitted_again_and_a_cap_restacks(cap):
    """Every member fitted again on every client keeps the sample's weights; a cap on the LightGBM members keeps
    the one chosen by `capped_choice` and stacks the members kept again, on every client's out-of-fold
    predictions."""
    from creditscore.modelling.models import logit
    from creditscore.modelling.training import evaluate, stack
    from stages.train import cross_fit_again

    x, y = _weak_signal(1500, 3)
    lightgbm = {"n_estimators": 200, "learning_rate": 0.1, "deterministic": True, "force_col_wise": True}
    params = overridden(load_params().train, {"folds": 3, "early_stopping_rounds": 10, "lightgbm": lightgbm,
                                              "ensemble": {"refit_lightgbm": cap, "min_weight": 0.0,
                                                           "refit_logistic_regression": True,
                                                           "refit_learning_rate": None}})
    settings = [{**lightgbm, "num_leaves": 3}, {**lightgbm, "num_leaves": 15}, {"C": 0.1}]
    names = ["lightgbm+none", "lightgbm+none+search0", "logistic_regression+none"]
    results = _sample_results(x, names, settings)
    served = {"params": {"members": names, "weights": [0.2, 0.5, 0.3], "settings": settings, "folds": 3},
              "fit_seconds": 1e6}
    out = cross_fit_again(served, results, x, y, np.arange(0, len(y), 2), params, COST, 0)
    # the cap keeps the member whose stack with the logistic regression predicts best on the sample, not the one of
    # highest weight (search0, whose out-of-fold predictions on the sample are noise)
    kept = names if cap is None else ["lightgbm+none", "logistic_regression+none"]
    assert out["params"]["members"] == kept and len(out["fold_models"]) == len(kept)
    oof = np.column_stack([evaluate(results[n]["model"], "none", settings[names.index(n)], x, y, params, COST, 0)["oof"]
                           for n in kept])
    weights = [0.2, 0.5, 0.3] if cap is None else [round(float(w), 6) for w in stack(oof, y, params.ensemble.l2)]
    assert out["params"]["weights"] == weights
    np.testing.assert_allclose(out["oof"], 1 / (1 + np.exp(-(logit(oof) @ np.asarray(weights)))), rtol=1e-9)
    assert out["auc"] == pytest.approx(roc_auc_score(y, out["oof"]))
    assert 0 < out["fit_seconds"] < 1e6  # the served members' fits, not the sample ensemble's (1e6 below)


def test_the_cap_can_choose_a_candidate_the_sample_s_stack_dropped_and_fits_it_at_its_own_settings():
    """The stack of all kept two weak LightGBM members and dropped the strong one; the cap's choice looks at every
    LightGBM candidate, takes the strong one, and cross-fits it again at its own settings (not a kept member's)."""
    from creditscore.modelling.training import evaluate
    from stages.train import cross_fit_again

    x, y = _weak_signal(1500, 3)
    lightgbm = {"n_estimators": 200, "learning_rate": 0.1, "deterministic": True, "force_col_wise": True}
    params = overridden(load_params().train, {"folds": 3, "early_stopping_rounds": 10, "lightgbm": lightgbm,
                                              "ensemble": {"refit_lightgbm": 1, "min_weight": 0.0,
                                                           "refit_logistic_regression": True,
                                                           "refit_learning_rate": None}})
    settings = [{**lightgbm, "num_leaves": 3}, {**lightgbm, "num_leaves": 15}, {"C": 0.1}]
    names = ["lightgbm+none", "lightgbm+none+search0", "logistic_regression+none"]
    results = _sample_results(x, names, settings)
    results["lightgbm+class_weight"] = {**results["lightgbm+none+search0"], "params": {**lightgbm, "num_leaves": 7},
                                        "oof": results["lightgbm+none+search0"]["oof"][::-1].copy()}
    stacked = ["lightgbm+class_weight", "lightgbm+none+search0", "logistic_regression+none"]
    served = {"params": {"members": stacked, "weights": [0.3, 0.4, 0.3], "folds": 3,
                         "settings": [results[n]["params"] for n in stacked]}}
    out = cross_fit_again(served, results, x, y, np.arange(0, len(y), 2), params, COST, 0)
    assert out["params"]["members"] == ["lightgbm+none", "logistic_regression+none"]
    assert out["params"]["settings"][0]["num_leaves"] == 3
    refit = evaluate("lightgbm", "none", settings[0], x, y, params, COST, 0)
    np.testing.assert_array_equal(out["fold_models"][0][0].predict_proba(x)[:, 1],
                                  refit["fold_models"][0].predict_proba(x)[:, 1])


def test_a_member_below_the_floor_after_the_restack_is_dropped_as_on_the_sample():
    """The cap's restack applies `train.ensemble.min_weight` too: a member it weighs below the floor is not served."""
    from creditscore.modelling.training import evaluate, stack
    from stages.train import cross_fit_again

    x, y = _weak_signal(1500, 3)
    lightgbm = {"n_estimators": 200, "learning_rate": 0.1, "deterministic": True, "force_col_wise": True}
    settings = [{**lightgbm, "num_leaves": 3}, {**lightgbm, "num_leaves": 15}, {"C": 0.1}]
    names = ["lightgbm+none", "lightgbm+none+search0", "logistic_regression+none"]
    results = _sample_results(x, names, settings)
    served = {"params": {"members": names, "weights": [0.2, 0.5, 0.3], "settings": settings, "folds": 3}}
    base = overridden(load_params().train, {"folds": 3, "early_stopping_rounds": 10, "lightgbm": lightgbm,
                                            "ensemble": {"refit_lightgbm": 1, "refit_logistic_regression": True,
                                                         "refit_learning_rate": None}})
    kept = ["lightgbm+none", "logistic_regression+none"]
    oof = np.column_stack([evaluate(results[n]["model"], "none", settings[names.index(n)], x, y, base, COST, 0)["oof"]
                           for n in kept])
    restacked = stack(oof, y, base.ensemble.l2)
    floor = float(restacked.min()) + 1e-3  # just above the smaller weight: that member must go
    params = overridden(base, {"ensemble": {"min_weight": floor}})
    out = cross_fit_again(served, results, x, y, np.arange(0, len(y), 2), params, COST, 0)
    survivor = kept[int(np.argmax(restacked))]
    assert out["params"]["members"] == [survivor] and out["params"]["weights"] == [1.0]
    assert len(out["fold_models"]) == 1 and list(out["stacked"]) == [survivor]
    np.testing.assert_allclose(out["oof"], oof[:, kept.index(survivor)], rtol=1e-9)


def test_logistic_regression_members_kept_from_the_sample_are_scored_out_of_fold_on_every_client():
    """refit_logistic_regression false: the member keeps the sample's fold models; a client of the sample keeps its
    out-of-fold prediction, every other client gets the mean log-odds of the fold models (none of which saw it), as
    the served ensemble scores it. LightGBM members are still fitted again on every client, at
    `refit_learning_rate`."""
    from creditscore.modelling.models import CrossFitEnsemble, logit
    from creditscore.modelling.training import evaluate
    from stages.train import cross_fit_again

    x, y = _weak_signal(1500, 3)
    sample = np.sort(np.random.default_rng(1).choice(len(y), 600, replace=False))
    lightgbm = {"n_estimators": 200, "learning_rate": 0.1, "deterministic": True, "force_col_wise": True}
    params = overridden(load_params().train, {"folds": 3, "early_stopping_rounds": 10, "lightgbm": lightgbm,
                                              "ensemble": {"refit_lightgbm": None, "min_weight": 0.0,
                                                           "refit_logistic_regression": False,
                                                           "refit_learning_rate": 0.05}})
    names = ["lightgbm+none", "logistic_regression+none"]
    settings = [{**lightgbm, "num_leaves": 7}, {"C": 0.1}]
    results = {n: evaluate(n.split("+")[0], "none", s, x[sample], y[sample], params, COST, 0)
               for n, s in zip(names, settings)}
    served = {"params": {"members": names, "weights": [0.6, 0.4], "settings": [results[n]["params"] for n in names],
                         "folds": 3}}
    out = cross_fit_again(served, results, x, y, sample, params, COST, 0)
    linear = results["logistic_regression+none"]
    assert out["fold_models"][1] is linear["fold_models"]  # not fitted again
    assert len(out["fold_models"][0]) == 3 and all(a is not b for a, b in zip(out["fold_models"][0],
                                                                             results["lightgbm+none"]["fold_models"]))
    rest = np.setdiff1d(np.arange(len(y)), sample)
    member = CrossFitEnsemble([linear["fold_models"]], [1.0])
    expected = np.empty(len(y))
    expected[sample], expected[rest] = linear["oof"], member.predict_proba(x[rest])[:, 1]
    again = {**results["lightgbm+none"]["params"], "n_estimators": 200, "learning_rate": 0.05}
    assert out["params"]["settings"][0]["learning_rate"] == 0.05  # the refit's rate, not the sample's 0.1
    refit = evaluate("lightgbm", "none", again, x, y, params, COST, 0)["oof"]
    z = 0.6 * logit(refit) + 0.4 * logit(expected)
    np.testing.assert_allclose(out["oof"], 1 / (1 + np.exp(-z)), rtol=1e-9)
    assert out["stacked"]["logistic_regression+none"]["auc"] == round(roc_auc_score(y, expected), 5)


@pytest.mark.parametrize("benchmark_sample,refit_rate", [(600, None), (600, 0.05), (5000, None)])
def test_the_sample_s_learning_rate_chooses_and_the_served_member_learns_at_the_configured_one(benchmark_sample,
                                                                                               refit_rate):
    """`sample_learning_rate`: above the sample its LightGBM candidates (the search's too) learn at that rate, and
    the member cross-fitted again on every client at `refit_learning_rate`, else at `train.lightgbm`'s; with every
    client in the benchmark (no sample) it has no effect."""
    from creditscore.modelling.models import model_kind
    from creditscore.modelling.training import evaluate, model_settings
    from stages.train import choose_model

    x, y = _weak_signal(1500, 3)
    lightgbm = {"n_estimators": 200, "learning_rate": 0.1, "deterministic": True, "force_col_wise": True}
    params = overridden(load_params().train, {
        "folds": 3, "early_stopping_rounds": 10, "lightgbm": lightgbm, "benchmark_sample": benchmark_sample,
        "models": ["logistic_regression", "lightgbm", "scorecard"], "strategies": ["none"], "search_budget": 1,
        "ensemble": {"refit_lightgbm": 1, "min_weight": 0.0, "refit_logistic_regression": False,
                     "refit_learning_rate": refit_rate, "sample_learning_rate": 0.3}})
    results, served, sample = choose_model(x, y, params, model_settings(params), COST, 0, lambda *a: None)
    sampled = len(sample) < len(y)
    assert sampled == (benchmark_sample < len(y))
    for name in ("lightgbm+none", "lightgbm+none+search0"):
        assert results[name]["params"]["learning_rate"] == (0.3 if sampled else 0.1)
    boosted = [i for i, n in enumerate(served["params"]["members"]) if n.startswith("lightgbm")]
    served_rate = 0.1 if refit_rate is None or not sampled else refit_rate
    assert all(served["params"]["settings"][i]["learning_rate"] == served_rate for i in boosted)
    if sampled:  # one member fitted again on every client at the configured rate: `evaluate` at those settings
        assert len(boosted) == 1
        member = served["params"]["settings"][boosted[0]]
        again = evaluate("lightgbm", "none", {**member, "n_estimators": 200}, x, y, params, COST, 0)
        assert again["params"]["n_estimators"] == member["n_estimators"]
        np.testing.assert_allclose(served["stacked"][served["params"]["members"][boosted[0]]]["auc"],
                                   round(roc_auc_score(y, again["oof"]), 5))
        fold_model = served["fold_models"][boosted[0]][0]
        assert model_kind(fold_model) == "lightgbm"
        assert fold_model.steps[-1][1].get_params()["learning_rate"] == served_rate
