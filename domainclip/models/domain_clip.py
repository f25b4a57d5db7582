"""Stage 2: the dual encoder aligned by the contrastive engine.

Image encoder and text tower each end in a bias-free linear projection to a
shared ``embed_dim`` space (as in CLIP); a learnable temperature
(:class:`~domainclip.models.logit_scale.LogitScale`) scales the similarities.
The model knows nothing of any domain: the image encoder fixes shape and channels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from domainclip.models.logit_scale import LogitScale
from domainclip.models.text import TextTower
from domainclip.models.vit import ViTEncoder


class DomainCLIP(nn.Module):
    def __init__(
        self, image_encoder: ViTEncoder, text_tower: TextTower, embed_dim: int = 128
    ) -> None:
        super().__init__()
        self.image_encoder = image_encoder
        self.text_tower = text_tower
        self.embed_dim = embed_dim
        self.image_projection = nn.Linear(image_encoder.hidden_size, embed_dim, bias=False)
        self.text_projection = nn.Linear(text_tower.hidden_size, embed_dim, bias=False)
        for projection in (self.image_projection, self.text_projection):
            nn.init.normal_(projection.weight, std=projection.in_features**-0.5)
        self.logit_scale = LogitScale()

    @property
    def device(self) -> torch.device:
        return self.image_projection.weight.device

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``(B, C, *S)`` -> ``(B, embed_dim)``, unit length when ``normalize``."""
        features = self.image_projection(self.image_encoder(images))
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(
        self, texts: Sequence[str] | dict[str, torch.Tensor], normalize: bool = True
    ) -> torch.Tensor:
        """Strings (tokenized here) or a ``tokenize`` dict -> ``(B, embed_dim)``."""
        batch = texts if isinstance(texts, dict) else self.text_tower.tokenize(texts)
        features = self.text_projection(
            self.text_tower(
                batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device)
            )
        )
        return F.normalize(features, dim=-1) if normalize else features

    def forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Normalised features of both towers and the logit-scale multiplier (what the losses take)."""
        return {
            "image_features": self.encode_image(images),
            "text_features": self.encode_text(
                {"input_ids": input_ids, "attention_mask": attention_mask}
            ),
            "logit_scale": self.logit_scale(),
        }

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.image_encoder.set_grad_checkpointing(enable)
        self.text_tower.set_grad_checkpointing(enable)

    def no_weight_decay(self) -> set[str]:
        """Full parameter names that get no weight decay (timm convention)."""
        return {f"image_encoder.{n}" for n in self.image_encoder.no_weight_decay()} | {
            "logit_scale.log_scale"
        }
