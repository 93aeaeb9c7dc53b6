"""The benchmarks' own logic, on tiny hand-built inputs: the order stages run in, and how rankings are compared."""
import numpy as np
import pytest
import yaml

from benchmarks.bench_explain_sample import agreement, ranking
from benchmarks.bench_pipeline import in_order
from benchmarks.bench_speed import fast_overrides, fast_value
from creditscore.config import ROOT, load_params


def test_stages_run_after_every_stage_whose_outputs_they_read():
    stages = {
        "report": {"deps": ["metrics/check.json", "models/model.bin"], "outs": ["reports/card.md"]},
        "fit": {"deps": ["data/features"], "outs": ["models/model.bin"]},
        "features": {"deps": ["data/raw.csv"], "outs": ["data/features"]},
        "check": {"deps": ["data/features/train.parquet"], "metrics": [{"metrics/check.json": {"cache": False}}]},
    }
    # "report" comes first in the file but reads what "check" and "fit" write; "check" reads a file inside an output
    assert [n for n, _ in in_order(stages)] == ["features", "fit", "check", "report"]


def test_a_cycle_of_stages_is_named():
    stages = {"a": {"deps": ["b.out"], "outs": ["a.out"]}, "b": {"deps": ["a.out"], "outs": ["b.out"]}}
    with pytest.raises(ValueError, match=r"\['a', 'b'\] depend on each other"):
        in_order(stages)


def test_the_repository_stages_run_in_an_order_dvc_accepts():
    order = [n for n, _ in in_order(yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"])]
    assert order.index("drift") < order.index("register") and order.index("performance") < order.index("register")
    assert order.index("train") < order.index("threshold") < order.index("explain")


def test_a_sample_ranking_is_compared_with_every_row():
    values = np.array([[3.0, -2.0, 1.0, 0.5], [-3.0, 2.0, -1.0, 0.0]])  # mean |value|: 3, 2, 1, 0.25
    assert ranking(values).tolist() == [0, 1, 2, 3]
    assert ranking(np.array([[1.0, -1.0, 0.0]])).tolist() == [0, 1, 2]  # a tie keeps the feature order
    full = np.array([0, 1, 2, 3, 4, 5])
    same = agreement(full.copy(), full, k=2)
    assert same == {"top_k_kept": 1.0, "spearman_top_2k": 1.0, "top_5_same_order": True}
    swapped = agreement(np.array([1, 0, 2, 3, 4, 5]), full, k=2)  # the first two swap: both still in the top 2
    assert swapped["top_k_kept"] == 1.0 and not swapped["top_5_same_order"]
    assert swapped["spearman_top_2k"] == pytest.approx(0.8)  # ranks (1, 0, 2, 3) against (0, 1, 2, 3): 1 - 6 * 2 / 60
    lost = agreement(np.array([0, 4, 1, 2, 3, 5]), full, k=2)  # feature 1 falls out of the top 2
    assert lost["top_k_kept"] == 0.5


def _kept_run(folder, ids, y, x, coef):
    """A run folder as bench_scale --keep leaves it: a trained model and its hold-out feature file."""
    import joblib
    import polars as pl
    from sklearn.linear_model import LogisticRegression

    from creditscore.serving.bundle import TrainedModel

    model = LogisticRegression().fit(np.array([[-1.0], [1.0], [-2.0], [2.0]]), [0, 1, 0, 1])
    model.coef_[:] = coef
    model.intercept_[:] = 0.0
    (folder / "models").mkdir(parents=True)
    (folder / "data" / "features").mkdir(parents=True)
    joblib.dump(TrainedModel(pipeline=model, features=["X"], model=f"lr{coef}", params={}, versions={}),
                folder / "models" / "model.joblib")
    pl.DataFrame({"SK_ID_CURR": ids, "TARGET": y, "X": x}).write_parquet(folder / "data" / "features" / "holdout.parquet")


def test_two_runs_are_paired_on_their_common_hold_out_and_runs_of_other_clients_are_refused(tmp_path):
    from benchmarks.bench_pair_runs import pair

    y = [0, 0, 1, 1, 0, 1]
    x = [0.1, 0.4, 0.35, 0.8, 0.2, 0.9]  # AUC 8/9 scored as is; 1/9 scored reversed
    _kept_run(tmp_path / "a", list(range(6)), y, x, 1.0)
    _kept_run(tmp_path / "b", list(range(6)), y, x, -1.0)
    out = pair(tmp_path / "a", tmp_path / "b")
    assert (out["before"]["auc"], out["after"]["auc"]) == (round(8 / 9, 5), round(1 / 9, 5))
    assert out["after_minus_before"]["difference"] == round(1 / 9 - 8 / 9, 5) and out["clients"] == 6
    _kept_run(tmp_path / "c", [0, 1, 2, 3, 4, 99], y, x, 1.0)
    with pytest.raises(SystemExit, match="hold out different clients"):
        pair(tmp_path / "a", tmp_path / "c")


def test_the_fast_arm_settings_are_dotted_keys_with_yaml_values():
    assert fast_overrides(["probe.guard_sample=3200", "train.models=[lightgbm]", "probe.sample=null"]) == {
        "probe.guard_sample": 3200, "train.models": ["lightgbm"], "probe.sample": None}
    with pytest.raises(SystemExit, match="expected KEY=VALUE"):
        fast_overrides(["probe.guard_sample"])


def test_the_fast_arm_value_is_its_override_else_params_yaml_s():
    params = load_params()
    assert fast_value("probe.guard_sample", {}) == params.probe.guard_sample
    assert fast_value("probe.guard_sample", {"probe.guard_sample": 3200}) == 3200
    assert fast_value("train.ensemble.refit_learning_rate", {}) == params.train.ensemble.refit_learning_rate
