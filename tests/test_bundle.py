"""The model artifacts: one definition each, saved atomically with a checksum, loaded only when they are what they claim."""
from __future__ import annotations

import dataclasses
import pickle

import pytest

from creditscore.errors import ArtifactError
from creditscore.serving.bundle import FORMAT_VERSION, Bundle, Reference, TrainedModel, load, save

TRAINED = TrainedModel(pipeline={"a": 1}, features=["X1", "X2"], model="lightgbm+none", params={"n_estimators": 7},
                       versions={"python": "3.11"})


def test_a_bundle_is_the_trained_model_plus_the_decision_and_round_trips(tmp_path):
    bundle = Bundle.from_trained(TRAINED, calibration={"method": "isotonic"}, threshold=0.1,
                                 cost={"fn_cost": 10, "fp_cost": 1}, spec={}, manifest=[], metrics={"auc": 0.7},
                                 points={"base_points": 600, "base_odds": 50, "pdo": 20})
    assert (bundle.pipeline, bundle.features, bundle.model, bundle.threshold) == ({"a": 1}, ["X1", "X2"],
                                                                                 "lightgbm+none", 0.1)
    assert bundle.format_version == FORMAT_VERSION
    save(bundle, tmp_path / "bundle.joblib")
    assert load(tmp_path / "bundle.joblib", Bundle) == bundle
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.joblib", "bundle.joblib.sha256"]  # no temp file


def test_load_refuses_a_changed_file_another_kind_another_version_and_a_missing_file(tmp_path):
    path = tmp_path / "model.joblib"
    save(TRAINED, path)
    with pytest.raises(ArtifactError, match="holds a TrainedModel, not a Reference"):
        load(path, Reference)
    save(dataclasses.replace(TRAINED, format_version=FORMAT_VERSION + 1), path)
    with pytest.raises(ArtifactError, match=f"has format version {FORMAT_VERSION + 1}, this code reads {FORMAT_VERSION}"):
        load(path, TrainedModel)
    save(TRAINED, path)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ArtifactError, match="does not match its recorded checksum"):
        load(path, TrainedModel)
    with pytest.raises(ArtifactError, match="missing"):
        load(tmp_path / "absent.joblib", TrainedModel, checksum=False)


def test_a_failed_save_keeps_the_previous_file(tmp_path):
    path = tmp_path / "model.joblib"
    save(TRAINED, path, checksum=False)
    before = path.read_bytes()
    with pytest.raises(pickle.PicklingError):
        save(TrainedModel(pipeline=lambda: 0, features=[], model="", params={}, versions={}), path)  # cannot pickle
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["model.joblib"]


def test_known_clients_hold_the_feature_files_values_exactly_in_float32():
    """Half the memory of float64 per worker, and no value changes: the models were fitted on these float32 values,
    and the rows the API scores (`client_x`) are the feature file's rows as float64."""
    import numpy as np

    from app.service import ServingModel
    from creditscore.config import ROOT
    from creditscore.explanation.reference import load_matrix
    from creditscore.serving.bundle import KnownClients
    from tests.server import MODELS, require_models

    require_models()
    clients = load(MODELS / "clients.joblib", KnownClients)
    model = ServingModel(MODELS / "bundle.joblib", MODELS / "reference.joblib", MODELS / "clients.joblib")
    _, x_test = load_matrix(ROOT / "data" / "features", "test", model.features)
    assert clients.features.dtype == np.float32
    served = model.client_x(0, len(x_test))
    assert served.dtype == np.float64 and served.flags.c_contiguous
    np.testing.assert_array_equal(served, x_test)  # NaN where missing, every other value equal
    assert model.decide(model.client_x(3, 4)) == model.decide(x_test[3:4])
