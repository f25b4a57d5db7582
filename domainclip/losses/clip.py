"""Symmetric InfoNCE (CLIP) loss, single- and multi-process, dense or memory-bounded.

Arguments mean what they mean in open_clip's ``ClipLoss``: features are already
normalised by the model, ``logit_scale`` is the multiplier (already exponentiated).

Distributed semantics (``world_size > 1``; every rank must hold the same batch size).
``L`` is the single-process loss over the concatenated batch, ``L_r`` the loss of rank
r's rows (its images against all texts, its texts against all images):

* default: every rank returns ``L``; rank r's features get ``dL/d(features_r)``.
* ``gather_with_grad``: every rank returns ``L``; rank r's features get
  ``world_size * dL/d(features_r)`` (every rank's identical loss sends gradient back).
* ``local_loss`` + ``gather_with_grad``: rank r returns ``L_r`` (their mean is ``L``);
  rank r's features get ``world_size * dL/d(features_r)``. The one that scales.
* ``local_loss`` alone: rank r returns ``L_r``; its features get the gradient of its
  own rows only (other ranks' columns are constants), which is *not* the global one.

Since DDP averages gradients over ranks, the two ``gather_with_grad`` modes train on
exactly ``dL/dtheta``; the default mode on ``dL/dtheta / world_size`` (open_clip's
behaviour). The logit scale's gradient, averaged over ranks, is ``dL/dscale`` in
every mode.

The loss runs in float32 (float64 if given) with autocast disabled, whatever the input
precision. ``memory_bounded=True`` computes it tile by tile (see :mod:`.tiled`): same
values and gradients, memory linear in the batch size.
"""

from __future__ import annotations

import torch
from torch import nn

from ._checks import (
    as_scalar,
    check_features,
    check_finite,
    check_scale,
    compute_dtype,
    full_precision,
)
from ._distributed import gather_keep_local, gather_no_grad, gather_with_grad, resolve_world
from .soft_targets import SoftTargets
from .tiled import contrastive_logsumexp


def gather_pair(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    *,
    rank: int,
    world_size: int,
    local_loss: bool,
    with_grad: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Both modalities gathered over ranks with open_clip's semantics."""
    if world_size == 1:
        return image_features, text_features
    if with_grad:
        return (
            gather_with_grad(image_features, rank, world_size),
            gather_with_grad(text_features, rank, world_size),
        )
    if local_loss:  # the local rows already carry the gradient; columns are constants
        return gather_no_grad(image_features, world_size), gather_no_grad(text_features, world_size)
    return (
        gather_keep_local(image_features, rank, world_size),
        gather_keep_local(text_features, rank, world_size),
    )


def infonce(
    image_features: torch.Tensor,
    text_features: torch.Tensor,
    all_image_features: torch.Tensor,
    all_text_features: torch.Tensor,
    scale: torch.Tensor,
    targets: SoftTargets | None,
    *,
    rank: int,
    local_rows: bool,
    chunk_size: int | None,
) -> torch.Tensor:
    """Symmetric cross-entropy towards ``targets`` (identity when ``None``).

    ``local_rows``: only this rank's rows against all columns (open_clip's local loss),
    else the full square over the gathered batch. Uses
    ``CE_i = lse_i - sum_j T_ij Z_ij``; the identity part of ``sum T * Z`` is an O(B * D)
    dot product with group means, only the finding part needs the tiled weights.
    """
    identity_weight = targets.identity_weight if targets is not None else 1.0
    soft_weight = 1.0 - identity_weight
    group_mean = targets.group_mean if targets is not None else (lambda features: features)
    if local_rows:
        n = image_features.shape[0]
        rows = slice(rank * n, (rank + 1) * n)
        directions = []
        for queries, keys, texts_as_rows in (
            (image_features, all_text_features, False),
            (text_features, all_image_features, True),
        ):
            weights = targets.row_weights(rows, chunk_size, texts_as_rows) if soft_weight > 0 else None
            lse, _, weighted = contrastive_logsumexp(
                queries, keys, scale, columns=False, weights=weights, chunk_size=chunk_size
            )
            positive = identity_weight * scale * (queries * group_mean(keys)[rows]).sum()
            if weighted is not None:
                positive = positive + soft_weight * weighted
            directions.append(lse.mean() - positive / n)
        return (directions[0] + directions[1]) / 2
    n = all_image_features.shape[0]
    weights = targets.symmetric_weights(chunk_size) if soft_weight > 0 else None
    lse_rows, lse_cols, weighted = contrastive_logsumexp(
        all_image_features,
        all_text_features,
        scale,
        columns=True,
        weights=weights,
        chunk_size=chunk_size,
    )
    positive = 2 * identity_weight * scale * (all_image_features * group_mean(all_text_features)).sum()
    if weighted is not None:
        positive = positive + soft_weight * weighted
    return (lse_rows.mean() + lse_cols.mean()) / 2 - positive / (2 * n)


class ClipLoss(nn.Module):
    """open_clip-compatible symmetric InfoNCE (multi-process semantics: module docstring).

    Args:
        local_loss: each rank computes only its rows against all gathered columns.
        gather_with_grad: gradients flow back through the feature all-gather.
        cache_labels: accepted for open_clip signature compatibility; no label tensor is
            ever built (positives are read off as a dot product), so there is nothing to cache.
        rank, world_size: ``None`` reads them from torch.distributed at every call
            (``0, 1`` when it is not initialised).
        memory_bounded: compute tile by tile, memory linear in the batch size.
        chunk_size: tile edge of the memory-bounded mode.
    """

    def __init__(
        self,
        local_loss: bool = False,
        gather_with_grad: bool = False,
        cache_labels: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        memory_bounded: bool = False,
        chunk_size: int = 1024,
    ) -> None:
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.local_loss = local_loss
        self.gather_with_grad = gather_with_grad
        self.cache_labels = cache_labels
        self.rank = rank
        self.world_size = world_size
        self.memory_bounded = memory_bounded
        self.chunk_size = chunk_size

    def _prepare(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        check_features(image_features, text_features)
        check_scale("logit_scale", logit_scale)
        check_finite(image_features=image_features, text_features=text_features, logit_scale=logit_scale)
        dtype = compute_dtype(image_features, text_features)
        image = image_features.to(dtype)
        return image, text_features.to(dtype), as_scalar(logit_scale, image)

    def _loss(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
        **target_inputs: torch.Tensor | None,
    ) -> torch.Tensor:
        """The loss; ``target_inputs`` (per-sample tensors) are what :meth:`_targets` builds on."""
        with full_precision(image_features.device):
            image, text, scale = self._prepare(image_features, text_features, logit_scale)
            rank, world_size = resolve_world(self.rank, self.world_size)
            all_image, all_text = gather_pair(
                image,
                text,
                rank=rank,
                world_size=world_size,
                local_loss=self.local_loss,
                with_grad=self.gather_with_grad,
            )
            targets = self._targets(world_size, image.dtype, **target_inputs)
            return infonce(
                image,
                text,
                all_image,
                all_text,
                scale,
                targets,
                rank=rank,
                local_rows=self.local_loss and world_size > 1,
                chunk_size=self.chunk_size if self.memory_bounded else None,
            )

    def _targets(self, world_size: int, dtype: torch.dtype) -> SoftTargets | None:
        """Plain CLIP: identity targets (``None``)."""
        return None

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
        output_dict: bool = False,
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Loss for (B, D) image and text features; ``logit_scale`` is the multiplier."""
        loss = self._loss(image_features, text_features, logit_scale)
        return {"contrastive_loss": loss} if output_dict else loss


def gather_targets_inputs(*tensors: torch.Tensor | None, world_size: int) -> tuple[torch.Tensor | None, ...]:
    """Per-sample target inputs (findings, group ids) of all ranks, so that every rank builds
    the global target matrix; ``None`` stays ``None``."""
    if world_size == 1:
        return tensors
    return tuple(gather_no_grad(t, world_size) if t is not None else None for t in tensors)
