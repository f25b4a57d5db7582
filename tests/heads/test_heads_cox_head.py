"""CoxHead: validated against lifelines on gbsg2; penalty, MLP + early stopping, bad input."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from domainclip.errors import DataError
from domainclip.heads.concordance import harrell_c
from domainclip.heads.cox import CoxHead


def test_unpenalised_linear_head_matches_lifelines_on_gbsg2(gbsg2_split, lifelines_gbsg2_fit):
    train, test, features = gbsg2_split
    cph, lifelines_c = lifelines_gbsg2_fit
    head = CoxHead(penalty=0.0).fit(train[features], train["time"], train["cens"])
    diff = np.abs(head.coef_ - cph.params_.to_numpy()).max()
    assert diff < 1e-3  # the requirement
    assert diff < 1e-5  # float64 Efron + L-BFGS actually reaches ~5e-7
    c = harrell_c(test["time"].to_numpy(), test["cens"].to_numpy(), head.predict_risk(test[features]))
    assert c == pytest.approx(0.6617, abs=0.005)
    assert c == pytest.approx(lifelines_c, abs=1e-6)


def test_penalty_means_lifelines_penalizer(gbsg2_split):
    from lifelines import CoxPHFitter

    train, _, features = gbsg2_split
    x = train[features].to_numpy()
    z = (x - x.mean(0)) / x.std(0)
    n = len(z)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter(penalizer=0.1).fit(
            train[[*features, "time", "cens"]].assign(**{f: z[:, j] for j, f in enumerate(features)}),
            "time",
            "cens",
        )
    # lifelines rescales by the ddof=1 SD before penalising: penalty on our (ddof=0) scale is 0.1 * n / (n - 1)
    head = CoxHead(penalty=0.1 * n / (n - 1)).fit(x, train["time"], train["cens"])
    assert np.abs(head.coef_ - cph.params_.to_numpy()).max() < 1e-5
    unpenalised = CoxHead(penalty=0.0).fit(x, train["time"], train["cens"])
    assert np.linalg.norm(head.coef_) < np.linalg.norm(unpenalised.coef_)


def _synthetic_survival(n: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 4))
    risk = np.sin(2 * x[:, 0]) * 1.5 + x[:, 1] ** 2 - 1  # non-linear: a linear head cannot rank it
    time = np.ceil(rng.exponential(np.exp(-risk)) * 50)
    event = rng.random(n) < 0.8
    return x.astype(np.float32), time, event, risk


def test_mlp_head_learns_non_linear_risk_and_stops_early():
    x, t, e, true_risk = _synthetic_survival(700, 0)
    tr, va, te = slice(0, 400), slice(400, 500), slice(500, 700)
    mlp = CoxHead(penalty=1e-4, hidden=(32,), lr=1e-2, max_epochs=400, patience=15, seed=0)
    mlp.fit(torch.from_numpy(x[tr]), t[tr], e[tr], x[va], t[va], e[va])
    linear = CoxHead(penalty=1e-4).fit(x[tr], t[tr], e[tr])
    c_mlp = harrell_c(t[te], e[te], mlp.predict_risk(x[te]))
    c_linear = harrell_c(t[te], e[te], linear.predict_risk(x[te]))
    c_oracle = harrell_c(t[te], e[te], true_risk[te])  # about 0.75 on this draw
    assert c_mlp > 0.9 * c_oracle
    assert c_mlp > c_linear + 0.05
    history = mlp.history_
    assert history.stopped_early and history.best_epoch < len(history.train_loss) - 1
    assert history.val_loss[history.best_epoch] == min(history.val_loss)
    with pytest.raises(AttributeError, match="linear"):
        _ = mlp.coef_


def test_seeded_mlp_is_reproducible_and_leaves_global_rng_alone():
    x, t, e, _ = _synthetic_survival(120, 1)
    state = torch.random.get_rng_state()
    a = CoxHead(hidden=(8,), dropout=0.2, max_epochs=5, seed=3).fit(x, t, e).predict_risk(x)
    b = CoxHead(hidden=(8,), dropout=0.2, max_epochs=5, seed=3).fit(x, t, e).predict_risk(x)
    assert np.array_equal(a, b)
    assert torch.equal(state, torch.random.get_rng_state())


def test_tied_times_and_a_validation_split_without_events_are_handled():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 3))
    t = np.repeat([1.0, 2.0, 3.0, 4.0], 10)  # every time tied
    e = rng.random(40) < 0.5
    head = CoxHead(hidden=(4,), max_epochs=5).fit(x, t, e, x[:5], t[:5], np.zeros(5))
    assert np.isfinite(head.predict_risk(x)).all()
    assert head.history_.val_loss == []  # early stopping switched off: nothing to monitor


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda x, t, e: (x, t, np.zeros_like(e)), "all 30 samples are censored"),
        (lambda x, t, e: (x, np.r_[-1.0, t[1:]], e), "time: must be finite and >= 0; bad rows 0"),
        (lambda x, t, e: (x, t, np.r_[2, e[1:]]), "event: must be 0 .* bad rows 0"),
        (lambda x, t, e: (np.r_[[[np.nan] * 3], x[1:]], t, e), "X: non-finite .* rows 0"),
        (lambda x, t, e: (x, t[:-1], e), "expected 30 values"),
        (lambda x, t, e: (x, t, np.array(["yes"] * 30)), "train event: expected numbers"),
    ],
    ids=["all-censored", "negative-time", "event-not-binary", "nan-feature", "length", "event-text"],
)
def test_bad_training_input_raises_data_error(change, message):
    rng = np.random.default_rng(0)
    x, t, e = (
        rng.normal(size=(30, 3)),
        rng.exponential(size=30),
        (rng.random(30) < 0.5).astype(float),
    )
    with pytest.raises(DataError, match=message):
        CoxHead().fit(*change(x, t, e))


def test_predicting_with_the_wrong_number_of_features_names_both():
    rng = np.random.default_rng(0)
    head = CoxHead().fit(rng.normal(size=(20, 3)), rng.exponential(size=20), np.ones(20))
    with pytest.raises(DataError, match="2 features, but the head was fitted on 3"):
        head.predict_risk(rng.normal(size=(4, 2)))
