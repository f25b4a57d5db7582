"""Small RGB pictures of images for a run report: what a person looks at, not what a model reads.

A domain's ``preview`` (:class:`~domainclip.protocols.PreviewingDomain`) builds on these: a percentile stretch to
uint8, three orthogonal mid-slices of a volume side by side, and a cap on the longest side.
"""

from __future__ import annotations

import numpy as np

PREVIEW_SIDE = 192
"""Longest side (px) of a preview: enough to recognise an image in a grid of five, small enough for the report."""


def stretch_to_uint8(array: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """``(H, W)`` or ``(H, W, C)`` -> uint8, each channel stretched from its ``low`` to its ``high`` percentile
    (NaN, i.e. no data, drawn black). Percentiles, not min / max: one hot pixel must not darken the rest."""
    image = np.asarray(array, dtype=np.float64)
    channels = image[..., None] if image.ndim == 2 else image
    out = np.zeros(channels.shape, dtype=np.uint8)
    for c in range(channels.shape[-1]):
        values = channels[..., c]
        finite = values[np.isfinite(values)]
        if finite.size == 0:
            continue
        lo, hi = np.percentile(finite, [low, high])
        scaled = (values - lo) / (hi - lo) if hi > lo else np.zeros_like(values)
        out[..., c] = np.round(255 * np.clip(np.nan_to_num(scaled, nan=0.0), 0.0, 1.0))
    return out[..., 0] if image.ndim == 2 else out


def as_rgb(image: np.ndarray) -> np.ndarray:
    """A uint8 grey ``(H, W)`` or ``(H, W, 1)`` image as ``(H, W, 3)``; RGB passes through."""
    image = np.asarray(image, dtype=np.uint8)
    if image.ndim == 2:
        image = image[..., None]
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]


def orthogonal_mid_slices(volume: np.ndarray, gap: int = 4) -> np.ndarray:
    """A ``(X, Y, Z)`` volume in RAS order -> its axial, coronal and sagittal mid-slices side by side (``(H, W)``,
    the volume's own values), each turned so that anterior / superior point up, padded to one height with the
    volume's minimum and separated by ``gap`` columns of it."""
    x, y, z = (s // 2 for s in volume.shape)
    slices = [np.rot90(volume[:, :, z]), np.rot90(volume[:, y, :]), np.rot90(volume[x, :, :])]
    height = max(s.shape[0] for s in slices)
    fill = float(np.nanmin(volume))
    padded = []
    for k, piece in enumerate(slices):
        rows = height - piece.shape[0]
        piece = np.pad(piece, ((rows // 2, rows - rows // 2), (0, 0)), constant_values=fill)
        padded.append(piece if k == 0 else np.pad(piece, ((0, 0), (gap, 0)), constant_values=fill))
    return np.concatenate(padded, axis=1)


def fit_within(rgb: np.ndarray, side: int = PREVIEW_SIDE) -> np.ndarray:
    """``rgb`` resized (aspect kept) so its longest side is ``side``; small images are enlarged with nearest
    neighbours (a 32 px chip stays a grid of visible pixels rather than a blur)."""
    from PIL import Image

    height, width = rgb.shape[:2]
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    resample = Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS
    return np.asarray(Image.fromarray(as_rgb(rgb)).resize(size, resample))


def preprocessed_image(domain, record, recipe) -> np.ndarray:
    """``record``'s image as the model saw it, float32 ``(C, *S)``: from the recipe's cache when a run already
    preprocessed it (a report's previews then cost a read, not a resampling)."""
    from domainclip.data.dataset import image_dataset

    preprocessor = domain.build_preprocessor(recipe.preprocess)
    return image_dataset([record], preprocessor, recipe.data.cache_dir).load(0).numpy()
