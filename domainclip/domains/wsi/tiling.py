"""Tile grids at an exact target resolution (microns per pixel), and reading one tile.

A tile is ``tile_size`` pixels at ``target_mpp``, so it covers ``tile_size * target_mpp`` microns on every slide:
``patch_size_level0 = round(tile_size * target_mpp / mpp_level0)`` level-0 pixels. It is read at the coarsest
pyramid level that is still at least as fine as the target (:func:`~.regions.level_for_downsample`) and resized
down to ``tile_size``, so a 40x and a 20x scan of the same tissue give the same tiles. When level 0 itself is
coarser than the target (a 0.25 um/px tile asked of a 0.5 um/px scan), the tile is enlarged: the recipe asked for
detail the scan does not have, which is logged once per slide rather than refused (the tiles are still the right
physical size, and refusing would drop the slide).

Coordinates are level-0 top-left (x, y), as TRIDENT and CLAM store them, sorted row by row.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from domainclip.domains.wsi.config import WSIPreprocessConfig
from domainclip.domains.wsi.regions import LEVEL_TOLERANCE, level_for_downsample, read_rgb, resize
from domainclip.domains.wsi.tissue import Tissue

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class TileGrid:
    """The kept tiles of one slide and how to read them."""

    coords: np.ndarray
    """(N, 2) int64 level-0 top-left (x, y), sorted by y then x."""
    tile_size: int
    """Tile side in pixels at ``target_mpp``."""
    patch_size_level0: int
    """Tile side in level-0 pixels (``round(tile_size * target_mpp / mpp_level0)``)."""
    level: int
    """Pyramid level the tiles are read from."""
    read_size: int
    """Tile side in pixels at ``level``; resized to ``tile_size`` after reading."""
    target_mpp: float
    mpp_level0: float
    overlap: int
    """Pixels at ``target_mpp`` that neighbouring tiles share."""
    level0_width: int
    level0_height: int

    def __len__(self) -> int:
        return len(self.coords)

    @property
    def overlap_level0(self) -> int:
        return round(self.overlap * self.target_mpp / self.mpp_level0)

    @property
    def stride_level0(self) -> int:
        """Level-0 pixels between neighbouring tiles' origins."""
        return max(1, self.patch_size_level0 - self.overlap_level0)

    @property
    def target_magnification(self) -> float:
        return 10.0 / self.target_mpp

    @property
    def level0_magnification(self) -> float:
        return 10.0 / self.mpp_level0


def tissue_fractions(tissue: Tissue, xs: np.ndarray, ys: np.ndarray, patch_size_level0: int) -> np.ndarray:
    """(len(ys), len(xs)) share of each tile's area inside ``tissue.mask`` (tiles at level-0 origins xs x ys).

    Summed over the mask pixels each tile covers (rounded to whole mask pixels, at least one) with an integral
    image, so a whole slide's grid costs one pass over the mask.
    """
    import cv2

    height, width = tissue.mask.shape
    integral = cv2.integral(tissue.mask.astype(np.uint8)).astype(np.int64)

    def span(origins: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
        start = np.clip(np.rint(origins / tissue.downsample).astype(np.int64), 0, side - 1)
        stop = np.clip(np.rint((origins + patch_size_level0) / tissue.downsample).astype(np.int64), start + 1, side)
        return start, stop

    x0, x1 = span(xs, width)
    y0, y1 = span(ys, height)
    inside = (
        integral[y1[:, None], x1[None, :]]
        - integral[y0[:, None], x1[None, :]]
        - integral[y1[:, None], x0[None, :]]
        + integral[y0[:, None], x0[None, :]]
    )
    return inside / ((y1 - y0)[:, None] * (x1 - x0)[None, :])


def even_subsample(count: int, keep: int, seed: int) -> np.ndarray:
    """``keep`` sorted indices out of ``range(count)``: one drawn at random from each of ``keep`` equal runs.

    Spread over the whole (row-sorted) grid, so a capped slide still covers all its tissue, and reproducible from
    ``seed``.
    """
    if count <= keep:
        return np.arange(count)
    edges = (np.arange(keep + 1) * count) // keep
    rng = np.random.default_rng(seed)
    return edges[:-1] + (rng.random(keep) * (edges[1:] - edges[:-1])).astype(np.int64)


def grid_geometry(slide: Any, mpp_level0: float, cfg: WSIPreprocessConfig) -> TileGrid:
    """How tiles of ``cfg`` are read from ``slide`` (its header only), with no tiles yet: what a cached grid's
    coordinates need to be read again without detecting tissue again."""
    width0, height0 = (int(side) for side in slide.dimensions)
    needed = cfg.mpp / mpp_level0  # level-0 px per target px
    patch0 = max(1, round(cfg.tile_size * needed))
    level = level_for_downsample(slide, needed)
    return TileGrid(
        coords=np.empty((0, 2), np.int64),
        tile_size=cfg.tile_size,
        patch_size_level0=patch0,
        level=level,
        read_size=max(1, round(patch0 / float(slide.level_downsamples[level]))),
        target_mpp=cfg.mpp,
        mpp_level0=mpp_level0,
        overlap=cfg.overlap,
        level0_width=width0,
        level0_height=height0,
    )


def tile_grid(slide: Any, mpp_level0: float, cfg: WSIPreprocessConfig, tissue: Tissue, seed: int = 0) -> TileGrid:
    """The tiles of ``slide`` at ``cfg.mpp`` with at least ``cfg.min_tissue`` of their area in ``tissue``.

    The grid starts at the level-0 origin with stride ``patch_size_level0 - overlap`` (both in level-0 px); only
    tiles wholly inside the slide are candidates. ``cfg.max_tiles`` then caps the count with
    :func:`even_subsample` (``seed``).
    """
    grid = grid_geometry(slide, mpp_level0, cfg)
    if cfg.mpp / mpp_level0 * (1 + LEVEL_TOLERANCE) < 1:
        log.warning(
            "level 0 (%.4g um/px) is coarser than the tiles' %.4g um/px: tiles are enlarged from %d to %d px",
            mpp_level0,
            cfg.mpp,
            grid.read_size,
            cfg.tile_size,
        )
    patch0 = grid.patch_size_level0
    xs = np.arange(0, grid.level0_width - patch0 + 1, grid.stride_level0, dtype=np.int64)
    ys = np.arange(0, grid.level0_height - patch0 + 1, grid.stride_level0, dtype=np.int64)
    if not len(xs) or not len(ys):
        return grid
    rows, cols = np.nonzero(tissue_fractions(tissue, xs, ys, patch0) >= cfg.min_tissue)  # row-major: sorted
    coords = np.column_stack([xs[cols], ys[rows]]).astype(np.int64)
    if cfg.max_tiles is not None:
        coords = coords[even_subsample(len(coords), cfg.max_tiles, seed)]
    return dataclasses.replace(grid, coords=coords)


def read_tile(slide: Any, grid: TileGrid, index: int) -> np.ndarray:
    """Tile ``index`` of ``grid`` as (tile_size, tile_size, 3) uint8 RGB (transparent pixels over white)."""
    x, y = (int(v) for v in grid.coords[index])
    region = read_rgb(slide, (x, y), grid.level, (grid.read_size, grid.read_size))
    return resize(region, (grid.tile_size, grid.tile_size))
