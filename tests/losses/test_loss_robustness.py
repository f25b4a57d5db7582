"""Every loss stays finite at the edges: bf16 inputs, scale at its clamp, zero-norm features,
a batch of one, identical finding vectors."""

from __future__ import annotations

import pytest
import torch
from loss_helpers import unit_features

from domainclip.losses import ClipLoss, FilipLoss, PrototypeLoss, SigLipLoss, SoftLabelClipLoss

LOSSES = [
    "clip",
    "clip-memory-bounded",
    "soft",
    "soft-memory-bounded",
    "siglip",
    "filip",
    "prototype",
]


def _as_tokens(features: torch.Tensor) -> torch.Tensor:
    """Three tokens per sample, the last one padding."""
    return torch.stack([features, 0.5 * features, -features], dim=1)


def _run(kind: str, image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, findings: torch.Tensor):
    torch.manual_seed(0)  # prototype initialisation
    if kind.startswith("clip"):
        return ClipLoss(memory_bounded=kind.endswith("bounded"), chunk_size=2)(image, text, scale)
    if kind.startswith("soft"):
        loss = SoftLabelClipLoss(memory_bounded=kind.endswith("bounded"), chunk_size=2)
        return loss(image, text, scale, findings=findings)
    if kind == "siglip":
        return SigLipLoss()(image, text, logit_scale=scale, logit_bias=-10.0)
    if kind == "filip":
        mask = torch.tensor([True, True, False]).expand(image.shape[0], 3)
        return FilipLoss(chunk_size=2)(_as_tokens(image), _as_tokens(text), scale, mask, mask)
    return PrototypeLoss(dim=image.shape[1], num_prototypes=8)(image, text)


def _case(condition: str, dtype=torch.float32):
    batch = 1 if condition == "batch of one" else 6
    image, text = unit_features(batch, 8, seed=0)
    image, text = image.detach(), text.detach()
    if condition == "zero-norm features":
        image[0] = 0
        text[1] = 0
    findings = (torch.rand(batch, 5, generator=torch.Generator().manual_seed(0)) < 0.4).float()
    if condition == "identical findings":
        findings = torch.zeros(batch, 5)
    scale = torch.tensor(100.0 if condition == "scale at clamp" else 1 / 0.07, requires_grad=True)
    return image.to(dtype).requires_grad_(), text.to(dtype).requires_grad_(), scale, findings


@pytest.mark.parametrize("condition", ["scale at clamp", "zero-norm features", "batch of one", "identical findings"])
@pytest.mark.parametrize("kind", LOSSES)
def test_loss_and_gradients_are_finite(kind, condition):
    image, text, scale, findings = _case(condition)
    loss = _run(kind, image, text, scale, findings)
    loss.backward()
    assert torch.isfinite(loss)
    for name, tensor in (("image", image), ("text", text), ("scale", scale)):
        assert tensor.grad is None or torch.isfinite(tensor.grad).all(), name
    assert torch.isfinite(image.grad).all() and torch.isfinite(text.grad).all()


@pytest.mark.parametrize("kind", LOSSES)
def test_bf16_inputs_are_computed_in_float32(kind):
    image, text, scale, findings = _case("bf16", dtype=torch.bfloat16)
    loss = _run(kind, image, text, scale, findings)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert image.grad.dtype == torch.bfloat16 and torch.isfinite(image.grad.float()).all()
    # identical to the float32 loss on the same (bf16-rounded) values: nothing ran in bf16
    as_float = _run(kind, image.detach().float(), text.detach().float(), scale.detach(), findings)
    torch.testing.assert_close(loss.detach(), as_float, atol=1e-6, rtol=1e-6)


def test_autocast_does_not_lower_the_precision():
    image, text, scale, _ = _case("fp32")
    expected = ClipLoss()(image, text, scale)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        under_autocast = ClipLoss()(image, text, scale)
    torch.testing.assert_close(under_autocast, expected, atol=1e-6, rtol=1e-6)
