"""Tiling at an exact mpp (same physical tiles from a 20x and a 40x scan) and the TRIDENT feature store."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import openslide
import pytest
import torch
from drawn_slides import drawn_svs
from test_wsi_slides import _real_svs

from domainclip.domains.wsi.config import TissueConfig, WSIPreprocessConfig
from domainclip.domains.wsi.feature_files import FEATURE_ATTRS, features_complete, read_features
from domainclip.domains.wsi.features import SlideFeatures
from domainclip.domains.wsi.tiler import SlideTiler
from domainclip.domains.wsi.tiles import SlideGrid, SlideTiles
from domainclip.domains.wsi.tiling import read_tile
from domainclip.models.vit import ViTEncoder

TISSUE = TissueConfig(mpp=4.0, min_area_mm2=0.005, min_hole_area_mm2=0.001, threshold="otsu")
CFG = WSIPreprocessConfig(mpp=1.0, tile_size=32, min_tissue=0.5, tissue=TISSUE)


def _tiny_encoder(seed: int = 0) -> ViTEncoder:
    torch.manual_seed(seed)
    return ViTEncoder(in_channels=3, img_size=(32, 32), patch_size=(16, 16), hidden_size=8, depth=1, heads=2)


@pytest.fixture(scope="module")
def scans(tmp_path_factory) -> dict[float, Path]:
    folder = tmp_path_factory.mktemp("scans")
    return {mpp: drawn_svs(folder / f"{round(10 / mpp)}x.svs", mpp) for mpp in (0.25, 0.5)}


def test_a_20x_and_a_40x_scan_give_the_same_tiles(scans: dict[float, Path]) -> None:
    grids = {mpp: SlideTiler(CFG).tiling(path)[0] for mpp, path in scans.items()}
    fine, coarse = grids[0.25], grids[0.5]
    assert (fine.patch_size_level0, coarse.patch_size_level0) == (128, 64), "32 px at 1 um/px"
    assert len(fine) == len(coarse) > 20
    np.testing.assert_array_equal(fine.coords, coarse.coords * 2)  # same microns, level-0 pixels of each scan
    tiles = {
        mpp: np.stack([read_tile(openslide.OpenSlide(scans[mpp]), g, i) for i in range(len(g))])
        for mpp, g in grids.items()
    }
    assert tiles[0.25].shape == tiles[0.5].shape == (len(fine), 32, 32, 3)
    assert np.abs(tiles[0.25].astype(int) - tiles[0.5]).mean() < 4, "one tissue, resampled twice"


def test_min_tissue_keeps_fewer_tiles_as_it_rises(scans: dict[float, Path]) -> None:
    counts = [
        len(SlideTiler(CFG.model_copy(update={"min_tissue": share})).tiling(scans[0.5])[0])
        for share in (0.0, 0.5, 0.95)
    ]
    assert counts[0] > counts[1] > counts[2] > 0


def test_tissue_and_tiles_on_the_real_aperio_slide() -> None:
    cfg = WSIPreprocessConfig(mpp=2.0, tile_size=64, tissue=TissueConfig(mpp=8.0))
    grid, tissue = SlideTiler(cfg).tiling(_real_svs())
    assert 0.2 < tissue.fraction < 0.95 and len(tissue.contours) >= 1
    assert grid.patch_size_level0 == round(64 * 2.0 / 0.499) and len(grid) > 10
    slide = openslide.OpenSlide(_real_svs())
    tile = read_tile(slide, grid, len(grid) // 2)
    assert tile.shape == (64, 64, 3) and tile.std() > 5, "a tissue tile has texture"


def test_tile_dataset_items_are_normalised_and_carry_their_slide(scans: dict[float, Path]) -> None:
    grid, _ = SlideTiler(CFG).tiling(scans[0.5])
    tiles = SlideTiles([SlideGrid(7, scans[0.5], grid)], *CFG.normalize)
    item = tiles[3]
    assert item["index"] == 7 and item["image"].shape == (3, 32, 32)
    assert -3 < float(item["image"].mean()) < 3


def test_features_are_a_trident_h5_and_a_complete_file_is_never_rewritten(
    scans: dict[float, Path], tmp_path: Path
) -> None:
    store = SlideFeatures(CFG, _tiny_encoder(), tmp_path, batch_size=16)
    bag = store(scans[0.5])
    path = store.feature_file(scans[0.5])
    assert bag.shape[0] == 8 and features_complete(path)
    with h5py.File(path) as h5:
        assert h5["coords"].dtype == np.int64 and h5["coords"].shape == (bag.shape[1], 2)
        assert h5["features"].dtype == np.float32 and h5["features"].shape == (bag.shape[1], 8)
        assert all(key in h5.attrs for key in FEATURE_ATTRS)
        assert h5.attrs["patch_size"] == 32 and h5.attrs["target_magnification"] == 10.0
        assert h5.attrs["level0_magnification"] == 20.0 and h5.attrs["patch_size_level0"] == 64
    assert "patches" in {p.name for p in path.parents[1].iterdir()}, "TRIDENT's layout: patches/ beside features_*"
    stamp = path.stat().st_mtime_ns
    again = SlideFeatures(CFG, _tiny_encoder(), tmp_path, batch_size=16)(scans[0.5])
    assert path.stat().st_mtime_ns == stamp and torch.equal(again, bag)
    assert [p.name for p in path.parent.iterdir() if p.name.startswith(".")] == [], "no temporary file left"


def test_retrained_weights_or_another_tiling_never_meet_old_features(scans: dict[float, Path], tmp_path: Path) -> None:
    first = SlideFeatures(CFG, _tiny_encoder(0), tmp_path)
    retrained = SlideFeatures(CFG, _tiny_encoder(1), tmp_path)
    retiled = SlideFeatures(CFG.model_copy(update={"min_tissue": 0.9}), _tiny_encoder(0), tmp_path)
    assert len({first.store, retrained.store, retiled.store}) == 3
    assert not torch.equal(first(scans[0.5]), retrained(scans[0.5]))


def test_an_interrupted_feature_file_is_extracted_again(scans: dict[float, Path], tmp_path: Path) -> None:
    store = SlideFeatures(CFG, _tiny_encoder(), tmp_path)
    path = store.feature_file(scans[0.5])
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as h5:  # what a killed writer of another tool leaves: no 'complete' mark
        h5.create_dataset("coords", data=np.zeros((3, 2), np.int64))
    assert not features_complete(path)
    bag = store(scans[0.5])
    assert features_complete(path) and read_features(path).features.shape == (bag.shape[1], 8)


def test_clam_and_trident_feature_files_are_read(tmp_path: Path) -> None:
    clam = tmp_path / "clam.h5"
    with h5py.File(clam, "w") as h5:
        h5.create_dataset("features", data=np.ones((5, 4), np.float32))
        h5.create_dataset("coords", data=np.arange(10, dtype=np.int32).reshape(5, 2))
    trident = tmp_path / "trident.h5"
    with h5py.File(trident, "w") as h5:
        h5.create_dataset("features", data=np.ones((2, 3), np.float32)).attrs["encoder"] = "conch_v15"
        coords = h5.create_dataset("coords", data=np.zeros((2, 2), np.int64))
        coords.attrs.update({"patch_size": 512, "patch_size_level0": 1024, "level0_magnification": 40})
    a, b = read_features(clam), read_features(trident)
    assert (a.flavor, a.features.shape, a.coords.dtype) == ("clam", (5, 4), np.int64)
    assert (b.flavor, b.attrs["patch_size_level0"], b.attrs["encoder"]) == ("trident", 1024, "conch_v15")


def test_the_default_threshold_keeps_pale_tissue_that_otsu_puts_with_the_glass() -> None:
    import cv2

    from domainclip.domains.wsi.demo_tissue import paint_tissue
    from domainclip.domains.wsi.tissue import detect_tissue

    findings = {"necrosis": True, "mucin": True, "lymphocytic infiltrate": False, "haemorrhage": False}
    painted = paint_tissue(np.random.default_rng(4), "LUSC", {**findings, "calcification": False}, 700, 600, 1.0)
    small = cv2.resize(
        painted.rgb, (painted.rgb.shape[1] // 8, painted.rgb.shape[0] // 8), interpolation=cv2.INTER_AREA
    )

    def covered(threshold) -> dict[str, float]:
        mask = detect_tissue(small, 8.0, 1.0, TissueConfig(threshold=threshold)).mask.astype(np.uint8)
        full = cv2.resize(mask, painted.rgb.shape[1::-1], interpolation=cv2.INTER_NEAREST).astype(bool)
        return {name: float(full[region].mean()) for name, region in painted.regions.items()}

    assert min(covered(TissueConfig().threshold).values()) > 0.9
    assert min(covered("otsu").values()) < 0.5


def test_extracting_leaves_the_global_rng_as_reading_the_store_does(scans: dict[float, Path], tmp_path: Path) -> None:
    """A run whose features are extracted (cache miss) and one that reads them (hit) must train alike: the
    slide tower is initialised from torch's global RNG after this stage."""
    store = SlideFeatures(CFG, _tiny_encoder(), tmp_path, batch_size=4)
    torch.manual_seed(0)
    store(scans[0.5])  # extracts
    after_miss = torch.rand(3)
    torch.manual_seed(0)
    store(scans[0.5])  # reads the complete file
    assert torch.equal(torch.rand(3), after_miss)
