"""Past one machine: on a Dask LocalCluster of 2 worker processes, the engineer stage's client ranges and the probe
stage's runs give the same bytes and the same selection as the single-process run (`compute.scheduler`)."""
from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest
from distributed import LocalCluster, get_task_stream

from creditscore.compute import LOCAL, Runner, runner
from creditscore.config import load_params
from creditscore.params import overridden
from stages.engineer import engineer
from stages.prepare import run
from stages.probe_feature_selection import probe_select

pytestmark = pytest.mark.slow

FILES = ("train.parquet", "holdout.parquet", "test.parquet", "spec.json", "manifest.json")


@pytest.fixture(scope="module")
def scheduler():
    """A scheduler and 2 single-thread worker processes on this machine (what a real cluster's address stands for)."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="module")
def prepared(tiny_synthetic_dir, tmp_path_factory):
    root = tmp_path_factory.mktemp("compute")
    assert run(tiny_synthetic_dir, root / "prepared", root / "prepare.json", "synthetic", 0.2, 42) == 0
    return root / "prepared"


def _ran_on_workers(stream: list[dict], name: str) -> int:
    return sum(1 for task in stream if name in str(task["key"]))


def test_engineer_on_a_cluster_writes_the_same_bytes(prepared, scheduler, tmp_path):
    params = overridden(load_params().engineer, {"min_count": 1, "chunk_clients": 97,
                                                 "target_encoding": {"enabled": True}})
    (tmp_path / "here").mkdir()
    (tmp_path / "cluster").mkdir()
    engineer(prepared, tmp_path / "here", params, 42, load_params().protected)
    with Runner(scheduler) as compute, get_task_stream(client=compute.client()) as stream:
        report = engineer(prepared, tmp_path / "cluster", params, 42, load_params().protected, compute)
    ranges = -(-sum(report["clients"].values()) // 97)
    assert ranges >= 4 and _ran_on_workers(stream.data, "range_features") == ranges  # one task per client range
    for name in FILES:
        assert (tmp_path / "cluster" / name).read_bytes() == (tmp_path / "here" / name).read_bytes(), name
    assert sorted(p.name for p in (tmp_path / "cluster").iterdir()) == sorted(FILES)


def test_probe_runs_on_a_cluster_give_the_same_selection(scheduler, tmp_path):
    rng = np.random.default_rng(4)
    n = 3000
    x = rng.normal(size=(n, 12)).astype(np.float32)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-2.0 + 1.2 * x[:, 0] - 0.8 * x[:, 1] + 0.4 * x[:, 2])))).astype(np.int64)
    names = [f"F{i}" for i in range(12)]
    (tmp_path / "spec.json").write_text(json.dumps({"features": names}))
    pl.DataFrame({"SK_ID_CURR": np.arange(n), "TARGET": y, **{c: x[:, i] for i, c in enumerate(names)}}).write_parquet(
        tmp_path / "train.parquet")
    params = overridden(load_params().probe, {"probes_per_kind": 3, "seeds": [1, 2], "folds": 2, "rule": "quantile",
                                              "quantile": 0.75, "min_share": 0.5, "validation_folds": 2,
                                              "tolerance": 0.002, "sample": 50000})
    # the probe model of params.yaml (bagging, col-wise histograms), smaller: 2 threads here, 1 on a worker
    model = {**load_params().probe.model, "n_estimators": 40, "min_child_samples": 50}
    assert model["n_jobs"] == 2 and model["subsample_freq"] > 0
    here = probe_select(tmp_path, params, model, 0)
    with Runner(scheduler) as compute, get_task_stream(client=compute.client()) as stream:
        there = probe_select(tmp_path, params, model, 0, compute)
    assert _ran_on_workers(stream.data, "seed_runs") == 2 * 2 + 2  # every outer fold's seeds, then every client's
    assert there[0]["features"] == here[0]["features"] and there[0]["probe_features"] == here[0]["probe_features"]
    assert set(here[0]["probe_features"]) >= {"F0", "F1", "F2"}
    assert there[0]["mean_importance"] == here[0]["mean_importance"]
    assert there[1] == here[1]


def test_benchmark_candidates_on_a_cluster_score_the_same(scheduler):
    from creditscore.modelling.training import benchmark

    rng = np.random.default_rng(6)
    x = rng.normal(size=(2400, 6))
    y = (rng.random(2400) < 1 / (1 + np.exp(-(-2.0 + 1.2 * x[:, 0] - x[:, 1] ** 2 / 2)))).astype(np.int64)
    params = overridden(load_params().train, {
        "folds": 3, "early_stopping_rounds": 20, "fbeta": 2, "strategies": ["none", "class_weight"],
        "logistic_regression": {"C": 0.1}, "random_forest": {"n_estimators": 20, "min_samples_leaf": 20},
        "lightgbm": {"n_estimators": 300, "learning_rate": 0.1, "num_leaves": 7, "deterministic": True,
                     "force_col_wise": True}})
    # the benchmark alone, without the scorecard challenger that params.yaml requires of the pipeline
    params = params.model_copy(update={"models": ["logistic_regression", "lightgbm", "random_forest"]})
    cost = {"fn_cost": 10, "fp_cost": 1}
    here = benchmark(x, y, params, cost, 0)
    told = []
    with Runner(scheduler) as compute, get_task_stream(client=compute.client()) as stream:
        there = benchmark(x, y, params, cost, 0, log=lambda name, result: told.append(name), compute=compute)
    assert _ran_on_workers(stream.data, "evaluate_candidate") == 6 and told == list(here) == list(there)
    for name in here:
        if name.startswith("random_forest"):  # scikit-learn adds its trees' probabilities in the order threads finish
            np.testing.assert_allclose(there[name]["oof"], here[name]["oof"], rtol=0, atol=1e-12, err_msg=name)
        else:
            assert np.array_equal(there[name]["oof"], here[name]["oof"]), name
            assert there[name]["auc"] == here[name]["auc"], name
        assert there[name]["params"] == here[name]["params"], name


def test_the_switch_reads_params():
    params = load_params()
    assert params.compute.scheduler == LOCAL and runner(params).local and runner(params).scheduler == LOCAL
    far = runner(overridden(params, {"compute": {"scheduler": "tcp://10.0.0.5:8786"}}))
    assert not far.local and far.scheduler == "tcp://10.0.0.5:8786"
    assert Runner().threads(3) == 3
