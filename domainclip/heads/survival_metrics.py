"""Survival metrics on a test split: Harrell's C, Uno's C, time-dependent AUC, integrated Brier score.

Uno's C, the cumulative/dynamic AUC and the Brier score come from scikit-survival.
They weight test events by the inverse probability of censoring, estimated by
Kaplan-Meier on the *training* split, and that estimate does not exist beyond the
training follow-up. So evaluation is clipped to the training follow-up
(``horizon`` = largest training time): Uno's ``tau`` is capped at the horizon, and
for td-AUC / IBS test samples followed up to or past the horizon are treated as
censored at it (administrative censoring). Harrell's C uses the unclipped test data.

The evaluation grid for td-AUC / IBS is 15 quantiles (10%..90%) of the test event
times inside the clipped follow-up. Metrics that are undefined on the given data
(e.g. fewer than two grid times for the IBS) are ``None`` rather than NaN.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from domainclip.errors import DataError
from domainclip.heads.concordance import concordance_counts
from domainclip.heads.inputs import ArrayLike, require_events, survival_targets, to_numpy

log = logging.getLogger(__name__)

N_EVAL_TIMES = 15


def _surv(event: np.ndarray, time: np.ndarray) -> np.ndarray:
    from sksurv.util import Surv

    return Surv.from_arrays(event=event, time=time)


def administrative_censoring(time: np.ndarray, event: np.ndarray, horizon: float) -> tuple[np.ndarray, np.ndarray]:
    """Samples followed up to ``horizon`` or beyond become censored at ``horizon``."""
    beyond = time >= horizon
    return np.where(beyond, horizon, time), event & ~beyond


def evaluation_times(time: np.ndarray, event: np.ndarray, n_times: int = N_EVAL_TIMES) -> np.ndarray:
    """Quantiles (10%..90%) of the event times, kept strictly inside the follow-up [min, max)."""
    if not event.any():
        return np.empty(0)
    grid = np.unique(np.quantile(time[event], np.linspace(0.1, 0.9, n_times), method="inverted_cdf"))
    return grid[(grid >= time.min()) & (grid < time.max())]


def breslow_survival(
    risk_train: np.ndarray,
    time_train: np.ndarray,
    event_train: np.ndarray,
    risk_test: np.ndarray,
    times: np.ndarray,
) -> np.ndarray:
    """(n_test, n_times) S(t | x) = exp(-H0(t) exp(risk)) with scikit-survival's Breslow baseline hazard.

    Risks are centred on the training mean first (the Cox model is shift invariant),
    so exp() does not overflow for un-normalised scores of deep heads.
    """
    from sksurv.linear_model.coxph import BreslowEstimator

    centre = float(np.mean(risk_train))
    breslow = BreslowEstimator().fit(risk_train - centre, event_train, time_train)
    cumulative_hazard = breslow.cum_baseline_hazard_(times)
    return np.exp(-np.exp(risk_test - centre)[:, None] * cumulative_hazard[None, :])


def _try(metric: str, fn: Any) -> float | None:
    """Run an IPCW metric; scikit-survival raises ValueError when the data cannot support it."""
    try:
        value = float(fn())
    except ValueError as exc:  # e.g. no comparable pairs after clipping, no controls at a grid time
        log.warning("survival metric %s undefined on this split: %s", metric, exc)
        return None
    return value if np.isfinite(value) else None


def survival_metrics(
    time_train: ArrayLike,
    event_train: ArrayLike,
    time_test: ArrayLike,
    event_test: ArrayLike,
    risk_test: ArrayLike,
    tau: float | None = None,
    *,
    risk_train: ArrayLike | None = None,
) -> dict[str, Any]:
    """Test-split metrics of a risk score (higher = earlier event).

    Returns ``c_index`` (Harrell), ``c_index_uno`` (Uno, truncated at ``tau``),
    ``td_auc_mean`` (scikit-survival's cumulative/dynamic AUC averaged over the
    grid), ``ibs`` (integrated Brier score; needs ``risk_train`` to fit the Breslow
    baseline, else ``None``), plus ``tau``, ``horizon``, ``n_test``, ``n_test_events``,
    ``eval_times``. Raises :class:`DataError` when the test split has no event or
    no comparable pair, or the training split has no event.
    """
    t_tr, e_tr = survival_targets(time_train, event_train, name="train ")
    t_te, e_te = survival_targets(time_test, event_test, name="test ")
    risk = to_numpy(risk_test, "risk_test").reshape(-1)
    if len(risk) != len(t_te):
        raise DataError(f"risk_test: expected {len(t_te)} values (one per test sample), got {len(risk)}")
    require_events(e_tr, "train split")
    require_events(e_te, "test split")
    harrell = concordance_counts(t_te, e_te, risk)
    if harrell.comparable == 0:
        raise DataError(
            f"test split: no comparable pair among {len(t_te)} samples (an event followed by a later "
            "time is needed); Harrell's C is undefined"
        )

    from sksurv.metrics import (
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )

    horizon = float(t_tr.max())
    tau_used = horizon if tau is None else min(float(tau), horizon)
    y_train = _surv(e_tr, t_tr)
    uno = _try(
        "c_index_uno",
        lambda: concordance_index_ipcw(y_train, _surv(e_te, t_te), risk, tau=tau_used)[0],
    )

    t_clip, e_clip = administrative_censoring(t_te, e_te, horizon)
    times = evaluation_times(t_clip, e_clip)
    y_test = _surv(e_clip, t_clip)
    td_auc = ibs = None
    if len(times) >= 1:
        td_auc = _try("td_auc_mean", lambda: cumulative_dynamic_auc(y_train, y_test, risk, times)[1])
    if len(times) >= 2 and risk_train is not None:
        r_tr = to_numpy(risk_train, "risk_train").reshape(-1)
        survival = breslow_survival(r_tr, t_tr, e_tr, risk, times)
        ibs = _try("ibs", lambda: integrated_brier_score(y_train, y_test, survival, times))
    return {
        "c_index": harrell.c_index,
        "c_index_uno": uno,
        "td_auc_mean": td_auc,
        "ibs": ibs,
        "tau": tau_used,
        "horizon": horizon,
        "n_test": len(t_te),
        "n_test_events": int(e_te.sum()),
        "eval_times": [float(t) for t in times],
    }


__all__ = ["administrative_censoring", "breslow_survival", "evaluation_times", "survival_metrics"]
