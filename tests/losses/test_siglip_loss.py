"""SigLipLoss equals open_clip's SigLipLoss and owns a learnable scale and bias."""

from __future__ import annotations

import math

import pytest
import torch
from loss_helpers import loss_and_grads, unit_features

from domainclip.losses import SigLipLoss


def test_initial_scale_and_bias():
    loss = SigLipLoss()
    assert loss.logit_scale().item() == pytest.approx(10.0)
    assert loss.logit_bias.item() == -10.0
    assert {name for name, _ in loss.named_parameters()} == {"logit_scale.log_scale", "logit_bias"}


@pytest.mark.parametrize("batch", [1, 9, 40])
def test_matches_open_clip_including_scale_and_bias_gradients(open_clip_loss, batch):
    image, text = unit_features(batch, 16, seed=batch)
    ours = SigLipLoss()
    got = loss_and_grads(lambda x, y: ours(x, y), image, text)
    got += [ours.logit_scale.log_scale.grad, ours.logit_bias.grad]

    log_scale = torch.tensor(math.log(10.0), requires_grad=True)
    bias = torch.tensor(-10.0, requires_grad=True)
    want = loss_and_grads(lambda x, y: open_clip_loss.SigLipLoss()(x, y, log_scale.exp(), bias), image, text)
    want += [log_scale.grad, bias.grad]
    for name, w, g in zip(("loss", "d image", "d text", "d log scale", "d bias"), want, got):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-6, msg=name)


def test_explicit_scale_and_bias_override_the_module_parameters(open_clip_loss):
    image, text = unit_features(8, 16, seed=0)
    got = SigLipLoss()(image, text, logit_scale=torch.tensor(30.0), logit_bias=torch.tensor(-3.0))
    want = open_clip_loss.SigLipLoss()(image, text, torch.tensor(30.0), torch.tensor(-3.0))
    torch.testing.assert_close(got, want)


def test_rejects_unknown_distribution_scheme():
    with pytest.raises(ValueError, match="dist_impl"):
        SigLipLoss(dist_impl="reduce")
