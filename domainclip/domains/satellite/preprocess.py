"""``path -> (C, H, W)`` float32: the named bands, normalised per band, brought to ``size``, nodata as NaN.

With ``gsd`` null an image is resized to ``size``. With ``gsd`` set a georeferenced image is first resampled to that
ground sampling distance (:mod:`domainclip.domains.satellite.gsd`) and then centre-cropped, or padded with nodata, to
``size``: resizing it again would undo the GSD. An image without georeference is resized as with ``gsd`` null (the
check warns about it: :meth:`SatelliteDomain.check_image`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from domainclip.domains.satellite.config import SatellitePreprocessConfig, as_preprocess_config
from domainclip.domains.satellite.gsd import resample_to_gsd
from domainclip.domains.satellite.readers import Raster, read_raster
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
        self.gsd = cfg.gsd
        self.config: dict[str, Any] = cfg.model_dump(mode="json")
        if cfg.gsd is None:  # configs (model directories, cache keys) from before the field existed stay unchanged
            del self.config["gsd"]

    def __call__(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        names = (image_meta or {}).get(BAND_NAMES_META) or self.default_names
        raster = read_raster(Path(path), self.bands, names)
        if self.gsd is not None and raster.georeferenced:
            return self._cropped(resample_to_gsd(raster, self.gsd, Path(path)))
        return self._resized(raster)

    def _resized(self, raster: Raster) -> torch.Tensor:
        valid = torch.from_numpy(raster.valid.astype(np.float32))[None, None]
        pixels = torch.from_numpy(np.where(raster.valid, (raster.pixels - self.mean) / self.std, 0.0))[None]
        pixels = pixels.float()
        if tuple(pixels.shape[-2:]) != self.size:
            pixels = _resize(pixels, self.size)
            valid = _resize(valid, self.size)
            pixels = pixels / valid.clamp_min(1e-6)
        return pixels[0].masked_fill(valid[0] < 0.5, float("nan"))

    def _cropped(self, raster: Raster) -> torch.Tensor:
        pixels = _centre_fit(raster.pixels, self.size, 0.0)
        valid = _centre_fit(raster.valid, self.size, False)
        normalised = np.where(valid, (pixels - self.mean) / self.std, np.nan).astype(np.float32)
        return torch.from_numpy(normalised)

    def checked(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        return self(path, image_meta)


def _resize(image: torch.Tensor, size: tuple[int, ...]) -> torch.Tensor:
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def _centre_fit(array: np.ndarray, size: tuple[int, ...], fill: float | bool) -> np.ndarray:
    """The centre ``size`` of ``array``'s last two axes: cropped where it is larger, padded with ``fill`` (nodata)
    where it is smaller, so the ground sampling distance is kept."""
    for axis, target in zip((-2, -1), size):
        length = array.shape[axis]
        if length > target:
            start = (length - target) // 2
            array = np.take(array, range(start, start + target), axis=axis)
        elif length < target:
            before = (target - length) // 2
            widths = [(0, 0)] * array.ndim
            widths[axis] = (before, target - length - before)
            array = np.pad(array, widths, constant_values=fill)
    return array
