"""The recipe sections the toy2d test domain owns (light: pydantic and the core's augment config only)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from domainclip.config.schema import Strict
from domainclip.data.augment import SpatialAugmentConfig


class Toy2DPreprocessConfig(Strict):
    size: tuple[int, int] = Field((32, 32), description="(height, width) every image is resized to (bilinear)")
    channels: Literal[1, 3] = Field(1, description="1: grayscale; 3: the grayscale image repeated (RGB towers)")
    normalize: tuple[float, float] | None = Field(
        (0.5, 0.25), description="(mean, std) applied to the [0, 1] pixel values last (null: keep [0, 1])"
    )


SECTIONS = {"preprocess": Toy2DPreprocessConfig, "augment": SpatialAugmentConfig}
