"""Bootstrap confidence intervals for classification metrics, vectorised over resamples.

A bootstrap resample is the original sample with multinomial counts as weights, so
each metric is computed for a whole (n_boot, n) weight matrix at once. The
weighted formulas are the ones scikit-learn uses with ``sample_weight``
(``roc_auc_score``, ``average_precision_score``, ``f1_score``,
``balanced_accuracy_score``) and ``tests/heads`` checks them against it; the
point estimates themselves are computed by scikit-learn. Calling scikit-learn per
resample instead costs a Python-level metric call per resample, label and metric.

Undefined values (a resample without positives) are NaN here and are left out of
the percentile interval.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterator, Mapping

import numpy as np

CHUNK = 128  # resamples per weight matrix


def resample_weights(n: int, n_boot: int, seed: int) -> Iterator[np.ndarray]:
    """Chunks of (<= CHUNK, n) resample counts (how often each row was drawn), reproducible for a seed."""
    rng = np.random.default_rng(seed)
    done = 0
    while done < n_boot:
        size = min(CHUNK, n_boot - done)
        draws = rng.integers(0, n, size=(size, n)) + n * np.arange(size)[:, None]
        yield np.bincount(draws.reshape(-1), minlength=size * n).reshape(size, n).astype(np.float64)
        done += size


def _tie_blocks(sorted_scores: np.ndarray) -> np.ndarray:
    """Start index of each run of equal scores in a sorted array."""
    return np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])


def _safe_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(np.broadcast(num, den).shape, np.nan)
    np.divide(num, den, out=out, where=den > 0)
    return out


def weighted_auc(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B,) ROC AUC for each weight row (ties count 1/2); NaN when a class has no weight."""
    order = np.argsort(score, kind="mergesort")
    starts = _tie_blocks(score[order])
    yw = y[order].astype(bool)
    ws = w[:, order]
    pos = np.add.reduceat(np.where(yw, ws, 0.0), starts, axis=1)
    neg = np.add.reduceat(np.where(yw, 0.0, ws), starts, axis=1)
    neg_below = np.cumsum(neg, axis=1) - neg
    concordant = (pos * (neg_below + 0.5 * neg)).sum(axis=1)
    return _safe_div(concordant, pos.sum(axis=1) * neg.sum(axis=1))


def weighted_average_precision(y: np.ndarray, score: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B,) average precision, sum over thresholds of (R_k - R_k-1) * P_k; NaN without positives."""
    order = np.argsort(-score, kind="mergesort")
    starts = _tie_blocks(score[order])
    yw = y[order].astype(bool)
    ws = w[:, order]
    tp = np.cumsum(np.add.reduceat(np.where(yw, ws, 0.0), starts, axis=1), axis=1)
    fp = np.cumsum(np.add.reduceat(np.where(yw, 0.0, ws), starts, axis=1), axis=1)
    precision = np.nan_to_num(_safe_div(tp, tp + fp))
    recall = _safe_div(tp, tp[:, -1:])
    gain = np.diff(np.c_[np.zeros(len(w)), recall], axis=1)
    return (gain * precision).sum(axis=1)  # NaN rows (no positive weight) stay NaN


def _confusion(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, ...]:
    y, pred = y.astype(bool), pred.astype(bool)
    return w @ (y & pred), w @ (~y & pred), w @ (y & ~pred), w @ (~y & ~pred)


def weighted_f1(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B,) F1 of the positive class; NaN when there is neither a positive nor a predicted positive."""
    tp, fp, fn, _ = _confusion(y, pred, w)
    return _safe_div(2 * tp, 2 * tp + fp + fn)


def weighted_balanced_accuracy(y: np.ndarray, pred: np.ndarray, w: np.ndarray) -> np.ndarray:
    """(B,) mean of sensitivity and specificity; NaN when a class has no weight."""
    tp, fp, fn, tn = _confusion(y, pred, w)
    return (_safe_div(tp, tp + fn) + _safe_div(tn, tn + fp)) / 2


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float | None, float | None]:
    """Percentile bootstrap interval of the finite values; ``(None, None)`` when there are none."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None, None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_distributions(
    statistics: Mapping[Hashable, Callable[[np.ndarray], np.ndarray]],
    n: int,
    n_boot: int,
    seed: int,
) -> dict[Hashable, np.ndarray]:
    """(n_boot,) values of each vectorised ``statistic(weights (B, n)) -> (B,)``, all on the same resamples."""
    chunks: dict[Hashable, list[np.ndarray]] = {name: [] for name in statistics}
    for w in resample_weights(n, n_boot, seed):
        for name, statistic in statistics.items():
            chunks[name].append(statistic(w))
    return {name: np.concatenate(values) if values else np.empty(0) for name, values in chunks.items()}


__all__ = [
    "bootstrap_distributions",
    "percentile_interval",
    "resample_weights",
    "weighted_auc",
    "weighted_average_precision",
    "weighted_balanced_accuracy",
    "weighted_f1",
]
