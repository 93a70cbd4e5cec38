"""Metrics checked against values computed by hand."""

import numpy as np
import pytest

from training.metrics import calibration_slope_intercept, expected_calibration_error, metric_set


def test_ece_by_hand():
    y = np.array([0, 0, 1, 1, 1])
    p = np.array([0.05, 0.15, 0.15, 0.85, 0.95])
    # bins: [0,.1): {0.05 -> y 0}: |0 - .05| * 1/5 ; [.1,.2): {.15,.15 -> y 0,1}: |.5 - .15| * 2/5 ;
    # [.8,.9): {.85 -> 1}: .15 * 1/5 ; [.9,1]: {.95 -> 1}: .05 * 1/5
    expected = 0.05 / 5 + 0.35 * 2 / 5 + 0.15 / 5 + 0.05 / 5
    assert expected_calibration_error(y, p) == pytest.approx(expected)


def test_brier_log_loss_auc_by_hand():
    y = np.array([1, 0, 1, 0])
    p = np.array([0.8, 0.4, 0.6, 0.2])
    m = metric_set(y, p)
    assert m["brier"] == pytest.approx((0.04 + 0.16 + 0.16 + 0.04) / 4)
    assert m["log_loss"] == pytest.approx(-(np.log(0.8) + np.log(0.6) + np.log(0.6) + np.log(0.8)) / 4)
    assert m["roc_auc"] == 1.0
    assert m["pr_auc"] == 1.0
    assert m["observed_rate"] == 0.5 and m["mean_probability"] == pytest.approx(0.5)


def test_auc_half_when_ranking_is_half_right():
    m = metric_set(np.array([1, 0, 1, 0]), np.array([0.9, 0.8, 0.1, 0.2]))
    assert m["roc_auc"] == 0.5


def test_calibration_slope_and_intercept_recover_a_known_miscalibration():
    rng = np.random.default_rng(0)
    logit = rng.normal(-2, 1.2, 200_000)
    y = rng.random(len(logit)) < 1 / (1 + np.exp(-logit))
    # a model that doubles every log-odds and adds 0.5 has slope 0.5, intercept -0.25 + ... :
    # true = (reported - 0.5) / 2  ->  slope 0.5, intercept -0.25
    reported = 1 / (1 + np.exp(-(2 * logit + 0.5)))
    slope, intercept = calibration_slope_intercept(y.astype(int), reported)
    assert slope == pytest.approx(0.5, abs=0.02) and intercept == pytest.approx(-0.25, abs=0.03)
    slope, intercept = calibration_slope_intercept(y.astype(int), 1 / (1 + np.exp(-logit)))
    assert slope == pytest.approx(1.0, abs=0.02) and intercept == pytest.approx(0.0, abs=0.03)
