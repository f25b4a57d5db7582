"""A ViT whose channels come in groups, each with its own patch embedding and its own tokens (SatMAE).

Multispectral bands differ in resolution and meaning (visible, red-edge, short-wave infrared); one convolution
over all of them mixes them before attention sees any. Here group ``g`` of ``channel_groups`` is cut into the same
patch grid by its own strided convolution, and the tokens of all groups (group-major: every patch of group 0,
then of group 1, ...) share the transformer. A token carries the sin-cos position of its patch plus a learned
embedding of its group, so attention can relate the same place across groups. ``num_patches`` counts every
token, so an MAE can hide a patch in one group and keep it in another (SatMAE's independent masking).

``channel_groups: auto`` (or null) takes the groups from the channel names the domain reports (a satellite's bands,
known once the first training image is read when ``preprocess.bands`` is null): Sentinel-2 band IDs go into
SatMAE's groups (:data:`SENTINEL2_GROUPS`), any other channel into one last group of its own, and names that hold
no Sentinel-2 band ID (``red, green, blue``) or no names at all into one group of every channel. The rule reads
channel names only, so the core asks no domain's name; the resolved groups are saved as channel indices with the
tower, so a model directory rebuilds exactly what trained.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, Literal

import torch
from torch import nn

from domainclip.config.schema import ImageEncoderConfig
from domainclip.errors import RecipeError
from domainclip.models.patches import grid_shape
from domainclip.models.position import sincos_position_embedding
from domainclip.models.vit import ViTEncoder, patch_embedding_block

log = logging.getLogger(__name__)

AUTO = "auto"
# Sentinel-2 MSI band IDs as SatMAE groups them: the 10 m visible and near infrared, the 20 m red edge and narrow
# NIR, and the short-wave infrared with the 60 m atmospheric bands (B01 aerosol, B09 water vapour, B10 cirrus:
# L1C only, L2A products drop it). Two-digit IDs only: a reader's generic fallback names ``B1..Bn`` of a file
# without band descriptions (a Landsat scene, a 12-band export) are no claim to be Sentinel-2 bands.
SENTINEL2_GROUPS: tuple[tuple[str, ...], ...] = (
    ("B02", "B03", "B04", "B08"),
    ("B05", "B06", "B07", "B8A"),
    ("B01", "B09", "B10", "B11", "B12"),
)


def auto_channel_groups(names: Sequence[str]) -> list[list[str]]:
    """Groups of ``names`` by the rule in the module docstring: the Sentinel-2 groups (in their band order, only the
    bands present, case-insensitive), then every other channel in file order as one more group; no Sentinel-2 band
    ID among ``names``: one group of all of them."""
    by_id = {name.upper(): name for name in names}
    groups = [[by_id[band] for band in group if band in by_id] for group in SENTINEL2_GROUPS]
    groups = [group for group in groups if group]
    if not groups:
        return [list(names)]
    grouped = {name for group in groups for name in group}
    rest = [name for name in names if name not in grouped]
    return [*groups, rest] if rest else groups


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


def recipe_channel_groups(
    spec: Sequence[Sequence[str]] | Literal["auto"] | None, names: Sequence[str] | None, in_channels: int
) -> list[list[int]]:
    """Channel indices of ``model.image.channel_groups``: the listed groups by name, or (``auto`` / null) the groups
    :func:`auto_channel_groups` reads from ``names``; channels without names (None) are one group."""
    if spec is not None and spec != AUTO:
        return resolve_channel_groups(spec, names)
    if names is None:
        return [list(range(in_channels))]
    if len(names) != in_channels:
        raise RecipeError(
            f"model.image.channel_groups: {len(names)} channel names {list(names)} for {in_channels} channels"
        )
    named = auto_channel_groups(names)
    log.info("model.image.channel_groups (auto from the band names): %s", named)
    return resolve_channel_groups(named, names)


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
        shape = cls._checked_recipe_shape(cfg, img_size)
        groups = recipe_channel_groups(cfg.channel_groups, channel_names, in_channels)
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
