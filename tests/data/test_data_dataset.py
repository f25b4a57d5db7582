from __future__ import annotations

import numpy as np
import pytest
import torch
from tiny_files import write_volume
from torch.utils.data import DataLoader

from domainclip.data.cache import DiskCache
from domainclip.data.dataset import CachedDataset
from domainclip.data.manifest import read_manifest
from domainclip.domains.ct import preprocess as ct_preprocess
from domainclip.domains.ct.preprocess import CTPreprocessor
from domainclip.errors import DataError

CONFIG = {"spacing": [3.0, 3.0, 3.0], "size": [8, 8, 8]}


def test_items_and_warm_epoch_never_decodes(small_study, tmp_path, monkeypatch):
    records = read_manifest(small_study)
    preprocessor = CTPreprocessor(CONFIG)
    dataset = CachedDataset(records, preprocessor, DiskCache(tmp_path / "cache", preprocessor.config))
    cold = [dataset[i] for i in range(len(dataset))]
    assert [item["index"] for item in cold] == [0, 1, 2, 3]
    assert cold[0]["image"].shape == (1, 8, 8, 8) and cold[0]["image"].dtype == torch.float32
    torch.testing.assert_close(cold[2]["image"], preprocessor(records[2].image), rtol=0, atol=0)

    def no_decoding(*args, **kwargs):
        raise AssertionError("warm epoch decoded an image")

    monkeypatch.setattr(ct_preprocess, "read_ct", no_decoding)
    warm = [dataset[i] for i in range(len(dataset))]
    assert all(torch.equal(a["image"], b["image"]) for a, b in zip(cold, warm))


def test_works_with_dataloader_workers(small_study, tmp_path):
    records = read_manifest(small_study)
    preprocessor = CTPreprocessor(CONFIG)
    cache = DiskCache(tmp_path / "cache", preprocessor.config)
    loader = DataLoader(CachedDataset(records, preprocessor, cache), batch_size=2, num_workers=2)
    batches = list(loader)
    assert torch.cat([b["index"] for b in batches]).tolist() == [0, 1, 2, 3]
    assert batches[0]["image"].shape == (2, 1, 8, 8, 8)
    assert len(list(cache.directory.glob("*.npy"))) == 4  # workers filled the shared cache


def test_without_cache_and_bad_file_mid_epoch(small_study, tmp_path):
    records = read_manifest(small_study)
    dataset = CachedDataset(records, CTPreprocessor(CONFIG), cache=None)
    assert dataset[0]["image"].shape == (1, 8, 8, 8)
    records[3].image.write_bytes(b"\x1f\x8b broken")
    with pytest.raises(DataError, match=r"manifest.csv:row 5 \(id=s3\): .*s3.nii.gz: unreadable image"):
        dataset[3]


def test_hints_reach_the_preprocessor(tmp_path):
    import dataclasses

    path = write_volume(tmp_path / "v.nii.gz")
    (record,) = read_manifest(_one_row_manifest(tmp_path, path))
    plain = CachedDataset([record], CTPreprocessor({"normalize": None}), DiskCache(tmp_path / "c", {}))[0]["image"]
    shifted_record = dataclasses.replace(record, image_meta={"rescale_slope": 1.0, "rescale_intercept": -1024.0})
    shifted = CachedDataset([shifted_record], CTPreprocessor({"normalize": None}), DiskCache(tmp_path / "c", {}))[0][
        "image"
    ]
    np.testing.assert_allclose(shifted.numpy(), np.clip(plain.numpy() - 1024 / 2000, 0, 1), atol=1e-6)


def _one_row_manifest(folder, image):
    from tiny_files import write_manifest

    return write_manifest(
        folder, [{"id": "v", "patient_id": "p", "image": image.name, "report": "r", "split": "train"}]
    )
