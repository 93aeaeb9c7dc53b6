"""Shared fixtures: small synthetic populations generated once per test session."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from creditscore.config import ROOT
from creditscore.synthetic.generate import generate

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
