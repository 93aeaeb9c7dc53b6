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

from creditscore.errors import ParamsError
from creditscore.modelling.scorecard import PointsScorecard
from creditscore.params import MODELS, STRATEGIES

# The model kinds the ensemble is built from: what requirements-serving.txt scores and explains (the forest's
# contributions need `shap`, the scorecard `optbinning`; neither is installed on the web host).
SERVABLE = ("lightgbm", "logistic_regression")


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
    raise ParamsError(f"params.yaml: unknown model {model!r}; expected one of {MODELS}")


def make_pipeline(model: str, strategy: str, seed: int, params: dict | None = None) -> Pipeline:
    """Imputation/scaling where the model needs it, the sampler, then the model, in one pipeline.

    LightGBM and the forest take missing values as they are; SMOTE interpolates between rows, so it
    needs them imputed first. Samplers act during fit only, never at prediction time.
    """
    if model == "scorecard":  # bins and weights of evidence handle missing values and scale; no sampler
        if strategy != "none":
            raise ParamsError(f"params.yaml: the scorecard takes the imbalance strategy 'none', not {strategy!r}")
        return Pipeline([("model", PointsScorecard(**(params or {}), random_state=seed))])
    if strategy not in STRATEGIES:
        raise ParamsError(f"params.yaml: unknown imbalance strategy {strategy!r}; expected one of {STRATEGIES}")
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
    """lightgbm | logistic_regression | random_forest | dummy | ensemble | scorecard, from the pipeline's last step."""
    name = type(pipeline.steps[-1][1]).__name__
    return {"LGBMClassifier": "lightgbm", "LogisticRegression": "logistic_regression",
            "RandomForestClassifier": "random_forest", "DummyClassifier": "dummy", "CrossFitEnsemble": "ensemble",
            "PointsScorecard": "scorecard"}[name]


def members(pipeline) -> list[tuple[object, float]]:
    """The ensemble's fold pipelines with their weights in the log-odds sum."""
    model = pipeline.steps[-1][1]
    return list(zip(model.members_, model.member_weights_))


def logit(proba: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(proba, dtype=np.float64), 1e-15, 1 - 1e-15)
    return np.log(p / (1 - p))


def stacked_proba(proba: np.ndarray, weights) -> np.ndarray:
    """The members' probabilities (one column each, e.g. out of fold) mixed as `CrossFitEnsemble` mixes its
    members: the weighted sum of their log-odds, through the logistic function."""
    return 1.0 / (1.0 + np.exp(-(logit(proba) @ np.asarray(weights, dtype=np.float64))))


class CrossFitEnsemble(ClassifierMixin, BaseEstimator):
    """The served model: each member's fold models averaged in log-odds, the members mixed by their weights.

    score = sum over members j of weight_j x (mean over the K fold models of member j of their log-odds). A
    member is one candidate of the benchmark (a LightGBM or logistic regression configuration and imbalance
    strategy); its K fold models are the very fits whose out-of-fold predictions scored it, so the ensemble's
    out-of-fold predictions (the same weighted sum, each client scored by the fold model that did not see it)
    are those of the model served, and nothing is refitted. The weights come from
    `creditscore.modelling.training.stack` (a non-negative stacker on the out-of-fold log-odds) and add up to 1.
    Every fold model is an ordinary pipeline of `make_pipeline`, so samplers, imputation and scaling stay
    inside it; contributions are the same weighted sum of the fold models' (`creditscore.explanation`), so
    they still add up to the score exactly.

    It is assembled from fitted pipelines (`fold_models`, one list per member) and needs no `fit` of its own.
    """

    def __init__(self, fold_models: list[list] | None = None, weights: list[float] | None = None,
                 names: list[str] | None = None):
        self.fold_models = fold_models
        self.weights = weights
        self.names = names
        models, weights = list(fold_models or []), [float(w) for w in (weights or [])]
        if not models or len(models) != len(weights) or any(not m for m in models):
            raise ValueError("ensemble: one non-empty list of fold models per weight is needed")
        if min(weights) < 0 or not np.isclose(sum(weights), 1.0):
            raise ValueError(f"ensemble: weights must be non-negative and add up to 1, got {weights}")
        self.members_ = [m for folds in models for m in folds]
        self.member_weights_ = [w / len(folds) for folds, w in zip(models, weights)
                                for _ in range(len(folds))]
        self.classes_ = np.array([0, 1])

    def fit(self, x=None, y=None):
        """Nothing to fit: the fold models are fitted by the cross-validation that scored them."""
        return self

    def decision_function(self, x) -> np.ndarray:
        return sum(w * logit(m.predict_proba(x)[:, 1]) for m, w in zip(self.members_, self.member_weights_))

    def predict_proba(self, x) -> np.ndarray:
        p = 1.0 / (1.0 + np.exp(-self.decision_function(x)))
        return np.column_stack([1 - p, p])

    def predict(self, x) -> np.ndarray:
        return (self.predict_proba(x)[:, 1] >= 0.5).astype(int)


def describe(result: dict) -> str:
    """A candidate's name in logs and metrics: model+strategy, or what the ensemble is made of."""
    if result["model"] != "ensemble":
        return f"{result['model']}+{result['strategy']}"
    members = " + ".join(f"{w:g} x {n}" for n, w in zip(result["params"]["members"], result["params"]["weights"]))
    return f"ensemble({members}; {result['params']['folds']} fold models each)"


def n_trees(result: dict) -> int | None:
    """The tree count of a LightGBM candidate, or of the ensemble's heaviest LightGBM member; None otherwise."""
    if result["model"] == "lightgbm":
        return int(result["params"]["n_estimators"])
    if result["model"] == "ensemble":
        trees = [int(p["n_estimators"]) for n, p in zip(result["params"]["members"], result["params"]["settings"])
                 if n.startswith("lightgbm")]
        return max(trees) if trees else None
    return None
