"""The toy2d domain plug-in: 2D grayscale PNGs with short reports, living only in the tests.

It proves the plug-in boundary: everything domain-specific (reading PNGs, the demo data, the vocabulary) is
here, registered at run time (``conftest.py``), and the core runs it end to end without knowing its name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pydantic import ValidationError
from toy2d.config import Toy2DPreprocessConfig
from toy2d.data import write_toy2d

from domainclip.config.schema import DataConfig, Recipe
from domainclip.data.augment import SpatialAugment
from domainclip.data.cache import demo_folder
from domainclip.data.manifest import manifest_layout, read_manifest
from domainclip.data.text_sampling import RandomTextSampler
from domainclip.errors import DataError, RecipeError
from domainclip.labels import Findings
from domainclip.protocols import Augmentation, Layout, TextSampler
from domainclip.records import Record
from domainclip.reports.findings import recipe_findings

DEMO_VERSION = 1  # names the default demo folder; bump when write_toy2d's output changes


def _unreadable(path: Path, exc: Exception) -> str:
    return f"{path}: unreadable PNG ({type(exc).__name__}: {exc})"


def _decode(path: Path) -> Image.Image:
    """The image at ``path``, fully decoded (a truncated or corrupt file raises ``DataError`` naming it)."""
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("L")
    except Exception as exc:  # any failure to decode a user file is a reason, not a crash
        raise DataError(_unreadable(path, exc)) from exc


class Toy2DPreprocessor:
    """``path -> Tensor (channels, H, W)`` float32: grayscale, resized to ``size``, [0, 1], then normalised."""

    def __init__(self, config: Toy2DPreprocessConfig | Mapping[str, Any]) -> None:
        if not isinstance(config, Toy2DPreprocessConfig):
            try:
                config = Toy2DPreprocessConfig.model_validate(dict(config))
            except ValidationError as exc:
                raise RecipeError(f"preprocess: invalid toy2d preprocessing config: {exc}") from None
        if config.normalize is not None and not config.normalize[1] > 0:
            raise RecipeError(f"preprocess.normalize: std {config.normalize[1]} must be positive")
        self.config: dict[str, Any] = config.model_dump(mode="json")

    def __call__(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        return self.transform(_decode(Path(path)))

    def checked(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        """``__call__``: decoding the whole file is the check (what ``Toy2DDomain.check_image`` verifies)."""
        return self(path, image_meta)

    def transform(self, image: Image.Image) -> torch.Tensor:
        height, width = self.config["size"]
        pixels = np.asarray(image.resize((width, height), Image.Resampling.BILINEAR), dtype=np.float32) / 255.0
        if self.config["normalize"] is not None:
            mean, std = self.config["normalize"]
            pixels = (pixels - mean) / std
        tensor = torch.from_numpy(np.ascontiguousarray(pixels))[None]
        return tensor.repeat(self.config["channels"], 1, 1).contiguous()

    def __repr__(self) -> str:
        return f"Toy2DPreprocessor({self.config})"


class Toy2DDomain:
    """Tiny 2D grayscale radiographs (PNG) paired with one-line-per-finding reports."""

    name = "toy2d"
    stages = ("mae", "align")
    check_fills_cache = False  # the check only opens and verifies each file

    def input_shape(self, preprocess: Toy2DPreprocessConfig) -> tuple[int, tuple[int, ...]]:
        return preprocess.channels, tuple(preprocess.size)

    def channel_names(self, preprocess: Toy2DPreprocessConfig) -> None:
        return None

    def fit_preprocess(self, preprocess: Toy2DPreprocessConfig, records: Sequence[Record]) -> Toy2DPreprocessConfig:
        return preprocess

    def build_preprocessor(self, config: Toy2DPreprocessConfig | Mapping[str, Any]) -> Toy2DPreprocessor:
        return Toy2DPreprocessor(config)

    def layouts(self) -> dict[str, Layout]:
        return {"manifest": manifest_layout, "demo": _demo_layout}

    def write_demo(self, out: Path, n: int, seed: int) -> Path:
        return write_toy2d(out, n, seed)

    def default_vocabulary(self) -> Path:
        return Path(__file__).with_name("vocabulary.yaml")

    def discover_images(self, folder: Path) -> list[Path]:
        return sorted(p for p in Path(folder).rglob("*.png") if p.is_file())

    def check_image(
        self, path: Path, image_meta: Mapping[str, Any] | None = None, preprocess: Any = None
    ) -> str | None:
        """Why ``path`` is no usable PNG (not an image, corrupt chunks, truncated), or None."""
        try:
            with Image.open(path) as image:
                image.verify()
        except Exception as exc:  # noqa: BLE001 - any failure to open a user file is a reason, not a crash
            return _unreadable(Path(path), exc)
        return None

    def findings(self, recipe: Recipe, records: Sequence[Record]) -> Findings:
        return recipe_findings(recipe, self.default_vocabulary(), records)

    def text_sampler(self, recipe: Recipe, records: Sequence[Record], findings: Findings) -> TextSampler:
        return RandomTextSampler(records)

    def augmentation(self, recipe: Recipe) -> Augmentation | None:
        return SpatialAugment.from_config(recipe.augment)

    def stage_dataset(self, stage: str, records: Sequence[Record], images: Any, recipe: Any) -> Any:
        return images  # both stages train on the preprocessed images


def _demo_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    folder = cfg.demo.dir or demo_folder(cfg.cache_dir, "toy2d", DEMO_VERSION, cfg.demo.n, cfg.demo.seed)
    manifest = Path(folder) / "manifest.csv"  # written last by write_toy2d: present means complete
    if not manifest.is_file():
        write_toy2d(Path(folder), cfg.demo.n, cfg.demo.seed)
    return read_manifest(manifest, seed=cfg.demo.seed), []
