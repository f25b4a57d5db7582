"""Writing pyramidal slides that OpenSlide and tiffslide both read with the intended resolution (demo data and
benchmarks; user slides are only ever read).

Aperio SVS: page 0 is level 0, tiled, with the Aperio description that carries ``MPP`` and ``AppMag``; page 1 a
small stripped thumbnail; pages 2+ the tiled lower levels. Two pitfalls (``../shared/anchors.md``): tifffile must
write no description of its own (``metadata=None``), else OpenSlide reads a generic TIFF; and the levels must not
be flagged as reduced-resolution subfiles, else tiffslide sees a single level.

Generic tiled TIFF: every level a tiled page, the lower ones flagged as reduced-resolution subfiles (both libraries
then see the pyramid), the resolution in ``XResolution`` / ``ResolutionUnit`` (pixels per centimetre), or none at
all (``mpp=None``: a slide whose mpp must come from ``mpp.csv``).

A file is written under a hidden temporary name and renamed, so a killed writer never leaves half a slide.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from domainclip.domains.wsi.atomic import atomic_path

RegionSource = Callable[[int, int, int, int, int], np.ndarray]
"""``draw(x0, y0, w, h, downsample) -> (h, w, 3) uint8``: a region of the level at ``downsample``, in its pixels."""

THUMBNAIL_SIDE = 256
MIN_LEVEL_SIDE = 32


def _level_of(source: np.ndarray | RegionSource, width: int, height: int, downsample: int) -> RegionSource:
    """A region renderer for one level: from the array (area-averaged), or the callable itself."""
    if callable(source):
        return lambda x, y, w, h: source(x, y, w, h, downsample)
    import cv2

    level = (
        source
        if downsample == 1
        else cv2.resize(
            source, (max(1, width // downsample), max(1, height // downsample)), interpolation=cv2.INTER_AREA
        )
    )
    return lambda x, y, w, h: level[y : y + h, x : x + w]


def _tiles(region: Callable[[int, int, int, int], np.ndarray], width: int, height: int, tile: int) -> Iterator:
    """Row-major tiles of a level, padded with white to whole tiles (tifffile's tile iterator)."""
    for y in range(0, height, tile):
        for x in range(0, width, tile):
            block = np.full((tile, tile, 3), 255, np.uint8)
            pixels = region(x, y, min(tile, width - x), min(tile, height - y))
            block[: pixels.shape[0], : pixels.shape[1]] = pixels
            yield block


def write_slide(
    path: Path,
    source: np.ndarray | RegionSource,
    *,
    mpp: float | None,
    fmt: Literal["svs", "tiff"] = "svs",
    size: tuple[int, int] | None = None,
    tile: int = 256,
    downsamples: Sequence[int] = (4, 16),
    magnification: float | None = None,
    quality: int = 90,
) -> Path:
    """Write ``source`` (an (H, W, 3) uint8 level 0, or a :data:`RegionSource` with ``size`` = (W, H)) as a pyramid
    with the given ``downsamples`` (levels under :data:`MIN_LEVEL_SIDE` pixels a side are left out), JPEG tiles."""
    import tifffile

    if isinstance(source, np.ndarray):
        height, width = source.shape[:2]
    elif size is None:
        raise ValueError("write_slide: a region source needs size=(width, height)")
    else:
        width, height = size
    if fmt == "svs" and mpp is None:
        raise ValueError("write_slide: an Aperio SVS always states its MPP")
    levels = [1, *(d for d in downsamples if min(width, height) // d >= MIN_LEVEL_SIDE)]
    path = Path(path)
    with atomic_path(path) as tmp, tifffile.TiffWriter(tmp, bigtiff=False) as tif:
        for number, downsample in enumerate(levels):
            w, h = max(1, width // downsample), max(1, height // downsample)
            extra: dict = {}
            if fmt == "svs" and number == 0:
                mag = f"|AppMag = {magnification:g}" if magnification else ""
                extra["description"] = (
                    f"Aperio Image Library v12.0.0\n{width}x{height} [0,0 {width}x{height}] ({tile}x{tile}) "
                    f"JPEG/RGB Q={quality}{mag}|MPP = {mpp}"
                )
            if fmt == "tiff" and number > 0:
                extra["subfiletype"] = 1  # reduced resolution: how OpenSlide's generic TIFF finds the levels
            if fmt == "tiff" and mpp is not None:
                pixels_per_cm = 1e4 / (mpp * downsample)
                extra.update(resolution=(pixels_per_cm, pixels_per_cm), resolutionunit="CENTIMETER")
            tif.write(
                _tiles(_level_of(source, width, height, downsample), w, h, tile),
                shape=(h, w, 3),
                dtype=np.uint8,
                tile=(tile, tile),
                photometric="rgb",
                compression="jpeg",
                compressionargs={"level": quality},
                metadata=None,
                **extra,
            )
            if fmt == "svs" and number == 0:
                tif.write(_thumbnail(source, width, height), photometric="rgb", metadata=None)
    return path


def _thumbnail(source: np.ndarray | RegionSource, width: int, height: int) -> np.ndarray:
    """The SVS thumbnail page: the whole slide, longest side :data:`THUMBNAIL_SIDE`."""
    import cv2

    downsample = max(1, max(width, height) // THUMBNAIL_SIDE)
    w, h = max(1, width // downsample), max(1, height // downsample)
    if callable(source):
        return np.ascontiguousarray(source(0, 0, w, h, downsample))
    return cv2.resize(source, (w, h), interpolation=cv2.INTER_AREA)
