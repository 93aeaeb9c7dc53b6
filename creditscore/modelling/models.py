"""Candidate models and imbalance strategies, each one imblearn Pipeline so samplers only touch training folds."""
from __future__ import annotations

import lightgbm as lgb
import numpy as np
from imblearn.over_sampling import SMOTE
from imblearn.pipeline import Pipeline
from imblearn.under_sampling import RandomUnderSampler
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.dummy import DummyClassifier
from sklearn.ensemble import RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from creditscore.modelling.scorecard import PointsScorecard
from creditscore.params import MODELS, STRATEGIES  # noqa: E402  ("blend" is built from two of the models)


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
    if model == "blend":
        return Pipeline([("model", LogitBlend(**(params or {}), random_state=seed))])
    if model == "scorecard":  # bins and weights of evidence handle missing values and scale; no sampler
        if strategy != "none":
            raise ValueError(f"params.yaml: the scorecard takes the imbalance strategy 'none', not {strategy!r}")
        return Pipeline([("model", PointsScorecard(**(params or {}), random_state=seed))])
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


def model_kind(pipeline) -> str:
    """lightgbm | logistic_regression | random_forest | dummy | blend | scorecard, from the pipeline's last step."""
    name = type(pipeline.steps[-1][1]).__name__
    return {"LGBMClassifier": "lightgbm", "LogisticRegression": "logistic_regression",
            "RandomForestClassifier": "random_forest", "DummyClassifier": "dummy", "LogitBlend": "blend",
            "PointsScorecard": "scorecard"}[name]


def members(pipeline) -> list[tuple[object, float]]:
    """A blend's member pipelines with their weights in the log-odds sum."""
    model = pipeline.steps[-1][1]
    return list(zip(model.members_, model.member_weights_))


def logit(proba: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1 - 1e-15)
    return np.log(p / (1 - p))


class LogitBlend(ClassifierMixin, BaseEstimator):
    """A seed bag of LightGBM pipelines averaged with a logistic regression pipeline, in log-odds.

    score = (1 - weight) * mean over `seeds` LightGBM fits (random_state, random_state + 1, ...) of their
    log-odds + weight * the logistic regression's log-odds. Every member is an ordinary pipeline of
    `make_pipeline`, so samplers, imputation and scaling stay inside it and see training rows only. The
    contributions of a blend are the same weighted sum of its members' (`creditscore.explanation.contributions`), so they still
    add up to the score exactly. The weight is chosen on out-of-fold predictions (`training.blend`).
    """

    def __init__(self, lightgbm_strategy: str = "none", lightgbm: dict | None = None, seeds: int = 5,
                 linear_strategy: str = "none", linear: dict | None = None, weight: float = 0.0,
                 random_state: int = 0):
        self.lightgbm_strategy = lightgbm_strategy
        self.lightgbm = lightgbm
        self.seeds = seeds
        self.linear_strategy = linear_strategy
        self.linear = linear
        self.weight = weight
        self.random_state = random_state

    def fit(self, x, y, fit_lightgbm=None):
        """`fit_lightgbm(pipeline, x, y)` fits each LightGBM seed (default: its own fit; on a cluster:
        `creditscore.modelling.distributed.fit`)."""
        if not 0.0 <= float(self.weight) < 1.0 or int(self.seeds) < 1:
            raise ValueError(f"blend: weight must be in [0, 1) and seeds >= 1, got {self.weight} and {self.seeds}")
        fit_lightgbm = fit_lightgbm or (lambda pipeline, rows, labels: pipeline.fit(rows, labels))
        self.members_ = [fit_lightgbm(make_pipeline("lightgbm", self.lightgbm_strategy, int(self.random_state) + i,
                                                    self.lightgbm), x, y) for i in range(int(self.seeds))]
        self.member_weights_ = [(1.0 - float(self.weight)) / int(self.seeds)] * int(self.seeds)
        if float(self.weight) > 0:
            self.members_.append(make_pipeline("logistic_regression", self.linear_strategy, int(self.random_state),
                                               self.linear).fit(x, y))
            self.member_weights_.append(float(self.weight))
        self.classes_ = np.array([0, 1])
        return self

    def decision_function(self, x) -> np.ndarray:
        return sum(w * logit(m.predict_proba(x)[:, 1]) for m, w in zip(self.members_, self.member_weights_))

    def predict_proba(self, x) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(x)))
        return np.column_stack([1 - p, p])

    def predict(self, x) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(int)


def describe(result: dict) -> str:
    """A candidate's name in logs and metrics: model+strategy, or what a blend is made of."""
    if result["model"] != "blend":
        return f"{result['model']}+{result['strategy']}"
    p = result["params"]
    linear = f" + {p['weight']:g} x logistic_regression+{p['linear_strategy']}" if p["weight"] > 0 else ""
    return f"blend({1 - p['weight']:g} x lightgbm+{p['lightgbm_strategy']} x {p['seeds']} seeds{linear})"


def n_trees(result: dict) -> int | None:
    """The tree count of a LightGBM candidate or of a blend's LightGBM; None for the other models."""
    if result["model"] == "lightgbm":
        return int(result["params"]["n_estimators"])
    if result["model"] == "blend":
        return int(result["params"]["lightgbm"]["n_estimators"])
    return None
