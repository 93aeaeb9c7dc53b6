"""Candidate models and imbalance strategies, each one imblearn Pipeline so samplers only touch training folds."""
from __future__ import annotations

import lightgbm as lgb
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

MODELS = ("dummy", "logistic_regression", "random_forest", "lightgbm")
STRATEGIES = ("none", "class_weight", "undersample", "smote")


def _estimator(model: str, strategy: str, seed: int, params: dict):
    weight = "balanced" if strategy == "class_weight" else None
    if model == "dummy":
        return DummyClassifier(strategy="prior")
    if model == "logistic_regression":
        return LogisticRegression(C=float(params.get("C", 0.1)), max_iter=2000, class_weight=weight)
    if model == "random_forest":
        return RandomForestClassifier(n_estimators=int(params.get("n_estimators", 200)),
                                      min_samples_leaf=int(params.get("min_samples_leaf", 20)),
                                      max_features="sqrt", n_jobs=int(params.get("n_jobs", 2)), random_state=seed,
                                      class_weight=weight)
    if model == "lightgbm":
        return lgb.LGBMClassifier(**{"n_jobs": 2, **params, "random_state": seed, "class_weight": weight, "verbose": -1})
    raise ValueError(f"params.yaml: unknown model {model!r}; expected one of {MODELS}")


def make_pipeline(model: str, strategy: str, seed: int, params: dict | None = None) -> Pipeline:
    """Imputation/scaling where the model needs it, the sampler, then the model, in one pipeline.

    LightGBM and the forest take missing values as they are; SMOTE interpolates between rows, so it
    needs them imputed first. Samplers act during fit only, never at prediction time.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"params.yaml: unknown imbalance strategy {strategy!r}; expected one of {STRATEGIES}")
    steps = []
    if model == "logistic_regression" or strategy == "smote":
        steps.append(("impute", SimpleImputer(strategy="median", keep_empty_features=True)))
    if model == "logistic_regression":
        steps.append(("scale", StandardScaler()))
    if strategy == "undersample":
        steps.append(("sampler", RandomUnderSampler(random_state=seed)))
    elif strategy == "smote":
        steps.append(("sampler", SMOTE(random_state=seed, k_neighbors=5)))
    steps.append(("model", _estimator(model, strategy, seed, params or {})))
    return Pipeline(steps)
