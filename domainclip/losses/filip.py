"""FILIP: token-wise late-interaction contrastive loss with padding masks.

For image i (tokens x_ik) and text j (tokens y_jr) FILIP scores

* image -> text: ``s_ij = mean_{valid k} max_{valid r} x_ik . y_jr``
* text -> image: ``t_ij = mean_{valid r} max_{valid k} x_ik . y_jr``

and trains ``logit_scale * s`` (rows: images over texts) and ``logit_scale * t.T``
(rows: texts over images) with cross-entropy towards the matching pair. Padding is
excluded from both the max and the mean, so padded tokens never change the loss.

The token similarities of a ``c x c`` block of samples (``c = chunk_size``) are
computed at once, ``c^2 * T_i * T_t`` numbers, never the whole ``B^2 * T_i * T_t``;
autograd keeps only the argmax indices of each block for the backward pass.

Distributed semantics (tokens and masks gathered; every rank the same batch size and
token counts, so pad to a fixed length) are those of :class:`~.clip.ClipLoss`: same
options, same loss values and gradient factors.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ._checks import as_scalar, check_finite, check_scale, compute_dtype, full_precision
from ._distributed import gather_no_grad, resolve_world
from .clip import gather_pair
from .tiled import _spans


def _check_tokens(name: str, tokens: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    if tokens.ndim != 3 or not tokens.is_floating_point():
        raise ValueError(
            f"{name} must be a floating (batch, tokens, dim) tensor, got {tuple(tokens.shape)} {tokens.dtype}"
        )
    mask_name = name.replace("tokens", "mask")
    if mask is None:
        return torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
    if mask.shape != tokens.shape[:2] or mask.dtype != torch.bool:
        raise ValueError(
            f"{mask_name} must be a bool tensor of shape {tuple(tokens.shape[:2])} "
            "(True = real token), "
            f"got {tuple(mask.shape)} {mask.dtype}"
        )
    empty = ~mask.any(dim=1)
    if empty.any():
        raise ValueError(f"{mask_name}: sample {int(empty.nonzero()[0])} has no valid token")
    return mask.to(tokens.device)


def token_similarities(
    image_tokens: torch.Tensor,
    image_mask: torch.Tensor,
    text_tokens: torch.Tensor,
    text_mask: torch.Tensor,
    *,
    chunk_size: int,
    image_to_text: bool = True,
    text_to_image: bool = True,
) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """FILIP scores ``(s, t)``, each (B_images, B_texts); either may be skipped (None)."""
    image_counts = image_mask.sum(dim=1).to(image_tokens.dtype)
    text_counts = text_mask.sum(dim=1).to(text_tokens.dtype)
    image_weight = image_mask.to(image_tokens.dtype)
    dim = image_tokens.shape[2]
    rows_i2t, rows_t2i = [], []
    for rows in _spans(image_tokens.shape[0], chunk_size):
        block_i2t, block_t2i = [], []
        x = image_tokens[rows]
        for cols in _spans(text_tokens.shape[0], chunk_size):
            y = text_tokens[cols]
            sim = (x.reshape(-1, dim) @ y.reshape(-1, dim).T).view(x.shape[0], x.shape[1], y.shape[0], y.shape[1])
            if image_to_text:
                sim.masked_fill_(~text_mask[None, None, cols], float("-inf"))
                best_text = sim.max(dim=3).values  # (ci, Ti, cj); finite: every text has a valid token
                block_i2t.append((best_text * image_weight[rows, :, None]).sum(dim=1) / image_counts[rows, None])
            if text_to_image:
                sim.masked_fill_(~image_mask[rows, :, None, None], float("-inf"))
                best_image = sim.max(dim=1).values  # (ci, cj, Tt); -inf on padded text tokens
                kept = torch.where(text_mask[None, cols], best_image, 0)
                block_t2i.append(kept.sum(dim=2) / text_counts[None, cols])
        if image_to_text:
            rows_i2t.append(torch.cat(block_i2t, dim=1))
        if text_to_image:
            rows_t2i.append(torch.cat(block_t2i, dim=1))
    return (
        torch.cat(rows_i2t) if image_to_text else None,
        torch.cat(rows_t2i) if text_to_image else None,
    )


class FilipLoss(nn.Module):
    """Token-wise late-interaction contrastive loss (FILIP), chunked, mask-aware.

    Args:
        chunk_size: samples per block of token similarities (memory ~ chunk^2 * T_i * T_t).
        local_loss, gather_with_grad, rank, world_size: as in :class:`~.clip.ClipLoss`.
    """

    def __init__(
        self,
        chunk_size: int = 16,
        local_loss: bool = False,
        gather_with_grad: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        if chunk_size < 1:
            raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
        self.chunk_size = chunk_size
        self.local_loss = local_loss
        self.gather_with_grad = gather_with_grad
        self.rank = rank
        self.world_size = world_size

    def forward(
        self,
        image_tokens: torch.Tensor,
        text_tokens: torch.Tensor,
        logit_scale: torch.Tensor | float,
        image_mask: torch.Tensor | None = None,
        text_mask: torch.Tensor | None = None,
        output_dict: bool = False,
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Loss for (B, T_i, D) image and (B, T_t, D) text tokens; masks are True on real tokens."""
        image_mask = _check_tokens("image_tokens", image_tokens, image_mask)
        text_mask = _check_tokens("text_tokens", text_tokens, text_mask)
        if image_tokens.shape[0] != text_tokens.shape[0] or image_tokens.shape[2] != text_tokens.shape[2]:
            raise ValueError(
                f"image_tokens and text_tokens must have the same batch size and width, got "
                f"image_tokens {tuple(image_tokens.shape)} and "
                f"text_tokens {tuple(text_tokens.shape)}"
            )
        check_scale("logit_scale", logit_scale)
        check_finite(image_tokens=image_tokens, text_tokens=text_tokens, logit_scale=logit_scale)
        with full_precision(image_tokens.device):
            dtype = compute_dtype(image_tokens, text_tokens)
            image, text = image_tokens.to(dtype), text_tokens.to(dtype)
            scale = as_scalar(logit_scale, image)
            loss = self._loss(image, text, image_mask, text_mask, scale)
        return {"contrastive_loss": loss} if output_dict else loss

    def _loss(self, image, text, image_mask, text_mask, scale) -> torch.Tensor:
        rank, world_size = resolve_world(self.rank, self.world_size)
        all_image, all_text = gather_pair(
            image,
            text,
            rank=rank,
            world_size=world_size,
            local_loss=self.local_loss,
            with_grad=self.gather_with_grad,
        )
        if world_size > 1:
            all_image_mask = gather_no_grad(image_mask, world_size)
            all_text_mask = gather_no_grad(text_mask, world_size)
        else:
            all_image_mask, all_text_mask = image_mask, text_mask
        n = image.shape[0]
        if self.local_loss and world_size > 1:
            labels = torch.arange(n, device=image.device) + rank * n
            image_to_text, _ = token_similarities(
                image,
                image_mask,
                all_text,
                all_text_mask,
                chunk_size=self.chunk_size,
                text_to_image=False,
            )
            _, text_to_image = token_similarities(
                all_image,
                all_image_mask,
                text,
                text_mask,
                chunk_size=self.chunk_size,
                image_to_text=False,
            )
        else:
            labels = torch.arange(all_image.shape[0], device=image.device)
            image_to_text, text_to_image = token_similarities(
                all_image, all_image_mask, all_text, all_text_mask, chunk_size=self.chunk_size
            )
        return (F.cross_entropy(scale * image_to_text, labels) + F.cross_entropy(scale * text_to_image.T, labels)) / 2
