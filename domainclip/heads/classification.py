"""Classification heads on frozen embeddings: a cross-validated linear probe and a torch MLP for multi-label.

* :class:`LinearProbe` — scikit-learn logistic regression on z-scored features; the
  L2 strength ``C`` is chosen by stratified k-fold cross-validation (log loss) on
  the training split only (``LogisticRegressionCV``). Binary / multi-class labels
  (any values) or a multi-label 0/1 matrix (one probe per label, NaN = unknown).
* :class:`MLPHead` — a torch MLP trained with a masked binary cross-entropy, so
  findings whose label is unknown (NaN, as in the generic manifest) are ignored,
  with early stopping on a validation split. ``module_`` is an ``nn.Sequential``
  that can be put on top of an encoder to fine-tune it.
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


def _check_classes(y: np.ndarray, what: str) -> int:
    """Number of CV folds the classes allow; every class needs at least two examples."""
    values, counts = np.unique(y, return_counts=True)
    if len(values) < 2:
        raise DataError(f"{what}: only one class ('{values[0]}') in the training labels; a classifier needs two")
    rare = [f"'{v}' ({c} example)" for v, c in zip(values, counts) if c < 2]
    if rare:
        raise DataError(
            f"{what}: class {', '.join(rare)}; choosing the regularisation by cross-validation "
            "needs at least 2 examples per class"
        )
    return int(counts.min())


def _logistic_cv(n_folds: int, cs: int, max_iter: int, seed: int) -> Any:
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.model_selection import StratifiedKFold

    options: dict[str, Any] = {
        "Cs": cs,
        "cv": StratifiedKFold(n_folds, shuffle=True, random_state=seed),
        "scoring": "neg_log_loss",
        "max_iter": max_iter,
    }
    params = LogisticRegressionCV().get_params()
    if "use_legacy_attributes" in params:  # scikit-learn >= 1.8: plain L2 and the simplified attributes
        options.update(l1_ratios=(0.0,), use_legacy_attributes=False)
    return LogisticRegressionCV(**options)


class LinearProbe:
    """``LinearProbe().fit(X, y).predict_proba(X)``; ``C_`` holds the chosen inverse regularisation."""

    def __init__(self, Cs: int = 10, cv: int = 5, max_iter: int = 2000, seed: int = 0) -> None:
        self.Cs, self.cv, self.max_iter, self.seed = Cs, cv, max_iter, seed

    def fit(self, X: ArrayLike, y: ArrayLike, label_names: Sequence[str] | None = None) -> LinearProbe:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        x = features_2d(X, "X")
        labels = np.asarray(y.detach().cpu().numpy() if isinstance(y, torch.Tensor) else y)
        if len(labels) != len(x):
            raise DataError(f"y has {len(labels)} rows but X has {len(x)}")
        self.multilabel_ = labels.ndim == 2
        columns = [labels] if not self.multilabel_ else [labels[:, c].astype(float) for c in range(labels.shape[1])]
        names = list(label_names) if label_names is not None else [str(c) for c in range(len(columns))]
        self.models_ = []
        for name, column in zip(names, columns):
            known = ~np.isnan(column) if self.multilabel_ else np.ones(len(column), dtype=bool)
            what = f"y label {name!r}" if self.multilabel_ else "y"
            n_folds = min(self.cv, _check_classes(column[known], what))
            model = make_pipeline(StandardScaler(), _logistic_cv(n_folds, self.Cs, self.max_iter, self.seed))
            self.models_.append(model.fit(x[known], column[known]))
        self.n_features_in_ = x.shape[1]
        return self

    @property
    def C_(self) -> np.ndarray:
        """Chosen C per probe (one value, or one per label)."""
        return np.array([float(np.atleast_1d(m[-1].C_)[0]) for m in self.models_])

    @property
    def classes_(self) -> np.ndarray:
        return self.models_[0].classes_

    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        """(n, n_classes) like scikit-learn; multi-label: (n, n_labels) probability of each label."""
        x = features_2d(X, "X")
        if x.shape[1] != self.n_features_in_:
            raise DataError(f"X: {x.shape[1]} features, but the probe was fitted on {self.n_features_in_}")
        if not self.multilabel_:
            return self.models_[0].predict_proba(x)
        return np.column_stack([m.predict_proba(x)[:, list(m.classes_).index(1.0)] for m in self.models_])

    def predict(self, X: ArrayLike) -> np.ndarray:
        proba = self.predict_proba(X)
        if self.multilabel_:
            return (proba >= 0.5).astype(int)
        return self.classes_[np.argmax(proba, axis=1)]


def _masked_bce(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean binary cross-entropy over the known (non-NaN) targets; 0 if none is known."""
    known = ~torch.isnan(targets)
    if not bool(known.any()):
        return (logits * 0.0).sum()
    return F.binary_cross_entropy_with_logits(logits[known], targets[known])


class MLPHead(MinibatchMLPHead):
    """Multi-label MLP: ``MLPHead(hidden=(256,)).fit(X, Y, X_val, Y_val).predict_proba(X)`` -> (n, n_labels).

    ``Y`` is (n, L) of 0/1 with NaN for unknown labels (a 1-D 0/1 ``y`` is one label
    and gives (n,) probabilities).
    """

    def __init__(
        self,
        hidden: Sequence[int] = (256,),
        dropout: float = 0.1,
        *,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 200,
        batch_size: int | None = 256,
        patience: int = 10,
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

    def _targets(self, y: ArrayLike, n: int, what: str) -> torch.Tensor:
        labels = to_numpy(y, what)
        if len(labels) != n:
            raise DataError(f"{what} has {len(labels)} rows but the features have {n}")
        labels = labels.reshape(n, -1)
        known = ~np.isnan(labels)
        if not np.isin(labels[known], (0.0, 1.0)).all():
            raise DataError(f"{what}: labels must be 0, 1 or NaN (unknown)")
        return torch.from_numpy(labels).float()

    def fit(
        self,
        X: ArrayLike,
        y: ArrayLike,
        X_val: ArrayLike | None = None,
        y_val: ArrayLike | None = None,
    ) -> MLPHead:
        from sklearn.preprocessing import StandardScaler

        x = features_2d(X, "X")
        self.one_label_ = to_numpy(y, "y").ndim == 1
        targets = self._targets(y, len(x), "y")
        for c in range(targets.shape[1]):
            column = targets[:, c][~torch.isnan(targets[:, c])]
            if len(torch.unique(column)) < 2:
                raise DataError(f"y label {c}: needs both 0 and 1 among its known training values")
        self.scaler_ = StandardScaler().fit(x)
        self._fit_module(self.scaler_, x, targets, X_val, y_val, self._targets, _masked_bce)
        return self

    @torch.no_grad()
    def predict_proba(self, X: ArrayLike) -> np.ndarray:
        proba = torch.sigmoid(self.module_(self._scaled(self.scaler_, X, "X"))).double().numpy()
        return proba[:, 0] if self.one_label_ else proba


__all__ = ["LinearProbe", "MLPHead"]
