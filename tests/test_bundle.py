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


def test_known_clients_keep_only_the_application_fields_the_api_reads(tiny_models):
    """Data minimisation: of the prepared application rows, the file keeps the fields shown, the fields the serving
    plan computes features from and those the reasons speak of; no other column leaves the training environment."""
    import io

    import polars as pl

    from creditscore.explanation.reference import client_fields
    from creditscore.features.serving import serving_plan
    from creditscore.serving.bundle import CLIENT_BLOCK, CLIENT_FIELDS, KnownClients

    bundle = load(tiny_models.bundle, Bundle)
    reference = load(tiny_models.reference, Reference)
    clients = load(tiny_models.clients, KnownClients)
    app = pl.concat([pl.read_ipc(io.BytesIO(block)) for block in clients.application])
    assert [pl.read_ipc(io.BytesIO(b)).height for b in clients.application] == [
        min(CLIENT_BLOCK, len(clients.ids) - start) for start in range(0, len(clients.ids), CLIENT_BLOCK)]
    plan = serving_plan(bundle.spec, list(dict.fromkeys([*bundle.features, *reference.key_fields])))
    assert set(app.columns) == client_fields(bundle, reference.key_fields)
    computed_from = {r for e in plan["app_exprs"] for r in e.meta.root_names()}
    assert set(CLIENT_FIELDS) | set(plan["app_columns"]) | computed_from <= set(app.columns)
    assert "FLAG_MOBIL" not in app.columns and len(app.columns) < 60  # of the 121 prepared application columns
    assert app["SK_ID_CURR"].to_list() == clients.ids.tolist() and app.height == len(clients.ids)
    assert clients.features.flags.c_contiguous  # shared by the workers as loaded, never copied per worker


def test_the_master_preloads_the_served_files_without_polars_and_workers_take_them(tiny_models):
    """What the gunicorn master runs before the fork: the three files load without importing Polars (whose thread pool
    does not survive a fork), and `verified_load` then gives the preloaded objects, not new copies."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path\n"
            "from creditscore.serving.bundle import Bundle, KnownClients, Reference, preload, verified_load\n"
            f"preload(Path({str(tiny_models.bundle)!r}), Bundle)\n"
            f"preload(Path({str(tiny_models.reference)!r}), Reference)\n"
            f"preload(Path({str(tiny_models.clients)!r}), KnownClients)\n"
            "assert 'polars' not in sys.modules, 'polars imported'\n"
            f"a, _ = verified_load(Path({str(tiny_models.clients)!r}), KnownClients)\n"
            f"b, _ = verified_load(Path({str(tiny_models.clients)!r}), KnownClients)\n"
            "assert a is b\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr


def test_a_preloaded_file_of_another_kind_is_loaded_and_checked_as_usual(tmp_path):
    from creditscore.serving.bundle import preload, verified_load

    path = tmp_path / "model.joblib"
    save(TRAINED, path)
    preload(path, TrainedModel)
    assert verified_load(path, TrainedModel)[0] is verified_load(path, TrainedModel)[0]
    with pytest.raises(ArtifactError, match="holds a TrainedModel, not a Reference"):
        verified_load(path, Reference)


def test_a_known_client_is_found_by_id_and_any_other_id_is_not(tiny_config):
    from app.service import ServingModel

    model = ServingModel(tiny_config["MODEL_BUNDLE"], tiny_config["MODEL_REFERENCE"], tiny_config["MODEL_CLIENTS"])
    ids = model.client_ids.tolist()
    assert [model.known(c) for c in ids] == list(range(len(ids)))
    assert model.known(max(ids) + 1) is None and model.known(min(ids) - 1) is None
    assert model.known(2**70) is None and model.known(-2**70) is None  # beyond int64: not a client, not an error
    assert model.client_fields(0)["SK_ID_CURR"] == ids[0]


def test_a_what_if_on_the_kept_fields_recomputes_the_features_as_the_engineer_stage_did(tiny_config):
    """The what-if starts from the kept fields only: unchanged amounts give back the stored feature row, and a
    changed credit amount changes the features computed from it."""
    import numpy as np

    from app.service import ServingModel

    model = ServingModel(tiny_config["MODEL_BUNDLE"], tiny_config["MODEL_REFERENCE"], tiny_config["MODEL_CLIENTS"])
    for row in range(3):
        x, _, raw = model.what_if(row, {})
        np.testing.assert_allclose(x, model.client_x(row, row + 1)[0], rtol=1e-6, equal_nan=True)
        assert raw["SK_ID_CURR"] == int(model.client_ids[row])
    credit = model.client_fields(0)["AMT_CREDIT"]
    changed, _, _ = model.what_if(0, {"AMT_CREDIT": credit * 2})
    before = model.client_x(0, 1)[0]
    moved = [f for f, a, b in zip(model.features, changed, before) if not np.isclose(a, b, equal_nan=True)]
    assert moved and all("AMT_CREDIT" in model.sources[f] for f in moved)  # only what reads the amount moved


def test_application_blocks_give_back_every_row_with_its_types_and_nulls():
    import polars as pl

    from creditscore.serving.blocks import arrow_blocks, block_row

    frame = pl.DataFrame({"SK_ID_CURR": list(range(100, 111)), "AMT_CREDIT": [1.5, None, *[2.0] * 9],
                          "NAME_CONTRACT_TYPE": ["Cash loans", None, *["Revolving loans"] * 9]},
                         schema={"SK_ID_CURR": pl.Int32, "AMT_CREDIT": pl.Float64, "NAME_CONTRACT_TYPE": pl.String})
    blocks = arrow_blocks(frame, size=4)
    assert len(blocks) == 3 and all(isinstance(b, bytes) for b in blocks)
    for row in range(11):
        one = block_row(blocks, row, size=4)
        assert one.schema == frame.schema and one.row(0) == frame.row(row)
    assert block_row(blocks, 1, size=4).row(0) == (101, None, None)  # nulls stay nulls, not NaN
    for row in (-1, 11, 12):
        with pytest.raises(IndexError):
            block_row(blocks, row, size=4)


def test_a_worker_forked_after_the_master_ran_the_model_on_two_threads_still_scores(tiny_models):
    """The master loads the bundle before the fork. Even if its LightGBM ran OpenMP threads there (OMP_NUM_THREADS
    set above 1 by the host), a forked worker scores, with threads of its own, the same probabilities."""
    import os
    import subprocess
    import sys

    code = ("import os, sys, numpy as np; from pathlib import Path\n"
            "from creditscore.serving.bundle import Bundle, verified_load\n"
            "from creditscore.serving.scoring import Scorer\n"
            f"bundle, _ = verified_load(Path({str(tiny_models.bundle)!r}), Bundle)\n"
            "scorer = Scorer(bundle.pipeline)\n"
            "x = np.random.default_rng(0).normal(size=(3000, len(bundle.features)))\n"
            "before = scorer.proba(x)\n"
            "pid = os.fork()\n"
            "if pid == 0:\n"
            "    os._exit(0 if np.array_equal(scorer.proba(x), before) else 3)\n"
            "_, status = os.waitpid(pid, 0)\n"
            "sys.exit(os.waitstatus_to_exitcode(status))\n")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "OMP_NUM_THREADS": "2"})
    assert run.returncode == 0, run.stderr
