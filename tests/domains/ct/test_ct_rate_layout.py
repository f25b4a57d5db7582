from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import torch
from make_fake_ct_rate import (
    FIXED_VOLUMES,
    LABELS,
    NOT_DOWNLOADED,
    TRAIN_VOLUMES,
    VALID_VOLUMES,
    Z_SPACING,
    hu_volume,
    make_fake_ct_rate,
    true_affine_ras,
)

from domainclip.config.schema import DataConfig
from domainclip.domains.ct import CTDomain
from domainclip.domains.ct.layouts import CT_RATE_LABELS, parse_volume_name, read_ct_rate
from domainclip.domains.ct.readers import read_ct
from domainclip.errors import DataError, RecipeError


@pytest.fixture(scope="module")
def fake(tmp_path_factory):
    return make_fake_ct_rate(tmp_path_factory.mktemp("ct-rate"))


def test_records_follow_the_ct_rate_conventions(fake):
    records = read_ct_rate(fake.root, seed=0)
    by_id = {r.id: r for r in records}
    assert sorted(by_id) == sorted(TRAIN_VOLUMES + VALID_VOLUMES)  # only volumes on disk
    r = by_id["train_1_a_2"]
    assert (r.patient_id, r.report_id) == ("train_1", "train_1_a")
    assert r.report == " ".join(fake.reports["train_1_a_2"])
    assert r.findings == {k: float(v) for k, v in fake.labels["train_1_a_2"].items()}
    assert list(r.findings) == list(CT_RATE_LABELS) == list(LABELS)
    assert r.source == "train/train_1/train_1_a/train_1_a_2.nii.gz"
    # reconstructions of one scan share the report; another scan of the patient has its own
    assert by_id["train_1_a_1"].report == r.report and by_id["train_1_b_1"].report_id == "train_1_b"
    assert {by_id[v].split for v in VALID_VOLUMES} == {"test"}
    train_splits = {by_id[v].patient_id: by_id[v].split for v in TRAIN_VOLUMES}
    assert set(train_splits.values()) == {"train", "valid"}  # a seeded share of train patients is validation
    assert all(len({x.split for x in records if x.patient_id == p}) == 1 for p in train_splits)
    assert read_ct_rate(fake.root, seed=0) == records  # deterministic


def test_volumes_read_in_hu_with_geometry_from_the_metadata_csv(fake):
    records = {r.id: r for r in read_ct_rate(fake.root)}
    assert records["train_2_a_1"].image_meta["spacing"] == [0.8, 0.8, Z_SPACING]
    for volume_id in ("train_2_a_1", *FIXED_VOLUMES):  # stored values + wrong header, and an already fixed file
        volume = read_ct(records[volume_id].image, records[volume_id].image_meta)
        np.testing.assert_array_equal(volume.array, hu_volume())
        np.testing.assert_allclose(volume.affine, true_affine_ras())


def test_dataset_path_goes_through_the_same_hints(fake, tmp_path):
    from domainclip.data.cache import DiskCache
    from domainclip.data.dataset import CachedDataset

    records = read_ct_rate(fake.root)
    preprocessor = CTDomain().build_preprocessor({"spacing": [1.6, 1.6, 2.5], "size": [12, 10, 12], "normalize": None})
    dataset = CachedDataset(records, preprocessor, DiskCache(tmp_path, preprocessor.config))
    images = torch.stack([dataset[i]["image"] for i in range(len(records))])
    assert images.shape == (len(records), 1, 12, 10, 12)
    assert torch.equal(images, images[:1].expand_as(images))  # raw and fixed files give the same tensor
    assert 0.51 < float(images.max()) <= 0.86  # the 700 HU spine, not 700 - 1024 or 700 + 1024


def test_volume_without_csv_rows_is_reported(fake, tmp_path):
    root = tmp_path / "copy"
    fake_copy = make_fake_ct_rate(root)
    reports = root / "dataset" / "radiology_text_reports" / "train_reports.csv"
    table = pd.read_csv(reports)
    table[~table["VolumeName"].isin(["train_3_a_1.nii.gz", "train_4_a_1.nii.gz"])].to_csv(reports, index=False)
    with pytest.raises(DataError) as info:
        read_ct_rate(fake_copy.root)
    assert info.value.problems == [
        "train/train_3/train_3_a/train_3_a_1.nii.gz: no row in radiology_text_reports/train_reports.csv",
        "train/train_4/train_4_a/train_4_a_1.nii.gz: no row in radiology_text_reports/train_reports.csv",
    ]


def test_volumes_listed_but_not_downloaded_are_named_in_a_warning(tmp_path, caplog):
    fake = make_fake_ct_rate(tmp_path / "partial")
    gone = sorted((fake.root / "dataset" / "train").glob("*/*/*.nii.gz"))[:2]
    for path in gone:
        path.unlink()
    with caplog.at_level(logging.WARNING):
        records = read_ct_rate(fake.root)
    assert not {r.id for r in records} & {p.name.removesuffix(".nii.gz") for p in gone}
    expected = ", ".join(sorted([p.name for p in gone] + [f"{n}.nii.gz" for n in NOT_DOWNLOADED]))
    assert f"train_reports.csv lists 3 volume(s) not found under train/ (partial download?): {expected}" in caplog.text


def test_missing_label_file_warns_and_leaves_findings_unknown(tmp_path, caplog):
    fake = make_fake_ct_rate(tmp_path / "nolabels")
    (fake.root / "dataset" / "multi_abnormality_labels" / "valid_predicted_labels.csv").unlink()
    with caplog.at_level(logging.WARNING):
        records = read_ct_rate(fake.root)
    assert "valid_predicted_labels.csv not found" in caplog.text
    assert all(r.findings == {} for r in records if r.split == "test")
    assert all(len(r.findings) == 18 for r in records if r.split != "test")


def test_bad_roots_and_names():
    with pytest.raises(RecipeError, match="data.root"):
        CTDomain().layouts()["ct-rate"](DataConfig(layout="ct-rate"))
    with pytest.raises(DataError, match="not a folder"):
        read_ct_rate(__import__("pathlib").Path("/nonexistent/ct-rate"))
    assert parse_volume_name("valid_12_b_3.nii.gz") == ("valid_12_b_3", "valid_12", "valid_12_b")
    with pytest.raises(DataError, match="not a CT-RATE volume name"):
        parse_volume_name("scan.nii.gz")


def test_a_ct_rate_volume_read_without_its_metadata_warns(fake, caplog):
    volume = min((fake.root / "dataset" / "train").glob("*/*/*.nii.gz"))
    with caplog.at_level(logging.WARNING):
        read_ct(volume)
    assert f"{volume}: a CT-RATE volume read without its metadata CSV" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        read_ct_rate(fake.root)  # the layout applies slope and intercept: nothing to warn about
    assert "without its metadata CSV" not in caplog.text


def test_csv_folders_beside_the_dataset_folder_are_found(tmp_path):
    fake = make_fake_ct_rate(tmp_path / "beside")
    inside = {len(r.texts[0]) for r in read_ct_rate(fake.root)}
    for name in ("radiology_text_reports", "metadata", "multi_abnormality_labels"):
        (fake.root / "dataset" / name).rename(fake.root / name)
    records = read_ct_rate(fake.root)
    assert {len(r.texts[0]) for r in records} == inside and all(r.image_meta for r in records)
