"""Naive, obviously-correct dense implementations the optimised losses are checked against.

They materialise every matrix (and FILIP's full B x B x T_i x T_t similarity), which
is exactly what the library avoids; fine for the tiny batches of the tests.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def soft_infonce(
    row_images: torch.Tensor,
    column_texts: torch.Tensor,
    row_texts: torch.Tensor,
    column_images: torch.Tensor,
    scale: torch.Tensor,
    targets: torch.Tensor,
    text_targets: torch.Tensor | None = None,
) -> torch.Tensor:
    """1/2 [CE(images -> texts) + CE(texts -> images)] with target rows ``targets``.

    ``targets[i]`` is the distribution over columns for row sample i (an image row for
    image -> text, and, unless ``text_targets`` gives the text rows' own, the same
    sample's text row for text -> image).
    """
    text_targets = targets if text_targets is None else text_targets
    image_to_text = F.log_softmax(scale * row_images @ column_texts.T, dim=1)
    text_to_image = F.log_softmax(scale * row_texts @ column_images.T, dim=1)
    return -((targets * image_to_text).sum(1).mean() + (text_targets * text_to_image).sum(1).mean()) / 2


def filip_scores(
    image_tokens: torch.Tensor,
    image_mask: torch.Tensor,
    text_tokens: torch.Tensor,
    text_mask: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor]:
    """FILIP's (image -> text, text -> image) scores from the full 4-D similarity."""
    sim = torch.einsum("ikd,jrd->ijkr", image_tokens, text_tokens)  # (Bi, Bt, Ti, Tt)
    valid_text = text_mask[None, :, None, :]
    valid_image = image_mask[:, None, :, None]
    best_text = sim.masked_fill(~valid_text, float("-inf")).amax(dim=3)  # (Bi, Bt, Ti)
    best_image = sim.masked_fill(~valid_image, float("-inf")).amax(dim=2)  # (Bi, Bt, Tt)
    image_to_text = (best_text * image_mask[:, None, :]).sum(2) / image_mask.sum(1)[:, None]
    text_to_image = torch.where(text_mask[None], best_image, 0).sum(2) / text_mask.sum(1)[None, :]
    return image_to_text, text_to_image


def filip_loss(
    image_to_text: torch.Tensor, text_to_image: torch.Tensor, scale: torch.Tensor, offset: int = 0
) -> torch.Tensor:
    """Cross-entropy on FILIP scores; rows are queries, matching pair at ``row + offset``."""
    labels = torch.arange(image_to_text.shape[0]) + offset
    return (F.cross_entropy(scale * image_to_text, labels) + F.cross_entropy(scale * text_to_image, labels)) / 2
