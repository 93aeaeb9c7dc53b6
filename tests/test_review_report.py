"""The pull-request report script on two real commits of a temporary clone of this repository."""
from __future__ import annotations

import json
import subprocess

import pytest

from creditscore.config import ROOT
from tools.review_report import report

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A clone of HEAD, then a second commit that moves the hold-out AUC and the band plot, and nothing else."""
    repo = tmp_path_factory.mktemp("review") / "repo"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(repo)], check=True)
    train = json.loads((repo / "metrics" / "train.json").read_text())
    old = train["holdout_auc"]
    train["holdout_auc"] = round(old + 0.0028, 5)
    (repo / "metrics" / "train.json").write_text(json.dumps(train, indent=2, sort_keys=True))
    bands = json.loads((repo / "plots" / "threshold" / "bands.json").read_text())
    bands[0]["default_rate"] = round(bands[0]["default_rate"] + 0.01, 6)
    (repo / "plots" / "threshold" / "bands.json").write_text(json.dumps(bands))
    subprocess.run([*GIT, "commit", "-qam", "a change"], cwd=repo, check=True)
    return repo, old


def test_two_commits_become_a_table_of_exactly_the_changed_metrics(clone, tmp_path):
    repo, old = clone
    text = report("HEAD~1", repo, tmp_path)
    new = round(old + 0.0028, 5)
    assert f"| hold-out AUC | {old:.4f} | {new:.4f} | +0.0028 |" in text
    rows = [line for line in text.splitlines() if line.startswith("| metrics/")]
    assert rows == [f"| metrics/train.json | holdout_auc | {old:.5f} | {new:.5f} | +0.00280 |"]
    assert "### Every changed metric (1)" in text
    threshold = json.loads((repo / "metrics" / "threshold.json").read_text())
    assert f"| hold-out cost per client | {threshold['holdout_cost_per_client']:.4f} | " \
           f"{threshold['holdout_cost_per_client']:.4f} |  |" in text   # unchanged: no change written
    assert (tmp_path / "report.md").read_text() == text


def test_only_the_changed_plot_is_drawn(clone, tmp_path):
    repo, _ = clone
    text = report("HEAD~1", repo, tmp_path)
    assert "### Changed plots (1)" in text and "(threshold_bands.png)" in text
    assert sorted(p.name for p in tmp_path.glob("*.png")) == ["threshold_bands.png"]
    assert (tmp_path / "threshold_bands.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_same_commit_reports_no_change_and_a_bad_base_is_named(clone, tmp_path):
    repo, _ = clone
    text = report("HEAD", repo, tmp_path)
    assert "No metric changed." in text and "No plot changed." in text
    with pytest.raises(SystemExit, match="review_report: git rev-parse --short no-such-branch failed"):
        report("no-such-branch", repo, tmp_path)
