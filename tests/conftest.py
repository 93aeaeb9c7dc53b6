"""Shared fixtures: small synthetic populations generated once per test session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from creditscore.config import ROOT
from creditscore.serving.bundle import Bundle, load
from creditscore.synthetic.generate import generate
from tests.server import MODELS, Server, require_models

SAMPLE_DIR = ROOT.parent / "shared" / "home-credit-sample"
needs_sample = pytest.mark.skipif(not SAMPLE_DIR.is_dir(), reason="../shared/home-credit-sample is absent")


@pytest.fixture(scope="session")
def synthetic_dir(tmp_path_factory) -> Path:
    """6,000 labelled synthetic clients (plus the test share) with their history, seed 7."""
    out = tmp_path_factory.mktemp("synthetic")
    generate(out, n_clients=6000, seed=7)
    return out


@pytest.fixture(scope="session")
def tiny_synthetic_dir(tmp_path_factory) -> Path:
    """400 labelled synthetic clients: a valid raw folder for the bad-input cases of prepare."""
    out = tmp_path_factory.mktemp("tiny")
    generate(out, n_clients=400, seed=3)
    return out


@pytest.fixture
def raw_copy(tiny_synthetic_dir, tmp_path) -> Path:
    """A private, writable copy of the tiny raw folder."""
    return Path(shutil.copytree(tiny_synthetic_dir, tmp_path / "raw"))


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory):
    """A served bundle and reference that the real stages built on 600 synthetic clients (harness/tiny.py):
    the quick loop's API tests need no `dvc repro` outputs."""
    from harness.tiny import build

    return build(tmp_path_factory.mktemp("tiny-pipeline"))


@pytest.fixture(scope="session")
def tiny_config(tiny_models) -> dict:
    """An app config serving the tiny models, with no key and no inference log."""
    return {"MODEL_BUNDLE": tiny_models.bundle, "MODEL_REFERENCE": tiny_models.reference,
            "MODEL_CLIENTS": tiny_models.clients, "INFERENCE_LOG": "off", "API_KEY": None}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The API on a real gunicorn server (2 workers, no key), logging to a private SQLite file."""
    require_models()
    log = tmp_path_factory.mktemp("log") / "inference.sqlite"
    s = Server({"INFERENCE_LOG": str(log), "INFERENCE_LOG_KEY": "pseudonym-key", "API_KEY": None}).start()
    s.log, s.log_key = log, "pseudonym-key"
    yield s
    s.stop()


@pytest.fixture(scope="module")
def bundle():
    """The served bundle, as the pipeline wrote it."""
    require_models()
    return load(MODELS / "bundle.joblib", Bundle)


@pytest.fixture(scope="session")
def pg():
    """A real PostgreSQL server for the session (a throwaway cluster; see tests/postgres.py)."""
    from tests.postgres import cluster as new_cluster

    cluster = new_cluster().start()
    yield cluster
    cluster.close()
