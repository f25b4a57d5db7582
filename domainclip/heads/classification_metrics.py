"""AUC, average precision, F1 and balanced accuracy with bootstrap 95% CIs (binary, multi-class, multi-label).

Point estimates are scikit-learn's; intervals are percentile bootstraps over rows
(:mod:`domainclip.heads.bootstrap`). F1 and balanced accuracy need hard labels:
``score >= threshold`` for binary / multi-label scores, the arg-max class for
multi-class scores. Output is flat so it merges into ``metrics.json``: ``auc``,
``auc_ci_low``, ``auc_ci_high``, ``average_precision`` ..., ``f1`` ...,
``balanced_accuracy`` ...; multi-class adds ``recall_per_class`` (one recall per
column, whose mean is the balanced accuracy); multi-label adds ``per_label`` (the
same keys per label) and the top level holds macro averages over the labels that
have both classes.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from domainclip.errors import DataError
from domainclip.heads.bootstrap import (
    bootstrap_distributions,
    percentile_interval,
    weighted_auc,
    weighted_average_precision,
    weighted_balanced_accuracy,
    weighted_f1,
)
from domainclip.heads.inputs import ArrayLike, to_numpy

METRICS = ("auc", "average_precision", "f1", "balanced_accuracy")

# metric name -> vectorised weighted version of one binary problem (y, score, hard prediction, weights)
_WEIGHTED: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]] = {
    "auc": lambda y, s, p, w: weighted_auc(y, s, w),
    "average_precision": lambda y, s, p, w: weighted_average_precision(y, s, w),
    "f1": lambda y, s, p, w: weighted_f1(y, p, w),
    "balanced_accuracy": lambda y, s, p, w: weighted_balanced_accuracy(y, p, w),
}


def _with_ci(point: dict[str, float], boot: dict[str, np.ndarray]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in METRICS:
        low, high = percentile_interval(boot[name]) if boot else (None, None)
        out.update({name: point[name], f"{name}_ci_low": low, f"{name}_ci_high": high})
    return out


def _binary_point(y: np.ndarray, score: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import (
        average_precision_score,
        balanced_accuracy_score,
        f1_score,
        roc_auc_score,
    )

    return {
        "auc": float(roc_auc_score(y, score)),
        "average_precision": float(average_precision_score(y, score)),
        "f1": float(f1_score(y, pred)),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
    }


def _binary_labels(y: np.ndarray, what: str) -> np.ndarray:
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError(f"{what}: labels must be 0 or 1 (found {sorted(set(np.unique(y)) - {0.0, 1.0})[:5]})")
    counts = np.bincount(y.astype(int), minlength=2)
    if counts.min() == 0:
        raise DataError(
            f"{what}: only class {int(np.argmax(counts))} is present ({len(y)} samples); "
            "AUC and balanced accuracy need both classes"
        )
    return y.astype(bool)


def _binary(y: np.ndarray, score: np.ndarray, threshold: float, n_boot: int, seed: int) -> dict[str, Any]:
    y = _binary_labels(y, "y_true")
    pred = score >= threshold
    statistics = {name: (lambda w, f=f: f(y, score, pred, w)) for name, f in _WEIGHTED.items()}
    boot = bootstrap_distributions(statistics, len(y), n_boot, seed) if n_boot else {}
    return {
        **_with_ci(_binary_point(y, score, pred), boot),
        "n": len(y),
        "n_positive": int(y.sum()),
    }


def per_class_recall(matrix: np.ndarray) -> np.ndarray:
    """Recall of each class from a confusion matrix (rows true, columns predicted, as scikit-learn's); NaN for a
    class with no true example, whose recall is undefined. Their mean is the balanced accuracy."""
    counts = np.asarray(matrix, dtype=np.float64)
    true = counts.sum(axis=1)
    return np.divide(np.diag(counts), true, out=np.full(len(true), np.nan), where=true > 0)


def _class_statistic(
    metric: str, onehot: np.ndarray, score: np.ndarray, pred_onehot: np.ndarray
) -> Callable[[np.ndarray], np.ndarray]:
    """Vectorised multi-class ``metric`` as scikit-learn averages it (one-vs-rest, macro)."""
    n_classes = score.shape[1]

    def statistic(w: np.ndarray) -> np.ndarray:
        if metric == "auc" and n_classes == 2:
            return weighted_auc(onehot[:, 1], score[:, 1], w)
        if metric == "balanced_accuracy":  # mean recall over the classes present in the resample
            tp_fn = np.stack([w @ onehot[:, c] for c in range(n_classes)])
            tp = np.stack([w @ (onehot[:, c] & pred_onehot[:, c]) for c in range(n_classes)])
            per_class = np.divide(tp, tp_fn, out=np.full_like(tp, np.nan), where=tp_fn > 0)
        else:
            per_class = np.stack(
                [_WEIGHTED[metric](onehot[:, c], score[:, c], pred_onehot[:, c], w) for c in range(n_classes)]
            )
        if metric == "auc" or metric == "average_precision":  # undefined when a class is missing
            return np.where(np.isnan(per_class).any(axis=0), np.nan, per_class.mean(axis=0))
        with warnings.catch_warnings():  # a resample where every class is undefined gives NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            return np.nanmean(per_class, axis=0)  # F1 / recall of classes absent from the resample are left out

    return statistic


def _multiclass(y: np.ndarray, score: np.ndarray, n_boot: int, seed: int) -> dict[str, Any]:
    from sklearn.metrics import (
        average_precision_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        roc_auc_score,
    )

    n_classes = score.shape[1]
    if not np.allclose(score.sum(axis=1), 1.0, atol=1e-4):
        raise DataError("y_score: multi-class scores must be probabilities whose rows sum to 1 (softmax outputs)")
    if not np.isin(y, np.arange(n_classes)).all():
        raise DataError(f"y_true: class indices must be integers 0..{n_classes - 1} (one per column of y_score)")
    counts = np.bincount(y.astype(int), minlength=n_classes)
    if (counts < 1).any():
        raise DataError(
            f"y_true: classes {np.flatnonzero(counts < 1).tolist()} have no example; "
            "every column of y_score needs at least one"
        )
    y = y.astype(int)
    onehot = np.eye(n_classes, dtype=bool)[y]
    pred = np.argmax(score, axis=1)
    auc = roc_auc_score(y, score[:, 1]) if n_classes == 2 else roc_auc_score(y, score, multi_class="ovr")
    point = {
        "auc": float(auc),
        "average_precision": float(average_precision_score(onehot, score, average="macro")),
        "f1": float(f1_score(y, pred, average="macro")),
        "balanced_accuracy": float(balanced_accuracy_score(y, pred)),
    }
    pred_onehot = np.eye(n_classes, dtype=bool)[pred]
    statistics = {m: _class_statistic(m, onehot, score, pred_onehot) for m in METRICS}
    boot = bootstrap_distributions(statistics, len(y), n_boot, seed) if n_boot else {}
    recall = per_class_recall(confusion_matrix(y, pred, labels=list(range(n_classes))))
    return {
        **_with_ci(point, boot),
        "recall_per_class": [float(r) for r in recall],
        "n": len(y),
        "n_classes": int(n_classes),
    }


def _multilabel(
    y: np.ndarray, score: np.ndarray, threshold: float, n_boot: int, seed: int, names: Sequence[str]
) -> dict[str, Any]:
    per_label: dict[str, dict[str, Any]] = {}
    skipped: list[str] = []
    statistics: dict[tuple[str, str], Callable[[np.ndarray], np.ndarray]] = {}
    for c, name in enumerate(names):
        known = ~np.isnan(y[:, c])
        if not np.isin(y[known, c], (0.0, 1.0)).all():
            raise DataError(f"y_true label {name!r}: values must be 0, 1 or NaN (unknown)")
        if len(np.unique(y[known, c])) < 2:
            skipped.append(name)
            continue
        yb, sc = y[known, c].astype(bool), score[known, c]
        per_label[name] = {
            **_binary_point(yb, sc, sc >= threshold),
            "n": int(known.sum()),
            "n_positive": int(yb.sum()),
        }
        # rows are resampled jointly across labels (valid macro interval); unknown labels get weight 0
        y_all, s_all = np.where(known, y[:, c], 0.0).astype(bool), np.where(known, score[:, c], 0.0)
        for m, f in _WEIGHTED.items():
            statistics[(name, m)] = lambda w, f=f, y_all=y_all, s_all=s_all, known=known: f(
                y_all, s_all, s_all >= threshold, w * known
            )
    if not per_label:
        raise DataError(f"y_true: no label has both classes among its known values ({', '.join(skipped)})")
    boot = bootstrap_distributions(statistics, len(y), n_boot, seed) if n_boot else {}
    for name, values in per_label.items():
        per_label[name] = {
            **_with_ci(values, {m: boot[(name, m)] for m in METRICS} if boot else {}),
            "n": values["n"],
            "n_positive": values["n_positive"],
        }
    point = {m: float(np.mean([v[m] for v in per_label.values()])) for m in METRICS}
    macro_boot: dict[str, np.ndarray] = {}
    if boot:
        with warnings.catch_warnings():  # a resample in which no label is defined gives NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            macro_boot = {m: np.nanmean(np.stack([boot[(name, m)] for name in per_label]), axis=0) for m in METRICS}
    return {
        **_with_ci(point, macro_boot),
        "n": len(y),
        "per_label": per_label,
        "skipped_labels": skipped,
    }


def classification_metrics(
    y_true: ArrayLike,
    y_score: ArrayLike,
    n_boot: int = 1000,
    seed: int = 0,
    *,
    threshold: float = 0.5,
    label_names: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Metrics with bootstrap 95% CIs; the task is read from the shapes.

    * binary: ``y_true`` (n,) 0/1, ``y_score`` (n,) score of class 1;
    * multi-class: ``y_true`` (n,) class indices, ``y_score`` (n, C) probabilities;
    * multi-label: ``y_true`` (n, C) 0/1 with NaN for unknown, ``y_score`` (n, C);
      labels with a single known class are skipped and listed in ``skipped_labels``.

    ``n_boot=0`` skips the intervals (their keys are ``None``).
    """
    y = to_numpy(y_true, "y_true")
    score = to_numpy(y_score, "y_score")
    if len(y) != len(score):
        raise DataError(f"y_true has {len(y)} rows but y_score has {len(score)}")
    if not np.isfinite(score).all():
        raise DataError("y_score: contains NaN or inf")
    if y.ndim == 1 and score.ndim == 1:
        return _binary(y, score, threshold, n_boot, seed)
    if y.ndim == 1 and score.ndim == 2:
        return _multiclass(y, score, n_boot, seed)
    if y.ndim == 2 and y.shape == score.shape:
        names = list(label_names) if label_names is not None else [str(c) for c in range(y.shape[1])]
        if len(names) != y.shape[1]:
            raise ValueError(f"label_names has {len(names)} names for {y.shape[1]} labels")
        return _multilabel(y, score, threshold, n_boot, seed, names)
    raise ValueError(f"unsupported shapes y_true {y.shape}, y_score {score.shape}")


__all__ = ["METRICS", "classification_metrics", "per_class_recall"]
