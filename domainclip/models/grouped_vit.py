"""A ViT whose channels come in groups, each with its own patch embedding and its own tokens (SatMAE).

Multispectral bands differ in resolution and meaning (visible, red-edge, short-wave infrared); one convolution
over all of them mixes them before attention sees any. Here group ``g`` of ``channel_groups`` is cut into the same
patch grid by its own strided convolution, and the tokens of all groups (group-major: every patch of group 0,
then of group 1, ...) share the transformer. A token carries the sin-cos position of its patch plus a learned
embedding of its group, so attention can relate the same place across groups. ``num_patches`` counts every
token, so an MAE can hide a patch in one group and keep it in another (SatMAE's independent masking).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from domainclip.config.schema import ImageEncoderConfig
from domainclip.errors import RecipeError
from domainclip.models.patches import grid_shape
from domainclip.models.position import sincos_position_embedding
from domainclip.models.vit import ViTEncoder, patch_embedding_block


def resolve_channel_groups(groups: Sequence[Sequence[str]], names: Sequence[str] | None) -> list[list[int]]:
    """Channel indices of ``groups`` given by name; every channel in at most one group (errors name the key)."""
    if names is None:
        raise RecipeError("model.image.channel_groups: this domain's images have no channel names to group by")
    index = {name: i for i, name in enumerate(names)}
    unknown = sorted({n for group in groups for n in group if n not in index})
    if unknown:
        raise RecipeError(
            f"model.image.channel_groups: {', '.join(unknown)} not among the preprocessed bands {list(names)}"
        )
    flat = [n for group in groups for n in group]
    if twice := sorted({n for n in flat if flat.count(n) > 1}):
        raise RecipeError(f"model.image.channel_groups: {', '.join(twice)} in more than one group")
    if any(not group for group in groups):
        raise RecipeError("model.image.channel_groups: a group is empty")
    return [[index[n] for n in group] for group in groups]


class GroupedViTEncoder(ViTEncoder):
    """:class:`ViTEncoder` with one patch embedding per channel group (see the module docstring)."""

    tower_type = "vit-groups"

    def __init__(
        self,
        in_channels: int,
        img_size: Sequence[int],
        patch_size: Sequence[int],
        hidden_size: int = 192,
        depth: int = 4,
        heads: int = 3,
        mlp_ratio: float = 4.0,
        *,
        channel_groups: Sequence[Sequence[int]],
        **kwargs: Any,
    ) -> None:
        groups = tuple(tuple(int(c) for c in group) for group in channel_groups)
        if not groups or any(not g for g in groups) or any(c < 0 or c >= in_channels for g in groups for c in g):
            raise ValueError(f"channel_groups {groups} must be non-empty groups of channels in [0, {in_channels})")
        self.channel_groups = groups  # read by _build_patch_embedding, which the base constructor calls
        super().__init__(in_channels, img_size, patch_size, hidden_size, depth, heads, mlp_ratio, **kwargs)
        self._config["channel_groups"] = [list(g) for g in groups]

    def _build_patch_embedding(self) -> None:
        self.group_patch_embeddings = nn.ModuleList(
            patch_embedding_block(len(g), self.img_size, self.patch_size, self.hidden_size).patch_embeddings
            for g in self.channel_groups
        )
        self.position_embeddings = sincos_position_embedding(
            grid_shape(self.img_size, self.patch_size), self.hidden_size
        )
        self.group_embeddings = nn.Parameter(torch.zeros(len(self.channel_groups), self.hidden_size))

    def _patch_convolutions(self) -> list[nn.Module]:
        return list(self.group_patch_embeddings)

    def _init_weights(self) -> None:
        super()._init_weights()
        nn.init.normal_(self.group_embeddings, std=0.02)

    @classmethod
    def from_recipe(
        cls,
        cfg: ImageEncoderConfig,
        in_channels: int,
        img_size: Sequence[int],
        channel_names: Sequence[str] | None = None,
    ) -> GroupedViTEncoder:
        if cfg.channel_groups is None:
            raise RecipeError("model.image.channel_groups: required by the 'vit-groups' tower (lists of band names)")
        groups = resolve_channel_groups(cfg.channel_groups, channel_names)
        shape = cls._checked_recipe_shape(cfg, img_size)
        return cls(in_channels, tuple(img_size), *shape, channel_groups=groups)

    @property
    def num_patches(self) -> int:
        return len(self.channel_groups) * super().num_patches

    @property
    def token_groups(self) -> tuple[tuple[int, ...], ...]:
        return self.channel_groups

    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "position_embeddings", "group_embeddings"}

    def embed_patches(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, *S)`` -> ``(B, groups * patches, hidden)``, group-major, with position and group embeddings."""
        self._check_shape(images)
        runs = []
        for g, (group, conv) in enumerate(zip(self.channel_groups, self.group_patch_embeddings)):
            tokens = conv(images[:, list(group)]).flatten(2).transpose(1, 2)
            runs.append(tokens + self.position_embeddings.to(tokens.dtype) + self.group_embeddings[g].to(tokens.dtype))
        return torch.cat(runs, dim=1)
