"""Fast Harrell's C: identical to scikit-survival's pair counts, ties included."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domainclip.heads.concordance import concordance_counts, harrell_c


@pytest.mark.parametrize("seed", range(6))
def test_equals_scikit_survival_with_tied_times_and_tied_risks(seed):
    from sksurv.metrics import concordance_index_censored

    rng = np.random.default_rng(seed)
    n = int(rng.integers(20, 400))
    time = rng.integers(0, 12, n).astype(float)  # many tied times
    event = rng.random(n) < rng.uniform(0.2, 0.9)
    risk = rng.integers(0, 5, n).astype(float)  # many tied risks
    c, concordant, discordant, tied_risk, _ = concordance_index_censored(event, time, risk)
    ours = concordance_counts(time, event, risk)
    assert ours.c_index == pytest.approx(c, abs=1e-13)
    assert (ours.concordant, ours.discordant, ours.tied_risk) == (concordant, discordant, tied_risk)


def test_hand_counted_example():
    # i=0 (t=1, event) vs later samples 1,2 and the censored sample 3 at the same time; i=1 vs 2.
    time = np.array([1.0, 2.0, 3.0, 1.0])
    event = np.array([True, True, False, False])
    risk = np.array([0.9, 0.5, 0.5, 0.1])
    counts = concordance_counts(time, event, risk)
    # pairs: (0,1) conc, (0,2) conc, (0,3) conc, (1,2) tied risk -> (3 + 0.5) / 4
    assert (counts.comparable, counts.concordant, counts.tied_risk) == (4, 3, 1)
    assert counts.c_index == pytest.approx(3.5 / 4)


def test_tied_event_times_are_not_compared_and_reversing_risk_mirrors_c():
    time = np.array([1.0, 1.0, 2.0, 3.0])
    event = np.array([True, True, True, False])
    risk = np.array([0.3, 0.1, 0.2, 0.0])
    assert concordance_counts(time, event, risk).comparable == 5  # 2 + 2 + 1; the tied pair (0, 1) is skipped
    assert harrell_c(time, event, risk) + harrell_c(time, event, -risk) == pytest.approx(1.0)


def test_nan_when_no_pair_is_comparable():
    assert math.isnan(harrell_c(np.array([1.0, 2.0]), np.array([False, False]), np.array([0.1, 0.2])))


def test_rejects_mismatched_lengths_and_nan_risk():
    with pytest.raises(ValueError, match="one value per sample"):
        harrell_c(np.ones(3), np.ones(3, bool), np.ones(2))
    with pytest.raises(ValueError, match="NaN"):
        harrell_c(np.ones(2), np.ones(2, bool), np.array([0.1, np.nan]))
