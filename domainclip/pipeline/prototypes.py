"""Alignment with SongCi-style prototypes (``stages.align.prototypes.count > 0``).

The prototypes are learnable, so they must train, checkpoint, resume and synchronise across processes exactly
like the model's own parameters. Rather than teach the engine about a loss with state, the alignment stage trains
this wrapper: the DomainCLIP plus the :class:`~domainclip.losses.PrototypeLoss`, whose forward returns the model's
outputs and the prototype loss, computed inside ``forward`` so DDP and FSDP see every parameter used there. The
saved model is the inner DomainCLIP alone: prototypes are a training device, not part of what inference loads.
"""

from __future__ import annotations

import torch
from torch import nn

from domainclip.config.schema import PrototypeConfig
from domainclip.losses import PrototypeLoss


class WithPrototypes(nn.Module):
    """A DomainCLIP trained with a prototype loss beside its contrastive loss."""

    def __init__(self, clip: nn.Module, cfg: PrototypeConfig) -> None:
        super().__init__()
        self.clip = clip
        self.prototype_loss = PrototypeLoss(
            clip.embed_dim, num_prototypes=cfg.count, temperature=cfg.temperature, epsilon=cfg.epsilon
        )

    def forward(
        self,
        images: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        text_owner: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """The DomainCLIP's outputs plus ``prototype_loss`` over the (image, text) pairs (``text_owner``: the image
        of each text row when the batch holds several texts per image)."""
        out = self.clip(images, input_ids, attention_mask)
        image_features = out["image_features"] if text_owner is None else out["image_features"][text_owner]
        out["prototype_loss"] = self.prototype_loss(image_features, out["text_features"])
        return out

    def no_weight_decay(self) -> set[str]:
        """Prototypes are used normalised: decay would only shrink their length, so they get none (SwAV)."""
        return {"prototype_loss.prototypes"}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.clip.set_grad_checkpointing(enable)
