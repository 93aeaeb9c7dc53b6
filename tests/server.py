"""What the API tests share: the pipeline's models (required, or skipped), a valid application, the server helpers."""
from __future__ import annotations

import os

import pytest

from creditscore.config import ROOT
from harness.servers import VALID, Proxy, Server, free_port, nginx_executable, run_until_exit  # noqa: F401  (the tests' server helpers)

MODELS = ROOT / "models"


def require_models() -> None:
    """The API tests serve the pipeline's artifacts: built by `dvc repro`, which CI runs before pytest."""
    missing = [p.name for p in (MODELS / "bundle.joblib", MODELS / "reference.joblib", MODELS / "clients.joblib")
               if not p.exists()]
    if missing:
        message = f"models/{missing[0]} is missing: run `dvc repro` before the API tests"
        if os.environ.get("REQUIRE_ALL_TESTS"):
            pytest.fail(message)
        pytest.skip(message)


def require_nginx() -> None:
    """The proxy tests run Debian's nginx (`apt-get install nginx`), which `.ci/run` installs."""
    if nginx_executable() is None:
        message = "nginx is not installed: apt-get install nginx"
        if os.environ.get("REQUIRE_ALL_TESTS"):
            pytest.fail(message)
        pytest.skip(message)
