"""The shared training loop: early stopping keeps the best validation weights; weight penalty skips biases."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from domainclip.heads.training import build_mlp, train_minibatch, weight_l2


def test_early_stopping_restores_the_best_epoch_weights():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([1.0, -2.0, 0.5])
    model = nn.Linear(3, 1)
    # validation wants the opposite sign: it is best after the first epoch and worsens as training fits y
    val = lambda m: float(((m(x).squeeze(1) + y) ** 2).mean())
    snapshots = []
    loss = lambda m, idx: ((m(x[idx]).squeeze(1) - y[idx]) ** 2).mean()

    def recording_val(m):
        snapshots.append(m.weight.detach().clone())
        return val(m)

    history = train_minibatch(
        model,
        loss,
        64,
        val_loss=recording_val,
        lr=0.05,
        weight_decay=0.0,
        max_epochs=100,
        batch_size=16,
        patience=4,
        seed=0,
    )
    assert history.stopped_early
    assert len(history.train_loss) == history.best_epoch + 1 + 4
    assert history.val_loss[history.best_epoch] == min(history.val_loss)
    assert torch.equal(model.weight, snapshots[history.best_epoch])  # best weights restored, not the last ones
    assert not torch.equal(model.weight, snapshots[-1])


def test_without_validation_all_epochs_run_and_batches_are_seeded():
    def run(seed):
        torch.manual_seed(1)
        model = nn.Linear(2, 1)
        x = torch.randn(10, 2)
        history = train_minibatch(
            model,
            lambda m, idx: m(x[idx]).pow(2).mean(),
            10,
            val_loss=None,
            lr=0.1,
            weight_decay=0.0,
            max_epochs=7,
            batch_size=3,
            patience=1,
            seed=seed,
        )
        return history, model.weight.detach().clone()

    (h1, w1), (_, w2), (_, w3) = run(0), run(0), run(1)
    assert len(h1.train_loss) == 7 and not h1.stopped_early
    assert torch.equal(w1, w2) and not torch.equal(w1, w3)


def test_weight_l2_counts_weight_matrices_only():
    mlp = build_mlp(4, (3,), 2)
    expected = sum(float(m.weight.detach().pow(2).sum()) for m in mlp if isinstance(m, nn.Linear))
    assert float(weight_l2(mlp).detach()) == pytest.approx(expected)
    assert [type(m).__name__ for m in mlp] == ["Linear", "GELU", "Dropout", "Linear"]
