"""The log-sum-exp core: dense and tiled paths against plain autograd, and memory bounds."""

from __future__ import annotations

import pytest
import torch
from loss_helpers import LargestAllocation, loss_and_grads, random_findings, unit_features

from domainclip.losses import ClipLoss, SoftLabelClipLoss, contrastive_logsumexp


def _reference(a, b, scale, weights):
    z = scale * a @ b.T
    return torch.logsumexp(z, 1), torch.logsumexp(z, 0), (weights * z).sum()


@pytest.mark.parametrize("chunk_size", [None, 1, 4, 7, 100])
def test_logsumexp_and_weighted_sum_match_autograd(chunk_size):
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(13, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    b = torch.randn(9, 6, generator=generator, dtype=torch.float64, requires_grad=True)
    scale = torch.tensor(3.0, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(13, 9, generator=generator, dtype=torch.float64)
    upstream = [
        torch.randn(13, generator=generator, dtype=torch.float64),
        torch.randn(9, generator=generator, dtype=torch.float64),
        torch.tensor(0.7, dtype=torch.float64),
    ]

    def combine(outputs):
        return sum((out * g).sum() for out, g in zip(outputs, upstream))

    want = loss_and_grads(lambda *x: combine(_reference(*x, weights)), a, b, scale)

    def tile(rows, cols):
        return weights[rows, cols]

    got = loss_and_grads(
        lambda *x: combine(contrastive_logsumexp(*x, columns=True, weights=tile, chunk_size=chunk_size)),
        a,
        b,
        scale,
    )
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, atol=1e-12, rtol=1e-12)


@pytest.mark.parametrize("chunk_size", [None, 3])
def test_rows_only_mode_returns_no_columns(chunk_size):
    a, b = unit_features(5, 4, seed=0)
    rows, cols, weighted = contrastive_logsumexp(a, b[:3], torch.tensor(2.0), columns=False, chunk_size=chunk_size)
    assert cols is None and weighted is None
    torch.testing.assert_close(rows, torch.logsumexp(2.0 * a @ b[:3].T, dim=1))


def test_backward_twice_is_refused():
    a, b = unit_features(4, 3, seed=0)
    rows, _, _ = contrastive_logsumexp(a, b, torch.tensor(1.0))
    rows.sum().backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward called twice"):
        rows.sum().backward()


@pytest.mark.parametrize("loss_name", ["clip", "soft"])
def test_memory_bounded_equals_dense(loss_name):
    batch = 45
    image, text = unit_features(batch, 16, seed=7)
    scale = torch.tensor(30.0, requires_grad=True)
    findings = random_findings(batch, 6, seed=7)
    groups = torch.arange(batch) // 2  # consecutive pairs share a report

    def run(memory_bounded):
        if loss_name == "clip":
            loss = ClipLoss(memory_bounded=memory_bounded, chunk_size=8)
            return loss_and_grads(loss, image, text, scale)
        loss = SoftLabelClipLoss(memory_bounded=memory_bounded, chunk_size=8)
        return loss_and_grads(lambda *x: loss(*x, findings=findings, groups=groups), image, text, scale)

    for dense, tiled in zip(run(False), run(True)):
        torch.testing.assert_close(tiled, dense, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("loss_name", ["clip", "soft"])
def test_memory_bounded_never_allocates_batch_squared(loss_name):
    batch, dim, chunk = 512, 8, 32
    image, text = unit_features(batch, dim, seed=0)
    findings = random_findings(batch, 5, seed=0)

    def run(memory_bounded):
        tracker = LargestAllocation()
        with tracker:
            if loss_name == "clip":
                loss = ClipLoss(memory_bounded=memory_bounded, chunk_size=chunk)(image, text, 10.0)
            else:
                loss = SoftLabelClipLoss(memory_bounded=memory_bounded, chunk_size=chunk)(
                    image, text, 10.0, findings=findings
                )
            loss.backward()
        return tracker.largest

    assert run(False) >= batch * batch  # the tracker does see the dense logits
    assert run(True) <= max(batch * dim, chunk * chunk, batch * 2 * 5)
