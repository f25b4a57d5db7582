"""Regression head on frozen embeddings (UrbanCLIP style) and its metrics R², RMSE, MAE.

Features and targets are z-scored with training statistics (targets of very
different scales — population, GDP, carbon — then train equally well); the small
MLP is fitted with MSE and early stopping on a validation split, and predictions
are returned in the original units. Metrics are scikit-learn's.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from domainclip.errors import DataError
from domainclip.heads.inputs import ArrayLike, features_2d, to_numpy
from domainclip.heads.training import TrainingHistory, build_mlp, seeded, train_minibatch


def _targets(y: ArrayLike, n: int, what: str) -> np.ndarray:
    values = to_numpy(y, what)
    if len(values) != n:
        raise DataError(f"{what} has {len(values)} rows but the features have {n}")
    values = values.reshape(n, -1)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        raise DataError(f"{what}: non-finite targets in rows {np.flatnonzero(bad)[:5].tolist()}")
    return values


class RegressionHead:
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
        self.hidden = tuple(hidden)
        self.dropout, self.lr, self.weight_decay = dropout, lr, weight_decay
        self.max_epochs, self.batch_size, self.patience, self.seed = (
            max_epochs,
            batch_size,
            patience,
            seed,
        )
        self.history_: TrainingHistory | None = None

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
        self.n_features_in_ = x.shape[1]
        z = torch.from_numpy(self.x_scaler_.transform(x)).float()
        t = torch.from_numpy(self.y_scaler_.transform(targets)).float()
        val_loss = None
        if X_val is not None:
            if y_val is None:
                raise ValueError("X_val needs y_val")
            xv = self._features(X_val, "X_val")
            zv = torch.from_numpy(self.x_scaler_.transform(xv)).float()
            tv = torch.from_numpy(
                self.y_scaler_.transform(_targets(y_val, len(xv), "y_val"))
            ).float()
            val_loss = lambda m: float(F.mse_loss(m(zv), tv))
        with seeded(self.seed):
            self.module_ = build_mlp(z.shape[1], self.hidden, t.shape[1], self.dropout)
            self.history_ = train_minibatch(
                self.module_,
                lambda m, idx: F.mse_loss(m(z[idx]), t[idx]),
                len(z),
                val_loss=val_loss,
                lr=self.lr,
                weight_decay=self.weight_decay,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                patience=self.patience,
                seed=self.seed,
            )
        return self

    def _features(self, X: ArrayLike, name: str) -> np.ndarray:
        x = features_2d(X, name)
        if x.shape[1] != self.n_features_in_:
            raise DataError(
                f"{name}: {x.shape[1]} features, but the head was fitted on {self.n_features_in_}"
            )
        return x

    @torch.no_grad()
    def predict(self, X: ArrayLike) -> np.ndarray:
        """Predictions in the original target units: (n,) or (n, n_targets)."""
        z = torch.from_numpy(self.x_scaler_.transform(self._features(X, "X"))).float()
        pred = self.y_scaler_.inverse_transform(self.module_(z).double().numpy())
        return pred[:, 0] if self.one_target_ else pred


def regression_metrics(
    y_true: ArrayLike, y_pred: ArrayLike, target_names: Sequence[str] | None = None
) -> dict[str, Any]:
    """``r2``, ``rmse``, ``mae`` (averaged over targets), plus ``per_target`` when there are several."""
    from sklearn.metrics import mean_absolute_error, mean_squared_error, r2_score

    truth, pred = to_numpy(y_true, "y_true"), to_numpy(y_pred, "y_pred")
    if truth.shape != pred.shape:
        raise DataError(f"y_true {truth.shape} and y_pred {pred.shape} must have the same shape")
    truth, pred = truth.reshape(len(truth), -1), pred.reshape(len(pred), -1)
    if len(truth) < 2:
        raise DataError("regression metrics need at least two samples (R² is undefined for one)")

    def scores(t: np.ndarray, p: np.ndarray) -> dict[str, float]:
        return {
            "r2": float(r2_score(t, p)),
            "rmse": float(np.sqrt(mean_squared_error(t, p))),
            "mae": float(mean_absolute_error(t, p)),
        }

    per_target = [scores(truth[:, k], pred[:, k]) for k in range(truth.shape[1])]
    out: dict[str, Any] = {
        m: float(np.mean([s[m] for s in per_target])) for m in ("r2", "rmse", "mae")
    }
    if truth.shape[1] > 1:
        names = (
            list(target_names)
            if target_names is not None
            else [str(k) for k in range(truth.shape[1])]
        )
        out["per_target"] = dict(zip(names, per_target))
    return out


__all__ = ["RegressionHead", "regression_metrics"]
