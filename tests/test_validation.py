"""Gini, KS, score bands and calibration error: exact values on ten hand-built clients."""
from __future__ import annotations

import numpy as np
import pytest

from creditscore.decision.validation import (
    band_of,
    expected_calibration_error,
    gini,
    ks,
    score_bands,
    validator_figures,
)

Y = np.array([0, 0, 1, 0, 1, 1, 0, 0, 0, 1])
P = np.array([0.1, 0.2, 0.3, 0.15, 0.8, 0.6, 0.05, 0.4, 0.25, 0.9])


def test_gini_and_ks_by_hand():
    # 23 of the 24 (defaulter, good client) pairs are ranked right (0.3 < 0.4 is the one wrong): AUC 23/24
    assert gini(Y, P) == pytest.approx(2 * 23 / 24 - 1)
    # refusing from 0.3 up catches the 4 defaulters and 1 of the 6 good clients: KS = 1 - 1/6
    assert ks(Y, P) == (pytest.approx(5 / 6), 0.3)


def test_equal_count_bands_by_hand():
    assert band_of(P, 5).tolist() == [1, 2, 3, 2, 5, 4, 1, 4, 3, 5]
    assert band_of(np.array([0.5, 0.5, 0.5]), 2).tolist() == [1, 1, 2]  # ties keep their order: stable bands
    bands = score_bands(Y, P, 5)
    assert [(b["clients"], b["defaults"], b["default_rate"]) for b in bands] == [(2, 0, 0.0), (2, 0, 0.0), (2, 1, 0.5),
                                                                                 (2, 1, 0.5), (2, 2, 1.0)]
    assert [(b["min_proba"], b["max_proba"]) for b in bands] == [(0.05, 0.1), (0.15, 0.2), (0.25, 0.3), (0.4, 0.6),
                                                                 (0.8, 0.9)]
    assert [b["cumulative_approval_rate"] for b in bands] == [0.2, 0.4, 0.6, 0.8, 1.0]
    assert [b["cumulative_default_rate"] for b in bands] == [0.0, 0.0, 0.166667, 0.25, 0.4]


def test_expected_calibration_error_by_hand():
    # |mean P - default rate| per band: 0.075, 0.175, 0.225, 0, 0.15; two clients each, ten in all
    assert expected_calibration_error(Y, P, 5) == pytest.approx((0.075 + 0.175 + 0.225 + 0 + 0.15) * 2 / 10)
    assert expected_calibration_error(np.array([0, 1, 0, 1]), np.array([0.5, 0.5, 0.5, 0.5]), 2) == 0.0


def test_validator_figures_in_one_dictionary():
    figures = validator_figures(Y, P, 5)
    assert figures["gini"] == 0.91667 and figures["ks"] == 0.83333 and figures["ks_probability"] == 0.3
    assert figures["brier"] == round(float(np.mean((P - Y) ** 2)), 6) and len(figures["bands"]) == 5
