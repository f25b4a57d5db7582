from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from tiny_files import write_manifest, write_volume

from domainclip.data.cache import DiskCache
from domainclip.data.dataset import CachedDataset
from domainclip.data.manifest import read_manifest
from domainclip.data.validate import find_problems, validate_records
from domainclip.domains.ct import CTDomain

PREPROCESS = {"spacing": [4.0, 4.0, 4.0], "size": [8, 8, 8]}


def caching_check(records, tmp_path):
    """``run``'s image check: decodes once for the check and the preprocessing cache."""
    preprocessor = CTDomain().build_preprocessor(PREPROCESS)
    dataset = CachedDataset(records, preprocessor, DiskCache(tmp_path / "cache", preprocessor.config))
    return dataset, [line for _, line in find_problems(records, CTDomain(), 2, image_check=dataset.check)]


@pytest.mark.parametrize("check", ["domain", "caching"])
def test_every_bad_row_is_reported_at_once(tmp_path, check):
    good = write_volume(tmp_path / "good.nii.gz")
    payload = write_volume(tmp_path / "full.nii.gz", shape=(24, 24, 24)).read_bytes()
    (tmp_path / "truncated.nii.gz").write_bytes(payload[: len(payload) // 2])
    (tmp_path / "corrupt.nii.gz").write_bytes(b"definitely not gzip")
    nib.save(nib.Nifti1Image(np.zeros((8, 8), np.int16), np.eye(4)), tmp_path / "flat.nii.gz")
    nan = np.zeros((4, 4, 4), np.float32)
    nan[0, 0, :2] = np.nan
    nib.save(nib.Nifti1Image(nan, np.eye(4)), tmp_path / "nan.nii.gz")
    rows = [
        ("ok", "p1", "good.nii.gz", "Fine.", "train"),
        ("missing", "p2", "missing.nii.gz", "Fine.", "train"),
        ("trunc", "p3", "truncated.nii.gz", "Fine.", "train"),
        ("corrupt", "p4", "corrupt.nii.gz", "Fine.", "train"),
        ("flat", "p5", "flat.nii.gz", "Fine.", "train"),
        ("nan", "p6", "nan.nii.gz", "Fine.", "train"),
        ("empty", "p7", "good.nii.gz", "  ", "train"),
        ("ok", "p8", "good.nii.gz", "Again.", "train"),
        ("leak1", "p9", "good.nii.gz", "A.", "train"),
        ("leak2", "p9", "good.nii.gz", "B.", "test"),
        ("placeholder", "p10", "good.nii.gz", "See attached.", "train"),
    ]
    manifest = write_manifest(tmp_path, [dict(zip(("id", "patient_id", "image", "report", "split"), r)) for r in rows])
    records = read_manifest(manifest)
    if check == "domain":
        problems = validate_records(records, CTDomain(), max_workers=2)
    else:
        dataset, problems = caching_check(records, tmp_path)
        assert dataset.cache.has("ok", good) and not dataset.cache.has("nan", tmp_path / "nan.nii.gz")
    assert problems[0] == f"manifest.csv:row 3 (id=missing): image not found: {tmp_path / 'missing.nii.gz'}"
    expected = [
        ("row 4 (id=trunc)", "truncated.nii.gz: unreadable image"),
        ("row 5 (id=corrupt)", "corrupt.nii.gz: unreadable image"),
        ("row 6 (id=flat)", "flat.nii.gz: not a 3D volume (shape (8, 8))"),
        ("row 7 (id=nan)", "nan.nii.gz: image has 2 NaN voxel(s)"),
        ("row 8 (id=empty)", "report is empty"),
        ("row 9 (id=ok)", "duplicate id (first at manifest.csv:row 2)"),
        ("row 10 (id=leak1)", "patient p9 appears in splits test, train; a patient must stay in one split"),
        ("row 11 (id=leak2)", "patient p9 appears in splits test, train; a patient must stay in one split"),
        ("row 12 (id=placeholder)", "report is only boilerplate ('See attached.')"),
    ]
    assert len(problems) == 1 + len(expected)
    for line, (where, reason) in zip(problems[1:], expected):
        assert line.startswith(f"manifest.csv:{where}: ") and reason in line, line
    assert good.is_file()


def test_clean_data_has_no_problems(small_study):
    assert validate_records(read_manifest(small_study), CTDomain()) == []


def test_the_caching_check_does_not_decode_a_cached_image_again(small_study, tmp_path, monkeypatch):
    records = read_manifest(small_study)
    dataset, problems = caching_check(records, tmp_path)
    assert problems == []
    cached = dataset.load(0)
    # a cached image is the preprocessing of its file, as without the check
    fresh = CTDomain().build_preprocessor(PREPROCESS)(records[0].image)
    np.testing.assert_array_equal(cached.numpy(), fresh.numpy())

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a cached image")

    monkeypatch.setattr(type(dataset.preprocessor), "checked", no_decoding)
    monkeypatch.setattr(type(dataset.preprocessor), "__call__", no_decoding)
    assert caching_check(records, tmp_path)[1] == []  # a warm run decodes nothing
    np.testing.assert_array_equal(dataset.load(0).numpy(), cached.numpy())
