"""CT preprocessing: HU volume -> the float32 tensor the encoder sees, with MONAI transforms.

Order: orientation (RAS by default) -> HU window clipped and scaled to [0, 1] -> resampling
to ``spacing`` -> centre crop / pad to ``size`` -> ``(x - mean) / std`` (``normalize``).
Scaling before resampling keeps the out-of-window values (e.g. -3024 HU outside a scanner's
field of view) from bleeding into body voxels, and padding with 0 before the normalisation
equals air at the window minimum.

Why the final normalisation: with [0, 1] input, the across-study variation of the ViT's
patch tokens is small next to the sin-cos position embedding, so pooled features of different
studies start nearly identical and even a supervised ViT learns little;
``benchmarks/ct_supervised_ceiling.py`` prints both variants side by side (figures in
``docs/benchmarks.md``). It is part of the saved config, so it is applied exactly once, at
training and at serving alike.

The config (``spacing``, ``size``, ``hu_window``, ``normalize``, ``orientation``) is JSON-serialisable,
saved in the model directory and passed back to :class:`CTPreprocessor` at inference, so
training and serving run the same transforms on the same numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    NormalizeIntensity,
    Orientation,
    ResizeWithPadOrCrop,
    ScaleIntensityRange,
    Spacing,
)
from monai.utils import MetaKeys, SpaceKeys
from pydantic import ValidationError

from domainclip.domains.ct.config import CTPreprocessConfig
from domainclip.domains.ct.readers import CTVolume, read_ct, volume_problem
from domainclip.errors import DataError, RecipeError


def preprocess_config(config: CTPreprocessConfig | Mapping[str, Any]) -> dict[str, Any]:
    """Validate and canonicalise a preprocessing config into plain JSON types."""
    if not isinstance(config, CTPreprocessConfig):
        try:
            config = CTPreprocessConfig.model_validate(dict(config))
        except ValidationError as exc:
            raise RecipeError(f"preprocess: invalid CT preprocessing config: {exc}") from None
    return config.model_dump(mode="json")


class CTPreprocessor:
    """``path -> Tensor (1, X, Y, Z)`` float32 (windowed, then normalised); deterministic for a given config."""

    def __init__(self, config: CTPreprocessConfig | Mapping[str, Any]) -> None:
        self.config: dict[str, Any] = preprocess_config(config)
        low, high = self.config["hu_window"]
        if not low < high:
            raise RecipeError(f"preprocess.hu_window: lower bound {low} must be below upper bound {high}")
        steps: list = [
            Orientation(axcodes=self.config["orientation"], labels=None),  # labels from meta "space" (RAS)
            ScaleIntensityRange(a_min=low, a_max=high, b_min=0.0, b_max=1.0, clip=True, dtype=np.float32),
        ]
        if self.config["spacing"] is not None:
            steps.append(
                Spacing(pixdim=self.config["spacing"], mode="bilinear", padding_mode="border", dtype=np.float32)
            )
        if self.config["size"] is not None:
            steps.append(ResizeWithPadOrCrop(spatial_size=self.config["size"], mode="constant", value=0.0))
        if self.config["normalize"] is not None:
            mean, std = self.config["normalize"]
            if not std > 0:
                raise RecipeError(f"preprocess.normalize: std {std} must be positive")
            steps.append(NormalizeIntensity(subtrahend=mean, divisor=std, dtype=np.float32))
        self.transforms = Compose(steps)

    def __call__(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        """Read ``path`` (HU, see :mod:`.readers`; ``image_meta`` as there) and transform it."""
        return self.transform_volume(read_ct(Path(path), image_meta))

    def checked(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        """Like ``__call__``, but first rejects what ``CTDomain.check_image`` would (NaN voxels), with one
        decode for both: on CT-RATE-sized volumes decoding is most of the cost of a first epoch."""
        volume = read_ct(Path(path), image_meta)
        if (problem := volume_problem(volume, Path(path))) is not None:
            raise DataError(problem)
        return self.transform_volume(volume)

    def transform_volume(self, volume: CTVolume) -> torch.Tensor:
        image = MetaTensor(
            torch.from_numpy(volume.array)[None],
            affine=torch.as_tensor(volume.affine),
            meta={MetaKeys.SPACE: SpaceKeys.RAS},
        )
        out = self.transforms(image)
        return out.as_tensor().to(torch.float32).contiguous()

    def __repr__(self) -> str:
        return f"CTPreprocessor({self.config})"
