"""The CT domain plug-in: readers, preprocessing, layouts, demo data, the findings vocabulary, report sampling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from domainclip.config.schema import DataConfig, Recipe
from domainclip.data.augment import SpatialAugment
from domainclip.data.cache import demo_folder
from domainclip.data.manifest import manifest_layout, read_manifest
from domainclip.data.preview import PREVIEW_SIDE
from domainclip.domains.ct.config import CTPreprocessConfig
from domainclip.domains.ct.demo import DEMO_VERSION, ensure_demo, write_demo
from domainclip.domains.ct.layouts import ct_rate_records
from domainclip.domains.ct.preprocess import CTPreprocessor
from domainclip.domains.ct.readers import discover_ct_images, read_ct, volume_problem
from domainclip.errors import DomainClipError, RecipeError
from domainclip.labels import Findings
from domainclip.protocols import Augmentation, Layout, TextSampler
from domainclip.records import Record
from domainclip.reports.findings import recipe_findings, recipe_vocabulary
from domainclip.reports.sampling import ReportSentenceSampler


class CTDomain:
    """3D CT volumes in Hounsfield units paired with radiology reports."""

    name = "ct"
    stages = ("mae", "align")
    check_fills_cache = True  # decoding a volume is the check; preprocess it in the same pass

    def input_shape(self, preprocess: CTPreprocessConfig) -> tuple[int, tuple[int, ...]]:
        if preprocess.size is None:
            raise RecipeError("preprocess.size: required to build the image encoder (e.g. [64, 64, 64])")
        return 1, tuple(preprocess.size)

    def channel_names(self, preprocess: CTPreprocessConfig) -> None:
        return None  # one unnamed channel of Hounsfield units

    def fit_preprocess(self, preprocess: CTPreprocessConfig, records: Sequence[Record]) -> CTPreprocessConfig:
        return preprocess  # fixed spacing, size and HU window: nothing is fitted on the data

    def build_preprocessor(self, config: CTPreprocessConfig | Mapping[str, Any]) -> CTPreprocessor:
        return CTPreprocessor(config)

    def layouts(self) -> dict[str, Layout]:
        return {"manifest": manifest_layout, "ct-rate": _ct_rate_layout, "demo": _demo_layout}

    def write_demo(self, out: Path, n: int, seed: int) -> Path:
        return write_demo(out, n, seed)

    def default_vocabulary(self) -> Path:
        return Path(__file__).with_name("vocabulary.yaml")

    def discover_images(self, folder: Path) -> list[Path]:
        return discover_ct_images(folder)

    def check_image(
        self, path: Path, image_meta: Mapping[str, Any] | None = None, preprocess: Any = None
    ) -> str | None:
        """Why ``path`` is no usable CT (unreadable, truncated, not 3D, NaN voxels), or None.

        Decodes every voxel: truncation of a compressed file only shows at the end.
        """
        try:
            volume = read_ct(Path(path), image_meta)
        except DomainClipError as exc:
            return str(exc)  # "<path>: <reason>"
        except Exception as exc:  # noqa: BLE001 - any failure to decode a user file is a reason, not a crash
            return f"{path}: unreadable image ({type(exc).__name__}: {exc})"
        return volume_problem(volume, Path(path))

    def findings(self, recipe: Recipe, records: Sequence[Record]) -> Findings:
        return recipe_findings(recipe, self.default_vocabulary(), records)

    def text_sampler(self, recipe: Recipe, records: Sequence[Record], findings: Findings) -> TextSampler:
        vocab, keep = recipe_vocabulary(recipe, self.default_vocabulary())
        return ReportSentenceSampler(records, recipe.text_sampling, vocab, keep)

    def augmentation(self, recipe: Recipe) -> Augmentation | None:
        return SpatialAugment.from_config(recipe.augment)

    def preview(self, record: Record, recipe: Recipe) -> np.ndarray:
        """Axial, coronal and sagittal mid-slices of the preprocessed volume, grey from the bottom to the top of the
        recipe's HU window (the volume is windowed to it, so its range is the window)."""
        from domainclip.data.preview import (
            as_rgb,
            fit_within,
            orthogonal_mid_slices,
            preprocessed_image,
            stretch_to_uint8,
        )

        volume = preprocessed_image(self, record, recipe)[0]
        return fit_within(as_rgb(stretch_to_uint8(orthogonal_mid_slices(volume), 0.0, 100.0)), 3 * PREVIEW_SIDE // 2)

    def stage_dataset(self, stage: str, records: Sequence[Record], images: Any, recipe: Recipe) -> Any:
        return images  # both stages train on the preprocessed volumes


def _ct_rate_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    if cfg.root is None:
        raise RecipeError("data.root: required for layout 'ct-rate' (the CT-RATE folder); use --set data.root=DIR")
    return ct_rate_records(cfg.root)


def _demo_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    folder = cfg.demo.dir or demo_folder(cfg.cache_dir, "ct", DEMO_VERSION, cfg.demo.n, cfg.demo.seed)
    return read_manifest(ensure_demo(folder, cfg.demo.n, cfg.demo.seed)), []
