"""survival_metrics: each value equals scikit-survival's on gbsg2; clipping to the training follow-up."""

from __future__ import annotations

import numpy as np
import pytest

from domainclip.errors import DataError
from domainclip.heads.survival_metrics import breslow_survival, evaluation_times, survival_metrics


@pytest.fixture(scope="module")
def sksurv_cox(gbsg2_split):
    """scikit-survival's own Cox model (Efron ties) on the z-scored gbsg2 training split."""
    from sksurv.linear_model import CoxPHSurvivalAnalysis
    from sksurv.util import Surv

    train, test, features = gbsg2_split
    mean, sd = train[features].mean(), train[features].std(ddof=0)
    z_train, z_test = (
        ((train[features] - mean) / sd).to_numpy(),
        ((test[features] - mean) / sd).to_numpy(),
    )
    y_train = Surv.from_arrays(train["cens"].to_numpy() == 1, train["time"].to_numpy())
    model = CoxPHSurvivalAnalysis(ties="efron").fit(z_train, y_train)
    return model, z_train, z_test


def _arrays(split):
    return split["time"].to_numpy(), split["cens"].to_numpy()


def test_every_metric_equals_scikit_survival(gbsg2_split, sksurv_cox):
    from sksurv.metrics import (
        concordance_index_censored,
        concordance_index_ipcw,
        cumulative_dynamic_auc,
        integrated_brier_score,
    )
    from sksurv.util import Surv

    train, test, _ = gbsg2_split
    model, z_train, z_test = sksurv_cox
    (t_tr, e_tr), (t_te, e_te) = _arrays(train), _arrays(test)
    risk_tr, risk_te = model.predict(z_train), model.predict(z_test)
    tau = 1500.0
    got = survival_metrics(t_tr, e_tr, t_te, e_te, risk_te, tau=tau, risk_train=risk_tr)

    y_tr, y_te = Surv.from_arrays(e_tr == 1, t_tr), Surv.from_arrays(e_te == 1, t_te)
    assert t_te.max() < t_tr.max()  # no clipping needed on this split, so references apply directly
    times = evaluation_times(t_te, e_te == 1)
    assert got["eval_times"] == pytest.approx(list(times))
    assert len(times) >= 10 and times.min() >= t_te.min() and times.max() < t_te.max()
    assert got["c_index"] == pytest.approx(concordance_index_censored(e_te == 1, t_te, risk_te)[0], abs=1e-12)
    assert got["c_index_uno"] == pytest.approx(concordance_index_ipcw(y_tr, y_te, risk_te, tau=tau)[0], abs=1e-12)
    assert got["tau"] == tau
    assert got["td_auc_mean"] == pytest.approx(cumulative_dynamic_auc(y_tr, y_te, risk_te, times)[1], abs=1e-12)
    survival = np.vstack([fn(times) for fn in model.predict_survival_function(z_test)])
    assert got["ibs"] == pytest.approx(integrated_brier_score(y_tr, y_te, survival, times), abs=1e-9)
    assert 0.0 < got["ibs"] < 0.25 and 0.6 < got["c_index_uno"] < 0.75


def test_breslow_survival_equals_scikit_survival_cox_model(gbsg2_split, sksurv_cox):
    train, _, _ = gbsg2_split
    model, z_train, z_test = sksurv_cox
    times = np.array([100.0, 500.0, 1000.0, 2000.0])
    ours = breslow_survival(
        model.predict(z_train),
        train["time"].to_numpy(),
        train["cens"].to_numpy() == 1,
        model.predict(z_test),
        times,
    )
    reference = np.vstack([fn(times) for fn in model.predict_survival_function(z_test)])
    np.testing.assert_allclose(ours, reference, atol=1e-10)
    assert (np.diff(ours, axis=1) <= 0).all()  # survival decreases over time


def test_test_follow_up_beyond_training_is_clipped_not_an_error():
    rng = np.random.default_rng(0)
    t_tr, e_tr = rng.uniform(1, 100, 200), rng.random(200) < 0.6
    t_te, e_te = (
        rng.uniform(1, 150, 100),
        rng.random(100) < 0.6,
    )  # a third of the test follow-up is past 100
    e_te[np.argmax(t_te)] = True
    risk_tr, risk_te = rng.normal(size=200), rng.normal(size=100)
    got = survival_metrics(t_tr, e_tr, t_te, e_te, risk_te, tau=1e6, risk_train=risk_tr)
    assert got["tau"] == got["horizon"] == pytest.approx(t_tr.max())
    assert max(got["eval_times"]) < t_tr.max()
    for key in ("c_index", "c_index_uno", "td_auc_mean", "ibs"):
        assert np.isfinite(got[key]), key


def test_ibs_needs_the_training_risks():
    rng = np.random.default_rng(1)
    t, e, r = rng.uniform(1, 50, 80), rng.random(80) < 0.7, rng.normal(size=80)
    assert survival_metrics(t, e, t, e, r)["ibs"] is None


def test_all_censored_test_split_and_no_comparable_pair_raise_data_error():
    t_tr, e_tr = np.arange(1.0, 11.0), np.ones(10)
    with pytest.raises(DataError, match="test split: all 3 samples are censored"):
        survival_metrics(t_tr, e_tr, [1.0, 2.0, 3.0], [0, 0, 0], [0.1, 0.2, 0.3])
    with pytest.raises(DataError, match="no comparable pair"):
        survival_metrics(t_tr, e_tr, [5.0, 2.0], [1, 0], [0.1, 0.2])
    with pytest.raises(DataError, match="risk_test: expected 2 values"):
        survival_metrics(t_tr, e_tr, [1.0, 2.0], [1, 0], [0.1])
