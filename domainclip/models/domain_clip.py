"""Stage 2: the dual encoder aligned by the contrastive engine.

Image encoder and text tower each end in a :class:`Projection` to a shared
``embed_dim`` space; a learnable temperature
(:class:`~domainclip.models.logit_scale.LogitScale`) scales the similarities.
The model knows nothing of any domain: the image tower (any :class:`~domainclip.protocols.ImageTower`)
fixes what an image is.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from domainclip.data.nodata import fill_nodata
from domainclip.models.logit_scale import LogitScale
from domainclip.models.text import TextTower
from domainclip.protocols import ImageTower


class Projection(nn.Module):
    """Batch-normalise (no affine), then a bias-free linear map, as in SimCLR-style heads.

    Why the normalisation: in-domain studies are nearly alike (shared anatomy, shared report
    boilerplate), so the pooled features of both towers start with a pairwise cosine close to 1
    and contrastive learning stalls for hundreds of steps while it separates them. Removing the
    batch-common component lets alignment start at once. At inference the running statistics
    make it a fixed affine map; training needs batches of at least 2 (under multi-GPU the engine
    synchronises the statistics across ranks on CUDA).
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(in_features, affine=False)
        self.linear = nn.Linear(in_features, out_features, bias=False)
        nn.init.normal_(self.linear.weight, std=in_features**-0.5)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.linear(self.norm(features))


class DomainCLIP(nn.Module):
    def __init__(
        self,
        image_encoder: ImageTower,
        text_tower: TextTower,
        embed_dim: int = 128,
        *,
        init_logit_scale: float = math.log(1 / 0.07),
        init_logit_bias: float | None = None,
    ) -> None:
        """``init_logit_bias`` adds a learnable ``logit_bias`` for the sigmoid loss (SigLIP: scale log 10, bias -10)."""
        super().__init__()
        self.image_encoder = image_encoder
        self.text_tower = text_tower
        self.embed_dim = embed_dim
        self.image_projection = Projection(image_encoder.hidden_size, embed_dim)
        self.text_projection = Projection(text_tower.hidden_size, embed_dim)
        self.logit_scale = LogitScale(init=init_logit_scale)
        self.logit_bias = None if init_logit_bias is None else nn.Parameter(torch.tensor(float(init_logit_bias)))

    @property
    def device(self) -> torch.device:
        return self.logit_scale.log_scale.device

    def encode_image(self, images: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``(B, C, *S)`` -> ``(B, embed_dim)``, unit length when ``normalize``. NaN (no data) is set to 0 here, the
        one place every path to the tower passes, unless the tower ``takes_missing`` (masks it itself)."""
        if not getattr(self.image_encoder, "takes_missing", False):
            images = fill_nodata(images)
        features = self.image_projection(self.image_encoder(images))
        return F.normalize(features, dim=-1) if normalize else features

    @property
    def has_tile_embeddings(self) -> bool:
        """Whether the image tower pools a bag of tiles and can embed each tile alone (the MIL towers)."""
        return hasattr(self.image_encoder, "tile_embeddings")

    def encode_tiles(self, bags: torch.Tensor, normalize: bool = True) -> torch.Tensor:
        """``(B, D, N)`` bags -> ``(B, N, embed_dim)``: each tile embedded as a bag of that tile alone, through the
        image projection (NaN rows where a bag is padded). Tiles and slides then share one joint space and one set
        of prompts: what MI-Zero's top-k zero-shot and tile-score heatmaps read."""
        if not self.has_tile_embeddings:
            raise ValueError(f"image tower {type(self.image_encoder).__name__} embeds no tiles (not a bag tower)")
        tiles = self.image_encoder.tile_embeddings(bags)
        batch, count, width = tiles.shape
        features = self.image_projection(tiles.reshape(batch * count, width)).reshape(batch, count, -1)
        return F.normalize(features, dim=-1) if normalize else features

    def encode_text(self, texts: Sequence[str] | dict[str, torch.Tensor], normalize: bool = True) -> torch.Tensor:
        """Strings (tokenized here) or a ``tokenize`` dict -> ``(B, embed_dim)``."""
        batch = texts if isinstance(texts, dict) else self.text_tower.tokenize(texts)
        features = self.text_projection(
            self.text_tower(batch["input_ids"].to(self.device), batch["attention_mask"].to(self.device))
        )
        return F.normalize(features, dim=-1) if normalize else features

    def forward(
        self, images: torch.Tensor, input_ids: torch.Tensor, attention_mask: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Normalised features of both towers and the logit-scale multiplier (what the losses take)."""
        return {
            "image_features": self.encode_image(images),
            "text_features": self.encode_text({"input_ids": input_ids, "attention_mask": attention_mask}),
            "logit_scale": self.logit_scale(),
            **({} if self.logit_bias is None else {"logit_bias": self.logit_bias}),
        }

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.image_encoder.set_grad_checkpointing(enable)
        self.text_tower.set_grad_checkpointing(enable)

    def no_weight_decay(self) -> set[str]:
        """Full parameter names that get no weight decay (timm convention)."""
        names = {f"image_encoder.{n}" for n in self.image_encoder.no_weight_decay()} | {"logit_scale.log_scale"}
        return names if self.logit_bias is None else names | {"logit_bias"}
