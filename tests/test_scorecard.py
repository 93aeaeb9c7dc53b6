"""The points scorecard challenger on hand-built clients whose bins, weights of evidence and points are known."""
from __future__ import annotations

import math

import numpy as np
import pytest

from creditscore.decision.points import points_of
from creditscore.explanation.contributions import contributions
from creditscore.explanation.figures import native_importance, shap_library_check
from creditscore.modelling.models import make_pipeline, model_kind
from creditscore.modelling.training import candidates

SCALE = {"base_points": 600.0, "base_odds": 50.0, "pdo": 20.0}


def _clients() -> tuple[np.ndarray, np.ndarray]:
    """2,000 clients: `STEP` (0.1, 0.5 or 0.9) has three segments of exact default rates 1/4, 1/10 and 1/25 (600, 800 and 600
    clients); `NOISE` alternates 0 and 1 in blocks of 60 clients, which hold the same share of defaulters, so it
    carries (almost) no information."""
    step = np.repeat([0.1, 0.5, 0.9], [600, 800, 600])
    y = np.zeros(2000, dtype=int)
    y[0:600:4] = 1        # 150 defaults among 600
    y[600:1400:10] = 1    # 80 among 800
    y[1400:2000:25] = 1   # 24 among 600
    noise = ((np.arange(2000) // 60) % 2).astype(float)
    return np.column_stack([step, noise]), y


def _card(**params):
    x, y = _clients()
    settings = {"feature_names": ["STEP", "NOISE"], "max_features": 5, "min_iv": 0.02, "max_n_prebins": 20,
                "min_bin_size": 0.05, "C": 1e6, "trends": {"default": "auto_asc_desc", "STEP": "descending"},
                **SCALE, **params}
    return make_pipeline("scorecard", "none", 0, settings).fit(x, y), x, y


def test_points_follow_the_pdo_scaling_exactly():
    assert points_of([1 / 51], **SCALE)[0] == pytest.approx(600.0)       # odds 50:1 -> the base points
    assert points_of([1 / 101], **SCALE)[0] == pytest.approx(620.0)      # twice the odds -> + pdo
    assert points_of([1 / 26], **SCALE)[0] == pytest.approx(580.0)       # half the odds -> - pdo
    assert points_of([0.0], **SCALE)[0] == pytest.approx(600 + 20 * math.log2((1 - 1e-6) / 1e-6 / 50))


def test_the_card_finds_the_three_segments_with_their_weights_of_evidence():
    pipeline, x, y = _card()
    card = pipeline.steps[-1][1]
    assert model_kind(pipeline) == "scorecard" and card.selected_ == ["STEP"]
    table = card.table()
    step = table[table["feature"] == "STEP"]
    assert step["clients"].tolist() == [600, 800, 600]
    assert step["defaults"].tolist() == [150, 80, 24]
    # WoE = ln(good/bad in the bin x bad/good overall), overall 254 defaults and 1,746 good clients
    expected = [math.log(450 / 150 * 254 / 1746), math.log(720 / 80 * 254 / 1746), math.log(576 / 24 * 254 / 1746)]
    assert step["woe"].tolist() == pytest.approx(expected, abs=1e-6)
    assert step["points"].is_monotonic_increasing  # a safer bin earns more points
    ranking = card.information_values()
    assert ranking["feature"].tolist()[0] == "STEP" and ranking["selected"].tolist() == [True, False]


def test_points_add_up_to_the_score_and_the_score_is_the_scaled_probability():
    pipeline, x, _ = _card()
    card = pipeline.steps[-1][1]
    per_feature = card.points(x)
    assert list(per_feature.columns) == ["STEP"]
    proba = pipeline.predict_proba(x)[:, 1]
    np.testing.assert_allclose(card.score(x), points_of(proba, **SCALE), atol=1e-9)
    # three segments, three probabilities, close to the segments' default rates (C is large: no shrinkage)
    np.testing.assert_allclose(np.unique(proba.round(6))[::-1], [0.25, 0.1, 0.04], atol=1e-4)


def test_contributions_are_exact_and_agree_with_the_shap_library():
    pipeline, x, _ = _card()
    c = contributions(pipeline, x)
    card = pipeline.steps[-1][1]
    np.testing.assert_allclose(c.score, card.decision_function(x), atol=1e-12)
    assert np.all(c.values[:, 1] == 0)                      # NOISE is not on the card: it explains nothing
    assert abs(c.values[:, 0].mean()) < 1e-12               # centred on the clients it was fitted on
    assert shap_library_check(pipeline, x[:50], x) < 1e-9
    name, importance = native_importance(pipeline, 2)
    assert name == "information_value" and importance[1] == 0 and importance[0] > 0.1


def test_missing_values_get_their_own_bin():
    x, y = _clients()
    x[::5, 0] = np.nan  # 400 clients without a value, 50 of them defaulters (every 5th row of each segment)
    card = make_pipeline("scorecard", "none", 0, {"feature_names": ["STEP", "NOISE"], **SCALE}).fit(x, y).steps[-1][1]
    table = card.table()
    missing = table[(table["feature"] == "STEP") & (table["bin"] == "Missing")]
    assert missing["clients"].tolist() == [400] and missing["defaults"].tolist() == [int(y[::5].sum())]
    assert np.isfinite(card.score(np.array([[np.nan, 3.0]])))[0]


def test_the_scorecard_takes_no_sampler_and_no_feature_without_information():
    assert [c for c in candidates(["scorecard", "lightgbm"], ["none", "undersample"]) if c[0] == "scorecard"] == [
        ("scorecard", "none")]
    with pytest.raises(ValueError, match="imbalance strategy 'none'"):
        make_pipeline("scorecard", "undersample", 0, {})
    x, y = _clients()
    with pytest.raises(ValueError, match="no feature has an information value of at least 5"):
        make_pipeline("scorecard", "none", 0, {"min_iv": 5.0}).fit(x, y)
    with pytest.raises(ValueError, match="unknown monotonic trend"):
        make_pipeline("scorecard", "none", 0, {"trends": {"default": "upwards"}}).fit(x, y)


def test_a_column_without_values_is_left_out_not_fatal():
    """On real rows without a history table its aggregates are all missing: optbinning cannot bin them."""
    x, y = _clients()
    x = np.column_stack([x, np.full(len(y), np.nan), np.full(len(y), 3.0)])
    card = make_pipeline("scorecard", "none", 0, {"feature_names": ["STEP", "NOISE", "EMPTY", "CONSTANT"],
                                                   **SCALE}).fit(x, y).steps[-1][1]
    assert card.selected_ == ["STEP"]
    ranking = card.information_values()
    assert ranking.set_index("feature").loc[["EMPTY", "CONSTANT"], "iv"].tolist() == [0.0, 0.0]
    np.testing.assert_allclose(card.score(x), points_of(card.predict_proba(x)[:, 1], **SCALE), atol=1e-9)
