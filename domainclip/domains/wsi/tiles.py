"""The tiles of many slides as one torch Dataset, read on demand: what MAE trains on and what extraction reads.

A slide is never loaded whole: each item reads one tile at the pyramid level its grid chose and resizes it to the
target mpp (:func:`~domainclip.domains.wsi.tiling.read_tile`). Slide handles are opened lazily in the process
that reads (each DataLoader worker opens its own; an OpenSlide handle must not cross a fork), so the dataset
pickles as paths and grids only.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from domainclip.domains.wsi.config import WSIPreprocessConfig
from domainclip.domains.wsi.tiling import TileGrid, read_tile
from domainclip.errors import DataError
from domainclip.progress import track
from domainclip.records import Record


@dataclass(frozen=True)
class SlideGrid:
    """One slide's tiles: which record it is (``index``), its file and its tile grid."""

    index: int
    path: Path
    grid: TileGrid


class SlideTiles(Dataset):
    """Item ``k`` -> ``{"image": (3, T, T) float32 normalised, "index": record index of its slide}``."""

    def __init__(self, slides: Sequence[SlideGrid], mean: Sequence[float], std: Sequence[float]) -> None:
        self.slides = list(slides)
        self.offsets = np.cumsum([0, *(len(s.grid.coords) for s in self.slides)]).tolist()
        # (x / 255 - mean) / std as one multiply and one subtract, in numpy: per tile, torch's per-op dispatch (and
        # its intra-op threads contending with the reader) cost more than reading the tile does
        std_np = np.asarray(std, dtype=np.float32).reshape(3, 1, 1)
        self.scale = 1.0 / (255.0 * std_np)
        self.offset = np.asarray(mean, dtype=np.float32).reshape(3, 1, 1) / std_np
        self._handles: dict[int, Any] = {}
        self._pid = os.getpid()

    def __len__(self) -> int:
        return self.offsets[-1]

    def locate(self, item: int) -> tuple[int, int]:
        """(position of the slide in ``slides``, tile number within it) of item ``item``."""
        position = bisect.bisect_right(self.offsets, item) - 1
        return position, item - self.offsets[position]

    def __getitem__(self, item: int) -> dict[str, Any]:
        position, tile = self.locate(item)
        slide = self.slides[position]
        try:
            pixels = read_tile(self._handle(position), slide.grid, tile)
        except Exception as exc:  # a decoder failure mid-epoch names the slide and the tile, not just the library
            raise DataError(f"{slide.path}: cannot read tile {tile} ({type(exc).__name__}: {exc})") from exc
        image = pixels.transpose(2, 0, 1).astype(np.float32)
        image *= self.scale
        image -= self.offset
        return {"image": torch.from_numpy(image), "index": slide.index}

    def _handle(self, position: int) -> Any:
        from domainclip.domains.wsi.slides import open_slide

        if os.getpid() != self._pid:  # a forked worker: its parent's handles are not its own
            self._handles, self._pid = {}, os.getpid()
        if position not in self._handles:
            self._handles[position] = open_slide(self.slides[position].path)
        return self._handles[position]

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_handles": {}}


def slide_tiles(records: Sequence[Record], slides: Dataset, cfg: WSIPreprocessConfig) -> SlideTiles:
    """Every tile of ``records``' slides, from ``slides``, the dataset of their cached tile coordinates (what
    :class:`~domainclip.domains.wsi.tiler.SlideTiler` gives, in the same order): only each slide's header is read
    here, for how its tiles are read (level, size), so no tissue is detected again."""
    from domainclip.domains.wsi.slides import open_slide, slide_mpp
    from domainclip.domains.wsi.tiler import mpp_override
    from domainclip.domains.wsi.tiling import grid_geometry

    grids = []
    for position, record in enumerate(track(records, "tiling slides")):
        item = slides[position]
        slide = open_slide(Path(record.image))
        try:
            mpp, _ = slide_mpp(slide.properties, str(record.image), mpp_override(record.image_meta))
            geometry = grid_geometry(slide, mpp, cfg)
        finally:
            slide.close()
        coords = item["image"].numpy().astype(np.int64)
        grids.append(SlideGrid(int(item["index"]), Path(record.image), replace(geometry, coords=coords)))
    return SlideTiles(grids, cfg.normalize[0], cfg.normalize[1])
