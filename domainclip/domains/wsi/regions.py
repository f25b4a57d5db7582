"""Pixels out of a slide: the pyramid level to read for a resolution, RGB over white, a bounded-memory overview.

A slide is an ``openslide.OpenSlide`` or a ``tiffslide.TiffSlide``; only their shared API is used
(``dimensions``, ``level_dimensions``, ``level_downsamples``, ``read_region``). ``read_region`` takes level-0
coordinates and a size at the level, and returns RGBA where pixels outside the scanned area are transparent.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

LEVEL_TOLERANCE = 0.02
"""A level whose downsample exceeds the needed one by at most this fraction still counts as fine enough.

Level downsamples carry the rounding of the level sizes (a nominal 4 is rarely exactly 4), and scanners' nominal
20x / 40x are a hair off 0.5 / 0.25 um/px; without the tolerance such a level would be skipped for one four times
finer, and every tile would cost many times the pixels. The resize then enlarges by at most this fraction.
"""

MAX_READ_SIDE = 2048
"""Largest side (pixels at the level) of one ``read_region`` call in :func:`read_downsampled`: bounds memory."""


def level_for_downsample(slide: Any, downsample: float) -> int:
    """The coarsest level that is not coarser than ``downsample`` (level-0 px per output px), within tolerance.

    Reading there and resizing down keeps every pixel the output needs; a coarser level would have to be enlarged.
    Below 1 (output finer than level 0) this is level 0, and the caller enlarges.
    """
    best = 0
    for level, level_downsample in enumerate(slide.level_downsamples):
        if level_downsample <= downsample * (1 + LEVEL_TOLERANCE) and level_downsample > slide.level_downsamples[best]:
            best = level
    return best


def rgba_to_rgb(rgba: np.ndarray) -> np.ndarray:
    """Composite RGBA (H, W, 4) uint8 over white: transparent pixels (outside the scan) become glass, not black."""
    if rgba.shape[-1] == 3:
        return np.ascontiguousarray(rgba, dtype=np.uint8)
    if rgba[..., 3].min() == 255:  # inside the scanned area, where nearly every tile lies: nothing to composite
        return np.ascontiguousarray(rgba[..., :3])
    rgb = rgba[..., :3].astype(np.uint16)
    alpha = rgba[..., 3:4].astype(np.uint16)
    return ((rgb * alpha + 255 * (255 - alpha) + 127) // 255).astype(np.uint8)


def read_rgb(slide: Any, location: tuple[int, int], level: int, size: tuple[int, int]) -> np.ndarray:
    """``read_region`` as (h, w, 3) uint8 RGB over white; ``location`` in level-0 px, ``size`` (w, h) at ``level``."""
    region = slide.read_region((int(location[0]), int(location[1])), int(level), (int(size[0]), int(size[1])))
    return rgba_to_rgb(np.asarray(region))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize to ``size`` (w, h): area averaging when shrinking (no aliasing), bilinear when enlarging."""
    import cv2

    height, width = image.shape[:2]
    if (width, height) == tuple(size):
        return image
    shrinking = size[0] <= width and size[1] <= height
    return cv2.resize(image, tuple(size), interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR)


def read_downsampled(slide: Any, downsample: float) -> np.ndarray:
    """The whole slide as (H, W, 3) uint8 at ``downsample`` level-0 px per pixel (W = level-0 width / downsample).

    Read from :func:`level_for_downsample` block by block (at most :data:`MAX_READ_SIDE` level px a side) and
    resized into place, so memory is the output plus one block, whatever the level sizes are.
    """
    width0, height0 = slide.dimensions
    out_w, out_h = max(1, round(width0 / downsample)), max(1, round(height0 / downsample))
    level = level_for_downsample(slide, downsample)
    level_downsample = float(slide.level_downsamples[level])
    level_w, level_h = slide.level_dimensions[level]
    scale = downsample / level_downsample  # level px per output px
    block = max(1, int(MAX_READ_SIDE // math.ceil(scale)))
    out = np.empty((out_h, out_w, 3), dtype=np.uint8)
    for oy0 in range(0, out_h, block):
        oy1 = min(out_h, oy0 + block)
        ly0 = min(level_h - 1, math.floor(oy0 * scale))
        ly1 = min(level_h, max(ly0 + 1, math.ceil(oy1 * scale)))
        for ox0 in range(0, out_w, block):
            ox1 = min(out_w, ox0 + block)
            lx0 = min(level_w - 1, math.floor(ox0 * scale))
            lx1 = min(level_w, max(lx0 + 1, math.ceil(ox1 * scale)))
            location = (round(lx0 * level_downsample), round(ly0 * level_downsample))
            region = read_rgb(slide, location, level, (lx1 - lx0, ly1 - ly0))
            out[oy0:oy1, ox0:ox1] = resize(region, (ox1 - ox0, oy1 - oy0))
    return out
