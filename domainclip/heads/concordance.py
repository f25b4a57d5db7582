"""Harrell's concordance index in O(n log^2 n) vectorised numpy.

Why our own: scikit-survival's ``concordance_index_censored`` is the reference
but loops in Python (13-20 s for n = 100,000); lifelines is O(n log n) but about
1-2 s here. This gives scikit-survival's exact value (same comparable pairs,
same tie rules; checked on data with tied times and tied risks in
``tests/heads``) in about a tenth of a second.

Pairs (scikit-survival's definition): an event ``i`` is compared with every
sample whose time is later, and with censored samples at the same time; tied
event times are not compared. A pair is concordant when the event has the
higher risk and counts 1/2 when the risks are equal. Risk ties are exact
(scikit-survival also treats |difference| <= 1e-8 as a tie; the values differ
only for risks closer than that).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Concordance:
    """Harrell's C with the pair counts it is made of."""

    c_index: float
    concordant: int
    discordant: int
    tied_risk: int
    comparable: int


def _dense_rank(values: np.ndarray) -> np.ndarray:
    return np.unique(values, return_inverse=True)[1].reshape(-1).astype(np.int64)


def concordance_counts(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> Concordance:
    """Pair counts and Harrell's C; ``c_index`` is NaN when there is no comparable pair."""
    time = np.asarray(time, dtype=np.float64).reshape(-1)
    event = np.asarray(event, dtype=bool).reshape(-1)
    risk = np.asarray(risk, dtype=np.float64).reshape(-1)
    if not (len(time) == len(event) == len(risk)):
        raise ValueError(f"time, event and risk must have one value per sample: {len(time)}, {len(event)}, {len(risk)}")
    if np.isnan(risk).any():
        raise ValueError("risk contains NaN")
    n = len(time)
    # Sort key (time, censored-after-event): sample j is comparable to event i exactly when key_j > key_i.
    key = _dense_rank(time) * 2 + (~event).astype(np.int64)
    order = np.argsort(-key, kind="stable")  # position 0 holds the largest key
    key_sorted = key[order]
    rank_sorted = _dense_rank(risk)[order]
    n_ranks = int(rank_sorted.max()) + 1 if n else 1

    events_at = np.flatnonzero(event[order])
    # number of samples with a strictly larger key = start of the event's key block in descending order
    prefix = np.searchsorted(-key_sorted, -key_sorted[events_at], side="left").astype(np.int64)
    query_rank = rank_sorted[events_at]

    lower = np.zeros(len(events_at), dtype=np.int64)  # comparable samples with lower risk
    lower_or_equal = np.zeros(len(events_at), dtype=np.int64)
    positions = np.arange(n, dtype=np.int64)
    level = 0
    while (1 << level) <= n:
        # Decompose [0, prefix) into dyadic blocks; at this level the block is ((prefix >> level) - 1).
        use = ((prefix >> level) & 1).astype(bool)
        if use.any():
            blocks_sorted = np.sort((positions >> level) * n_ranks + rank_sorted)
            block = (prefix[use] >> level) - 1
            base = block * n_ranks
            start = block << level
            lower[use] += np.searchsorted(blocks_sorted, base + query_rank[use], side="left") - start
            lower_or_equal[use] += np.searchsorted(blocks_sorted, base + query_rank[use], side="right") - start
        level += 1

    comparable = int(prefix.sum())
    concordant = int(lower.sum())
    tied = int((lower_or_equal - lower).sum())
    c_index = (concordant + 0.5 * tied) / comparable if comparable else float("nan")
    return Concordance(c_index, concordant, comparable - concordant - tied, tied, comparable)


def harrell_c(time: np.ndarray, event: np.ndarray, risk: np.ndarray) -> float:
    """Harrell's C of a risk score (higher risk = earlier event); NaN without comparable pairs."""
    return concordance_counts(time, event, risk).c_index


__all__ = ["Concordance", "concordance_counts", "harrell_c"]
