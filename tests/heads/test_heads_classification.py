"""LinearProbe (cross-validated C) and the multi-label MLPHead (masked loss, early stopping)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

from domainclip.errors import DataError
from domainclip.heads.classification import LinearProbe, MLPHead, _masked_bce


def _linear_task(n: int, noise: float, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20))
    logits = x[:, 0] * 2 - x[:, 1] + noise * rng.normal(size=n)
    return x, (logits > 0).astype(int)


def test_linear_probe_cross_validates_the_regularisation():
    x_clean, y_clean = _linear_task(300, 0.1, 0)
    x_noisy, y_noisy = _linear_task(60, 4.0, 1)
    clean = LinearProbe(seed=0).fit(x_clean, y_clean)
    noisy = LinearProbe(seed=0).fit(torch.from_numpy(x_noisy), torch.from_numpy(y_noisy))
    assert clean.C_[0] > noisy.C_[0]  # few noisy samples: stronger regularisation chosen
    x_test, y_test = _linear_task(300, 0.1, 2)
    proba = clean.predict_proba(x_test)
    assert proba.shape == (300, 2) and np.allclose(proba.sum(1), 1)
    assert roc_auc_score(y_test, proba[:, 1]) > 0.97
    assert (clean.predict(x_test) == y_test).mean() > 0.9


def test_linear_probe_multiclass_and_string_labels():
    rng = np.random.default_rng(3)
    centres = rng.normal(size=(3, 8)) * 3
    y = np.repeat(["lung", "liver", "kidney"], 40)
    x = centres[np.repeat(np.arange(3), 40)] + rng.normal(size=(120, 8))
    probe = LinearProbe().fit(x, y)
    assert set(probe.classes_) == {"lung", "liver", "kidney"}
    assert (probe.predict(x) == y).mean() > 0.95


def test_linear_probe_multilabel_ignores_unknown_labels():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 5))
    y = np.column_stack([(x[:, 0] > 0), (x[:, 1] > 0)]).astype(float)
    y[:50, 1] = np.nan
    probe = LinearProbe().fit(x, y, label_names=["a", "b"])
    proba = probe.predict_proba(x)
    assert proba.shape == (200, 2) and len(probe.C_) == 2
    assert roc_auc_score(y[50:, 1], proba[50:, 1]) > 0.95


def test_a_class_with_one_example_is_named():
    x = np.random.default_rng(0).normal(size=(7, 3))
    with pytest.raises(DataError, match=r"class 'rare' \(1 example\)"):
        LinearProbe().fit(x, np.array(["common"] * 6 + ["rare"]))
    with pytest.raises(DataError, match="y label 'b'.*only one class"):
        LinearProbe().fit(x, np.column_stack([np.arange(7) % 2, np.zeros(7)]), label_names=["a", "b"])


def test_masked_bce_ignores_unknown_targets():
    logits = torch.tensor([[0.3, -1.0], [2.0, 0.5]])
    targets = torch.tensor([[1.0, float("nan")], [0.0, 1.0]])
    known = torch.tensor([[1.0, 0.0], [1.0, 1.0]]).bool()
    expected = torch.nn.functional.binary_cross_entropy_with_logits(logits[known], targets[known])
    assert _masked_bce(logits, targets).item() == pytest.approx(expected.item())
    assert _masked_bce(logits, torch.full((2, 2), float("nan"))).item() == 0.0


def test_mlp_head_learns_a_non_linear_multilabel_task_with_unknown_labels():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(900, 6)).astype(np.float32)
    y = np.column_stack([x[:, 0] * x[:, 1] > 0, np.abs(x[:, 2]) > 1]).astype(np.float32)  # XOR-like + band
    y[rng.random(y.shape) < 0.1] = np.nan
    tr, va, te = slice(0, 600), slice(600, 700), slice(700, 900)
    head = MLPHead(hidden=(64,), dropout=0.0, lr=1e-2, max_epochs=60, batch_size=128, patience=10, seed=0)
    head.fit(x[tr], y[tr], x[va], y[va])
    proba = head.predict_proba(x[te])
    linear = LinearProbe().fit(x[tr], y[tr]).predict_proba(x[te])
    for label in range(2):
        known = ~np.isnan(y[te, label])
        auc_mlp = roc_auc_score(y[te][known, label], proba[known, label])
        auc_linear = roc_auc_score(y[te][known, label], linear[known, label])
        assert auc_mlp > 0.9 and auc_mlp > auc_linear + 0.15
    assert head.history_.val_loss[head.history_.best_epoch] == min(head.history_.val_loss)


def test_mlp_head_single_label_returns_one_column_and_checks_labels():
    rng = np.random.default_rng(6)
    x = rng.normal(size=(50, 3))
    head = MLPHead(hidden=(4,), max_epochs=3).fit(x, (x[:, 0] > 0).astype(float))
    assert head.predict_proba(x).shape == (50,)
    with pytest.raises(DataError, match="labels must be 0, 1 or NaN"):
        MLPHead().fit(x, np.full(50, 2.0))
    with pytest.raises(DataError, match="needs both 0 and 1"):
        MLPHead().fit(x, np.zeros(50))
