"""The satellite preprocessor: bands by name, the stored statistics applied verbatim, nodata as NaN, resized."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasters import write_tif

from domainclip.domains.satellite.preprocess import SatellitePreprocessor
from domainclip.domains.satellite.readers import SENTINEL2_13
from domainclip.errors import DataError, RecipeError

STATS = {"B04": (1000.0, 200.0), "B08": (3000.0, 500.0)}


def test_named_bands_normalised_with_the_stored_statistics(tmp_path: Path) -> None:
    data = np.zeros((13, 32, 32), dtype=np.uint16)
    data[SENTINEL2_13.index("B04")] = 1400
    data[SENTINEL2_13.index("B08")] = 2000
    data[:, :, :8] = 0  # nodata columns
    path = write_tif(tmp_path / "chip.tif", data, nodata=0)
    pre = SatellitePreprocessor({"bands": ["B08", "B04"], "size": [32, 32], "band_stats": STATS}, SENTINEL2_13)
    image = pre(path)
    assert image.shape == (2, 32, 32)
    assert float(image[0, 0, 20]) == pytest.approx(-2.0) and float(image[1, 0, 20]) == pytest.approx(2.0)
    assert bool(image[:, :, :8].isnan().all()) and not bool(image[:, :, 8:].isnan().any())  # nodata marked
    rebuilt = SatellitePreprocessor(pre.config, SENTINEL2_13)  # the saved config serves the same tensor
    assert rebuilt.config == pre.config and bool(rebuilt(path).nan_to_num(7).eq(image.nan_to_num(7)).all())


def test_a_nodata_border_does_not_bleed_into_its_neighbours_when_resized(tmp_path: Path) -> None:
    data = np.full((2, 64, 64), 1400, dtype=np.uint16)
    data[:, :, :10] = 0  # nodata columns
    path = write_tif(tmp_path / "edge.tif", data, nodata=0, descriptions=["B04", "B08"])
    image = SatellitePreprocessor({"size": [16, 16], "band_stats": STATS})(path)
    assert bool(image[:, :, :2].isnan().all())  # mostly nodata: nodata
    data_pixels = image[0][~image[0].isnan()]
    assert float(data_pixels.min()) == pytest.approx(2.0) and float(data_pixels.max()) == pytest.approx(2.0)


def test_the_layout_band_order_comes_with_the_record(tmp_path: Path) -> None:
    data = np.zeros((4, 8, 8), dtype=np.uint16)
    data[2] = 1400  # the third band of files ordered B02 B03 B04 B08
    path = write_tif(tmp_path / "four.tif", data)
    pre = SatellitePreprocessor({"bands": ["B04"], "size": [8, 8], "band_stats": STATS})
    assert float(pre(path, {"band_names": ["B02", "B03", "B04", "B08"]})[0, 0, 0]) == pytest.approx(2.0)
    with pytest.raises(DataError, match="no band named B04; the file has B1, B2, B3, B4"):
        pre(path)


def test_resize_averages_when_it_shrinks(tmp_path: Path) -> None:
    data = np.zeros((2, 64, 64), dtype=np.uint16)
    data[0, :, ::2] = 1200  # fine stripes
    data[0, :, 1::2] = 800
    data[1] = 3000
    path = write_tif(tmp_path / "big.tif", data, descriptions=["B04", "B08"])
    image = SatellitePreprocessor({"size": [16, 16], "band_stats": STATS})(path)
    assert image.shape == (2, 16, 16)
    assert float(image[0].mean()) == pytest.approx(0.0, abs=1e-5) and float(image[0].std()) < 0.05


def test_an_all_nodata_image_is_named(tmp_path: Path) -> None:
    path = write_tif(tmp_path / "void.tif", np.zeros((2, 8, 8), dtype=np.uint16), nodata=0, descriptions=["B04", "B08"])
    with pytest.raises(DataError, match="void.tif: every pixel is nodata"):
        SatellitePreprocessor({"band_stats": STATS}).checked(path)


def test_bad_statistics_are_named() -> None:
    with pytest.raises(RecipeError, match="band_stats: not computed yet"):
        SatellitePreprocessor({"bands": ["B04"]})
    with pytest.raises(RecipeError, match="no statistics for band\\(s\\) B02"):
        SatellitePreprocessor({"bands": ["B02", "B04"], "band_stats": STATS})
    with pytest.raises(RecipeError, match="every std must be positive"):
        SatellitePreprocessor({"band_stats": {"B04": (1.0, 0.0)}})
