"""Slide towers over a bag of tile features: gated attention-MIL (``abmil``) and its mean-pooling ablation.

A bag is ``(B, D, N)``, channels first like every tower's ``(B, C, *S)``: D is the tile-feature width, N the tiles.
Bags of one batch differ in length, so a shorter one is padded with NaN columns; the towers set ``takes_missing``
so the core hands them the NaN instead of zeros, and they mask those columns themselves: a padded tile never
receives attention, never enters a mean and never moves the output.

Pooling is the last step on purpose: the slide embedding is a weighted sum of the tile embeddings (a convex
combination for one head) and the projection head is affine at inference, so a tile's projected embedding lies in
the joint image-text space exactly, which is what zero-shot tile scores (MI-Zero) and heatmaps read.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from domainclip.config.schema import ImageEncoderConfig
from domainclip.errors import RecipeError


class BagTower(nn.Module):
    """What both slide towers share: the per-tile embedding, the padding mask and masked softmax pooling.

    A subclass says how tiles are scored (:meth:`_attention_logits`, one row per head) and how the heads' pooled
    vectors become one (:meth:`_merge_heads`). A column with any NaN is padding (the core's contract for
    ``takes_missing`` towers); a bag without one valid tile has nothing to pool and is a ValueError.
    """

    tower_type: str
    takes_missing = True

    def __init__(self, in_features: int, hidden_size: int, heads: int, dropout: float) -> None:
        super().__init__()
        for name, value in (("in_features", in_features), ("hidden_size", hidden_size), ("heads", heads)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.in_features, self.hidden_size, self.heads, self.dropout = in_features, hidden_size, heads, dropout
        self.tile_projection = nn.Sequential(nn.Linear(in_features, hidden_size), nn.GELU(), nn.Dropout(dropout))

    @classmethod
    def from_recipe(
        cls,
        cfg: ImageEncoderConfig,
        in_channels: int,
        img_size: Sequence[int],
        channel_names: Sequence[str] | None = None,
    ) -> BagTower:
        """The tower of a recipe's ``model.image`` for bags of ``in_channels``-wide tile features.

        ``img_size`` (the bag length) does not matter: bags vary in length. Which keys are read is the subclass's
        :meth:`_recipe_kwargs`; ``patch_size``, ``depth`` and the decoder keys mean nothing to a bag tower.
        """
        if cfg.channel_groups is not None:
            raise RecipeError(
                f"model.image.channel_groups: the {cls.tower_type!r} tower pools tile features and has no channel "
                "groups; remove the key"
            )
        if cfg.weights:
            raise RecipeError(f"model.image.weights: the {cls.tower_type!r} tower is trained from scratch")
        kwargs = cls._recipe_kwargs(cfg)
        for key in ("hidden_size", "heads"):
            if key in kwargs and kwargs[key] < 1:
                raise RecipeError(f"model.image.{key}: must be at least 1 for the {cls.tower_type!r} tower")
        return cls(in_channels, **kwargs)

    @classmethod
    def _recipe_kwargs(cls, cfg: ImageEncoderConfig) -> dict[str, Any]:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable): ``type(tower)(**tower.config())`` rebuilds it."""
        raise NotImplementedError

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """No-op: each tile passes one linear layer, so there is no deep activation stack worth recomputing."""

    def no_weight_decay(self) -> set[str]:
        return set()

    def _attention_logits(self, tiles: torch.Tensor) -> torch.Tensor:
        """``(B, N, hidden)`` tile embeddings -> ``(B, heads, N)`` scores before the softmax."""
        raise NotImplementedError

    def _merge_heads(self, pooled: torch.Tensor) -> torch.Tensor:
        """``(B, heads, hidden)`` pooled vectors -> ``(B, hidden)``."""
        raise NotImplementedError

    def _embed(self, bags: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, D, N)`` -> tile embeddings ``(B, N, hidden)`` (padding rows are embeddings of zeros, never used) and
        the ``(B, N)`` mask of valid tiles."""
        if bags.ndim != 3 or bags.shape[1] != self.in_features:
            raise ValueError(
                f"expected bags of shape (B, {self.in_features}, N) (tile features channels first), "
                f"got {tuple(bags.shape)}"
            )
        valid = ~torch.isnan(bags).any(dim=1)
        empty = (~valid.any(dim=1)).nonzero().flatten().tolist()
        if empty:
            raise ValueError(f"bag(s) {empty} of the batch have no valid tile (every column is NaN padding)")
        features = torch.where(valid.unsqueeze(1), bags, torch.zeros((), dtype=bags.dtype, device=bags.device))
        return self.tile_projection(features.transpose(1, 2)), valid

    def _weights(self, tiles: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        logits = self._attention_logits(tiles).masked_fill(~valid.unsqueeze(1), float("-inf"))
        return logits.softmax(dim=-1)

    def forward(self, bags: torch.Tensor) -> torch.Tensor:
        """``(B, D, N)`` bags -> ``(B, hidden_size)`` slide embeddings."""
        tiles, valid = self._embed(bags)
        return self._merge_heads(self._weights(tiles, valid) @ tiles)

    def attention(self, bags: torch.Tensor) -> torch.Tensor:
        """``(B, heads, N)`` pooling weights: each head's sum to 1 over the valid tiles, exactly 0 on padding (for
        heatmaps). In eval mode with one head, ``forward(bags)`` equals
        ``(attention(bags).transpose(1, 2) * tile_embeddings(bags)).nansum(dim=1)``."""
        return self._weights(*self._embed(bags))

    def tile_embeddings(self, bags: torch.Tensor) -> torch.Tensor:
        """``(B, N, hidden)`` per-tile embeddings, NaN rows where a bag is padded: each tile's embedding is what
        ``forward`` gives a bag of that tile alone (every head's weight on it, heads merged), so it lies in the
        slide embeddings' space for any head count; with one head it is the vector the pooling weighs."""
        tiles, valid = self._embed(bags)
        batch, count, width = tiles.shape
        alone = tiles.reshape(batch * count, 1, width).expand(-1, self.heads, -1)
        merged = self._merge_heads(alone).reshape(batch, count, -1)
        return merged.masked_fill(~valid.unsqueeze(-1), float("nan"))


class GatedAttentionMIL(BagTower):
    """Gated attention-MIL (Ilse et al. 2018, CLAM's form); registered as ``abmil``.

    Per tile ``h = Dropout(GELU(W x))``; per head the score is ``w^T (tanh(V h) * sigmoid(U h))`` and the head pools
    ``sum_i softmax(score)_i h_i`` over the valid tiles. Several heads attend to different tiles; their pooled
    vectors are concatenated and mapped back to ``hidden_size`` by one linear layer (with one head there is none,
    so the slide embedding is a convex combination of tile embeddings).

    Recipe keys (``model.image``): ``hidden_size`` (the tile-embedding and output width) and ``heads``.
    ``attention_size`` (the gate width) is ``hidden_size // 2`` from a recipe.
    """

    tower_type = "abmil"

    def __init__(
        self,
        in_features: int,
        hidden_size: int = 256,
        attention_size: int | None = None,
        heads: int = 1,
        dropout: float = 0.25,
    ) -> None:
        super().__init__(in_features, hidden_size, heads, dropout)
        self.attention_size = max(1, hidden_size // 2) if attention_size is None else attention_size
        if self.attention_size < 1:
            raise ValueError(f"attention_size must be at least 1, got {self.attention_size}")
        self.attention_value = nn.Sequential(nn.Linear(hidden_size, self.attention_size), nn.Tanh())
        self.attention_gate = nn.Sequential(nn.Linear(hidden_size, self.attention_size), nn.Sigmoid())
        self.attention_score = nn.Linear(self.attention_size, heads)
        self.head_merge = nn.Linear(heads * hidden_size, hidden_size) if heads > 1 else nn.Identity()

    @classmethod
    def _recipe_kwargs(cls, cfg: ImageEncoderConfig) -> dict[str, Any]:
        return {"hidden_size": cfg.hidden_size, "heads": cfg.heads}

    def config(self) -> dict[str, Any]:
        return {
            "in_features": self.in_features,
            "hidden_size": self.hidden_size,
            "attention_size": self.attention_size,
            "heads": self.heads,
            "dropout": self.dropout,
        }

    def _attention_logits(self, tiles: torch.Tensor) -> torch.Tensor:
        gated = self.attention_value(tiles) * self.attention_gate(tiles)
        return self.attention_score(gated).transpose(1, 2)

    def _merge_heads(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.head_merge(pooled.flatten(1))


class MeanPoolMIL(BagTower):
    """The mean of the valid tiles' embeddings (uniform attention); registered as ``mean-mil``.

    The ablation "mean pooling instead of attention": the same tile embedding as :class:`GatedAttentionMIL` with
    nothing learnt about which tiles matter. Recipe key (``model.image``): ``hidden_size``; ``heads`` is ignored.
    """

    tower_type = "mean-mil"

    def __init__(self, in_features: int, hidden_size: int = 256, dropout: float = 0.25) -> None:
        super().__init__(in_features, hidden_size, heads=1, dropout=dropout)

    @classmethod
    def _recipe_kwargs(cls, cfg: ImageEncoderConfig) -> dict[str, Any]:
        return {"hidden_size": cfg.hidden_size}

    def config(self) -> dict[str, Any]:
        return {"in_features": self.in_features, "hidden_size": self.hidden_size, "dropout": self.dropout}

    def _attention_logits(self, tiles: torch.Tensor) -> torch.Tensor:
        return tiles.new_zeros(tiles.shape[0], 1, tiles.shape[1])

    def _merge_heads(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled.squeeze(1)
