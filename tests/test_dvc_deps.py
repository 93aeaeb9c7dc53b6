"""dvc.yaml's code deps are exactly what each stage imports, so DVC never misjudges what a change invalidates."""
from __future__ import annotations

import yaml

from creditscore.config import ROOT
from tools.dvc_deps import closure, expected, module_file, rewrite

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def test_every_stage_declares_exactly_the_code_it_runs():
    stale = {name: deps for name, deps in expected(STAGES).items() if deps != STAGES[name].get("deps", [])}
    assert stale == {}, "run python tools/dvc_deps.py"


def test_a_missing_and_an_unused_dependency_are_both_seen():
    stage = dict(STAGES["threshold"])
    stage["deps"] = [d for d in stage["deps"] if d != "creditscore/decision/calibration.py"]
    assert "creditscore/decision/calibration.py" in expected({"threshold": stage})["threshold"]
    stage["deps"] = ["creditscore/synthetic/realism.py", *STAGES["threshold"]["deps"]]
    assert "creditscore/synthetic/realism.py" not in expected({"threshold": stage})["threshold"]


def test_nested_imports_count_and_the_serving_package_is_not_everyones_dependency():
    prepare = {str(f.relative_to(ROOT)) for f in closure(module_file("stages.prepare"))}
    assert "creditscore/errors.py" in prepare and "creditscore/data/cleaning.py" in prepare
    assert not any(f.startswith("creditscore/serving/") for f in prepare)  # stage.py no longer pulls it in
    train = {str(f.relative_to(ROOT)) for f in closure(module_file("stages.train"))}
    assert "creditscore/serving/bundle.py" in train


def test_rewrite_replaces_only_the_deps_lists():
    text = ("stages:\n  a:\n    cmd: python -m stages.a\n    deps:\n      - old.py\n      - data/x\n"
            "    params:\n      - seed\n  b:\n    cmd: python -m stages.b\n    outs:\n      - y\n")
    assert rewrite(text, {"a": ["new.py", "data/x"], "b": ["z.py"]}) == (
        "stages:\n  a:\n    cmd: python -m stages.a\n    deps:\n      - new.py\n      - data/x\n"
        "    params:\n      - seed\n  b:\n    cmd: python -m stages.b\n    outs:\n      - y\n")


def test_an_explanation_figure_does_not_rebuild_what_the_api_serves():
    """The serving reference is its own stage: the figures' module is the explain stage's alone, and the reference
    stage reads the explain stage's importance file, not its figures."""
    assert [n for n, s in STAGES.items() if "creditscore/explanation/figures.py" in s.get("deps", [])] == ["explain"]
    assert "models/reference.joblib" in STAGES["reference"]["outs"]
    assert "models/reference.joblib" not in STAGES["explain"]["outs"]
    assert "reports/explain" not in STAGES["reference"]["deps"]
