"""Fit a Cox head on train (+ valid) and evaluate it on test: metrics, KM plot, coefficients.

This is the one call the pipeline and the ``domainclip survival`` command share, so
both write the same files: ``km_risk_groups.png`` and, for a linear head,
``coefficients.csv`` (coefficient and hazard ratio per training standard deviation).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from domainclip.heads.cox import CoxHead
from domainclip.heads.inputs import ArrayLike, survival_targets
from domainclip.heads.km_plot import plot_risk_group_km
from domainclip.heads.survival_metrics import survival_metrics

KM_PLOT_FILE = "km_risk_groups.png"
COEFFICIENTS_FILE = "coefficients.csv"


def write_coefficients(head: CoxHead, path: Path, feature_names: Sequence[str] | None = None) -> Path:
    """CSV with ``feature, coef, hazard_ratio, train_mean, train_sd`` (coef per training SD)."""
    import pandas as pd

    coef = head.coef_
    names = list(feature_names) if feature_names is not None else [f"x{i}" for i in range(len(coef))]
    if len(names) != len(coef):
        raise ValueError(f"feature_names has {len(names)} names for {len(coef)} coefficients")
    table = pd.DataFrame(
        {
            "feature": names,
            "coef": coef,
            "hazard_ratio": np.exp(coef),
            "train_mean": head.scaler_.mean_,
            "train_sd": head.scaler_.scale_,
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)
    return path


def fit_evaluate_survival(
    X_train: ArrayLike,
    t_train: ArrayLike,
    e_train: ArrayLike,
    X_val: ArrayLike | None,
    t_val: ArrayLike | None,
    e_val: ArrayLike | None,
    X_test: ArrayLike,
    t_test: ArrayLike,
    e_test: ArrayLike,
    out_dir: str | Path,
    penalty: float = 1e-2,
    *,
    hidden: Sequence[int] = (),
    tau: float | None = None,
    feature_names: Sequence[str] | None = None,
    seed: int = 0,
    n_boot: int = 0,
) -> dict[str, Any]:
    """Cox head on train (valid for early stopping of MLP heads), metrics on test.

    With ``n_boot`` > 0, ``c_index_ci_low`` / ``c_index_ci_high`` are a percentile bootstrap of Harrell's C over
    the test rows (the fitted head fixed).

    Returns :func:`~domainclip.heads.survival_metrics.survival_metrics`' keys
    (``c_index``, ``c_index_uno``, ``td_auc_mean``, ``ibs``, ...) plus ``logrank_p``,
    ``n_high_risk``, ``n_low_risk``, ``risk_cutoff``, ``n_train``, ``penalty`` and the
    written file paths (``km_plot``, ``coefficients``).
    """
    out_dir = Path(out_dir)
    head = CoxHead(penalty=penalty, hidden=hidden, seed=seed).fit(X_train, t_train, e_train, X_val, t_val, e_val)
    risk_train, risk_test = head.predict_risk(X_train), head.predict_risk(X_test)
    metrics = survival_metrics(t_train, e_train, t_test, e_test, risk_test, tau=tau, risk_train=risk_train)
    time_test, event_test = survival_targets(t_test, e_test)
    metrics.update(
        plot_risk_group_km(time_test, event_test, risk_test, float(np.median(risk_train)), out_dir / KM_PLOT_FILE)
    )
    metrics.update(
        {
            "n_train": len(risk_train),
            "penalty": float(penalty),
            "km_plot": str(out_dir / KM_PLOT_FILE),
        }
    )
    if n_boot:
        metrics.update(_c_index_interval(time_test, event_test, risk_test, n_boot, seed))
    if head.is_linear:
        metrics["coefficients"] = str(write_coefficients(head, out_dir / COEFFICIENTS_FILE, feature_names))
    return metrics


def _c_index_interval(time: np.ndarray, event: np.ndarray, risk: np.ndarray, n_boot: int, seed: int) -> dict:
    from domainclip.heads.bootstrap import percentile_interval
    from domainclip.heads.concordance import harrell_c

    rng = np.random.default_rng(seed)
    values = []
    for _ in range(n_boot):
        rows = rng.integers(0, len(time), len(time))
        values.append(harrell_c(time[rows], event[rows], risk[rows]) if event[rows].any() else np.nan)
    low, high = percentile_interval(np.asarray(values, dtype=np.float64))
    return {"c_index_ci_low": low, "c_index_ci_high": high}


__all__ = ["COEFFICIENTS_FILE", "KM_PLOT_FILE", "fit_evaluate_survival", "write_coefficients"]
