"""MLflow tracking: one run per candidate (train stage); the served model logged, registered and given an alias
(register stage)."""
from __future__ import annotations

import json
import logging
import os
import warnings
from importlib.metadata import version

import mlflow
import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.models import infer_signature

from creditscore.config import ROOT

SERVING_REQUIREMENTS = [f"{p}=={version(p)}" for p in ("scikit-learn", "imbalanced-learn", "lightgbm", "numpy",
                                                       "pandas", "scipy")]
# the scorecard's column names (the run's n_features tag says how many) and the ensemble's members' settings (each
# member's own run has them): too long for a param
UNLOGGED = ("feature_names", "settings")
# "Creating initial MLflow database tables..." / "Updating database tables" on every fresh mlflow.db say nothing a
# reader can act on; MLflow's warnings from there still show
logging.getLogger("mlflow.store.db.utils").setLevel(logging.WARNING)


def tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set, else a SQLite database at the repository root."""
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{ROOT / 'mlflow.db'}"


def start(experiment: str) -> None:
    """Point MLflow at the tracking store and the experiment (artifacts beside the database)."""
    mlflow.set_tracking_uri(tracking_uri())
    if mlflow.get_experiment_by_name(experiment) is None:
        location = os.environ.get("MLFLOW_ARTIFACT_LOCATION") or (ROOT / "mlartifacts").as_uri()
        mlflow.create_experiment(experiment, artifact_location=location)
    mlflow.set_experiment(experiment)


def log_candidate(name: str, result: dict, tags: dict) -> None:
    """One run per benchmark candidate: parameters, metrics, fit time and confusion matrix."""
    with mlflow.start_run(run_name=name, tags={"stage": "train", "candidate": name, **tags}):
        mlflow.log_params({"model": result["model"], "strategy": result["strategy"],
                           **{f"model.{k}": v for k, v in result["params"].items() if k not in UNLOGGED}})
        mlflow.log_metrics({k: float(result[k]) for k in ("auc", "cost_per_client", "recall", "precision", "fbeta",
                                                          "threshold", "fit_seconds", "tp", "fp", "fn", "tn")
                            if result[k] is not None})
        mlflow.log_dict({"labels": ["good", "default"], "matrix": [[result["tn"], result["fp"]],
                                                                  [result["fn"], result["tp"]]]},
                        "confusion_matrix.json")


def log_final(pipeline, x_example: pd.DataFrame, metrics: dict, params: dict, registered: str, tags: dict) -> str:
    """Log the served model with a signature and an input example, register it; returns its new version."""
    with mlflow.start_run(run_name="final", tags={"stage": "register", "final": "true", **tags}):
        mlflow.log_params(params)
        mlflow.log_metrics({k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))})
        proba = pipeline.predict_proba(x_example.to_numpy())[:, 1]
        with warnings.catch_warnings():
            # MLflow checks the input example by scoring it as a DataFrame; the pipeline was fitted on the same
            # columns in the same order as an array, so scikit-learn's "X has feature names" warning is noise here
            warnings.filterwarnings("ignore", message="X has feature names", category=UserWarning)
            # cloudpickle is needed for the ensemble's own class (skops loads only the types it knows)
            logging.getLogger("mlflow.sklearn").setLevel(logging.ERROR)
            info = mlflow.sklearn.log_model(
                pipeline, name="model", signature=infer_signature(x_example, proba), input_example=x_example.head(3),
                pip_requirements=SERVING_REQUIREMENTS, pyfunc_predict_fn="predict_proba",
                serialization_format="cloudpickle", registered_model_name=registered)
    return str(info.registered_model_version)


def versions(registered: str) -> list:
    """Every version of the registered model (none when it does not exist yet), oldest first."""
    found = MlflowClient().search_model_versions(f"name='{registered}'")
    return sorted(found, key=lambda v: int(v.version))


def alias_version(registered: str, alias: str):
    """The version the alias points to, or None."""
    try:
        return MlflowClient().get_model_version_by_alias(registered, alias)
    except mlflow.exceptions.MlflowException:
        return None


def tag_version(registered: str, version: str, tags: dict) -> None:
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(registered, version, key, value if isinstance(value, str) else json.dumps(value))


def set_alias(registered: str, alias: str, version: str) -> None:
    MlflowClient().set_registered_model_alias(registered, alias, version)


def as_frame(x: np.ndarray, names: list[str]) -> pd.DataFrame:
    """Features as a float32 DataFrame with the feature names, for signatures and examples."""
    return pd.DataFrame(x.astype(np.float32), columns=names)
