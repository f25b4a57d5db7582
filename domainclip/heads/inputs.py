"""Turning user arrays (numpy or torch) into checked numpy arrays for the heads.

Heads accept numpy arrays or torch tensors so that embeddings can be passed
straight from a model; everything is converted here once, and problems a user
can cause (NaN features, negative times, events that are not 0/1) raise
:class:`~domainclip.errors.DataError` naming the argument and the first bad rows.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from domainclip.errors import DataError

ArrayLike = Any  # numpy array, torch tensor, pandas object or nested list

_MAX_LISTED = 5


def to_numpy(values: ArrayLike, name: str = "values", dtype: type | np.dtype = np.float64) -> np.ndarray:
    """A numpy copy of ``values`` (torch tensors are detached and moved to CPU first)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    try:
        return np.asarray(values, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise DataError(f"{name}: expected numbers ({exc})") from None


def _rows(mask: np.ndarray) -> str:
    bad = np.flatnonzero(mask)
    shown = ", ".join(str(i) for i in bad[:_MAX_LISTED])
    return shown + (f" ... ({len(bad)} in all)" if len(bad) > _MAX_LISTED else "")


def features_2d(values: ArrayLike, name: str = "X") -> np.ndarray:
    """(n, d) float64 features; a 1-D input is one feature. NaN/inf rows are reported."""
    x = to_numpy(values, name)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2:
        raise DataError(f"{name}: expected a 2-D (samples, features) array, got shape {x.shape}")
    if x.shape[0] == 0:
        raise DataError(f"{name}: no samples")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise DataError(f"{name}: non-finite (NaN or inf) features in rows {_rows(bad)}")
    return x


def survival_targets(
    time: ArrayLike, event: ArrayLike, n: int | None = None, name: str = ""
) -> tuple[np.ndarray, np.ndarray]:
    """Checked (time float64 >= 0, event bool) arrays; ``name`` prefixes messages (e.g. ``"valid "``)."""
    t = to_numpy(time, f"{name}time").reshape(-1)
    e_raw = to_numpy(event, f"{name}event").reshape(-1)
    if n is not None and (len(t) != n or len(e_raw) != n):
        raise DataError(f"{name}time/event: expected {n} values (one per sample), got {len(t)} and {len(e_raw)}")
    if len(t) != len(e_raw):
        raise DataError(f"{name}time/event: different lengths {len(t)} and {len(e_raw)}")
    bad_t = ~np.isfinite(t) | (t < 0)
    if bad_t.any():
        raise DataError(f"{name}time: must be finite and >= 0; bad rows {_rows(bad_t)}")
    bad_e = ~np.isin(e_raw, (0.0, 1.0))
    if bad_e.any():
        raise DataError(f"{name}event: must be 0 (censored) or 1 (event); bad rows {_rows(bad_e)}")
    return t, e_raw.astype(bool)


def require_events(event: np.ndarray, what: str) -> None:
    """Raise when every sample of ``what`` is censored (nothing to fit or rank)."""
    if not event.any():
        raise DataError(f"{what}: all {len(event)} samples are censored (event = 0); at least one event is needed")


__all__ = ["ArrayLike", "features_2d", "require_events", "survival_targets", "to_numpy"]
