"""Matured outcomes against the scores, and the estimate made before they mature: exact values by hand."""
from __future__ import annotations

import itertools

import numpy as np
import polars as pl
import pytest

from creditscore.errors import DataError
from creditscore.monitoring.performance import expected_auc, performance, report


def test_expected_auc_by_hand_and_against_every_pair():
    # (0.8 a defaulter, 0.2 good): weight 0.8 x 0.8 ordered right; (0.2 a defaulter, 0.8 good): 0.2 x 0.2 wrong
    assert expected_auc(np.array([0.2, 0.8])) == pytest.approx(0.64 / 0.68)
    assert expected_auc(np.array([0.3, 0.3])) == pytest.approx(0.5)  # a tie is one half
    assert expected_auc(np.array([0.5])) is None
    p = np.round(np.random.default_rng(1).random(25), 1)  # many ties
    pairs = [(p[i] * (1 - p[j]), 1.0 if p[i] > p[j] else 0.5 if p[i] == p[j] else 0.0)
             for i, j in itertools.permutations(range(len(p)), 2)]
    assert expected_auc(p) == pytest.approx(sum(w * v for w, v in pairs) / sum(w for w, _ in pairs), rel=1e-12)


def test_realised_figures_by_cohort_and_the_estimate_beside_them():
    scored = pl.DataFrame({"SK_ID_CURR": [1, 2, 3, 4, 5], "proba": [0.1, 0.4, 0.35, 0.8, 0.5]})
    outcomes = pl.DataFrame({"SK_ID_CURR": [4, 1, 2, 3, 9], "APPLICATION_MONTH": ["2025-02", "2025-01", "2025-01",
                                                                                  "2025-02", "2025-01"],
                             "TARGET": [1, 0, 1, 0, 1]})
    out = performance(scored, outcomes, min_cohort=2)
    assert (out["clients_scored"], out["matured"], out["unmatched_outcomes"]) == (5, 4, 1)
    r = out["realised"]  # clients 1..4: defaulters 2 (0.4) and 4 (0.8), good 1 (0.1) and 3 (0.35): all ordered
    assert (r["clients"], r["defaulters"], r["default_rate"], r["auc"]) == (4, 2, 0.5, 1.0)
    assert r["predicted_default_rate"] == pytest.approx(0.4125)
    assert out["estimated"]["auc"] == round(expected_auc(np.array([0.1, 0.4, 0.35, 0.8, 0.5])), 5)
    assert [c["month"] for c in out["cohorts"]] == ["2025-01", "2025-02"]
    assert out["cohorts"][0]["default_rate"] == 0.5 and out["cohorts"][0]["auc"] == 1.0
    assert performance(scored, outcomes, min_cohort=3)["cohorts"][0]["auc"] is None  # too few to judge
    nothing = performance(scored, None, min_cohort=2)
    assert nothing["realised"] is None and nothing["matured"] == 0
    assert "No matured outcome yet" in report(nothing) and "| 2025-02 | 2 | 1 |" in report(out)


def test_bad_outcomes_name_the_file_and_column(tmp_path):
    from stages.performance import read_outcomes

    path = tmp_path / "outcomes.csv"
    path.write_text("SK_ID_CURR,APPLICATION_MONTH,TARGET\n1,2025-01,0\n2,2025-01,2\n")
    with pytest.raises(DataError, match=r"outcomes.csv: column TARGET: 1 value\(s\) other than 0 or 1 \(first for "
                                        r"client 2\)"):
        read_outcomes(path)
    path.write_text("SK_ID_CURR,TARGET\n1,0\n")
    with pytest.raises(DataError, match="outcomes.csv: no column APPLICATION_MONTH"):
        read_outcomes(path)
    assert read_outcomes(tmp_path / "absent.csv") is None


def test_the_generator_writes_the_test_clients_outcomes(tiny_synthetic_dir):
    outcomes = pl.read_csv(tiny_synthetic_dir / "matured_outcomes.csv")
    test = pl.read_csv(tiny_synthetic_dir / "application_test.csv", columns=["SK_ID_CURR"])
    assert outcomes.columns == ["SK_ID_CURR", "APPLICATION_MONTH", "TARGET"]
    assert outcomes["SK_ID_CURR"].to_list() == test["SK_ID_CURR"].to_list()
    assert set(outcomes["TARGET"].unique().to_list()) <= {0, 1} and 0 < outcomes["TARGET"].mean() < 0.3
    assert outcomes["APPLICATION_MONTH"].n_unique() > 6
