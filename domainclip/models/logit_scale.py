"""The learnable temperature of contrastive losses, as a module.

Stored as a log so that it stays positive; ``forward`` returns the multiplier
(``exp``), which is what the losses take (open_clip's convention). Clamped to
``[0, log(100)]`` after every optimiser step by the training engine, which calls
:meth:`after_optimizer_step` on every module that defines it. A 0-dim parameter,
so the engine's parameter grouping never applies weight decay to it.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class LogitScale(nn.Module):
    def __init__(self, init: float = math.log(1 / 0.07), max_log: float = math.log(100.0)) -> None:
        super().__init__()
        if not 0.0 <= init <= max_log:
            raise ValueError(f"init must be within [0, {max_log:.4f}] (log scale), got {init}")
        self.max_log = max_log
        self.log_scale = nn.Parameter(torch.tensor(float(init)))

    def forward(self) -> torch.Tensor:
        return self.log_scale.exp()

    @torch.no_grad()
    def after_optimizer_step(self) -> None:
        self.log_scale.clamp_(0.0, self.max_log)

    def extra_repr(self) -> str:
        return f"scale={self.log_scale.exp().item():.3f}, max={math.exp(self.max_log):.1f}"
