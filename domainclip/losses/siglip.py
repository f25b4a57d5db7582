"""Sigmoid image-text loss (SigLIP); the model owns the learnable scale and bias, as in open_clip.

``L = -1/B sum_ij log sigmoid(z_ij * (scale * x_i . y_j + bias))`` with ``z = +1`` for
matching pairs and ``-1`` otherwise. Every pair is an independent binary problem, so
no softmax normaliser couples the batch and other ranks' texts only add negatives.

``forward`` takes ``logit_scale`` (the multiplier, already exponentiated) and ``logit_bias``
like open_clip's ``SigLipLoss``: they are parameters of the model (``DomainCLIP(...,
init_logit_scale=math.log(10), init_logit_bias=-10)``; a bias of -10 keeps the initial loss
from being swamped by the B^2 - B negatives), so this module has none and stays below the
models in the package.

Distributed (every rank the same batch size): rank r computes its images against its
own texts (positives on the diagonal) and against every other rank's texts
(negatives only), divided by its local batch size. The mean over ranks of the returned
losses is the single-process loss ``L`` over the concatenated batch, and every rank's
features receive ``world_size * dL/d(features_r)``, so DDP's gradient averaging yields
exactly ``dL/dtheta``. The scale and bias gradients, averaged over ranks, are exact.
Other ranks' texts arrive either by an all-gather (``dist_impl="gather"``) or by
passing text chunks around the ring of neighbours (``"neighbour"``: world_size - 1
point-to-point exchanges, one text chunk in memory at a time); gradients travel back
the same way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import (
    as_scalar,
    check_features,
    check_finite,
    check_scale,
    compute_dtype,
    full_precision,
)
from ._distributed import gather_with_grad, neighbour_shift, resolve_world


def _pair_loss_sum(
    image: torch.Tensor,
    text: torch.Tensor,
    scale: torch.Tensor,
    bias: torch.Tensor,
    positives: bool,
) -> torch.Tensor:
    """``sum -log sigmoid(z * logits)``; the diagonal holds the positives if ``positives``."""
    logits = torch.addmm(bias, image * scale, text.T)  # bias added inside the matmul
    if positives:
        logits.diagonal().neg_()  # -log sigmoid(+l) = softplus(-l) on matching pairs
    return F.softplus(logits).sum()


class SigLipLoss(nn.Module):
    """Sigmoid loss; scale (a multiplier) and bias are passed in by the caller.

    Args:
        dist_impl: ``"gather"`` (all-gather texts) or ``"neighbour"`` (ring exchange).
        rank, world_size: ``None`` reads them from torch.distributed at every call.
    """

    def __init__(self, dist_impl: str = "gather", rank: int | None = None, world_size: int | None = None) -> None:
        super().__init__()
        if dist_impl not in ("gather", "neighbour"):
            raise ValueError(f"dist_impl must be 'gather' or 'neighbour', got {dist_impl!r}")
        self.dist_impl = dist_impl
        self.rank = rank
        self.world_size = world_size

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
        logit_bias: torch.Tensor | float,
        output_dict: bool = False,
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Loss for (B, D) features; ``logit_scale`` is a multiplier, ``logit_bias`` is added to every logit."""
        check_features(image_features, text_features)
        check_scale("logit_scale", logit_scale)
        check_scale("logit_bias", logit_bias)
        check_finite(
            image_features=image_features,
            text_features=text_features,
            logit_scale=logit_scale,
            logit_bias=logit_bias,
        )
        with full_precision(image_features.device):
            dtype = compute_dtype(image_features, text_features)
            image, text = image_features.to(dtype), text_features.to(dtype)
            scale, bias = as_scalar(logit_scale, image), as_scalar(logit_bias, image)
            total = _pair_loss_sum(image, text, scale, bias, positives=True)
            rank, world_size = resolve_world(self.rank, self.world_size)
            for other_text in self._other_ranks_texts(text, rank, world_size):
                total = total + _pair_loss_sum(image, other_text, scale, bias, positives=False)
            loss = total / image.shape[0]
        return {"contrastive_loss": loss} if output_dict else loss

    def _other_ranks_texts(self, text: torch.Tensor, rank: int, world_size: int):
        """Yield the text features of every other rank (with gradient paths back to them)."""
        if world_size == 1:
            return
        if self.dist_impl == "gather":
            for other, chunk in enumerate(gather_with_grad(text, rank, world_size).chunk(world_size)):
                if other != rank:
                    yield chunk
            return
        right, left = (rank + 1) % world_size, (rank - 1) % world_size
        travelling = text
        for _ in range(world_size - 1):
            travelling = neighbour_shift(travelling, to_rank=right, from_rank=left)
            yield travelling
