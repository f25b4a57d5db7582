"""The recipe sections the CT domain owns (light: pydantic only, imported when a CT recipe is validated)."""

from __future__ import annotations

from pydantic import Field

from domainclip.config.schema import Strict
from domainclip.data.augment import SpatialAugmentConfig
from domainclip.reports.sampling import ReportSamplingConfig


class CTPreprocessConfig(Strict):
    spacing: tuple[float, float, float] | None = Field(None, description="contract: CT target spacing (mm), RAS x,y,z")
    size: tuple[int, int, int] | None = Field(None, description="contract: CT crop/pad size (voxels) x,y,z")
    hu_window: tuple[float, float] = Field((-1000.0, 1000.0), description="HU clip range, then scaled to [0, 1]")
    normalize: tuple[float, float] | None = Field(
        (0.2, 0.25),
        description="(mean, std) subtracted from / divided into the windowed [0, 1] values last, so the encoder "
        "sees roughly zero-mean unit-variance input (null: keep [0, 1]); the default suits torso CT in the "
        "default window",
    )
    orientation: str = "RAS"


SECTIONS = {
    "preprocess": CTPreprocessConfig,
    "text_sampling": ReportSamplingConfig,
    "augment": SpatialAugmentConfig,
}
