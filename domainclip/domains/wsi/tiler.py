"""Stage 1's preprocessing of a slide: exact mpp, tissue, the tile grid at the target mpp.

``SlideTiler(path) -> (N, 2)`` level-0 top-left tile coordinates (float32, exact for slides below 2**24 pixels a
side), which the core caches like any preprocessed image, so a warm run neither opens a thumbnail nor detects
tissue again. The tile pixels are read later, on demand (:mod:`domainclip.domains.wsi.tiles`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domainclip.domains.wsi.config import WSIPreprocessConfig, as_preprocess_config
from domainclip.domains.wsi.layouts import MPP_META
from domainclip.domains.wsi.tiling import TileGrid
from domainclip.errors import DataError


def mpp_override(image_meta: Mapping[str, Any] | None) -> float | None:
    """The level-0 mpp a dataset gives for a slide (``mpp.csv``), which wins over the file's metadata."""
    value = (image_meta or {}).get(MPP_META)
    return None if value is None else float(value)


class SlideTiler:
    """Deterministic for a given config (the tiling and tissue settings, saved in the model directory)."""

    def __init__(self, config: WSIPreprocessConfig | Mapping[str, Any]) -> None:
        self.cfg = as_preprocess_config(config)
        self.config: dict[str, Any] = self.cfg.model_dump(mode="json")

    def tiling(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> tuple[TileGrid, Any]:
        """The slide's tile grid and its tissue (for GeoJSON contours and heatmaps); no tissue is an error."""
        from domainclip.domains.wsi.slides import open_slide, slide_mpp
        from domainclip.domains.wsi.tiling import tile_grid
        from domainclip.domains.wsi.tissue import read_tissue

        slide = open_slide(Path(path))
        try:
            mpp, _ = slide_mpp(slide.properties, str(path), mpp_override(image_meta))
            tissue = read_tissue(slide, mpp, self.cfg.tissue)
            if not tissue.contours:
                raise DataError(f"{path}: no tissue found (preprocess.tissue: threshold {self.cfg.tissue.threshold!r})")
            grid = tile_grid(slide, mpp, self.cfg, tissue)
        finally:
            slide.close()
        if len(grid.coords) == 0:
            raise DataError(
                f"{path}: tissue found, but no tile of {self.cfg.tile_size} px at {self.cfg.mpp} mpp is at least "
                f"{self.cfg.min_tissue:.0%} tissue (preprocess.min_tissue)"
            )
        return grid, tissue

    def __call__(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        """The slide's tile coordinates; a feature file's (another tool tiled the slide) are the ones it holds."""
        from domainclip.domains.wsi.feature_files import is_feature_file, read_features

        if is_feature_file(path):
            return torch.from_numpy(read_features(Path(path)).coords.astype(np.float32))
        grid, _ = self.tiling(path, image_meta)
        return torch.from_numpy(grid.coords.astype(np.float32))

    def checked(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        """Rejects an unreadable or truncated slide, or one without mpp, before tiling it (nothing decoded whole)."""
        from domainclip.domains.wsi.feature_files import is_feature_file
        from domainclip.domains.wsi.slides import check_slide

        if is_feature_file(path):
            return self(path, image_meta)  # reading it checks it
        reason = check_slide(Path(path), mpp_override(image_meta))
        if reason is not None:
            raise DataError(reason)
        return self(path, image_meta)
