"""End to end: `dvc repro` for real in a temporary copy of the repository, on a tiny synthetic size."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest
import yaml

from creditscore.config import ROOT
from tests.conftest import SAMPLE_DIR, needs_sample

pytestmark = pytest.mark.slow

N_CLIENTS = 1500


def _sh(args: list[str], cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "DVC_NO_ANALYTICS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True)
    if check and done.returncode:
        raise AssertionError(f"{' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def _set_params(repo: Path, **data) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["data"].update(data)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """The repository's tracked and unignored files, committed in a fresh git repository."""
    dst = tmp_path_factory.mktemp("repo")
    listed = _sh(["git", "ls-files", "-co", "--exclude-standard"], ROOT).stdout.split("\n")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (dst / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dst / name)
    _set_params(dst, n_clients=N_CLIENTS)
    params = yaml.safe_load((dst / "params.yaml").read_text())  # 300 hold-out clients: too noisy for the default gates
    params["register"]["gates"].update(min_holdout_auc=0.6, max_ece=0.2, max_fairness_gap=0.5)
    # every path taken at scale, on a tiny run: client ranges, the probe's and the benchmark's samples, the global
    # explanations' sample (the second, forced run below must still give the same bytes)
    params["engineer"]["chunk_clients"] = 400
    params["probe"]["sample"] = 900
    params["train"]["benchmark_sample"] = 900
    params["explain"]["global_sample"] = 200
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _sh(["git", "init", "-q"], dst)
    _sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "init", "--allow-empty"], dst)
    _sh(["git", "add", "-A"], dst)
    _sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], dst)
    return dst


def _dvc(repo: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _sh([sys.executable, "-m", "dvc", *args], repo, check)


def _assert_model_card_is_current(repo: Path) -> None:
    card = (repo / "reports" / "model_card.md").read_text()
    train = json.loads((repo / "metrics" / "train.json").read_text())
    threshold = json.loads((repo / "metrics" / "threshold.json").read_text())
    assert f"| hold-out AUC | {train['holdout_auc']:.4f} |" in card
    assert f"| threshold (calibrated P(default)) | {threshold['threshold']:.4f} |" in card
    assert f"calibrated ({threshold['calibration']})" in card
    for name in train["candidates"]:
        assert f"| {name} |" in card


def test_repro_runs_then_has_nothing_to_do_and_is_byte_reproducible(repo):
    _dvc(repo, "repro")
    metrics = json.loads((repo / "metrics" / "prepare.json").read_text())
    total = metrics["split"]["application_train"]["clients"] + metrics["split"]["application_holdout"]["clients"]
    assert total == N_CLIENTS and metrics["source"] == "synthetic"
    assert len(list((repo / "data" / "prepared").glob("*.parquet"))) == 9
    assert sorted(p.name for p in (repo / "data" / "features").iterdir()) == [
        "holdout.parquet", "manifest.json", "spec.json", "test.parquet", "train.parquet"]  # parts merged, none left
    features = json.loads((repo / "metrics" / "engineer.json").read_text())
    assert features["n_features"] > 600 and features["clients"]["test"] == metrics["split"]["application_test"]["clients"]
    manifest = json.loads((repo / "data" / "features" / "manifest.json").read_text())
    assert [m["name"] for m in manifest] == json.loads((repo / "data" / "features" / "spec.json").read_text())["features"]
    _assert_model_card_is_current(repo)
    explain = json.loads((repo / "metrics" / "explain.json").read_text())
    assert explain["additivity_max_error"] < 1e-9 and explain["shap_library_max_abs_diff"] < 1e-6
    assert len(explain["local"]) == 6 and all(len(r["reasons"]) <= 4 for r in explain["local"])
    for r in explain["local"]:  # said in human units: no derived feature, no negative day count
        assert not any(re.search(r"POLY_|_X_|negative|(?<!\w)-\s?\d", text) for text in r["reasons"]), r["reasons"]
    assert explain["n_global"] == 200 and explain["n_holdout"] == 300
    probe = json.loads((repo / "metrics" / "probe.json").read_text())
    assert (probe["n_clients"], probe["n_training_clients"]) == (900, 1200)
    register = json.loads((repo / "metrics" / "register.json").read_text())
    assert (register["version"], register["alias"], register["champion_before"]) == (1, "champion", None)
    assert all(g["passed"] for g in register["gates"].values())
    train = json.loads((repo / "metrics" / "train.json").read_text())
    threshold = json.loads((repo / "metrics" / "threshold.json").read_text())
    assert "scorecard+none" in train["candidates"] and train["scorecard"]["n_features"] <= 20
    assert train["model"].startswith("ensemble(") and train["clients"]["benchmark"] == 900
    assert abs(sum(m["weight"] for m in train["ensemble"]["members"].values()) - 1) < 1e-5
    assert len(pl.read_parquet(repo / "data" / "predictions" / "scorecard_oof.parquet")) == 900  # the sample's
    assert len(pl.read_parquet(repo / "data" / "predictions" / "oof.parquet")) == 1200  # the served: every client
    assert threshold["challenger"]["validation"]["holdout"]["gini"] > 0.2  # the challenger's figures beside the served
    interval = train["holdout_auc_interval"]
    assert interval["low"] < train["holdout_auc"] < interval["high"]
    bounds = threshold["pd_bounds"]  # no probability of default of exactly 0 or 1
    assert bounds["floor"] <= bounds["holdout_min"] and bounds["holdout_max"] <= bounds["ceiling"] < 1
    card = (repo / "data" / "scorecard" / "table.csv").read_text().splitlines()
    assert card[0] == "feature,bin,clients,defaults,default_rate,woe,iv,points" and len(card) > 20
    assert len(list((repo / "reports" / "explain").glob("waterfall_*.png"))) == 6
    assert "Data and pipelines are up to date" in _dvc(repo, "repro").stdout
    lock = (repo / "dvc.lock").read_text()
    _dvc(repo, "repro", "--force")
    assert (repo / "dvc.lock").read_text() == lock  # same hashes: identical data, same metrics
    assert json.loads((repo / "metrics" / "prepare.json").read_text()) == metrics


def test_experiment_run_show_and_metrics_diff(repo):
    _dvc(repo, "repro")
    _sh(["git", "add", "-A"], repo)
    _sh(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "baseline"], repo)
    before = json.loads((repo / "metrics" / "threshold.json").read_text())
    # another model (another calibration) that cannot save the margin: registered as challenger, the champion stays
    run = _dvc(repo, "exp", "run", "-S", "threshold.calibration=sigmoid", "-S", "register.margin=1.0",
               "-n", "sigmoid-calibration")
    assert "Running stage 'threshold'" in run.stdout and "Running stage 'train'" not in run.stdout
    shown = _dvc(repo, "exp", "show", "--json").stdout
    assert "sigmoid-calibration" in shown
    after = json.loads((repo / "metrics" / "threshold.json").read_text())
    assert after["calibration"] == "sigmoid" and before["calibration"] == "isotonic"
    diff = _dvc(repo, "metrics", "diff").stdout
    assert "metrics/threshold.json" in diff and "holdout_brier_calibrated" in diff
    _assert_model_card_is_current(repo)  # regenerated for the experiment's threshold
    register = json.loads((repo / "metrics" / "register.json").read_text())
    assert (register["version"], register["alias"], register["champion_after"]) == (2, "challenger", 1)
    assert "less than the margin 1.0" in register["reason"] and "`challenger`" in (repo / "reports" / "model_card.md").read_text()
    _sh(["git", "checkout", "--", "params.yaml"], repo)
    _dvc(repo, "checkout")


def test_unknown_source_stops_the_pipeline_with_a_clear_message(repo):
    _set_params(repo, source="excel")
    try:
        done = _dvc(repo, "repro", check=False)
        assert done.returncode != 0
        assert ("generate: error: params.yaml: data.source: input should be 'synthetic' or 'kaggle', got 'excel'\n"
                in done.stderr)
    finally:
        _set_params(repo, source="synthetic")


@needs_sample
def test_kaggle_source_reads_real_files_from_raw_dir(repo):
    _set_params(repo, source="kaggle", raw_dir=str(SAMPLE_DIR))
    try:
        _dvc(repo, "repro")
        metrics = json.loads((repo / "metrics" / "prepare.json").read_text())
        assert metrics["source"] == "kaggle"
        assert metrics["split"]["application_test"]["clients"] == 153
        assert (repo / "data" / "synthetic" / "NOT_GENERATED.txt").exists()
    finally:
        _set_params(repo, source="synthetic", raw_dir="data/raw")


def test_dvc_push_then_pull_on_a_fresh_host_gives_the_checksummed_model(repo, tmp_path):
    """Deployment path: `dvc push` to a remote, then a host with no cache and no model pulls the two served files."""
    import hashlib

    from creditscore.serving.bundle import Bundle, KnownClients, Reference, verified_load

    _dvc(repo, "repro")  # a no-op after the tests above; builds everything when this test runs alone
    served = [repo / "models" / "bundle.joblib", repo / "models" / "reference.joblib", repo / "models" / "clients.joblib"]
    kinds = {"bundle.joblib": Bundle, "reference.joblib": Reference, "clients.joblib": KnownClients}
    built = {p.name: p.read_bytes() for p in served}
    remote = tmp_path / "dvc-remote"
    _dvc(repo, "remote", "add", "-d", "localremote", str(remote))
    try:
        _dvc(repo, "push")
        assert "in sync" in _dvc(repo, "status", "--cloud").stdout
        for path in served:  # the fresh host: the .sha256 files come with git, the models and the cache do not
            path.unlink()
        shutil.rmtree(repo / ".dvc" / "cache")
        _dvc(repo, "pull", *(str(p.relative_to(repo)) for p in served))
        for path in served:
            data = path.read_bytes()
            assert data == built[path.name]
            assert hashlib.sha256(data).hexdigest() == path.with_name(path.name + ".sha256").read_text().strip()
            verified_load(path, kinds[path.name])  # what the API does before it starts
        status = _dvc(repo, "status", "threshold", "reference").stdout  # only the outputs not pulled are listed
        assert not any(str(p.relative_to(repo)) in status for p in served)
    finally:
        _dvc(repo, "remote", "remove", "localremote")
