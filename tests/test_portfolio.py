"""Expected loss and segment figures on tiny hand-built data, with exact expected values."""
from __future__ import annotations

import numpy as np
import pytest

from creditscore.decision.portfolio import book, expected_loss, level_key, segment_figures


def test_expected_loss_is_pd_times_exposure_times_lgd():
    assert expected_loss(np.array([0.1, 0.5]), np.array([1000.0, np.nan]), 0.4).tolist() == [40.0, 0.0]


def test_the_approved_book_at_the_threshold_by_hand():
    y = np.array([0, 1, 0, 1])
    pd_ = np.array([0.05, 0.2, 0.6, 0.9])
    ead = np.array([1000.0, 2000.0, 3000.0, 4000.0])
    refused = pd_ >= 0.5  # the first two are approved; the second is a defaulter
    out = book(y, pd_, ead, refused, 0.5)
    assert out["approved"] == 2 and out["exposure_approved"] == 3000.0
    assert out["expected_loss_approved"] == pytest.approx(0.05 * 1000 * 0.5 + 0.2 * 2000 * 0.5)  # 25 + 200
    assert out["expected_loss_rate_approved"] == pytest.approx(225 / 3000)
    assert out["observed_loss_approved"] == 1000.0  # the approved defaulter's 2,000 at an LGD of 0.5
    assert out["expected_loss_all_applicants"] == pytest.approx(225 + 0.6 * 3000 * 0.5 + 0.9 * 4000 * 0.5)
    assert out["expected_loss_per_approved_client"] == pytest.approx(112.5)


def test_segments_by_hand_and_a_small_one_is_flagged():
    y = np.array([0, 0, 1, 1, 0, 1])
    pd_ = np.array([0.1, 0.3, 0.2, 0.8, 0.5, 0.4])
    refused = pd_ >= 0.45
    ead = np.full(6, 100.0)
    labels = np.array(["a", "a", "a", "a", "b", "b"])
    out = segment_figures(y, pd_, refused, ead, 1.0, {"kind": labels}, min_defaults=2)["kind"]
    a = out["a"]  # pairs (defaulter, good): (0.2 vs 0.1, 0.3) and (0.8 vs both): 3 of 4 ordered
    assert (a["clients"], a["defaulters"], a["default_rate"], a["approval_rate"]) == (4, 2, 0.5, 0.75)
    assert a["auc"] == 0.75 and a["gini"] == 0.5 and a["too_small"] is False
    assert a["expected_loss_approved"] == pytest.approx(10 + 30 + 20)
    b = out["b"]  # one defaulter, one good client: judged, but too small
    assert b["auc"] == 0.0 and b["too_small"] is True and b["approval_rate"] == 0.5
    only_good = segment_figures(np.zeros(3), np.array([0.1, 0.2, 0.3]), np.zeros(3, bool), np.ones(3), 1.0,
                                {"k": np.array(["x", "x", "x"])}, 1)["k"]["x"]
    assert only_good["auc"] is None and only_good["too_small"] is True


def test_segment_levels_read_in_order():
    levels = ["unknown", "300,000+", "100,000-149,999", "<100,000", "Revolving loans", "150,000-199,999"]
    assert sorted(levels, key=level_key) == ["<100,000", "100,000-149,999", "150,000-199,999", "300,000+",
                                             "Revolving loans", "unknown"]
