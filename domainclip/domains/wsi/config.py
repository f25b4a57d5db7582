"""The recipe sections the WSI domain owns (light: pydantic only, imported when a recipe is validated)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from domainclip.config.schema import Strict
from domainclip.reports.sampling import ReportSamplingConfig


class TissueConfig(Strict):
    """CLAM-style tissue detection on a low-resolution image of the whole slide."""

    mpp: float = Field(
        8.0,
        gt=0,
        description="microns per pixel the detection runs at: read from the pyramid level just finer than it and "
        "resized, so the settings below mean the same on a 20x and a 40x scan; coarse is fast and enough to find "
        "tissue (level 0 is never read whole)",
    )
    threshold: int | Literal["otsu"] = Field(
        8,
        description="HSV saturation (0-255) above which a pixel is tissue: CLAM's 8 by default, just above glass, so "
        "pale tissue (mucin pools, necrosis, fat) stays tissue; 'otsu' picks it per slide from the histogram (with "
        "a small floor, so a blank slide does not split glass noise into tissue), which on H&E tends to put those "
        "pale regions with the glass",
    )
    median_blur: int = Field(
        7,
        ge=1,
        description="odd kernel (px at the detection mpp) of the median blur on saturation before thresholding: "
        "removes dust and nuclei-sized speckle and smooths the edge; 1: off",
    )
    close: int = Field(
        4,
        ge=0,
        description="square kernel (px at the detection mpp) of the morphological close after thresholding: "
        "bridges small gaps so loose tissue stays one region; 0: off",
    )
    min_area_mm2: float = Field(
        0.05,
        ge=0,
        description="tissue regions smaller than this (mm², holes subtracted) are dropped as debris or dirt",
    )
    min_hole_area_mm2: float = Field(
        0.01, ge=0, description="holes smaller than this (mm²) count as tissue, so tiles are not lost to tiny gaps"
    )
    max_holes: int = Field(
        8, ge=0, description="at most this many holes (the largest) are kept per tissue region; 0: holes are tissue"
    )
    pen_marks: bool = Field(
        True,
        description="reject pathologists' marker ink before thresholding: blue and green hues (H&E is pink to "
        "purple, never green, rarely pure blue) and near-black unsaturated pixels; ink is saturated and would "
        "otherwise be found as tissue",
    )

    @field_validator("threshold")
    @classmethod
    def _threshold_in_range(cls, value: int | str) -> int | str:
        if isinstance(value, int) and not 0 <= value <= 255:
            raise ValueError(f"threshold is a saturation in 0..255 or 'otsu', got {value}")
        return value

    @field_validator("median_blur")
    @classmethod
    def _odd_blur(cls, value: int) -> int:
        if value % 2 == 0:
            raise ValueError(f"median_blur must be odd (a centred kernel), got {value}")
        return value


class WSIPreprocessConfig(Strict):
    """How slides become tiles: the tissue, the resolution, the tile grid."""

    mpp: float = Field(
        0.5,
        gt=0,
        description="contract: microns per pixel of the tiles (0.5 = 20x, 0.25 = 40x; magnification = 10 / mpp): "
        "read at the best pyramid level and resized, so slides scanned at different resolutions give tiles of "
        "the same physical size",
    )
    tile_size: int = Field(256, ge=8, description="contract: tile width and height in pixels at mpp")
    overlap: int = Field(
        0, ge=0, description="pixels (at mpp) that neighbouring tiles share; the grid stride is tile_size - overlap"
    )
    min_tissue: float = Field(
        0.5,
        ge=0,
        le=1,
        description="fraction of a tile's area that must lie inside the detected tissue (holes excluded) for the "
        "tile to be kept; 0 keeps every tile of the slide",
    )
    max_tiles: int | None = Field(
        None,
        ge=1,
        description="at most this many tiles per slide, an even seeded subsample over the tissue (bounds the "
        "cost of huge slides); null: all",
    )
    normalize: tuple[tuple[float, float, float], tuple[float, float, float]] = Field(
        ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
        description="(mean, std) per RGB channel subtracted from / divided into tiles scaled to [0, 1]: ImageNet's, "
        "which timm backbones (and TRIDENT's encoders) expect, so a local pretrained tile encoder sees what it "
        "was trained on; an MAE-trained one learns either",
    )
    tissue: TissueConfig = TissueConfig()

    @model_validator(mode="after")
    def _overlap_below_tile(self) -> WSIPreprocessConfig:
        if self.overlap >= self.tile_size:
            raise ValueError(f"overlap ({self.overlap}) must be smaller than tile_size ({self.tile_size})")
        return self


def as_preprocess_config(value: WSIPreprocessConfig | Mapping[str, Any] | None) -> WSIPreprocessConfig:
    """The section itself, or one rebuilt from a model directory's saved config (a dict); None: the defaults."""
    if isinstance(value, WSIPreprocessConfig):
        return value
    return WSIPreprocessConfig(**dict(value or {}))


SECTIONS = {"preprocess": WSIPreprocessConfig, "text_sampling": ReportSamplingConfig}
