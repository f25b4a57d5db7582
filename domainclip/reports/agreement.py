"""Per-finding agreement of extracted finding vectors with ground-truth labels.

Used by ``benchmarks/report_structuring.py`` and the tests: a structurer is only
useful for silver labels if it agrees with the truth finding by finding, so the
table keeps findings apart instead of averaging them away.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score, precision_score, recall_score


def finding_agreement(
    truth: np.ndarray,
    predicted: np.ndarray,
    names: Sequence[str],
    threshold: float = 0.5,
) -> pd.DataFrame:
    """One row per finding: n, prevalence, accuracy, precision and recall of "present".

    ``truth`` is (N, K) 0/1; ``predicted`` (N, K) finding values (NaN = unmentioned,
    counted as absent). A value >= ``threshold`` counts as present, so with the
    default uncertain value 0.5 a hedged mention counts as present. ``uncertain``
    is the fraction of reports whose value lies strictly between 0 and 1.
    """
    truth = np.asarray(truth)
    predicted = np.asarray(predicted, dtype=np.float64)
    if truth.shape != predicted.shape or truth.ndim != 2 or truth.shape[1] != len(names):
        raise ValueError(f"truth {truth.shape}, predicted {predicted.shape} and {len(names)} names do not match")
    called = np.nan_to_num(predicted, nan=0.0) >= threshold
    rows = []
    for k, name in enumerate(names):
        y, p = truth[:, k].astype(bool), called[:, k]
        rows.append(
            {
                "finding": name,
                "n": len(y),
                "prevalence": float(y.mean()) if len(y) else float("nan"),
                "accuracy": accuracy_score(y, p),
                "precision": precision_score(y, p, zero_division=0.0),
                "recall": recall_score(y, p, zero_division=0.0),
                "uncertain": float(np.mean((predicted[:, k] > 0) & (predicted[:, k] < 1))),
            }
        )
    return pd.DataFrame(rows)


__all__ = ["finding_agreement"]
