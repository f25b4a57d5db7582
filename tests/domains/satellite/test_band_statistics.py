"""Per-band statistics over a split: nodata pixels never count, constant bands and empty images are named."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasters import write_tif

from domainclip.domains.satellite.statistics import band_statistics
from domainclip.errors import DataError


def test_statistics_ignore_nodata(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(1, 3000, size=(3, 16, 16)).astype(np.uint16) for _ in range(3)]
    images[1][:, :4, :] = 0  # a nodata border
    paths = [
        write_tif(tmp_path / f"{k}.tif", x, nodata=0, descriptions=["B02", "B03", "B04"]) for k, x in enumerate(images)
    ]
    stats = band_statistics(paths, ["B04", "B02"])
    pixels = np.concatenate([x.reshape(3, -1) for x in images], axis=1).astype(np.float64)
    valid = (pixels != 0).all(axis=0)
    for band, row in (("B04", 2), ("B02", 0)):
        assert stats[band] == pytest.approx((pixels[row, valid].mean(), pixels[row, valid].std()), rel=1e-9)
    assert stats["B04"][0] != pytest.approx(pixels[2].mean(), rel=1e-3)  # counting the border would move it


def test_empty_images_and_constant_bands_are_named(tmp_path: Path) -> None:
    empty = write_tif(tmp_path / "empty.tif", np.zeros((2, 4, 4), dtype=np.uint16), nodata=0)
    with pytest.raises(DataError, match="empty.tif: every pixel is nodata"):
        band_statistics([empty], ["B1", "B2"])
    flat = np.stack([np.arange(16).reshape(4, 4), np.full((4, 4), 7)]).astype(np.uint16) + 1
    with pytest.raises(DataError, match="band\\(s\\) B2 are constant"):
        band_statistics([write_tif(tmp_path / "flat.tif", flat)], ["B1", "B2"])
