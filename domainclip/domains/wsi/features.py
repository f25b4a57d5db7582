"""Stage 2's preprocessing of a slide: its tiles through the frozen tile encoder -> a ``(D, N)`` feature bag.

The features are kept as TRIDENT h5 files, one per slide, in a store folder named by the tiling config and a
digest of the tile encoder's weights (:mod:`domainclip.domains.wsi.feature_files` lays it out as TRIDENT does):
a retrained stage 1 gets a new folder and never meets stale features, and a killed extraction resumes with the
slides whose file is missing or incomplete (a complete file is never rewritten; each is written to a temporary
file and renamed). The store is the cache: the core keeps no second copy (``caches_itself``).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from domainclip.data.cache import canonical_json, default_cache_root
from domainclip.domains.wsi.config import WSIPreprocessConfig
from domainclip.domains.wsi.tiler import SlideTiler
from domainclip.domains.wsi.tiles import SlideGrid, SlideTiles
from domainclip.errors import DataError
from domainclip.models.weights import weights_digest
from domainclip.protocols import ImageTower

log = logging.getLogger(__name__)

STORE_VERSION = 1  # bump when extraction changes the features of an unchanged config and encoder


def slide_name(path: Path) -> str:
    """A slide's name in the store: its file name without the extension (TRIDENT's naming)."""
    return Path(path).name.rsplit(".", 1)[0] if "." in Path(path).name else Path(path).name


def source_state(path: Path) -> str:
    """The slide file's path, size and mtime: a changed file is a different entry, never a stale one."""
    stat = Path(path).stat()
    return f"{Path(path).resolve()}|{stat.st_size}|{stat.st_mtime_ns}"


class SlideFeatures:
    """Slide file -> ``(D, N)`` float32 features of its tiles, extracted once per (config, encoder, file state)."""

    caches_itself = True

    def __init__(
        self,
        config: WSIPreprocessConfig | Mapping[str, Any],
        encoder: ImageTower,
        cache_dir: Path | None = None,
        batch_size: int = 64,
        num_workers: int = 0,
        job_dir: Path | None = None,
    ) -> None:
        """``job_dir``: write TRIDENT's folders there instead of into the cache (``domainclip wsi extract-features``);
        files found there are reused only when they are ours, complete and of the same slide file state."""
        self.tiler = SlideTiler(config)
        self.encoder = encoder.eval()
        self.batch_size = batch_size
        self.num_workers = num_workers
        # a folder name (features_<encoder>), so 'timm:vit_base' becomes 'timm-vit_base'
        self.encoder_name = re.sub(r"[^A-Za-z0-9._+-]", "-", f"{encoder.tower_type}-{weights_digest(encoder)[:12]}")
        self.config: dict[str, Any] = {
            **self.tiler.config,
            "tile_encoder": {"type": encoder.tower_type, "weights_sha256": weights_digest(encoder)},
        }
        key = hashlib.sha256(canonical_json({"config": self.config, "version": STORE_VERSION}).encode()).hexdigest()
        self.key = key  # on every file too: a job folder shared by several tilings never serves another's features
        self.store = Path(job_dir) if job_dir is not None else default_cache_root(cache_dir) / "wsi-features" / key[:16]
        self._warned_unnamed = False

    def paths(self, path: Path) -> Any:
        """Where slide ``path``'s files live in the store (TRIDENT's folder layout)."""
        from domainclip.domains.wsi.feature_files import trident_dirs

        cfg = self.tiler.cfg
        return trident_dirs(self.store, 10.0 / cfg.mpp, cfg.tile_size, cfg.overlap, self.encoder_name)

    def feature_file(self, path: Path) -> Path:
        return self.paths(path).features / f"{slide_name(path)}.h5"

    def __call__(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        from domainclip.domains.wsi.feature_files import features_complete, is_feature_file, read_features

        if is_feature_file(path):
            return self.given(Path(path))
        target = self.feature_file(path)
        state = source_state(path)
        if features_complete(target):
            stored = read_features(target)
            if stored.attrs.get("source") == state and stored.attrs.get("config_key") == self.key:
                return torch.from_numpy(np.ascontiguousarray(stored.features.T))
            log.warning(
                "%s: the slide or the settings changed since its features were extracted; extracting again", path
            )
        features = self.extract(Path(path), image_meta, target, state)
        return torch.from_numpy(np.ascontiguousarray(features.T))

    def checked(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        from domainclip.domains.wsi.feature_files import is_feature_file

        if not is_feature_file(path):
            self.tiler.checked(path, image_meta)  # rejects a bad slide before any tile is read
        return self(path, image_meta)

    def given(self, path: Path) -> torch.Tensor:
        """The bag of a feature file someone else extracted (``--features``: TRIDENT, CLAM or ``domainclip wsi
        extract-features``), after checking that it holds this encoder's features under these settings."""
        bag, unnamed = read_bag(path, self.encoder.hidden_size, self.encoder_name, self.key, not self._warned_unnamed)
        self._warned_unnamed |= unnamed
        return bag

    @torch.no_grad()
    def extract(self, path: Path, image_meta: Mapping[str, Any] | None, target: Path, state: str) -> np.ndarray:
        """Tile the slide, embed its tiles in batches (read by DataLoader workers), write the TRIDENT files."""
        from domainclip.domains.wsi.feature_files import write_coords, write_features
        from domainclip.domains.wsi.tissue import write_geojson

        grid, tissue = self.tiler.tiling(path, image_meta)
        cfg = self.tiler.cfg
        tiles = SlideTiles([SlideGrid(0, path, grid)], cfg.normalize[0], cfg.normalize[1])
        # its own generator: a DataLoader otherwise draws its workers' base seed from torch's global RNG, so a run
        # that extracts (a cache miss) would train its slide tower from another random state than one that reads
        # the same features from the store, and the two would not give the same model
        loader = DataLoader(
            tiles, batch_size=self.batch_size, num_workers=self.num_workers, generator=torch.Generator()
        )
        device = next(self.encoder.parameters()).device
        chunks = [self.encoder(batch["image"].to(device)).float().cpu() for batch in loader]
        features = torch.cat(chunks).numpy().astype(np.float32)
        if not np.isfinite(features).all():
            raise DataError(f"{path}: the tile encoder gave non-finite features (a diverged stage 1?)")
        dirs = self.paths(path)
        name = slide_name(path)
        write_coords(dirs.patches / f"{name}_patches.h5", grid, name)
        write_geojson(dirs.geojson_file(name), tissue, name)
        attrs = {
            "patch_size": cfg.tile_size,
            "patch_size_level0": grid.patch_size_level0,
            "level0_magnification": 10.0 / grid.mpp_level0,
            "target_magnification": 10.0 / cfg.mpp,
            "overlap": cfg.overlap,
            "level0_width": grid.level0_width,
            "level0_height": grid.level0_height,
            "name": name,
            "encoder": self.encoder_name,
            "source": state,
            "config_key": self.key,
        }
        write_features(target, grid.coords, features, attrs)
        return features


def read_bag(
    path: Path, width: int, encoder: str | None, key: str | None = None, warn: bool = True
) -> tuple[torch.Tensor, bool]:
    """The ``(D, N)`` bag of feature file ``path``, checked against what the slide tower was trained on, and whether
    the file names no encoder (logged when ``warn``: readers say it once).

    Why so strict: a slide tower fed features of another encoder, or of another tiling, still returns an embedding,
    only a meaningless one. A file that names its encoder (TRIDENT, ours) must name ``encoder`` (when known); ours
    also carry the tiling ``key``. A CLAM file names neither, so only its width ``width`` can be checked.
    """
    from domainclip.domains.wsi.feature_files import read_features

    stored = read_features(path)
    if len(stored) == 0:
        raise DataError(f"{path}: the feature file holds no tiles")
    if stored.features.shape[1] != width:
        raise DataError(f"{path}: features are {stored.features.shape[1]} wide; the slide tower takes {width}")
    named = stored.attrs.get("encoder")
    if named is not None and encoder is not None and named != encoder:
        raise DataError(
            f"{path}: features of encoder {named!r}, but this model's slide tower was trained on {encoder!r} "
            "features (write them with `domainclip wsi extract-features --model DIR`)"
        )
    stored_key = stored.attrs.get("config_key")
    if key is not None and stored_key is not None and stored_key != key:
        raise DataError(f"{path}: extracted with other tiling settings than this model's (config_key differs)")
    if named is None and warn:
        log.warning("%s: the feature file does not name its encoder; only its width (%d) was checked", path, width)
    return torch.from_numpy(np.ascontiguousarray(stored.features.T)), named is None


class FeatureFileBags:
    """Feature file -> its ``(D, N)`` bag: the preprocessing of a slide tower trained on features another tool
    extracted (TRIDENT, CLAM), which has no tile encoder to extract from slides with."""

    caches_itself = True  # the files are the store

    def __init__(self, width: int, encoder: str | None) -> None:
        self.width = int(width)
        self.encoder = encoder
        self.config: dict[str, Any] = {"feature_source": {"width": self.width, "encoder": encoder}}
        self._warned_unnamed = False

    def __call__(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        from domainclip.domains.wsi.feature_files import is_feature_file

        if not is_feature_file(path):
            raise DataError(
                f"{path}: this model was trained on feature files of encoder {self.encoder or '(unnamed)'} and has "
                "no tile encoder to extract them from a slide; pass those feature files (--features DIR)"
            )
        bag, unnamed = read_bag(Path(path), self.width, self.encoder, warn=not self._warned_unnamed)
        self._warned_unnamed |= unnamed
        return bag

    checked = __call__
