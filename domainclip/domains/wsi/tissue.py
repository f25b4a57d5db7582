"""Tissue detection at low resolution (CLAM-style) and its contours as GeoJSON that QuPath opens.

The recipe (:class:`~domainclip.domains.wsi.config.TissueConfig`): RGB -> HSV; marker ink removed; median blur of
the saturation; a fixed or Otsu threshold; a morphological close; ``cv2.findContours`` with ``RETR_CCOMP`` (outer
contours and their holes); regions and holes filtered by area in mm², at most ``max_holes`` holes per region.
Stained tissue is saturated and glass is not, which is why saturation alone separates them on H&E.

The mask is the rasterised kept contours (regions filled, kept holes cleared), so tiles are chosen on exactly the
tissue the GeoJSON shows. Finding no tissue is not an error here: the result has no contours and callers decide.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from domainclip.domains.wsi.atomic import atomic_path
from domainclip.domains.wsi.config import TissueConfig
from domainclip.domains.wsi.regions import read_downsampled

# Marker ink in OpenCV's HSV (H 0-179, i.e. degrees / 2; S and V 0-255). Eosin is pink to red (H about 150-179
# and 0-10) and haematoxylin purple (H about 125-160); neither is green, and pure blue only at the very edge of
# haematoxylin, so these hue bands hold ink, not stain. Ink is saturated, hence the saturation floor (pale bluish
# glass stays glass). Near-black: very dark, or dark and unsaturated (black marker, scanner padding); dark nuclei
# are strongly saturated purple and so are kept.
GREEN_HUE = (35, 89)
BLUE_HUE = (90, 120)
INK_MIN_SATURATION = 60
INK_MIN_VALUE = 40
BLACK_MAX_VALUE = 25
GREY_MAX_VALUE = 60
GREY_MAX_SATURATION = 100

OTSU_FLOOR = 8
"""Saturation below which Otsu's threshold is not trusted: on a slide without tissue the histogram is glass
noise only, and Otsu would split it in two."""

TISSUE_CLASS = {"name": "Tissue", "color": [0, 160, 0]}
"""QuPath's classification of the exported annotations (QuPath >= 0.4 reads a class from ``name`` + ``color``)."""


@dataclass(frozen=True, eq=False)
class Tissue:
    """Where the tissue is: a mask at detection resolution and its contours in level-0 pixels."""

    mask: np.ndarray
    """(h, w) bool at detection resolution; True inside kept tissue regions and outside their kept holes."""
    downsample: float
    """Level-0 pixels per mask pixel."""
    contours: list[tuple[np.ndarray, list[np.ndarray]]]
    """(outer, holes) per tissue region: (K, 2) float (x, y) level-0 px, open rings (first point not repeated)."""
    level0_size: tuple[int, int]
    """(width, height) of level 0; every contour vertex lies inside it."""

    @property
    def fraction(self) -> float:
        """Share of the slide's area that is tissue."""
        return float(self.mask.mean()) if self.mask.size else 0.0


def ink_mask(hsv: np.ndarray) -> np.ndarray:
    """Pixels of blue / green marker ink or near-black (see the module constants), as a bool mask."""
    hue, sat, val = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    inked = (sat >= INK_MIN_SATURATION) & (val >= INK_MIN_VALUE)
    green = inked & (hue >= GREEN_HUE[0]) & (hue <= GREEN_HUE[1])
    blue = inked & (hue >= BLUE_HUE[0]) & (hue <= BLUE_HUE[1])
    black = (val < BLACK_MAX_VALUE) | ((val < GREY_MAX_VALUE) & (sat < GREY_MAX_SATURATION))
    return green | blue | black


def _threshold(saturation: np.ndarray, cfg: TissueConfig) -> np.ndarray:
    import cv2

    if cfg.threshold == "otsu":
        otsu, _ = cv2.threshold(saturation, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
        level = max(float(otsu), OTSU_FLOOR)
    else:
        level = float(cfg.threshold)
    return saturation > level


def _raw_mask(rgb: np.ndarray, cfg: TissueConfig) -> np.ndarray:
    """Thresholded, closed saturation (uint8 0/1) before the area filters."""
    import cv2

    hsv = cv2.cvtColor(np.ascontiguousarray(rgb, dtype=np.uint8), cv2.COLOR_RGB2HSV)
    saturation = hsv[..., 1].copy()
    if cfg.pen_marks:
        # One pixel wider than the ink: a stroke's blended rim (ink over glass) is no longer ink-coloured.
        ink = cv2.dilate(ink_mask(hsv).astype(np.uint8), np.ones((3, 3), np.uint8))
        saturation[ink.astype(bool)] = 0
    if cfg.median_blur > 1:
        saturation = cv2.medianBlur(saturation, cfg.median_blur)
    mask = _threshold(saturation, cfg).astype(np.uint8)
    if cfg.close > 0:
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((cfg.close, cfg.close), np.uint8))
    return _simple_outlines(mask)


def _simple_outlines(mask: np.ndarray) -> np.ndarray:
    """The mask without the shapes whose outlines would touch themselves (invalid polygons for GIS and QuPath).

    Contours run through the centres of boundary pixels, so a one-pixel-wide part makes an outline run out and
    back over itself, and two regions touching only at a corner make it pinch. An opening with a 3 x 3 square
    removes the thin parts; each remaining corner-only contact (a 2 x 2 checkerboard) is filled into a solid
    2 x 2 block, repeated until none is left (filling only adds pixels, so this ends).
    """
    import cv2

    mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    while True:
        top_left, top_right, bottom_left, bottom_right = mask[:-1, :-1], mask[:-1, 1:], mask[1:, :-1], mask[1:, 1:]
        corner_only = (top_left & bottom_right & ~(top_right | bottom_left)) | (
            top_right & bottom_left & ~(top_left | bottom_right)
        )
        if not corner_only.any():
            return mask
        rows, cols = np.nonzero(corner_only)
        for dr in (0, 1):
            for dc in (0, 1):
                mask[rows + dr, cols + dc] = 1


def _kept_contours(mask: np.ndarray, mm2_per_px: float, cfg: TissueConfig) -> list[tuple[np.ndarray, list]]:
    """(outer, holes) in mask px (cv2 form) that pass the area filters."""
    import cv2

    contours, hierarchy = cv2.findContours(mask, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    parents = hierarchy[0][:, 3]
    kept = []
    for index in np.flatnonzero(parents == -1):
        outer = contours[index]
        holes = [contours[h] for h in np.flatnonzero(parents == index)]
        hole_areas = [cv2.contourArea(h) for h in holes]
        area_mm2 = (cv2.contourArea(outer) - sum(hole_areas)) * mm2_per_px
        if len(outer) < 3 or area_mm2 <= 0 or area_mm2 < cfg.min_area_mm2:
            continue
        big_holes = sorted(
            (
                h
                for h, a in zip(holes, hole_areas, strict=True)
                if a * mm2_per_px >= cfg.min_hole_area_mm2 and len(h) >= 3
            ),
            key=cv2.contourArea,
            reverse=True,
        )
        kept.append((outer, big_holes[: cfg.max_holes]))
    return kept


def _rasterise(shape: tuple[int, int], contours: list[tuple[np.ndarray, list]]) -> np.ndarray:
    import cv2

    mask = np.zeros(shape, np.uint8)
    for outer, holes in contours:
        cv2.drawContours(mask, [outer], -1, 1, thickness=cv2.FILLED)
        if holes:
            cv2.drawContours(mask, holes, -1, 0, thickness=cv2.FILLED)
            cv2.drawContours(mask, holes, -1, 1, thickness=1)  # a hole's contour runs on the tissue around it
    return mask.astype(bool)


def detect_tissue(
    rgb: np.ndarray,
    downsample: float,
    mpp_level0: float,
    cfg: TissueConfig,
    level0_size: tuple[int, int] | None = None,
) -> Tissue:
    """Tissue of ``rgb``, an (h, w, 3) uint8 image of the whole slide at ``downsample`` level-0 px per pixel.

    Areas are converted to mm² with the image's own resolution (``mpp_level0 * downsample``). Contour vertices
    (centres of boundary pixels) map to level 0 as ``(p + 0.5) * downsample``, clipped to ``level0_size``
    (width, height; default: the image's extent at level 0), since the image's sides are rounded.
    """
    mask = _raw_mask(rgb, cfg)
    height, width = mask.shape
    size = level0_size or (round(width * downsample), round(height * downsample))
    mm_per_px = mpp_level0 * downsample / 1000.0
    kept = _kept_contours(mask, mm_per_px**2, cfg)

    def to_level0(contour: np.ndarray) -> np.ndarray:
        points = (contour.reshape(-1, 2).astype(np.float64) + 0.5) * downsample
        return np.minimum(points, np.asarray(size, dtype=np.float64))

    contours = [(to_level0(outer), [to_level0(h) for h in holes]) for outer, holes in kept]
    return Tissue(
        mask=_rasterise(mask.shape, kept),
        downsample=float(downsample),
        contours=contours,
        level0_size=(int(size[0]), int(size[1])),
    )


def read_tissue(slide: Any, mpp_level0: float, cfg: TissueConfig) -> Tissue:
    """Detect tissue on ``slide`` at ``cfg.mpp`` (read from the best level, resized; level 0 is never read whole
    unless it is the only level coarse enough, and even then block by block)."""
    downsample = max(cfg.mpp / mpp_level0, 1.0)
    rgb = read_downsampled(slide, downsample)
    width0, height0 = slide.dimensions
    return detect_tissue(rgb, width0 / rgb.shape[1], mpp_level0, cfg, level0_size=(width0, height0))


def _ring(points: np.ndarray) -> list[list[float]]:
    ring = [[round(float(x), 2), round(float(y), 2)] for x, y in points]
    return ring + [ring[0]]


def tissue_geojson(tissue: Tissue, name: str) -> dict[str, Any]:
    """A GeoJSON FeatureCollection, one Polygon annotation per tissue region (outer ring, then its holes).

    Coordinates are level-0 pixels with the origin at the top left, as QuPath expects; rings are closed. Each
    feature carries QuPath's ``objectType`` and ``classification``, so File > Import objects makes classified
    annotations; ``name`` (the slide) labels them.
    """
    features = []
    for number, (outer, holes) in enumerate(tissue.contours, start=1):
        rings = [_ring(outer)] + [_ring(hole) for hole in holes]
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": rings},
                "properties": {
                    "objectType": "annotation",
                    "name": f"{name} tissue {number}",
                    "classification": dict(TISSUE_CLASS),
                },
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_geojson(path: Path, tissue: Tissue, name: str) -> Path:
    """Write :func:`tissue_geojson` to ``path`` atomically (a temporary file renamed into place)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(tissue_geojson(tissue, name)), encoding="utf-8")
    return path
