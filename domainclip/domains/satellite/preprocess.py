"""``path -> (C, H, W)`` float32: the named bands, normalised per band, nodata set to 0, resized to ``size``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from domainclip.domains.satellite.config import SatellitePreprocessConfig
from domainclip.domains.satellite.readers import read_raster
from domainclip.errors import RecipeError


class SatellitePreprocessor:
    """Deterministic for a given config; normalisation statistics are part of the config (``band_stats``).

    Nodata pixels become 0 after normalisation, the band mean, so they carry no signal into the encoder. Resizing is
    bilinear with antialiasing, so downsampling a large chip averages rather than skips pixels.
    """

    def __init__(
        self, config: SatellitePreprocessConfig | Mapping[str, Any], default_names: Sequence[str] | None = None
    ):
        cfg = config if isinstance(config, SatellitePreprocessConfig) else SatellitePreprocessConfig(**dict(config))
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
        self.default_names = list(default_names) if default_names is not None else None
        self.config: dict[str, Any] = cfg.model_dump(mode="json")

    def __call__(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        raster = read_raster(Path(path), self.bands, self.default_names)
        pixels = np.where(raster.valid, (raster.pixels - self.mean) / self.std, 0.0).astype(np.float32)
        image = torch.from_numpy(pixels)[None]
        if tuple(image.shape[-2:]) != self.size:
            image = F.interpolate(image, size=self.size, mode="bilinear", antialias=True, align_corners=False)
        return image[0]

    def checked(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        return self(path, image_meta)
