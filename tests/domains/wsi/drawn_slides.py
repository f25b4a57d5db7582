"""Tiny pyramidal Aperio SVS slides of one tissue drawing, for the tissue and tiling tests.

The drawing is defined in microns, so the same tissue renders at any scan resolution: an irregular pink-purple
blob with an off-centre hole on white glass, and optionally a marker stroke on the glass to its left.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from domainclip.domains.wsi.slide_writer import write_slide

EXTENT_UM = (512.0, 384.0)
"""(width, height) of the drawn glass in microns."""
CENTRE_UM = (270.0, 190.0)
HOLE_UM = (300.0, 170.0, 30.0)
"""Centre x, y and radius of the hole, in microns."""
STROKE_UM = (20.0, 40.0, 55.0, 340.0)
"""x0, y0, x1, y1 of the marker stroke (a rectangle on the glass, clear of the tissue)."""
INKS = {"blue": (35, 60, 190), "green": (40, 150, 60), "black": (30, 30, 34)}


def blob_radius(theta: np.ndarray) -> np.ndarray:
    """Radius in microns of the tissue outline at angle ``theta``."""
    return 125.0 * (1 + 0.15 * np.sin(3 * theta) + 0.08 * np.cos(5 * theta + 1.0))


def draw(mpp: float, ink: str | None = None) -> np.ndarray:
    """The drawing at ``mpp`` microns per pixel as (H, W, 3) uint8, edges anti-aliased over about a micron."""
    width, height = round(EXTENT_UM[0] / mpp), round(EXTENT_UM[1] / mpp)
    x = (np.arange(width) + 0.5) * mpp
    y = (np.arange(height) + 0.5)[:, None] * mpp
    dx, dy = x - CENTRE_UM[0], y - CENTRE_UM[1]
    outside = np.hypot(dx, dy) - blob_radius(np.arctan2(dy, dx))
    in_hole = HOLE_UM[2] - np.hypot(x - HOLE_UM[0], y - HOLE_UM[1])
    tissue = np.clip(0.5 - outside, 0, 1) * np.clip(0.5 - in_hole, 0, 1)
    texture = 0.5 + 0.5 * np.sin(x / 9.0) * np.sin(y / 11.0)
    pink, purple = np.array([235.0, 150.0, 195.0]), np.array([125.0, 70.0, 165.0])
    stain = pink + (purple - pink) * texture[..., None]
    image = 255.0 + (stain - 255.0) * tissue[..., None]
    if ink is not None:
        x0, y0, x1, y1 = STROKE_UM
        stroke = np.clip(np.minimum(np.minimum(x - x0, x1 - x), np.minimum(y - y0, y1 - y)) + 0.5, 0, 1)
        image += (np.array(INKS[ink], dtype=float) - image) * stroke[..., None]
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def drawn_svs(path: Path, mpp: float, ink: str | None = None, fmt: str = "svs") -> Path:
    """The drawing at ``mpp`` as a pyramidal slide written by the package's writer (levels at 4x and 16x)."""
    return write_slide(path, draw(mpp, ink), mpp=mpp, fmt=fmt, magnification=round(10 / mpp), quality=95)
