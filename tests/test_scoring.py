"""The API's fast scorer gives the fitted pipeline's probabilities for every kind of model and strategy."""
from __future__ import annotations

import numpy as np
import pytest
from imblearn.pipeline import Pipeline

from creditscore.modelling.models import CrossFitEnsemble, make_pipeline
from creditscore.serving.scoring import Scorer


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 6)) * [1, 10, 100, 1, 1, 1000]
    x[rng.random(x.shape) < 0.15] = np.nan
    x[:, 5] = np.nan  # a feature never observed in training
    y = (np.nan_to_num(x[:, 0]) + rng.normal(size=500) > 1.2).astype(int)
    return x, y


@pytest.mark.parametrize("model,strategy", [("lightgbm", "none"), ("lightgbm", "smote"),
                                            ("logistic_regression", "none"), ("logistic_regression", "undersample"),
                                            ("random_forest", "class_weight"), ("dummy", "none"),
                                            ("ensemble", "none")])
def test_scorer_equals_pipeline_predict_proba(data, model, strategy):
    x, y = data
    params = {"n_estimators": 20, "min_child_samples": 5} if model == "lightgbm" else {}
    if model == "ensemble":  # two LightGBM fold models (undersampled) and a logistic regression, in log-odds
        trees = {"n_estimators": 20, "min_child_samples": 5, "colsample_bytree": 0.5}
        folds = [make_pipeline("lightgbm", "undersample", s, trees).fit(x[s::2], y[s::2]) for s in (0, 1)]
        linear = [make_pipeline("logistic_regression", "none", 0, {"C": 1.0}).fit(x, y)]
        pipe = Pipeline([("model", CrossFitEnsemble([folds, linear], [0.7, 0.3]))])
    else:
        pipe = make_pipeline(model, strategy, 0, params).fit(x, y)
    expected = pipe.predict_proba(x)[:, 1]
    scorer = Scorer(pipe)
    np.testing.assert_allclose(scorer.proba(x), expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(scorer.proba(x[7]), expected[7:8], rtol=1e-12, atol=1e-12)  # one row
