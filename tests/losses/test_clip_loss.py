"""ClipLoss equals open_clip's ClipLoss (value and gradients) on one process."""

from __future__ import annotations

import pytest
import torch
from loss_helpers import loss_and_grads, unit_features

from domainclip.losses import ClipLoss


@pytest.mark.parametrize("batch", [1, 7, 64])
@pytest.mark.parametrize("memory_bounded", [False, True])
def test_matches_open_clip_value_and_gradients(open_clip_loss, batch, memory_bounded):
    image, text = unit_features(batch, 32, seed=batch)
    scale = torch.tensor(1 / 0.07, requires_grad=True)
    expected = loss_and_grads(open_clip_loss.ClipLoss(), image, text, scale)
    ours = loss_and_grads(ClipLoss(memory_bounded=memory_bounded, chunk_size=5), image, text, scale)
    for name, want, got in zip(("loss", "d image", "d text", "d scale"), expected, ours):
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6, msg=name)


def test_unnormalised_features_and_large_scale_still_match(open_clip_loss):
    generator = torch.Generator().manual_seed(3)
    image = (3 * torch.randn(16, 8, generator=generator)).requires_grad_()
    text = (3 * torch.randn(16, 8, generator=generator)).requires_grad_()
    scale = torch.tensor(100.0, requires_grad=True)
    expected = loss_and_grads(open_clip_loss.ClipLoss(), image, text, scale)
    ours = loss_and_grads(ClipLoss(), image, text, scale)
    for want, got in zip(expected, ours):
        torch.testing.assert_close(got, want, atol=1e-4, rtol=1e-5)


def test_python_float_scale_and_output_dict(open_clip_loss):
    image, text = unit_features(6, 4, seed=0)
    out = ClipLoss()(image, text, 10.0, output_dict=True)
    assert set(out) == {"contrastive_loss"}
    want = open_clip_loss.ClipLoss()(image, text, torch.tensor(10.0))
    torch.testing.assert_close(out["contrastive_loss"], want)


def test_perfectly_aligned_batch_has_lower_loss_than_shuffled():
    image, _ = unit_features(16, 32, seed=1)
    loss = ClipLoss()
    aligned = loss(image, image, 20.0)
    shuffled = loss(image, image[torch.randperm(16, generator=torch.Generator().manual_seed(0))], 20.0)
    assert aligned < 0.1 < shuffled
