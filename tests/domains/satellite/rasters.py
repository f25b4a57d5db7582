"""Tiny GeoTIFFs for the satellite tests, written with rasterio (a UTM CRS and a 10 m transform unless told)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from rasterio.transform import from_origin


def write_tif(path: Path, data: np.ndarray, *, descriptions=None, nodata=None, crs="EPSG:32633") -> Path:
    count, height, width = data.shape
    profile = {"driver": "GTiff", "count": count, "height": height, "width": width, "dtype": data.dtype}
    if crs is not None:
        profile.update(crs=crs, transform=from_origin(500000.0, 4600000.0, 10.0, 10.0))
    with rasterio.open(path, "w", nodata=nodata, **profile) as dst:
        dst.write(data)
        for k, name in enumerate(descriptions or (), start=1):
            dst.set_band_description(k, name)
    return path
