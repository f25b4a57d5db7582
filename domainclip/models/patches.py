"""Cutting images into patch vectors and choosing which patches an MAE hides.

Patch order is row-major over the patch grid, the same order in which a strided
convolution's output is flattened (MONAI's ``PatchEmbeddingBlock``), so patch ``n``
here is token ``n`` of the encoder. Inside a patch the values are laid out
``(*patch_size, channels)``, as in the MAE reference code. Works for 2D and 3D.
An encoder with channel groups has one run of grid tokens per group, group-major
(:func:`group_patchify`, :func:`consistent_masking`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch


def grid_shape(image_size: Sequence[int], patch_size: Sequence[int]) -> tuple[int, ...]:
    """Number of patches along each spatial axis; the sizes must divide exactly."""
    if len(image_size) != len(patch_size):
        raise ValueError(f"image size {tuple(image_size)} and patch size {tuple(patch_size)} differ in rank")
    for size, patch in zip(image_size, patch_size):
        if patch <= 0 or size % patch:
            raise ValueError(f"image size {tuple(image_size)} is not divisible by patch size {tuple(patch_size)}")
    return tuple(size // patch for size, patch in zip(image_size, patch_size))


def patchify(images: torch.Tensor, patch_size: Sequence[int]) -> torch.Tensor:
    """``(B, C, *S)`` -> ``(B, N, prod(patch_size) * C)``."""
    dims = len(patch_size)
    if images.ndim != dims + 2:
        raise ValueError(f"expected a (B, C, {dims} spatial) tensor, got shape {tuple(images.shape)}")
    batch, channels, *spatial = images.shape
    grid = grid_shape(spatial, patch_size)
    split: list[int] = []
    for g, p in zip(grid, patch_size):
        split += [g, p]
    x = images.reshape(batch, channels, *split)
    # axes: 0=B, 1=C, then (g_i at 2+2i, p_i at 3+2i) -> B, g..., p..., C
    order = [0, *(2 + 2 * i for i in range(dims)), *(3 + 2 * i for i in range(dims)), 1]
    return x.permute(order).reshape(batch, math.prod(grid), math.prod(patch_size) * channels)


def unpatchify(patches: torch.Tensor, patch_size: Sequence[int], grid: Sequence[int], channels: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: ``(B, N, prod(patch_size) * C)`` -> ``(B, C, *S)``."""
    dims = len(patch_size)
    batch = patches.shape[0]
    if patches.shape[1:] != (math.prod(grid), math.prod(patch_size) * channels):
        raise ValueError(
            f"patches of shape {tuple(patches.shape)} do not fit grid {tuple(grid)}, "
            f"patch size {tuple(patch_size)} and {channels} channels"
        )
    x = patches.reshape(batch, *grid, *patch_size, channels)
    # axes: 0=B, g_i at 1+i, p_i at 1+dims+i, C last -> B, C, (g_i, p_i)...
    order = [0, 1 + 2 * dims]
    for i in range(dims):
        order += [1 + i, 1 + dims + i]
    spatial = [g * p for g, p in zip(grid, patch_size)]
    return x.permute(order).reshape(batch, channels, *spatial)


def random_masking(
    batch: int,
    num_patches: int,
    mask_ratio: float,
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pick patches to hide, independently per sample (MAE's shuffle-by-noise).

    Returns ``visible_ids`` ``(B, n_visible)`` sorted ascending, and ``mask``
    ``(B, N)`` with 1.0 where a patch is hidden (the loss is computed there).
    At least one patch stays visible and at least one is hidden.
    """
    if not 0.0 < mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
    if num_patches < 2:
        raise ValueError(f"masking needs at least 2 patches, got {num_patches}")
    n_visible = min(num_patches - 1, max(1, int(num_patches * (1.0 - mask_ratio))))
    noise = torch.rand(batch, num_patches, device=device, generator=generator)
    visible_ids = noise.argsort(dim=1)[:, :n_visible].sort(dim=1).values
    mask = torch.ones(batch, num_patches, device=device)
    mask.scatter_(1, visible_ids, 0.0)
    return visible_ids, mask


def group_patchify(
    images: torch.Tensor, patch_size: Sequence[int], groups: Sequence[Sequence[int]]
) -> list[torch.Tensor]:
    """Per channel group, :func:`patchify` of that group's channels: ``(B, N, prod(patch_size) * len(group))``."""
    if len(groups) == 1 and list(groups[0]) == list(range(images.shape[1])):
        return [patchify(images, patch_size)]
    return [patchify(images[:, list(group)], patch_size) for group in groups]


def consistent_masking(
    batch: int,
    patches_per_group: int,
    groups: int,
    mask_ratio: float,
    *,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """:func:`random_masking` of the patch grid, the same patches hidden in every group's run of tokens."""
    visible, mask = random_masking(batch, patches_per_group, mask_ratio, device=device, generator=generator)
    offsets = torch.arange(groups, device=visible.device) * patches_per_group
    return (visible[:, None, :] + offsets[None, :, None]).reshape(batch, -1), mask.repeat(1, groups)
