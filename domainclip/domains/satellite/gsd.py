"""Resampling a georeferenced raster to a ground sampling distance (``preprocess.gsd``, metres per pixel).

A model sees fields, roads and roofs at a size in pixels; resampling every image to one GSD before the crop to
``preprocess.size`` keeps that size the same across sensors and products (Landsat, Sentinel-2, aerial pictures).
The resampling is GDAL's warper through :func:`rasterio.warp.reproject` on the pixels already read, in the file's
own CRS: the grid keeps its origin (and rotation) and only its pixel size changes. Nodata stays out of every
average, and an output pixel is nodata when less than half of its ground is covered by data (the rule the resize of
:mod:`domainclip.domains.satellite.preprocess` follows).
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from domainclip.domains.satellite.readers import Raster
from domainclip.errors import DataError

if TYPE_CHECKING:
    from affine import Affine
    from rasterio.crs import CRS

log = logging.getLogger(__name__)


def pixel_size_m(raster: Raster, where: Path) -> tuple[float, float]:
    """Ground size ``(x, y)`` in metres of one pixel of a georeferenced ``raster``: the CRS's linear unit for a
    projected CRS (its nominal metres, as ``gdalwarp -tr`` reads them), or, for a geographic CRS (degrees), the
    pixel measured through PROJ in the UTM zone of the image centre. Any other CRS is an error naming the file."""
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.errors import CRSError

    if raster.crs is None or raster.transform is None:
        raise DataError(f"{where}: not georeferenced; no ground sampling distance")
    crs = CRS.from_wkt(raster.crs)
    transform = Affine(*raster.transform)
    if crs.is_projected:
        try:
            _unit, factor = crs.linear_units_factor
        except CRSError:
            raise DataError(f"{where}: the CRS has no linear unit, so preprocess.gsd cannot apply") from None
        return math.hypot(transform.a, transform.d) * factor, math.hypot(transform.b, transform.e) * factor
    if crs.is_geographic:
        return _measured_at_centre(crs, transform, raster.valid.shape)
    raise DataError(f"{where}: the CRS is neither projected nor geographic, so preprocess.gsd cannot apply")


def _measured_at_centre(crs: CRS, transform: Affine, shape: tuple[int, int]) -> tuple[float, float]:
    """One pixel step along columns and along rows at the image centre, in metres of the UTM zone there (UPS near
    the poles), whose scale error is negligible next to the difference between a degree of longitude and one of
    latitude that this measures."""
    from rasterio.warp import transform as warp_points

    height, width = shape
    col, row = width / 2, height / 2
    steps = ((col, row), (col + 1, row), (col, row + 1))
    xs = [transform.a * c + transform.b * r + transform.c for c, r in steps]
    ys = [transform.d * c + transform.e * r + transform.f for c, r in steps]
    (lon,), (lat,) = warp_points(crs, "EPSG:4326", [xs[0]], [ys[0]])
    zone = min(60, max(1, int((lon + 180) // 6) + 1))
    if lat > 84:
        local = "EPSG:32661"
    elif lat < -80:
        local = "EPSG:32761"
    else:
        local = f"EPSG:{(32600 if lat >= 0 else 32700) + zone}"
    ex, ny = warp_points(crs, local, xs, ys)
    return math.hypot(ex[1] - ex[0], ny[1] - ny[0]), math.hypot(ex[2] - ex[0], ny[2] - ny[0])


def resample_to_gsd(raster: Raster, gsd: float, where: Path) -> Raster:
    """``raster`` on a grid of ``gsd`` metres per pixel (the same origin; the extent rounded to whole pixels):
    averaged when an output pixel covers more ground than an input pixel, bilinear otherwise. The returned
    transform is the new grid's; an image already at ``gsd`` comes back unchanged."""
    from affine import Affine
    from rasterio.crs import CRS
    from rasterio.enums import Resampling
    from rasterio.warp import reproject

    size_x, size_y = pixel_size_m(raster, where)
    scale_x, scale_y = gsd / size_x, gsd / size_y  # > 1: coarser than the file
    if math.isclose(scale_x, 1.0, rel_tol=1e-9) and math.isclose(scale_y, 1.0, rel_tol=1e-9):
        return raster
    height, width = raster.valid.shape
    shape = (max(1, round(height / scale_y)), max(1, round(width / scale_x)))
    a, b, c, d, e, f = raster.transform
    target = Affine(a * scale_x, b * scale_y, c, d * scale_x, e * scale_y, f)  # the same grid, coarser or finer
    grid = {
        "src_transform": Affine(*raster.transform),
        "dst_transform": target,
        "src_crs": CRS.from_wkt(raster.crs),
        "dst_crs": CRS.from_wkt(raster.crs),
        "resampling": Resampling.average if scale_x * scale_y > 1 else Resampling.bilinear,
    }
    pixels = np.full((len(raster.bands), *shape), np.nan, dtype=np.float32)
    source = np.where(raster.valid, raster.pixels, np.nan).astype(np.float32)
    reproject(source, pixels, src_nodata=np.nan, dst_nodata=np.nan, **grid)
    covered = np.zeros(shape, dtype=np.float32)  # the fraction of each output pixel's ground that holds data
    reproject(raster.valid.astype(np.float32), covered, **grid)
    valid = (covered >= 0.5) & np.isfinite(pixels).all(axis=0)
    if not valid.any():
        raise DataError(f"{where}: every pixel is nodata at preprocess.gsd={gsd:g} m")
    return Raster(
        pixels=np.where(valid, pixels, 0.0).astype(np.float32),
        valid=valid,
        bands=raster.bands,
        crs=raster.crs,
        transform=tuple(target)[:6],
    )


def warn_not_georeferenced(path: Path, gsd: float) -> None:
    """The warning ``validate-data`` and ``run`` give for an image that ``preprocess.gsd`` cannot apply to (through
    :mod:`logging`, which prints warnings to stderr unless the caller configured it otherwise)."""
    log.warning(
        "%s: not georeferenced, so preprocess.gsd=%g m does not apply; the image keeps its native pixel grid and "
        "is resized to preprocess.size as with gsd null",
        path,
        gsd,
    )
