"""Opening a slide (OpenSlide, tiffslide as fallback), its exact level-0 resolution, and a cheap health check.

OpenSlide (``openslide-python`` + ``openslide-bin``, no system library) reads the vendor formats: SVS, NDPI, MRXS,
SCN, VMS, BIF and generic tiled TIFF. tiffslide reads what OpenSlide refuses among TIFFs (OME-TIFF pyramids in
SubIFDs, which OpenSlide 4 sees as one level, and plain TIFFs it calls unsupported). Both objects share the
OpenSlide API (``dimensions``, ``level_*``, ``read_region``, ``properties``), which is all callers use.

Microns per pixel are looked up in TRIDENT's order, over the property names OpenSlide uses; tiffslide's own
``tiffslide.*`` keys are read as their ``openslide.*`` twins, so both backends answer the same.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from domainclip.errors import DataError

MPP_KEYS = ("openslide.mpp-x", "openslide.mirax.MPP", "aperio.MPP", "hamamatsu.XResolution")
"""Keys that hold microns per pixel directly, in the order they are trusted (TRIDENT's)."""

MICRONS_PER_UNIT = {"centimeter": 1e4, "cm": 1e4, "inch": 25400.0, "millimeter": 1e3, "micrometer": 1.0}
"""``tiff.ResolutionUnit`` -> microns in one unit: ``tiff.XResolution`` is pixels per unit."""

MAGNIFICATION_KEYS = ("openslide.objective-power", "aperio.AppMag", "hamamatsu.SourceLens")


def open_slide(path: Path) -> Any:
    """An ``openslide.OpenSlide`` when OpenSlide opens ``path``, else a ``tiffslide.TiffSlide``; neither: an error
    that names the file and both libraries' reasons."""
    import openslide

    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such slide file")
    import tiffslide

    try:
        slide = openslide.OpenSlide(str(path))
    except (openslide.OpenSlideError, openslide.OpenSlideUnsupportedFormatError) as exc:
        openslide_reason = f"{type(exc).__name__}: {exc}"
    else:
        if slide.level_count > 1 or slide.properties.get("openslide.vendor") != "generic-tiff":
            return slide
        return _more_levels(slide, path)
    try:
        return tiffslide.TiffSlide(str(path))
    except Exception as exc:  # noqa: BLE001 - tiffslide raises whatever its TIFF parser does on a foreign file
        raise DataError(
            f"{path}: not a slide OpenSlide or tiffslide can open (OpenSlide: {openslide_reason}; "
            f"tiffslide: {type(exc).__name__}: {exc})"
        ) from None


def _more_levels(slide: Any, path: Path) -> Any:
    """A one-level generic TIFF in OpenSlide may be a pyramid in SubIFDs (OME-TIFF), which only tiffslide sees:
    keep whichever backend sees more levels (reading level 0 for every coarse read would cost many times more)."""
    import tiffslide

    try:
        other = tiffslide.TiffSlide(str(path))
    except Exception:  # noqa: BLE001 - OpenSlide's view stands when tiffslide cannot parse the file
        return slide
    if other.level_count > slide.level_count:
        slide.close()
        return other
    other.close()
    return slide


def backend(slide: Any) -> Literal["openslide", "tiffslide"]:
    return "tiffslide" if type(slide).__module__.startswith("tiffslide") else "openslide"


def slide_properties(properties: Mapping[str, Any]) -> dict[str, str]:
    """A slide's properties as strings, with tiffslide's ``tiffslide.*`` keys also under their ``openslide.*`` name."""
    props = {str(k): str(v) for k, v in dict(properties).items() if v is not None}
    for key in [k for k in props if k.startswith("tiffslide.")]:
        props.setdefault("openslide." + key.removeprefix("tiffslide."), props[key])
    return props


def _positive(value: str, key: str, where: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise DataError(f"{where}: slide property {key}={value!r} is not a number") from None
    if not math.isfinite(number) or number <= 0:
        raise DataError(f"{where}: slide property {key}={value!r} is not a positive resolution")
    return number


def slide_mpp(properties: Mapping[str, Any], where: str, override: float | None = None) -> tuple[float, str]:
    """(level-0 microns per pixel, where it came from). ``override`` (``mpp.csv``) wins; then :data:`MPP_KEYS`; then
    ``tiff.XResolution`` in pixels per ``tiff.ResolutionUnit``. None of them: an error naming the slide."""
    if override is not None:
        if not math.isfinite(override) or override <= 0:
            raise DataError(f"{where}: mpp override {override!r} is not a positive number")
        return float(override), "mpp.csv"
    props = slide_properties(properties)
    for key in MPP_KEYS:
        if props.get(key, "").strip():
            return _positive(props[key], key, where), key
    resolution, unit = props.get("tiff.XResolution", "").strip(), props.get("tiff.ResolutionUnit", "").lower()
    if resolution and unit in MICRONS_PER_UNIT:
        pixels_per_unit = _positive(resolution, "tiff.XResolution", where)
        if pixels_per_unit > 1:  # 1 pixel per unit is the TIFF default, written by tools that know no resolution
            return MICRONS_PER_UNIT[unit] / pixels_per_unit, "tiff.XResolution"
    raise DataError(
        f"{where}: no microns-per-pixel in the slide's metadata (looked for {', '.join(MPP_KEYS)}, "
        "tiff.XResolution with tiff.ResolutionUnit); add a row 'slide_id,mpp' to mpp.csv"
    )


def slide_magnification(properties: Mapping[str, Any]) -> float | None:
    """The scan's objective magnification as the file states it (AppMag, objective power), if it does."""
    props = slide_properties(properties)
    for key in MAGNIFICATION_KEYS:
        try:
            value = float(props.get(key, ""))
        except ValueError:
            continue
        if math.isfinite(value) and value > 0:
            return value
    return None


@dataclass(frozen=True)
class SlideInfo:
    """What a slide's header says: size, pyramid, resolution and where it came from."""

    path: Path
    backend: str
    width: int
    height: int
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp: float
    mpp_source: str
    magnification: float | None


def slide_info(path: Path, mpp_override: float | None = None) -> SlideInfo:
    """The header of ``path`` (no pixels decoded)."""
    slide = open_slide(path)
    try:
        mpp, source = slide_mpp(slide.properties, str(path), mpp_override)
        width, height = (int(v) for v in slide.dimensions)
        return SlideInfo(
            path=Path(path),
            backend=backend(slide),
            width=width,
            height=height,
            level_dimensions=tuple((int(w), int(h)) for w, h in slide.level_dimensions),
            level_downsamples=tuple(float(d) for d in slide.level_downsamples),
            mpp=mpp,
            mpp_source=source,
            magnification=slide_magnification(slide.properties),
        )
    finally:
        slide.close()


PROBE = 64
"""Side (px) of the regions :func:`check_slide` decodes."""


class _TiffDamage(logging.Handler):
    """Collects what tifffile (tiffslide's parser) logs as errors: it reports a broken IFD chain (a truncated file)
    by logging and reading on, which would otherwise pass for a slide with fewer levels."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def check_slide(path: Path, mpp_override: float | None = None) -> str | None:
    """Why ``path`` is no usable slide, or None, without decoding it whole: it opens the file, resolves the mpp and
    decodes the last region of level 0 (a truncated file fails there, its tiles stored last) and a corner of the
    coarsest level; a TIFF whose structure tifffile finds broken is refused too. A one-level TIFF or picture that
    tiffslide opens is a usable slide when it has an mpp (or an override): small scans and crops exist. Never
    raises for a bad file; the reason names it."""
    damage = _TiffDamage()
    tifffile_log = logging.getLogger("tifffile")
    tifffile_log.addHandler(damage)
    try:
        return _check_slide(Path(path), mpp_override, damage)
    finally:
        tifffile_log.removeHandler(damage)


def _check_slide(path: Path, mpp_override: float | None, damage: _TiffDamage) -> str | None:
    try:
        slide = open_slide(path)
    except DataError as exc:
        return str(exc)
    try:
        slide_mpp(slide.properties, str(path), mpp_override)
        width, height = (int(v) for v in slide.dimensions)
        if width < 1 or height < 1:
            return f"{path}: the slide has no pixels ({width} x {height})"
        side = min(PROBE, width, height)
        slide.read_region((width - side, height - side), 0, (side, side))
        last = slide.level_count - 1
        level_w, level_h = slide.level_dimensions[last]
        slide.read_region((0, 0), last, (min(PROBE, level_w), min(PROBE, level_h)))
    except DataError as exc:
        return str(exc)
    except Exception as exc:  # noqa: BLE001 - a decoder failure on a user file is a reason, not a crash
        return f"{path}: unreadable slide ({type(exc).__name__}: {exc})"
    finally:
        slide.close()
    if damage.messages:
        return f"{path}: damaged or truncated TIFF ({damage.messages[0]})"
    return None
