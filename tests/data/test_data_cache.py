from __future__ import annotations

import os
import threading

import numpy as np
import pytest

from domainclip.data.cache import DiskCache

CONFIG = {"spacing": [2.0, 2.0, 2.0], "size": [8, 8, 8], "hu_window": [-1000.0, 1000.0], "orientation": "RAS"}


@pytest.fixture
def source(tmp_path):
    path = tmp_path / "scan.nii.gz"
    path.write_bytes(b"x" * 100)
    return path


def test_roundtrip_and_config_folder(tmp_path, source):
    cache = DiskCache(tmp_path / "c", CONFIG)
    assert cache.get("a", source) is None
    array = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    entry = cache.put("a", source, array)
    assert entry.parent == cache.directory and entry.suffix == ".npy"
    np.testing.assert_array_equal(cache.get("a", source), array)
    assert (cache.directory / "config.json").is_file()
    assert not [p for p in cache.directory.iterdir() if p.name.startswith(".tmp-")]
    # the same config, written in another key order, is the same cache
    assert DiskCache(tmp_path / "c", dict(reversed(list(CONFIG.items())))).directory == cache.directory
    assert DiskCache(tmp_path / "c", {**CONFIG, "size": [8, 8, 9]}).directory != cache.directory


def test_changed_source_or_hints_miss(tmp_path, source):
    cache = DiskCache(tmp_path, CONFIG)
    cache.put("a", source, np.zeros(3, np.float32), {"rescale_intercept": -1024.0})
    assert cache.get("a", source, {"rescale_intercept": -1024.0}) is not None
    assert cache.get("a", source, {"rescale_intercept": 0.0}) is None
    assert cache.get("a", source) is None
    assert cache.get("b", source, {"rescale_intercept": -1024.0}) is None
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10_000_000))
    assert cache.get("a", source, {"rescale_intercept": -1024.0}) is None
    assert cache.get("a", tmp_path / "gone.nii.gz") is None


def test_dicom_folder_state_covers_its_files(tmp_path):
    folder = tmp_path / "series"
    folder.mkdir()
    (folder / "1.dcm").write_bytes(b"a")
    cache = DiskCache(tmp_path / "c", CONFIG)
    cache.put("s", folder, np.ones(2, np.float32))
    assert cache.get("s", folder) is not None
    (folder / "2.dcm").write_bytes(b"b")
    assert cache.get("s", folder) is None


def test_damaged_entry_is_a_miss_and_pickles_are_refused(tmp_path, source):
    cache = DiskCache(tmp_path, CONFIG)
    entry = cache.put("a", source, np.ones(4, np.float32))
    entry.write_bytes(entry.read_bytes()[:20])
    assert cache.get("a", source) is None
    np.save(entry, np.array([{"evil": 1}], dtype=object), allow_pickle=True)
    assert cache.get("a", source) is None  # object arrays would need allow_pickle
    with pytest.raises(ValueError):
        cache.put("a", source, np.array([{"evil": 1}], dtype=object))
    assert not [p for p in tmp_path.rglob(".tmp-*")]


def test_concurrent_writers_leave_one_valid_entry(tmp_path, source):
    cache = DiskCache(tmp_path, CONFIG)
    array = np.random.default_rng(0).random((16, 16, 16)).astype(np.float32)
    threads = [threading.Thread(target=cache.put, args=("a", source, array)) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_array_equal(cache.get("a", source), array)
    assert len([p for p in cache.directory.iterdir() if p.suffix == ".npy"]) == 1
