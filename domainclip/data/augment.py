"""Random spatial augmentation of preprocessed images for the alignment stage (2D or 3D, any channels)."""

from __future__ import annotations

import torch
from pydantic import Field

from domainclip.config.schema import Strict


class SpatialAugmentConfig(Strict):
    flip: bool = Field(
        False, description="flip images along their first spatial axis (left-right in RAS) half the time"
    )
    max_shift: int = Field(0, ge=0, description="roll images by up to this many pixels / voxels along every axis")


class SpatialAugment:
    """Flip and shift ``(C, *S)`` images. Why: with a few hundred studies a ViT otherwise memorises them.

    Randomness comes from torch's global RNG, which the engine seeds and checkpoints.
    """

    def __init__(self, config: SpatialAugmentConfig) -> None:
        self.flip = config.flip
        self.max_shift = config.max_shift

    @classmethod
    def from_config(cls, config: SpatialAugmentConfig) -> SpatialAugment | None:
        """The augmentation ``config`` asks for, or None when it asks for none."""
        return cls(config) if config.flip or config.max_shift else None

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        if self.flip and torch.rand(()) < 0.5:
            image = image.flip(1)
        if self.max_shift:
            shifts = torch.randint(-self.max_shift, self.max_shift + 1, (image.ndim - 1,)).tolist()
            image = image.roll(shifts, dims=tuple(range(1, image.ndim)))
        return image
