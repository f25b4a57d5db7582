"""Pixels without data: NaN in a preprocessed image, filled before an encoder sees them.

A preprocessor marks a pixel that holds no data (a raster's nodata border) as NaN in every channel, so the mark
travels with the tensor through the disk cache and the DataLoader without a second array. Encoders get 0 there
(the normalised band mean, which carries no signal); the MAE gets the validity mask too, so nodata pixels never
enter its per-patch normalisation or its loss. An image without NaN passes through untouched.
"""

from __future__ import annotations

import torch


def split_nodata(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(B, C, *S)`` -> (images with NaN set to 0, ``(B, 1, *S)`` float mask, 1.0 where every channel holds
    data); the mask is None, and the images the same tensor, when nothing is missing."""
    missing = torch.isnan(images)
    if not bool(missing.any()):
        return images, None
    valid = (~missing.any(dim=1, keepdim=True)).to(images.dtype)
    return images.masked_fill(missing, 0.0), valid


def fill_nodata(images: torch.Tensor) -> torch.Tensor:
    """``images`` with NaN (no data) set to 0: what an encoder sees."""
    return split_nodata(images)[0]


def stack_images(images: list[torch.Tensor]) -> torch.Tensor:
    """One batch from images of one shape; images whose last dimensions differ (bags of different numbers of
    tiles) are padded at the end with NaN, i.e. "no data", which a tower that ``takes_missing`` masks."""
    shapes = {tuple(image.shape) for image in images}
    if len(shapes) <= 1:
        return torch.stack(images)
    if len({len(shape) for shape in shapes}) != 1 or len({shape[0] for shape in shapes}) != 1:
        raise ValueError(f"images of different channels or rank cannot share a batch: {sorted(shapes)}")
    size = [max(dims) for dims in zip(*shapes)]
    batch = images[0].new_full((len(images), *size), float("nan"))
    for row, image in zip(batch, images):
        row[tuple(slice(0, n) for n in image.shape)] = image
    return batch
