"""``path -> (C, H, W)`` float32: the named bands, normalised per band, resized to ``size``, nodata as NaN."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from domainclip.domains.satellite.config import SatellitePreprocessConfig, as_preprocess_config
from domainclip.domains.satellite.readers import read_raster
from domainclip.errors import RecipeError

BAND_NAMES_META = "band_names"  # Record.image_meta key: a layout's documented band order for its files


class SatellitePreprocessor:
    """Deterministic for a given config; normalisation statistics are part of the config (``band_stats``).

    Nodata pixels are NaN in every band (the core fills them with 0, the band mean, and keeps them out of the MAE
    loss: :mod:`domainclip.data.nodata`). Resizing is bilinear with antialiasing over the valid pixels only
    (a normalised convolution: pixels and validity are resized together and divided), so a nodata border does not
    darken its neighbours; an output pixel less than half covered by data is nodata.
    """

    def __init__(
        self, config: SatellitePreprocessConfig | Mapping[str, Any], default_names: Sequence[str] | None = None
    ):
        cfg = as_preprocess_config(config)
        if cfg.band_stats is None:
            raise RecipeError("preprocess.band_stats: not computed yet (the training split's statistics come first)")
        self.bands = list(cfg.bands) if cfg.bands is not None else list(cfg.band_stats)
        missing = [b for b in self.bands if b not in cfg.band_stats]
        if missing:
            raise RecipeError(f"preprocess.band_stats: no statistics for band(s) {', '.join(missing)}")
        stats = np.array([cfg.band_stats[b] for b in self.bands], dtype=np.float32)
        if not (stats[:, 1] > 0).all():
            raise RecipeError("preprocess.band_stats: every std must be positive")
        self.mean, self.std = stats[:, 0, None, None], stats[:, 1, None, None]
        self.size = tuple(cfg.size)
        names = default_names if default_names is not None else cfg.file_bands
        self.default_names = list(names) if names is not None else None
        self.config: dict[str, Any] = cfg.model_dump(mode="json")

    def __call__(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        names = (image_meta or {}).get(BAND_NAMES_META) or self.default_names
        raster = read_raster(Path(path), self.bands, names)
        valid = torch.from_numpy(raster.valid.astype(np.float32))[None, None]
        pixels = torch.from_numpy(np.where(raster.valid, (raster.pixels - self.mean) / self.std, 0.0))[None]
        pixels = pixels.float()
        if tuple(pixels.shape[-2:]) != self.size:
            pixels = _resize(pixels, self.size)
            valid = _resize(valid, self.size)
            pixels = pixels / valid.clamp_min(1e-6)
        return pixels[0].masked_fill(valid[0] < 0.5, float("nan"))

    def checked(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        return self(path, image_meta)


def _resize(image: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)
