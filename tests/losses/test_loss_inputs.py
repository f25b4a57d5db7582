"""Bad inputs raise ValueError naming the argument and the wrong shape or value."""

from __future__ import annotations

import pytest
import torch

from domainclip.losses import (
    ClipLoss,
    FilipLoss,
    PrototypeLoss,
    SigLipLoss,
    SoftLabelClipLoss,
    soft_targets,
)

NAN = float("nan")


def _features(batch=4, dim=8):
    return torch.randn(batch, dim), torch.randn(batch, dim)


@pytest.mark.parametrize("loss", [ClipLoss(), SoftLabelClipLoss(), ClipLoss(memory_bounded=True)])
def test_mismatched_batch_sizes(loss):
    with pytest.raises(ValueError, match=r"same batch size.*image_features \(4, 8\) and text_features \(3, 8\)"):
        loss(torch.randn(4, 8), torch.randn(3, 8), 10.0)


def test_mismatched_widths_and_ranks():
    with pytest.raises(ValueError, match=r"same width.*\(4, 8\).*\(4, 6\)"):
        ClipLoss()(torch.randn(4, 8), torch.randn(4, 6), 10.0)
    with pytest.raises(ValueError, match=r"text_features must be 2-D.*\(4, 2, 4\)"):
        SigLipLoss()(torch.randn(4, 8), torch.randn(4, 2, 4), 10.0, -10.0)
    with pytest.raises(ValueError, match="logit_scale must be a scalar"):
        ClipLoss()(*_features(), torch.ones(2))


@pytest.mark.parametrize("loss", [ClipLoss(), SigLipLoss(), PrototypeLoss(dim=8)])
def test_non_finite_features_name_the_argument_and_entry(loss):
    image, text = _features()
    text[2, 5] = float("inf")
    args = {ClipLoss: (10.0,), SigLipLoss: (10.0, -10.0)}.get(type(loss), ())
    call = lambda: loss(image, text, *args)
    with pytest.raises(
        ValueError,
        match=r"text_features contains non-finite values: 1 of 32 entries, "
        r"first at index \(2, 5\) = inf",
    ):
        call()


def test_non_finite_logit_scale():
    with pytest.raises(ValueError, match="logit_scale contains non-finite"):
        ClipLoss()(*_features(), torch.tensor(NAN))


def test_findings_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"findings must have shape \(4, K\).*got \(3, 5\)"):
        SoftLabelClipLoss()(*_features(), 10.0, findings=torch.zeros(3, 5))
    with pytest.raises(ValueError, match=r"findings must have shape \(4, 18\) \(18 findings\), got \(4, 17\)"):
        SoftLabelClipLoss(num_findings=18)(*_features(), 10.0, findings=torch.zeros(4, 17))


def test_findings_out_of_range_and_bad_groups():
    findings = torch.zeros(4, 3)
    findings[1, 2] = 2.0
    with pytest.raises(ValueError, match=r"findings\[1, 2\] = 2.0"):
        SoftLabelClipLoss()(*_features(), 10.0, findings=findings)
    with pytest.raises(ValueError, match=r"groups must have shape \(4,\).*got \(5,\)"):
        SoftLabelClipLoss()(*_features(), 10.0, groups=torch.arange(5))
    with pytest.raises(ValueError, match="groups must be an integer tensor"):
        soft_targets(torch.zeros(4, 3), torch.zeros(4))


def test_filip_masks_must_match_and_keep_a_token():
    image, text = torch.randn(3, 4, 8), torch.randn(3, 5, 8)
    with pytest.raises(ValueError, match=r"text_mask must be a bool tensor of shape \(3, 5\)"):
        FilipLoss()(image, text, 10.0, text_mask=torch.ones(3, 4, dtype=torch.bool))
    empty = torch.ones(3, 4, dtype=torch.bool)
    empty[1] = False
    with pytest.raises(ValueError, match="image_mask: sample 1 has no valid token"):
        FilipLoss()(image, text, 10.0, image_mask=empty)


def test_constructor_arguments():
    with pytest.raises(ValueError, match="temperature"):
        SoftLabelClipLoss(temperature=0)
    with pytest.raises(ValueError, match="soft_weight"):
        SoftLabelClipLoss(soft_weight=-0.5)
    with pytest.raises(ValueError, match="chunk_size"):
        ClipLoss(chunk_size=0)
    with pytest.raises(ValueError, match=r"rank must be in \[0, world_size\)"):
        ClipLoss(rank=2, world_size=2)(*_features(), 10.0)
