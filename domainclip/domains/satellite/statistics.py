"""Per-band normalisation statistics of a training split, with nodata kept out.

Computed once on the training images and stored in the model directory's preprocessing config, so inference
normalises with exactly what training used (torchgeo users keep these next to pretrained weights by hand). Sums are
streamed in float64 one image at a time, so memory does not grow with the split. With ``preprocess.gsd`` set, the
statistics are those of the georeferenced images resampled to it, the pixels the preprocessor normalises.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from domainclip.domains.satellite.gsd import resample_to_gsd
from domainclip.domains.satellite.readers import read_raster
from domainclip.errors import DataError


def band_statistics(
    paths: Iterable[Path],
    bands: Sequence[str],
    default_names: Sequence[str] | None = None,
    gsd: float | None = None,
) -> dict[str, tuple[float, float]]:
    """``{band: (mean, std)}`` over the valid pixels of every image in ``paths``; an image with no valid pixel, or
    a band that is constant over the split (std 0: it cannot be normalised), is an error naming it."""
    count = 0
    sums = np.zeros(len(bands))
    squares = np.zeros(len(bands))
    for path in paths:
        raster = read_raster(Path(path), bands, default_names)
        if gsd is not None and raster.georeferenced:
            raster = resample_to_gsd(raster, gsd, Path(path))
        values = raster.pixels[:, raster.valid].astype(np.float64)  # (C, valid pixels)
        count += values.shape[1]
        sums += values.sum(axis=1)
        squares += (values**2).sum(axis=1)
    if count == 0:
        raise DataError("no training image to compute band statistics from")
    mean = sums / count
    std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
    flat = [b for b, s in zip(bands, std) if not s > 0]
    if flat:
        raise DataError(f"band(s) {', '.join(flat)} are constant over the training images; drop them from data.bands")
    return {b: (float(m), float(s)) for b, m, s in zip(bands, mean, std)}
