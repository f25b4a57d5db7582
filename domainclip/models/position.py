"""Fixed sin-cos position embeddings on a 2D or 3D patch grid.

MONAI's builder needs the width divisible by 4 (2D) or 6 (3D). Recipe widths
such as a 128-wide 3D decoder are not, so the largest divisible part gets MONAI's
embedding and the remaining few channels carry none (zeros) rather than refusing
a reasonable width.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from monai.networks.blocks.pos_embed_utils import build_sincos_position_embedding
from torch import nn


def sincos_position_embedding(grid: Sequence[int], width: int) -> nn.Parameter:
    """A frozen ``(1, prod(grid), width)`` parameter in row-major grid order."""
    spatial_dims = len(grid)
    if spatial_dims not in (2, 3):
        raise ValueError(f"sin-cos position embeddings support 2D or 3D grids, got {tuple(grid)}")
    step = 4 if spatial_dims == 2 else 6
    usable = width - width % step
    if usable == 0:
        raise ValueError(f"width {width} is too small for a {spatial_dims}D sin-cos embedding (needs >= {step})")
    with warnings.catch_warnings():  # MONAI calls torch.meshgrid without `indexing` ('ij' is what it means)
        warnings.simplefilter("ignore", UserWarning)
        table = build_sincos_position_embedding(list(grid), usable, spatial_dims).detach()
    if usable < width:
        table = torch.cat([table, table.new_zeros(1, table.shape[1], width - usable)], dim=2)
    return nn.Parameter(table, requires_grad=False)
