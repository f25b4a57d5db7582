"""RegressionHead (z-scored targets, original units out) and regression_metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import mean_absolute_error, mean_absolute_percentage_error, mean_squared_error, r2_score

from domainclip.errors import DataError
from domainclip.heads.regression import MAPE_RELATIVE_EPSILON, RegressionHead, regression_metrics


def _task(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 8)).astype(np.float32)
    y = np.column_stack([np.sin(x[:, 0]) + 0.5 * x[:, 1] ** 2, x[:, 2] - x[:, 3]])
    return x, y + 0.05 * rng.normal(size=y.shape)


def test_learns_two_targets_of_very_different_scales():
    x, y = _task(700, 0)
    y = y * np.array([1e4, 1e-3])  # e.g. population and a rate
    head = RegressionHead(hidden=(64,), dropout=0.0, lr=3e-3, max_epochs=80, batch_size=64, seed=0)
    head.fit(torch.from_numpy(x[:500]), y[:500], x[500:600], y[500:600])
    pred = head.predict(x[600:])
    out = regression_metrics(y[600:], pred, target_names=["population", "rate"])
    assert out["per_target"]["population"]["r2"] > 0.8 and out["per_target"]["rate"]["r2"] > 0.8
    assert out["per_target"]["population"]["rmse"] > 100 * out["per_target"]["rate"]["rmse"]  # original units
    assert out["r2"] == pytest.approx(np.mean([v["r2"] for v in out["per_target"].values()]))


def test_targets_are_z_scored_so_an_affine_change_of_units_changes_predictions_alike():
    x, y = _task(120, 3)
    fit = {"hidden": (16,), "dropout": 0.0, "max_epochs": 20, "batch_size": 32, "seed": 0}
    base = RegressionHead(**fit).fit(x[:100], y[:100, 0]).predict(x[100:])
    head = RegressionHead(**fit).fit(x[:100], 1000.0 * y[:100, 0] + 5.0)
    assert head.y_scaler_.mean_[0] == pytest.approx(1000.0 * y[:100, 0].mean() + 5.0)
    # the MLP sees the same z-scored targets, so only the units of its predictions change
    assert head.predict(x[100:]) == pytest.approx(1000.0 * base + 5.0, rel=1e-4, abs=1e-2)


def test_one_target_gives_one_dimensional_predictions():
    x, y = _task(100, 1)
    pred = RegressionHead(hidden=(8,), max_epochs=3).fit(x, y[:, 0]).predict(x)
    assert pred.shape == (100,)


def test_metrics_by_hand():
    out = regression_metrics([1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 6.0])
    assert out["mae"] == pytest.approx(0.5)
    assert out["rmse"] == pytest.approx(1.0)
    assert out["r2"] == pytest.approx(1 - 4.0 / 5.0)
    assert "per_target" not in out


def test_metrics_equal_scikit_learn_including_mape():
    truth = np.array([[120.0, 0.8], [40.0, 0.5], [310.0, 0.2], [75.0, 0.6]])
    pred = np.array([[100.0, 0.7], [55.0, 0.5], [280.0, 0.3], [70.0, 0.4]])
    out = regression_metrics(truth, pred, target_names=["density", "ndvi"])
    for k, name in enumerate(["density", "ndvi"]):
        scores = out["per_target"][name]
        assert scores["r2"] == pytest.approx(r2_score(truth[:, k], pred[:, k]))
        assert scores["rmse"] == pytest.approx(np.sqrt(mean_squared_error(truth[:, k], pred[:, k])))
        assert scores["mae"] == pytest.approx(mean_absolute_error(truth[:, k], pred[:, k]))
        assert scores["mape"] == pytest.approx(mean_absolute_percentage_error(truth[:, k], pred[:, k]))
    assert out["mape"] == pytest.approx(np.mean([out["per_target"][n]["mape"] for n in ("density", "ndvi")]))
    assert regression_metrics([2.0, 4.0], [3.0, 3.0])["mape"] == pytest.approx((0.5 + 0.25) / 2)


def test_mape_is_skipped_with_a_reason_when_a_true_value_is_near_zero():
    near_zero = MAPE_RELATIVE_EPSILON * 0.5 * 4.0  # below the threshold relative to the largest |y| (4)
    out = regression_metrics([near_zero, 1.0, -4.0], [0.1, 1.1, -3.0])
    assert "mape" not in out and out["mape_skipped"].startswith("1 of 3 true values")
    assert out["mae"] == pytest.approx(mean_absolute_error([near_zero, 1.0, -4.0], [0.1, 1.1, -3.0]))
    both = regression_metrics([[0.0, 2.0], [1.0, 3.0]], [[0.5, 2.0], [1.0, 3.5]], target_names=["ndvi", "density"])
    assert "mape" not in both and "ndvi" in both["mape_skipped"]
    assert "mape_skipped" in both["per_target"]["ndvi"] and both["per_target"]["density"]["mape"] > 0
    assert "mape" in regression_metrics([MAPE_RELATIVE_EPSILON * 8.0, 4.0], [0.0, 4.0])  # at 2x the threshold


def test_bad_input_is_named():
    x, y = _task(20, 2)
    with pytest.raises(DataError, match="non-finite targets in rows \\[3\\]"):
        RegressionHead().fit(x, np.r_[y[:3, 0], np.nan, y[4:, 0]])
    with pytest.raises(DataError, match="same shape"):
        regression_metrics([1.0, 2.0], [1.0, 2.0, 3.0])
