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
from domainclip.domains.satellite.layouts import merge_caption_rows
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
    records, problems = load_records(recipe, check=False)
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
    assert [float(image[k, 0, 0]) for k in range(12)] == [100.0 * (SENTINEL2_13.index(b) + 1) for b in l2a]
