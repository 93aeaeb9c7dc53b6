"""What the API tests share: the pipeline's models (required, or skipped), a valid application, the server helpers."""
from __future__ import annotations

import os

import pytest

from creditscore.config import ROOT
from harness.servers import Server, free_port, run_until_exit  # noqa: F401  (the tests' server helpers)

MODELS = ROOT / "models"
# A valid raw application, as a caller of the API sends it.
VALID = {"AMT_INCOME_TOTAL": 135000.0, "AMT_CREDIT": 513000.0, "AMT_ANNUITY": 24700.5, "DAYS_BIRTH": -14000,
         "EXT_SOURCE_2": 0.55, "CODE_GENDER": "F", "NAME_EDUCATION_TYPE": "Higher education", "CNT_FAM_MEMBERS": 2}


def require_models() -> None:
    """The API tests serve the pipeline's artifacts: built by `dvc repro`, which CI runs before pytest."""
    missing = [p.name for p in (MODELS / "bundle.joblib", MODELS / "reference.joblib", MODELS / "clients.joblib")
               if not p.exists()]
    if missing:
        message = f"models/{missing[0]} is missing: run `dvc repro` before the API tests"
        if os.environ.get("REQUIRE_ALL_TESTS"):
            pytest.fail(message)
        pytest.skip(message)
