"""Seeded test data and a loss-and-gradients helper shared by the loss tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves


def unit_features(batch: int, dim: int, *, seed: int, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalised (batch, dim) image and text features, leaves requiring grad."""
    generator = torch.Generator().manual_seed(seed)
    image = F.normalize(torch.randn(batch, dim, generator=generator, dtype=torch.float64), dim=1)
    text = F.normalize(image + torch.randn(batch, dim, generator=generator, dtype=torch.float64), dim=1)
    return image.to(dtype).requires_grad_(), text.to(dtype).requires_grad_()


def random_findings(batch: int, num_findings: int, *, seed: int) -> torch.Tensor:
    """0/1 findings with some uncertain (0.5), some unknown (NaN) and an all-normal row."""
    generator = torch.Generator().manual_seed(seed)
    findings = (torch.rand(batch, num_findings, generator=generator) < 0.3).float()
    findings[torch.rand(batch, num_findings, generator=generator) < 0.1] = 0.5
    findings[torch.rand(batch, num_findings, generator=generator) < 0.1] = float("nan")
    findings[0] = 0.0
    return findings


def loss_and_grads(loss_fn, *inputs: torch.Tensor) -> list[torch.Tensor]:
    """``[loss, d loss / d input for each input]`` (inputs are leaves requiring grad)."""
    for tensor in inputs:
        tensor.grad = None
    loss = loss_fn(*inputs)
    loss.backward()
    return [loss.detach()] + [tensor.grad.detach().clone() for tensor in inputs]


class LargestAllocation(TorchDispatchMode):
    """Records the largest storage any aten op (forward or backward) returns, in elements."""

    def __init__(self) -> None:
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_leaves(out):
            if isinstance(tensor, torch.Tensor):
                self.largest = max(self.largest, tensor.untyped_storage().nbytes() // tensor.element_size())
        return out
