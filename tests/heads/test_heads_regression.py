"""RegressionHead (z-scored targets, original units out) and regression_metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from domainclip.errors import DataError
from domainclip.heads.regression import RegressionHead, regression_metrics


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


def test_bad_input_is_named():
    x, y = _task(20, 2)
    with pytest.raises(DataError, match="non-finite targets in rows \\[3\\]"):
        RegressionHead().fit(x, np.r_[y[:3, 0], np.nan, y[4:, 0]])
    with pytest.raises(DataError, match="same shape"):
        regression_metrics([1.0, 2.0], [1.0, 2.0, 3.0])
