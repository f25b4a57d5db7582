"""Bootstrap 95% intervals of headline metrics over the evaluated samples (keys ``<key>_ci_low|_ci_high``)."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from domainclip.heads.bootstrap import percentile_interval, resample_weights, weighted_auc


def interval_keys(key: str, values: np.ndarray) -> dict[str, Any]:
    low, high = percentile_interval(values)
    return {f"{key}_ci_low": low, f"{key}_ci_high": high}


def mean_auc_interval(key: str, labels: np.ndarray, scores: np.ndarray, n_boot: int, seed: int = 0) -> dict[str, Any]:
    """Interval of the mean AUC over the columns that have both classes, every column on the same resamples
    (vectorised weighted AUC, as scikit-learn computes it with sample weights)."""
    if n_boot == 0:
        return {}
    columns = []
    for k in range(labels.shape[1]):
        known = ~np.isnan(labels[:, k]) & ~np.isnan(scores[:, k])
        if len(np.unique(labels[known, k])) == 2:
            columns.append((k, known))
    if not columns:
        return {}
    chunks = []
    for w in resample_weights(len(labels), n_boot, seed):
        per_column = [weighted_auc(labels[known, k], scores[known, k], w[:, known]) for k, known in columns]
        with warnings.catch_warnings():  # a resample where no column has both classes gives NaN
            warnings.simplefilter("ignore", RuntimeWarning)
            chunks.append(np.nanmean(np.stack(per_column), axis=0))
    return interval_keys(key, np.concatenate(chunks))


def resampled_interval(
    key: str, statistic: Callable[[np.ndarray], float], n: int, n_boot: int, seed: int = 0
) -> dict[str, Any]:
    """Interval of ``statistic(row indices)`` over ``n_boot`` resamples of ``n`` rows (NaN results are dropped)."""
    if n_boot == 0 or n < 2:
        return {}
    rng = np.random.default_rng(seed)
    values = np.array([statistic(rng.integers(0, n, n)) for _ in range(n_boot)], dtype=np.float64)
    return interval_keys(key, values)
