"""Kaplan-Meier curves of predicted-risk groups with the log-rank p-value (lifelines), saved as PNG.

The cut-off between the low- and high-risk group is the median predicted risk of
the *training* split (RenalCLIP-style), so the test split is not used to choose it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np


def risk_groups(risk: np.ndarray, cutoff: float) -> np.ndarray:
    """Boolean mask of the high-risk group (risk strictly above ``cutoff``)."""
    return np.asarray(risk, dtype=np.float64) > cutoff


def logrank_p(time: np.ndarray, event: np.ndarray, high: np.ndarray) -> float | None:
    """Log-rank p-value between the high- and low-risk groups; ``None`` if a group is empty or has no event."""
    from lifelines.statistics import logrank_test

    if high.all() or not high.any() or not event.any():
        return None
    result = logrank_test(time[high], time[~high], event_observed_A=event[high], event_observed_B=event[~high])
    p = float(result.p_value)
    return p if math.isfinite(p) else None


def plot_risk_group_km(
    time: np.ndarray,
    event: np.ndarray,
    risk: np.ndarray,
    cutoff: float,
    path: Path,
    title: str = "Kaplan-Meier by predicted risk (test split)",
) -> dict[str, Any]:
    """Write the PNG and return ``{"logrank_p", "n_high_risk", "n_low_risk", "risk_cutoff"}``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from lifelines import KaplanMeierFitter

    time, event = np.asarray(time, dtype=np.float64), np.asarray(event, dtype=bool)
    high = risk_groups(risk, cutoff)
    p = logrank_p(time, event, high)
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for label, mask, colour in (("low risk", ~high, "tab:blue"), ("high risk", high, "tab:red")):
        if mask.any():
            KaplanMeierFitter(label=f"{label} (n={int(mask.sum())})").fit(
                time[mask], event[mask]
            ).plot_survival_function(ax=ax, color=colour, ci_show=True)
    ax.set(
        xlabel="time",
        ylabel="survival probability",
        ylim=(0, 1.02),
        title=title + ("" if p is None else f"\nlog-rank p = {p:.3g}"),
    )
    ax.legend(loc="lower left")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return {
        "logrank_p": p,
        "n_high_risk": int(high.sum()),
        "n_low_risk": int((~high).sum()),
        "risk_cutoff": float(cutoff),
    }


__all__ = ["logrank_p", "plot_risk_group_km", "risk_groups"]
