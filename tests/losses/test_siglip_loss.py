"""SigLipLoss equals open_clip's SigLipLoss; scale and bias come from the model, as in open_clip."""

from __future__ import annotations

import math

import pytest
import torch
from loss_helpers import loss_and_grads, unit_features

from domainclip.losses import SigLipLoss


def test_the_loss_owns_no_parameters_and_the_model_holds_the_bias():
    from domainclip.models.domain_clip import DomainCLIP

    assert list(SigLipLoss().parameters()) == []
    model = DomainCLIP(_Tower(), _Text(), 4, init_logit_scale=math.log(10.0), init_logit_bias=-10.0)
    assert model.logit_scale().item() == pytest.approx(10.0) and model.logit_bias.item() == -10.0
    assert "logit_bias" in model.no_weight_decay()


class _Tower(torch.nn.Linear):
    hidden_size = 3

    def __init__(self) -> None:
        super().__init__(2, 3)

    def no_weight_decay(self) -> set[str]:
        return set()


class _Text(torch.nn.Linear):
    hidden_size = 3

    def __init__(self) -> None:
        super().__init__(2, 3)


@pytest.mark.parametrize("batch", [1, 9, 40])
def test_matches_open_clip_including_scale_and_bias_gradients(open_clip_loss, batch):
    image, text = unit_features(batch, 16, seed=batch)
    ours_scale = torch.tensor(math.log(10.0), requires_grad=True)
    ours_bias = torch.tensor(-10.0, requires_grad=True)
    got = loss_and_grads(lambda x, y: SigLipLoss()(x, y, ours_scale.exp(), ours_bias), image, text)
    got += [ours_scale.grad, ours_bias.grad]

    log_scale = torch.tensor(math.log(10.0), requires_grad=True)
    bias = torch.tensor(-10.0, requires_grad=True)
    want = loss_and_grads(lambda x, y: open_clip_loss.SigLipLoss()(x, y, log_scale.exp(), bias), image, text)
    want += [log_scale.grad, bias.grad]
    for name, w, g in zip(("loss", "d image", "d text", "d log scale", "d bias"), want, got):
        torch.testing.assert_close(g, w, atol=1e-6, rtol=1e-6, msg=name)


def test_other_scale_and_bias_values_match_open_clip(open_clip_loss):
    image, text = unit_features(8, 16, seed=0)
    got = SigLipLoss()(image, text, logit_scale=torch.tensor(30.0), logit_bias=torch.tensor(-3.0))
    want = open_clip_loss.SigLipLoss()(image, text, torch.tensor(30.0), torch.tensor(-3.0))
    torch.testing.assert_close(got, want)


def test_rejects_unknown_distribution_scheme():
    with pytest.raises(ValueError, match="dist_impl"):
        SigLipLoss(dist_impl="reduce")
