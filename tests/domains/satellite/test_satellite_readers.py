"""Raster reading: bands by name (descriptions, then the layout's order), nodata masks, georeference kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasters import write_tif

from domainclip.domains.satellite.readers import SENTINEL2_13, read_raster
from domainclip.errors import DataError

# A real Landsat 7 scene from Debian's r-cran-stars: installed, or unpacked by .ci/run into .real-data/
STARS_TIF = "usr/lib/R/site-library/stars/tif/L7_ETMs.tif"
STARS_L7 = next(
    (
        p
        for p in (Path("/") / STARS_TIF, Path(__file__).parents[3] / ".real-data" / "r-cran-stars" / STARS_TIF)
        if p.is_file()
    ),
    Path("/") / STARS_TIF,
)


def test_a_13_band_file_without_descriptions_gives_12_named_bands(tmp_path: Path) -> None:
    data = (np.arange(13)[:, None, None] * 100 + np.zeros((13, 8, 8))).astype(np.uint16)
    path = write_tif(tmp_path / "AnnualCrop_1.tif", data)
    l2a = [b for b in SENTINEL2_13 if b != "B10"]  # a model trained on 12-band L2A chips
    raster = read_raster(path, bands=l2a, default_names=SENTINEL2_13)
    assert raster.bands == tuple(l2a) and raster.pixels.shape == (12, 8, 8)
    assert [int(raster.pixels[k, 0, 0]) for k in range(12)] == [SENTINEL2_13.index(b) * 100 for b in l2a]
    assert (
        raster.georeferenced
        and "32633" in raster.crs
        and raster.transform == (10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0)
    )


def test_descriptions_win_over_the_documented_order(tmp_path: Path) -> None:
    data = np.stack([np.full((4, 4), v, dtype=np.uint16) for v in (1, 2, 3, 4)])
    path = write_tif(tmp_path / "rgbn.tif", data, descriptions=["B04", "B03", "B02", "B08"])
    raster = read_raster(path, bands=["B08", "B04"], default_names=["B02", "B03", "B04", "B08"])
    assert raster.bands == ("B08", "B04") and raster.pixels[:, 0, 0].tolist() == [4.0, 1.0]


def test_a_missing_band_is_named(tmp_path: Path) -> None:
    path = write_tif(
        tmp_path / "four.tif", np.ones((4, 4, 4), dtype=np.uint16), descriptions=["B02", "B03", "B04", "B08"]
    )
    with pytest.raises(DataError, match=r"four.tif: no band named B11, B12; the file has B02, B03, B04, B08"):
        read_raster(path, bands=["B04", "B11", "B12"])


def test_nodata_pixels_are_masked_in_every_selected_band(tmp_path: Path) -> None:
    data = np.full((2, 6, 6), 500, dtype=np.uint16)
    data[0, :, :2] = 0  # a nodata border in one band
    raster = read_raster(write_tif(tmp_path / "edge.tif", data, nodata=0))
    assert raster.valid[:, :2].sum() == 0 and raster.valid[:, 2:].all()


def test_a_plain_picture_is_rgb_without_georeference(tmp_path: Path) -> None:
    from PIL import Image

    pixels = np.zeros((10, 12, 3), dtype=np.uint8)
    pixels[..., 0] = 200
    Image.fromarray(pixels).save(tmp_path / "airport_1.png")
    raster = read_raster(tmp_path / "airport_1.png")
    assert raster.bands == ("red", "green", "blue") and raster.pixels.shape == (3, 10, 12)
    assert raster.pixels[0].mean() == 200 and not raster.georeferenced and raster.valid.all()


def test_a_file_that_is_not_a_raster_is_named(tmp_path: Path) -> None:
    path = tmp_path / "broken.tif"
    path.write_bytes(b"II*\x00garbage")
    with pytest.raises(DataError, match="broken.tif: not a raster rasterio can read"):
        read_raster(path)


@pytest.mark.skipif(
    not STARS_L7.is_file(), reason=f"{STARS_L7} absent (Debian package r-cran-stars; .ci/run unpacks it)"
)
def test_a_real_landsat7_scene() -> None:
    assert read_raster(STARS_L7).bands == ("B1", "B2", "B3", "B4", "B5", "B6")  # no descriptions: numbered
    raster = read_raster(STARS_L7, bands=["B4", "B3"])
    assert (
        raster.pixels.shape[0] == 2
        and raster.georeferenced
        and "31985" in str(rasterio.crs.CRS.from_wkt(raster.crs).to_epsg())
    )
    assert raster.pixels.std() > 0
