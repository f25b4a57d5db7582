"""Raster reading through rasterio: GeoTIFF / Cloud-Optimised GeoTIFF and plain RGB JPEG / PNG / TIFF.

Bands are selected by *name*, so a model trained on 12-band Sentinel-2 L2A chips (no B10) runs on 13-band EuroSAT-MS
files: a file's band names are its band descriptions when it has them, else the order its layout documents
(``default_names``), else ``B1..Bn``. Invalid pixels (the file's nodata value or mask) come back as a mask, so they
can be kept out of normalisation statistics and losses; the CRS and the affine transform travel with the pixels.
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domainclip.errors import DataError

# EuroSAT-MS files carry no band descriptions; their documented order (13 Sentinel-2 L1C bands).
SENTINEL2_13 = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
RGB = ("red", "green", "blue")
# warnings.catch_warnings swaps process-wide filters: images are checked on several threads, so the swap is held
# by one opener at a time, or another thread's open would print rasterio's NotGeoreferencedWarning
_QUIET_OPEN = threading.Lock()


@dataclass(frozen=True)
class Raster:
    """Pixels ``(C, H, W)`` float32 in the file's units, ``valid`` ``(H, W)`` (False: nodata in any selected band),
    the selected band names, and the georeference (``crs`` as WKT or None, ``transform`` as the six GDAL
    coefficients ``a, b, c, d, e, f`` of rasterio's :class:`affine.Affine`, or None for a plain picture)."""

    pixels: np.ndarray
    valid: np.ndarray
    bands: tuple[str, ...]
    crs: str | None
    transform: tuple[float, ...] | None

    @property
    def georeferenced(self) -> bool:
        return self.crs is not None and self.transform is not None


def band_names(descriptions: Sequence[str | None], count: int, default_names: Sequence[str] | None) -> list[str]:
    """A file's band names: its descriptions when every band has one, else ``default_names`` when they fit the band
    count, else the Sentinel-2 L1C order for a 13-band file (EuroSAT-MS and the usual L1C exports), else RGB for a
    3-band picture, else ``B1..Bn``."""
    if descriptions and all(descriptions) and len(set(descriptions)) == count:
        return [str(d) for d in descriptions]
    if default_names is not None and len(default_names) == count:
        return list(default_names)
    if count == len(SENTINEL2_13):
        return list(SENTINEL2_13)
    if count == 3:
        return list(RGB)
    return [f"B{k + 1}" for k in range(count)]


def read_raster(path: Path, bands: Sequence[str] | None = None, default_names: Sequence[str] | None = None) -> Raster:
    """Read ``bands`` (all bands when None) of the raster at ``path``; a missing band, or an image with no valid
    pixel in them, is an error naming the file."""
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

    try:
        with _QUIET_OPEN, warnings.catch_warnings():  # a plain picture (RSICD's JPEGs) has no georeference
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            src = rasterio.open(path)
        with src:
            names = band_names(src.descriptions, src.count, default_names)
            wanted = list(bands) if bands is not None else names
            missing = [b for b in wanted if b not in names]
            if missing:
                raise DataError(f"{path}: no band named {', '.join(missing)}; the file has {', '.join(names)}")
            indexes = [names.index(b) + 1 for b in wanted]
            data = src.read(indexes, masked=True)
            georeferenced = src.crs is not None and not src.transform.is_identity
            crs = src.crs.to_wkt() if georeferenced else None
            transform = tuple(src.transform)[:6] if georeferenced else None
    except RasterioIOError as exc:
        raise DataError(f"{path}: not a raster rasterio can read ({exc})") from None
    valid = ~np.ma.getmaskarray(data).any(axis=0)
    if not valid.any():
        raise DataError(f"{path}: every pixel is nodata")
    return Raster(
        pixels=np.asarray(data.filled(0), dtype=np.float32),
        valid=valid,
        bands=tuple(wanted),
        crs=crs,
        transform=transform,
    )
