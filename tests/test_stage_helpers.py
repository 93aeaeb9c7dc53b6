"""Exact outputs of the small helpers the stages print or plot with, on hand-built inputs."""
from __future__ import annotations

import json

import numpy as np
import pytest

from creditscore.decision.validation import holdout_curves
from creditscore.explanation.figures import pick_clients
from creditscore.modelling.models import describe, n_trees
from stages.drift import alert_line


def test_pick_clients_highest_lowest_closest_without_repeats():
    proba = np.array([0.9, 0.1, 0.5, 0.52, 0.05])
    assert pick_clients(proba, 0.5, {"highest": 2, "lowest": 1, "closest": 2}) == [
        ("highest", 0), ("highest", 3), ("lowest", 4), ("closest", 2), ("closest", 1)]  # 3 was taken: next closest
    assert pick_clients(proba, 0.5, {"highest": 0, "lowest": 0, "closest": 0}) == []


def test_curves_for_dvc_plots():
    y = np.array([0, 0, 1, 1])
    proba = np.array([0.1, 0.6, 0.4, 0.8])
    out = holdout_curves(y, proba, threshold=0.5)
    assert out["roc"] == [{"fpr": 0.0, "tpr": 0.0}, {"fpr": 0.0, "tpr": 0.5}, {"fpr": 0.5, "tpr": 0.5},
                          {"fpr": 0.5, "tpr": 1.0}, {"fpr": 1.0, "tpr": 1.0}]
    assert out["confusion"] == [{"actual": "good", "predicted": "granted"}, {"actual": "good", "predicted": "refused"},
                                {"actual": "default", "predicted": "granted"},
                                {"actual": "default", "predicted": "refused"}]
    assert out["precision_recall"][0] == {"recall": 1.0, "precision": 0.5}


def test_candidate_names_and_tree_counts():
    single = {"model": "lightgbm", "strategy": "class_weight", "params": {"n_estimators": 300}}
    assert describe(single) == "lightgbm+class_weight" and n_trees(single) == 300
    ensemble = {"model": "ensemble", "strategy": "none", "params": {
        "members": ["lightgbm+none", "lightgbm+none+search1", "logistic_regression+none"], "weights": [0.5, 0.3, 0.2],
        "folds": 5, "settings": [{"n_estimators": 441}, {"n_estimators": 612}, {"C": 0.1}]}}
    assert describe(ensemble) == ("ensemble(0.5 x lightgbm+none + 0.3 x lightgbm+none+search1 + "
                                  "0.2 x logistic_regression+none; 5 fold models each)")
    assert n_trees(ensemble) == 612
    linear = {**ensemble, "params": {**ensemble["params"], "members": ["logistic_regression+none"], "weights": [1.0],
                                     "settings": [{"C": 0.1}]}}
    assert describe(linear) == "ensemble(1 x logistic_regression+none; 5 fold models each)" and n_trees(linear) is None
    assert n_trees({"model": "logistic_regression", "strategy": "none", "params": {}}) is None


def test_alert_line_says_what_drifted():
    calm = {"n_drifted": 1, "n_features": 15, "share_drifted": 1 / 15, "score_psi": 0.031, "score_psi_band": "stable",
            "alert": False, "current_source": "application_test", "n_current": 3170}
    assert alert_line(calm) == ("no drift alert: 1/15 features drifted (7%), score PSI 0.03 (stable); current data "
                                "application_test (3,170 rows)")
    alarm = {**calm, "n_drifted": 9, "share_drifted": 0.6, "score_psi": 0.4, "score_psi_band": "act", "alert": True}
    assert alert_line(alarm) == "DRIFT ALERT: 9/15 features drifted (60%), score PSI 0.40 (act) — retrain or investigate"


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _previous_outputs(tmp_path):
    (tmp_path / "plots").mkdir()
    (tmp_path / "plots" / "old.json").write_text("[1]\n")
    (tmp_path / "model.bin").write_bytes(b"old model")
    (tmp_path / "metrics.json").write_text('{"auc": 0.5}\n')
    return tmp_path / "model.bin", tmp_path / "plots", tmp_path / "metrics.json"


def test_atomic_outputs_replace_every_output_together(tmp_path):
    from creditscore.io import atomic_outputs

    finals = _previous_outputs(tmp_path)
    with atomic_outputs(*finals) as (model, plots, metrics):
        assert all(p.parent.parent == tmp_path and p.name == f.name for p, f in zip((model, plots, metrics), finals))
        model.write_bytes(b"new model")
        plots.mkdir()
        (plots / "roc.json").write_text("[2]\n")
        metrics.write_text('{"auc": 0.8}\n')
        assert _tree(tmp_path)["model.bin"] == b"old model"  # nothing replaced before the block ends
    assert _tree(tmp_path) == {"metrics.json": b'{"auc": 0.8}\n', "model.bin": b"new model", "plots/roc.json": b"[2]\n"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "model.bin", "plots"]  # no scratch left
    assert oct(finals[0].stat().st_mode & 0o777) == "0o644"


def test_a_failing_block_keeps_every_previous_output_and_leaves_no_scratch(tmp_path):
    from creditscore.io import atomic_outputs

    finals = _previous_outputs(tmp_path)
    before = _tree(tmp_path)
    with pytest.raises(ZeroDivisionError):
        with atomic_outputs(*finals) as (model, plots, metrics):
            model.write_bytes(b"new model")
            plots.mkdir()
            raise ZeroDivisionError("a failure inside the block")
    assert _tree(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["metrics.json", "model.bin",
                                                                                         "plots"]
    with pytest.raises(RuntimeError, match="wrote no .*metrics.json"):  # an output the block forgot is a failure too
        with atomic_outputs(*finals) as (model, plots, metrics):
            model.write_bytes(b"new model")
            plots.mkdir()
    assert _tree(tmp_path) == before


@pytest.mark.slow
def test_the_threshold_stage_keeps_its_previous_outputs_when_it_fails_while_writing(tmp_path, monkeypatch):
    """The bundle and its checksum are written, then the plots fail: the previous bundle, checksum, plots and
    metrics must all be as they were (the API would otherwise load a bundle whose metrics are another run's)."""
    from stages import threshold
    from tests.server import MODELS, require_models

    require_models()
    out = tmp_path / "out"
    out.mkdir()
    for name, data in (("bundle.joblib", b"previous bundle"), ("bundle.joblib.sha256", b"previous digest\n"),
                       ("threshold.json", b"{}\n")):
        (out / name).write_bytes(data)
    (out / "plots").mkdir()
    (out / "plots" / "cost.json").write_text("[]\n")
    before = _tree(out)
    args = ["--predictions", str(MODELS.parent / "data" / "predictions"), "--model", str(MODELS / "model.joblib"),
            "--features", str(MODELS.parent / "data" / "features"), "--bundle", str(out / "bundle.joblib"),
            "--plots", str(out / "plots"), "--metrics", str(out / "threshold.json")]
    written = []

    def failing_rows(path, rows):
        written.append(sorted(p.name for p in path.parent.parent.parent.rglob("bundle.joblib*")))
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(threshold, "write_rows", failing_rows)
    with pytest.raises(OSError, match="No space left"):
        threshold.main(args)
    assert written and written[0].count("bundle.joblib") == 2  # the new bundle was written (in scratch) first
    assert _tree(out) == before and sorted(p.name for p in out.iterdir()) == sorted(
        ["bundle.joblib", "bundle.joblib.sha256", "threshold.json", "plots"])
    monkeypatch.undo()
    assert threshold.main(args) == 0  # and the same call without the fault replaces all four
    from creditscore.serving.bundle import Bundle, load

    assert load(out / "bundle.joblib", Bundle).threshold == json.loads((out / "threshold.json").read_text())["threshold"]
    assert sorted(p.name for p in (out / "plots").iterdir()) == sorted(
        p.name for p in (MODELS.parent / "plots" / "threshold").iterdir())
