"""The recipe sections the satellite domain owns (light: pydantic only, imported when a recipe is validated)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from domainclip.config.schema import Strict
from domainclip.domains.satellite.captions import CaptionSamplingConfig


class SatellitePreprocessConfig(Strict):
    bands: list[str] | None = Field(
        None,
        description="bands to read, by name (file band descriptions, else file_bands, else the layout's order); "
        "null: every band of the first training image",
    )
    file_bands: list[str] | None = Field(
        None,
        description="names of the bands of files that carry no band descriptions, in file order (default: the "
        "layout's documented order; 13 bands: Sentinel-2 L1C B01..B12 with B8A and B10; 3: red, green, blue)",
    )
    size: tuple[int, int] = Field(
        (64, 64),
        description="contract: output height, width in pixels; with gsd null each image is resized to it, with gsd "
        "set it is the chip's extent at that GSD (size x gsd metres): larger images are centre-cropped, smaller "
        "ones padded with nodata",
    )
    gsd: float | None = Field(
        None,
        gt=0,
        description="ground sampling distance in metres per pixel that every georeferenced image is resampled to "
        "before the crop to size (average when an output pixel covers more ground, bilinear otherwise; nodata kept "
        "out); a geographic CRS (degrees) is measured in metres at the image centre; an image without georeference "
        "(RSICD's JPEGs) is a warning and is resized as with null; null: off",
    )
    band_stats: dict[str, tuple[float, float]] | None = Field(
        None,
        description="per-band (mean, std) used to normalise; computed on the training split (nodata pixels left "
        "out) when null and saved with the model, so inference reuses them verbatim",
    )
    stats_images: int = Field(
        2000, ge=1, description="at most this many training images (an even sample) for the band statistics"
    )


def as_preprocess_config(value: SatellitePreprocessConfig | Mapping[str, Any] | None) -> SatellitePreprocessConfig:
    """The section itself, or one rebuilt from a model directory's saved config (a dict); None: the defaults."""
    if isinstance(value, SatellitePreprocessConfig):
        return value
    return SatellitePreprocessConfig(**dict(value or {}))


SECTIONS = {"preprocess": SatellitePreprocessConfig, "text_sampling": CaptionSamplingConfig}
