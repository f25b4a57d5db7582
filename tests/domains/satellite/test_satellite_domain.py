"""The satellite plug-in: statistics fitted on the training split, caption rows merged, captions structured one by
one, EuroSAT files read by band name, bad rows named."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from rasters import write_tif

from domainclip.config import load_recipe
from domainclip.config.schema import ManifestColumnsConfig
from domainclip.data.manifest import read_manifest
from domainclip.domains.satellite.captions import CaptionSampler, CaptionSamplingConfig
from domainclip.domains.satellite.config import SatellitePreprocessConfig
from domainclip.domains.satellite.layouts import EUROSAT_MS_BANDS, merge_caption_rows
from domainclip.domains.satellite.readers import SENTINEL2_13
from domainclip.pipeline.data import load_records
from domainclip.records import Record
from domainclip.registry import get_domain

REPO = Path(__file__).resolve().parents[3]


def _chip(path: Path, value: int, nodata_columns: int = 0) -> Path:
    data = np.full((2, 8, 8), value, dtype=np.uint16)
    data[:, :, :nodata_columns] = 0
    return write_tif(path, data, nodata=0, descriptions=["B04", "B08"])


def test_band_statistics_come_from_the_training_images_without_their_nodata(tmp_path: Path) -> None:
    train = [
        Record(id="a", patient_id="a", image=_chip(tmp_path / "a.tif", 100, nodata_columns=4)),
        Record(id="b", patient_id="b", image=_chip(tmp_path / "b.tif", 300)),
    ]
    fitted = get_domain("satellite").fit_preprocess(SatellitePreprocessConfig(), train)
    assert fitted.bands == ["B04", "B08"]  # every band of the first image when none are named
    mean, std = fitted.band_stats["B04"]
    values = np.r_[np.full(32, 100.0), np.full(64, 300.0)]  # a's valid half, then b
    assert mean == pytest.approx(values.mean()) and std == pytest.approx(values.std())
    again = get_domain("satellite").fit_preprocess(fitted, train[:1])
    assert again is fitted  # given statistics are kept verbatim


def test_rows_of_one_image_are_one_record_with_every_caption(tmp_path: Path) -> None:
    for name in ("x", "y"):
        _chip(tmp_path / f"{name}.tif", 100)
    (tmp_path / "m.csv").write_text(
        "id,image,caption,scene,split,water\n"
        "x1,x.tif,a lake beside a road.,river,train,1\n"
        "x2,x.tif,water near a street.,river,train,1\n"
        "y1,y.tif,a forest.,forest,test,0\n"
        "y2,y.tif,dense woods.,forest,test,1\n",
        encoding="utf-8",
    )
    rows = read_manifest(tmp_path / "m.csv", columns=ManifestColumnsConfig(texts=["caption"], label="scene"))
    records, problems = merge_caption_rows(rows)
    assert [r.texts for r in records] == [
        ("a lake beside a road.", "water near a street."),
        ("a forest.", "dense woods."),
    ]
    assert problems == ["m.csv:row 5: same image as m.csv:row 4 but another attributes"]


def test_a_manifest_without_splits_keeps_the_captions_of_one_image_together(tmp_path: Path) -> None:
    lines = ["id,image,caption"]
    for i in range(20):
        _chip(tmp_path / f"c{i}.tif", 100 + i)
        lines += [f"c{i}-{k},c{i}.tif,caption {k} of chip {i}." for k in range(3)]
    (tmp_path / "m.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    recipe = load_recipe(
        REPO / "recipes/satellite/quickstart.yaml",
        [
            "data.layout=manifest",
            f"data.manifest={tmp_path / 'm.csv'}",
            "data.columns.texts=[caption]",
            "data.findings=null",
        ],
    )
    with pytest.warns(UserWarning, match="no 'patient_id' column; each image is its own group") as said:
        records, problems = load_records(recipe, check=False)
    assert len(said) == 1 and "patient" not in str(said[0].message).replace("patient_id", "")  # in its own words
    assert problems == [] and len(records) == 20 and all(len(r.texts) == 3 for r in records)
    assert {r.split for r in records} == {"train", "valid", "test"}


def test_each_caption_is_read_alone_and_the_image_takes_the_strongest_value(tmp_path: Path) -> None:
    recipe = load_recipe(REPO / "recipes/satellite/quickstart.yaml", [f"data.cache_dir={tmp_path}"])
    record = Record(
        id="r",
        patient_id="r",
        image=tmp_path / "r.tif",
        texts=("a river runs through the forest.", "there are no buildings near the river."),
    )
    domain = get_domain("satellite")
    findings = domain.findings(recipe, [record])
    value = dict(zip(findings.names, findings.silver[0]))
    assert value["river"] == 1 and value["forest"] == 1 and value["buildings"] == 0 and value["snow"] == 0
    sampler = domain.text_sampler(recipe, [record], findings)
    assert isinstance(sampler, CaptionSampler) and sampler.carries_findings
    seen = {}
    for _ in range(30):
        text, stated = sampler(0)
        seen[text] = dict(zip(findings.names, stated.tolist()))
    assert set(seen) == set(record.texts)
    first = seen["a river runs through the forest."]
    assert first["river"] == 1 and first["forest"] == 1 and math.isnan(first["buildings"])  # unsaid, not absent
    assert seen["there are no buildings near the river."]["buildings"] == 0
    whole = CaptionSampler([record], CaptionSamplingConfig(caption_targets="image"), [np.zeros((2, 3))])
    assert not whole.carries_findings and whole(0)[1] is None


def test_a_12_band_model_reads_13_band_eurosat_files_by_band_name(tmp_path: Path) -> None:
    data = np.stack([np.full((8, 8), 100 * (k + 1), dtype=np.uint16) for k in range(13)])
    write_tif((tmp_path / "Forest").mkdir() or tmp_path / "Forest" / "Forest_1.tif", data)  # no descriptions
    recipe = load_recipe(REPO / "recipes/satellite/quickstart.yaml", ["data.layout=eurosat", f"data.root={tmp_path}"])
    records, _ = load_records(recipe, check=False)
    l2a = [b for b in SENTINEL2_13 if b != "B10"]
    stats = {b: (0.0, 1.0) for b in l2a}
    preprocessor = get_domain("satellite").build_preprocessor(
        SatellitePreprocessConfig(bands=l2a, size=(8, 8), band_stats=stats)
    )
    image = preprocessor(records[0].image, records[0].image_meta)
    # file band k+1 holds 100 (k + 1); EuroSAT-MS stores B8A last, so B8A is the 13th and B09 the 9th
    stored = [100.0 * (EUROSAT_MS_BANDS.index(b) + 1) for b in l2a]
    assert [float(image[k, 0, 0]) for k in range(12)] == stored
    assert float(image[l2a.index("B8A"), 0, 0]) == 1300.0 and float(image[l2a.index("B09"), 0, 0]) == 900.0


IDENTITY = {"B04": (0.0, 1.0), "B08": (0.0, 1.0)}  # normalisation that leaves the resampled values readable


def _gsd_preprocessor(size: tuple[int, int], gsd: float | None, bands: list[str] | None = None):
    stats = {b: (0.0, 1.0) for b in bands} if bands else IDENTITY
    config = SatellitePreprocessConfig(bands=bands, size=size, gsd=gsd, band_stats=stats)
    return get_domain("satellite").build_preprocessor(config)


def _block_means(data: np.ndarray, nodata: int = 0) -> np.ndarray:
    """Each 2 x 2 block's mean over its valid pixels; NaN where less than half of the block holds data."""
    blocks = data.astype(np.float64).reshape(data.shape[0], data.shape[1] // 2, 2, data.shape[2] // 2, 2)
    valid = (blocks != nodata).all(axis=0)  # (rows, 2, cols, 2)
    counts = valid.sum(axis=(1, 3))
    sums = np.where(valid, blocks, 0.0).sum(axis=(2, 4))
    return np.where(counts >= 2, sums / np.maximum(counts, 1), np.nan)


def test_gsd_20_on_a_10_m_file_averages_2x2_blocks_and_keeps_nodata_out(tmp_path: Path) -> None:
    data = np.stack([np.arange(64, dtype=np.uint16).reshape(8, 8) + 1, np.full((8, 8), 7, dtype=np.uint16)])
    data[:, :, :2] = 0  # no data in the first output column
    data[:, 0, 2:4] = 0  # half of block (0, 1): the average of its valid half
    data[:, 2:4, 4:6] = 0
    data[:, 3, 5] = 9  # a quarter of block (1, 2) holds data: less than half, so nodata
    path = write_tif(tmp_path / "ten.tif", data, nodata=0, descriptions=["B04", "B08"])
    image = _gsd_preprocessor((4, 4), 20.0)(path).numpy()
    expected = _block_means(data)
    assert image.shape == (2, 4, 4)  # 8 x 8 at 10 m is 4 x 4 at 20 m, with no resize after it
    assert np.isnan(image[:, :, 0]).all() and np.isnan(image[:, 1, 2]).all()
    assert np.array_equal(np.isnan(image), np.isnan(expected))
    assert np.allclose(image[~np.isnan(image)], expected[~np.isnan(expected)], rtol=1e-6)
    assert image[0, 0, 1] == pytest.approx(data[0, 1, 2:4].mean())  # the valid half of its block


def test_with_a_gsd_the_chip_is_centre_cropped_or_padded_with_nodata_not_resized(tmp_path: Path) -> None:
    data = np.stack([np.arange(1, 65, dtype=np.uint16).reshape(8, 8), np.full((8, 8), 5, dtype=np.uint16)])
    path = write_tif(tmp_path / "ten.tif", data, nodata=0, descriptions=["B04", "B08"])
    coarse = _block_means(data)
    assert np.allclose(_gsd_preprocessor((2, 2), 20.0)(path).numpy(), coarse[:, 1:3, 1:3])
    padded = _gsd_preprocessor((6, 7), 20.0)(path).numpy()
    assert padded.shape == (2, 6, 7) and np.isnan(padded[:, [0, 5]]).all() and np.isnan(padded[:, :, [0, 5, 6]]).all()
    assert np.allclose(padded[:, 1:5, 1:5], coarse)
    native = _gsd_preprocessor((4, 4), 10.0)(path).numpy()  # already at its GSD: cropped, not resampled
    assert np.array_equal(native, data[:, 2:6, 2:6].astype(np.float32))


def test_gsd_null_leaves_the_preprocessing_and_its_cache_key_as_they_were(tmp_path: Path) -> None:
    import torch
    import torch.nn.functional as F

    data = np.stack([np.arange(1, 401, dtype=np.uint16).reshape(20, 20), np.full((20, 20), 5, dtype=np.uint16)])
    data[:, :, :3] = 0
    path = write_tif(tmp_path / "ten.tif", data, nodata=0, descriptions=["B04", "B08"])
    pre = _gsd_preprocessor((8, 8), None)
    assert pre.config == {  # what model directories and cache keys held before preprocess.gsd existed
        "bands": None,
        "file_bands": None,
        "size": [8, 8],
        "band_stats": {"B04": [0.0, 1.0], "B08": [0.0, 1.0]},
        "stats_images": 2000,
    }
    valid = torch.from_numpy((data[0] > 0).astype(np.float32))[None, None]
    pixels = torch.from_numpy(np.where(data > 0, data, 0).astype(np.float32))[None]
    resize = {"size": (8, 8), "mode": "bilinear", "antialias": True, "align_corners": False}
    cover = F.interpolate(valid, **resize)
    before = (F.interpolate(pixels, **resize) / cover.clamp_min(1e-6))[0].masked_fill(cover[0] < 0.5, float("nan"))
    image = pre(path)
    assert image.numpy().tobytes() == before.numpy().tobytes()  # byte for byte, NaNs included


def test_a_geographic_file_is_measured_in_metres_at_its_centre(tmp_path: Path) -> None:
    import rasterio
    from rasterio.transform import from_origin

    from domainclip.domains.satellite.gsd import pixel_size_m, resample_to_gsd
    from domainclip.domains.satellite.readers import read_raster

    data = np.full((2, 40, 20), 100, dtype=np.uint16)  # 0.0002 degrees a side around 60 N: twice as tall as wide
    profile = {"driver": "GTiff", "count": 2, "height": 40, "width": 20, "dtype": "uint16", "crs": "EPSG:4326"}
    path = tmp_path / "degrees.tif"
    with rasterio.open(path, "w", transform=from_origin(10.0, 60.008, 0.0002, 0.0002), **profile) as dst:
        dst.write(data)
        dst.descriptions = ("B04", "B08")
    width_m, height_m = pixel_size_m(read_raster(path), path)
    # WGS84 radii of curvature at the centre latitude: prime vertical for a degree of longitude, meridian for one
    # of latitude
    a, e2, lat = 6378137.0, 0.00669437999014, math.radians(60.004)
    prime = a / math.sqrt(1 - e2 * math.sin(lat) ** 2)
    meridian = a * (1 - e2) / (1 - e2 * math.sin(lat) ** 2) ** 1.5
    assert width_m == pytest.approx(math.radians(0.0002) * prime * math.cos(lat), rel=2e-3)
    assert height_m == pytest.approx(math.radians(0.0002) * meridian, rel=2e-3)
    coarse = resample_to_gsd(read_raster(path), 2 * height_m, path)  # half the rows, a quarter of the columns
    assert coarse.pixels.shape == (2, 20, 5) and np.allclose(coarse.pixels, 100.0) and coarse.valid.all()
    # each new pixel is 2 * height_m metres a side, in degrees
    assert coarse.transform[0] == pytest.approx(0.0002 * 2 * height_m / width_m)
    assert coarse.transform[4] == pytest.approx(-0.0004)


def test_a_picture_without_georeference_warns_and_is_resized_as_without_gsd(tmp_path: Path, caplog) -> None:
    import logging

    from PIL import Image

    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8)).save(tmp_path / "airport_1.png")
    path = tmp_path / "airport_1.png"
    rgb = ["red", "green", "blue"]
    domain = get_domain("satellite")
    with caplog.at_level(logging.WARNING):
        assert domain.check_image(path, None, SatellitePreprocessConfig(bands=rgb, gsd=10.0)) is None  # usable
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "airport_1.png: not georeferenced, so preprocess.gsd=10 m does not apply" in caplog.text
    with_gsd, without = _gsd_preprocessor((16, 16), 10.0, rgb)(path), _gsd_preprocessor((16, 16), None, rgb)(path)
    assert with_gsd.shape == (3, 16, 16) and with_gsd.numpy().tobytes() == without.numpy().tobytes()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        assert domain.check_image(path, None, SatellitePreprocessConfig(bands=rgb)) is None
    assert caplog.records == []  # no gsd: nothing to say


def test_band_statistics_are_those_of_the_images_at_the_gsd(tmp_path: Path) -> None:
    data = np.zeros((2, 8, 8), dtype=np.uint16)
    data[0] = 100 + 200 * (np.arange(8)[None, :] % 2) + 10 * np.arange(8)[:, None]  # stripes the GSD averages out
    data[1] = 50 + np.arange(64).reshape(8, 8)
    path = write_tif(tmp_path / "stripes.tif", data, descriptions=["B04", "B08"])
    record = Record(id="s", patient_id="s", image=path)
    fitted = get_domain("satellite").fit_preprocess(SatellitePreprocessConfig(gsd=20.0), [record])
    coarse = _block_means(data)
    for k, band in enumerate(["B04", "B08"]):
        assert fitted.band_stats[band] == pytest.approx((coarse[k].mean(), coarse[k].std()))
    native = get_domain("satellite").fit_preprocess(SatellitePreprocessConfig(), [record])
    assert native.band_stats["B04"][1] > 2 * fitted.band_stats["B04"][1]
