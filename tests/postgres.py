"""The tests' PostgreSQL: a throwaway cluster (harness/postgres.py), skipped or failed when the binaries are absent."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.postgres import Cluster, bin_dir


def require_postgres() -> Path:
    found = bin_dir()
    if found is None:
        message = "PostgreSQL server binaries not found: apt-get install postgresql (docs/developing.md)"
        if os.environ.get("REQUIRE_ALL_TESTS"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def cluster() -> Cluster:
    """A new throwaway cluster (not started); skips, or fails under REQUIRE_ALL_TESTS, without the binaries."""
    return Cluster(require_postgres())
