"""Shared fixtures of the heads tests: one torch thread, the gbsg2 reference split."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest on one thread (torch, BLAS, OpenMP), above all on a machine shared with other runs."""
    from threadpoolctl import threadpool_limits

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpool_limits(1):
        yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def gbsg2() -> pd.DataFrame:
    """lifelines' German Breast Cancer Study Group 2 data, one-hot covariates (drop-first) + time, cens."""
    from lifelines.datasets import load_gbsg2

    frame = load_gbsg2()
    covariates = pd.get_dummies(frame.drop(columns=["time", "cens"]), drop_first=True, dtype=float)
    return covariates.assign(time=frame["time"].astype(float), cens=frame["cens"].astype(int))


@pytest.fixture(scope="session")
def gbsg2_split(gbsg2):
    """The reference protocol: 70/30 split stratified on the event, random_state=0, z-scored with train stats."""
    from sklearn.model_selection import train_test_split

    train, test = train_test_split(np.arange(len(gbsg2)), test_size=0.3, stratify=gbsg2["cens"], random_state=0)
    features = [c for c in gbsg2.columns if c not in ("time", "cens")]
    return (
        gbsg2.iloc[train].reset_index(drop=True),
        gbsg2.iloc[test].reset_index(drop=True),
        features,
    )


@pytest.fixture(scope="session")
def lifelines_gbsg2_fit(gbsg2_split):
    """lifelines CoxPHFitter on the z-scored training split and its test Harrell's C (reference 0.6617)."""
    from lifelines import CoxPHFitter
    from lifelines.utils import concordance_index

    train, test, features = gbsg2_split
    mean, sd = train[features].mean(), train[features].std(ddof=0)
    z_train = (train[features] - mean) / sd
    z_test = (test[features] - mean) / sd
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cph = CoxPHFitter().fit(z_train.assign(time=train["time"], cens=train["cens"]), "time", "cens")
    risk = cph.predict_partial_hazard(z_test).to_numpy()
    c = concordance_index(test["time"], -risk, test["cens"])
    return cph, c
