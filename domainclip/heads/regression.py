"""Regression head on frozen embeddings (UrbanCLIP style) and its metrics R², RMSE, MAE, MAPE.

Features and targets are z-scored with training statistics (targets of very
different scales — population, GDP, carbon — then train equally well); the small
MLP is fitted with MSE and early stopping on a validation split, and predictions
are returned in the original units. Metrics are scikit-learn's, on the original
units. MAPE divides by ``|y|``, so a target at or near 0 makes it meaningless
(scikit-learn then divides by machine epsilon and returns astronomically large values): when
any true value of a target has ``|y| < MAPE_RELATIVE_EPSILON * max |y|`` (a unit-free
test), ``mape`` is left out and ``mape_skipped`` says why.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from domainclip.errors import DataError
from domainclip.heads.inputs import ArrayLike, features_2d, to_numpy
from domainclip.heads.training import MinibatchMLPHead

MAPE_RELATIVE_EPSILON = 1e-3  # a true value this small next to the largest one would dominate the MAPE


def _targets(y: ArrayLike, n: int, what: str) -> np.ndarray:
    values = to_numpy(y, what)
    if len(values) != n:
        raise DataError(f"{what} has {len(values)} rows but the features have {n}")
    values = values.reshape(n, -1)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise DataError(f"{what}: non-finite targets in rows {np.flatnonzero(bad)[:5].tolist()}")
    return values


class RegressionHead(MinibatchMLPHead):
    """``RegressionHead(hidden=(256,)).fit(X, y, X_val, y_val).predict(X)``; ``y`` is (n,) or (n, n_targets)."""

    def __init__(
        self,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.1,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 300,
        batch_size: int | None = 256,
        patience: int = 20,
        seed: int = 0,
    ) -> None:
        super().__init__(
            hidden,
            dropout,
            lr=lr,
            weight_decay=weight_decay,
            max_epochs=max_epochs,
            batch_size=batch_size,
            patience=patience,
            seed=seed,
        )

    def _scaled_targets(self, y: ArrayLike, n: int, what: str) -> torch.Tensor:
        return torch.from_numpy(self.y_scaler_.transform(_targets(y, n, what))).float()

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        X_val: ArrayLike | None = None,
        y_val: ArrayLike | None = None,
    ) -> RegressionHead:
        from sklearn.preprocessing import StandardScaler

        x = features_2d(X, "X")
        targets = _targets(y, len(x), "y")
        if len(x) < 2:
            raise DataError("X: at least two training samples are needed to z-score the targets")
        self.one_target_ = to_numpy(y, "y").ndim == 1
        self.x_scaler_, self.y_scaler_ = StandardScaler().fit(x), StandardScaler().fit(targets)
        t = torch.from_numpy(self.y_scaler_.transform(targets)).float()
        self._fit_module(self.x_scaler_, x, t, X_val, y_val, self._scaled_targets, F.mse_loss)
        return self

    @torch.no_grad()
    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions in the original target units: (n,) or (n, n_targets)."""
        z = self._scaled(self.x_scaler_, X, "X")
        pred = self.y_scaler_.inverse_transform(self.module_(z).double().numpy())
        return pred[:, 0] if self.one_target_ else pred


def _mape(truth: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    """``{"mape": fraction}`` (scikit-learn's, 0.1 = 10 %), or ``{"mape_skipped": why}`` when a true value is at or
    near 0 (see the module docstring)."""
    from sklearn.metrics import mean_absolute_percentage_error

    size = np.abs(truth)
    near_zero = int((size < MAPE_RELATIVE_EPSILON * size.max()).sum()) if size.max() > 0 else len(truth)
    if near_zero:
        return {
            "mape_skipped": f"{near_zero} of {len(truth)} true values have |y| < {MAPE_RELATIVE_EPSILON:g} x max |y| "
            "(MAPE divides by |y|)"
        }
    return {"mape": float(mean_absolute_percentage_error(truth, pred))}


def _scores(truth: np.ndarray, pred: np.ndarray) -> dict[str, Any]:
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    return {
        "r2": float(r2_score(truth, pred)),
        "rmse": float(np.sqrt(mean_squared_error(truth, pred))),
        "mae": float(mean_absolute_error(truth, pred)),
        **_mape(truth, pred),
    }


def regression_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, target_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """``r2``, ``rmse``, ``mae``, ``mape`` (averaged over targets; ``mape_skipped`` instead when a target has a true
    value near 0), plus ``per_target`` when there are several."""
    truth, pred = to_numpy(y_true, "y_true"), to_numpy(y_pred, "y_pred")
    if truth.shape != pred.shape:
        raise DataError(f"y_true {truth.shape} and y_pred {pred.shape} must have the same shape")
    truth, pred = truth.reshape(len(truth), -1), pred.reshape(len(pred), -1)
    if len(truth) < 2:
        raise DataError("regression metrics need at least two samples (R² is undefined for one)")
    names = list(target_names) if target_names is not None else [str(k) for k in range(truth.shape[1])]
    per_target = [_scores(truth[:, k], pred[:, k]) for k in range(truth.shape[1])]
    out: dict[str, Any] = {m: float(np.mean([s[m] for s in per_target])) for m in ("r2", "rmse", "mae")}
    skipped = [name for name, s in zip(names, per_target) if "mape_skipped" in s]
    if not skipped:
        out["mape"] = float(np.mean([s["mape"] for s in per_target]))
    elif len(per_target) == 1:
        out["mape_skipped"] = per_target[0]["mape_skipped"]
    else:
        out["mape_skipped"] = f"targets {', '.join(skipped)} have true values near 0 (see per_target)"
    if truth.shape[1] > 1:
        out["per_target"] = dict(zip(names, per_target))
    return out


__all__ = ["MAPE_RELATIVE_EPSILON", "RegressionHead", "regression_metrics"]
