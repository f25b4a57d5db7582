"""The rsicd layout: Karpathy caption JSON + images by file name; every bad entry named, none silently dropped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from domainclip.domains.satellite.layouts import rsicd_records
from domainclip.errors import DataError


def entry(name: str, split: str, captions: list[str]) -> dict:
    sentences = [{"raw": c, "tokens": c.split(), "imgid": 0, "sentid": i} for i, c in enumerate(captions)]
    return {"filename": name, "imgid": 0, "split": split, "sentences": sentences, "sentids": list(range(len(captions)))}


def write_set(root: Path, entries: list[dict], images: list[str], folder: str = "RSICD_images") -> Path:
    (root / folder).mkdir(parents=True, exist_ok=True)
    for name in images:
        Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(root / folder / name)
    (root / "dataset_rsicd.json").write_text(json.dumps({"images": entries}))
    return root


def test_captions_splits_and_files(tmp_path: Path) -> None:
    five = ["many planes are parked near a terminal ."] * 2 + ["an airport .", "planes .", "a runway ."]
    root = write_set(
        tmp_path,
        [
            entry("airport_1.jpg", "train", five),
            entry("beach_2.jpg", "val", ["a beach ."]),
            entry("river_3.jpg", "test", ["a river ."]),
        ],
        ["airport_1.jpg", "beach_2.jpg", "river_3.jpg"],
    )
    records, problems = rsicd_records(root)
    assert problems == []
    assert [(r.id, r.split) for r in records] == [("airport_1", "train"), ("beach_2", "valid"), ("river_3", "test")]
    assert records[0].texts == tuple(five)  # repeats kept: the retrieval protocol counts captions as given
    assert records[0].image == root / "RSICD_images" / "airport_1.jpg"


def test_every_bad_entry_is_named(tmp_path: Path) -> None:
    root = write_set(
        tmp_path,
        [
            entry("a.jpg", "train", ["ok ."]),
            entry("gone.jpg", "train", ["a missing file ."]),
            entry("mute.jpg", "train", []),
            entry("odd.jpg", "holdout", ["x ."]),
            entry("twice.jpg", "train", ["one ."]),
            entry("twice.jpg", "test", ["two ."]),
        ],
        ["a.jpg", "mute.jpg", "odd.jpg", "twice.jpg"],
        folder="images",
    )
    records, problems = rsicd_records(root)
    assert [r.id for r in records] == ["a"]
    text = "\n".join(problems)
    assert "images[1] (gone.jpg): image file not found" in text
    assert "images[2] (mute.jpg): no caption" in text
    assert "images[3] (odd.jpg): split 'holdout' is not one of" in text
    assert text.count("(twice.jpg): listed 2 times") == 2


def test_the_caption_file_must_be_there_once(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="expected one caption file dataset_\\*.json.*found none"):
        rsicd_records(tmp_path)
    (tmp_path / "dataset_rsicd.json").write_text("{not json")
    with pytest.raises(DataError, match="dataset_rsicd.json: not a Karpathy caption file"):
        rsicd_records(tmp_path)


def test_one_file_name_in_two_folders_is_named(tmp_path: Path) -> None:
    root = write_set(tmp_path, [entry("a.jpg", "train", ["ok ."])], ["a.jpg"])
    write_set(tmp_path / "copy", [], ["a.jpg"])
    (tmp_path / "copy" / "dataset_rsicd.json").unlink()
    records, problems = rsicd_records(root)
    assert records == [] and any("a.jpg: 2 files with this name" in p for p in problems)


def test_eurosat_class_folders(tmp_path: Path) -> None:
    from domainclip.domains.satellite.layouts import eurosat_records

    for folder, n in (("AnnualCrop", 6), ("SeaLake", 6), ("Empty", 0)):
        (tmp_path / folder).mkdir()
        for k in range(n):
            Image.fromarray(np.zeros((4, 4, 3), dtype=np.uint8)).save(tmp_path / folder / f"{folder}_{k + 1}.png")
    records, problems = eurosat_records(tmp_path, aliases={"SeaLake": "sea or lake"})
    assert problems == ["Empty/: a class folder with no image"]
    assert sorted({r.label for r in records}) == ["annual crop", "sea or lake"] and len(records) == 12
    assert {r.split for r in records} == {"train", "valid", "test"} and all(not r.texts for r in records)
    with pytest.raises(DataError, match="no class folders"):
        eurosat_records(tmp_path / "Empty")
