"""The pathology WSI domain plug-in: gigapixel slides with surgical pathology reports.

Two levels (a :class:`~domainclip.protocols.FeatureDomain`): stage 1 MAE-pretrains a 2D tile encoder
(``model.tile``) on tissue tiles at an exact mpp, ``extract`` freezes it and turns every slide into the bag of its
tile features (TRIDENT h5 files), and alignment trains an attention-MIL slide tower (``model.image``) on those
bags against the reports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from domainclip.config.schema import DataConfig, Recipe
from domainclip.data.cache import demo_folder
from domainclip.data.manifest import manifest_layout
from domainclip.domains.wsi.config import WSIPreprocessConfig, as_preprocess_config
from domainclip.domains.wsi.layouts import MPP_META, discover_slides, read_mpp_overrides, tcga_records
from domainclip.domains.wsi.tiler import SlideTiler
from domainclip.errors import DataError, DomainClipError
from domainclip.labels import Findings
from domainclip.protocols import Augmentation, ImageTower, Layout, TextSampler
from domainclip.records import Record
from domainclip.reports.findings import recipe_findings, recipe_vocabulary
from domainclip.reports.sampling import ReportSentenceSampler

log = logging.getLogger(__name__)

VOCABULARY = Path(__file__).resolve().parents[2] / "reports" / "vocabularies" / "pathology.yaml"


class WSIDomain:
    """Whole-slide images (SVS, NDPI, MRXS, SCN, tiled TIFF, ...) read through OpenSlide or tiffslide."""

    name = "wsi"
    stages = ("mae", "extract", "align")
    check_fills_cache = True  # the check opens the slide and finds its tissue: the tile grid comes with it

    def input_shape(self, preprocess: WSIPreprocessConfig) -> tuple[int, tuple[int, ...]]:
        """What stage 1 sees: RGB tiles of ``tile_size`` at the target mpp (stage 2's bags come from ``extract``)."""
        return 3, (preprocess.tile_size, preprocess.tile_size)

    def channel_names(self, preprocess: WSIPreprocessConfig) -> None:
        return None  # RGB: nothing to group by name

    def fit_preprocess(self, preprocess: WSIPreprocessConfig, records: Sequence[Record]) -> WSIPreprocessConfig:
        return preprocess  # fixed mpp, tile size and tissue settings; the normalisation is a fixed RGB one

    def build_preprocessor(self, config: WSIPreprocessConfig | Mapping[str, Any]) -> SlideTiler:
        return SlideTiler(config)

    def feature_preprocessor(
        self, config: WSIPreprocessConfig | Mapping[str, Any], encoder: ImageTower, cache_dir: Path | None = None
    ) -> Any:
        from domainclip.domains.wsi.features import SlideFeatures

        return SlideFeatures(config, encoder, cache_dir)

    def layouts(self) -> dict[str, Layout]:
        return {"tcga": tcga_records, "manifest": _manifest_layout, "demo": _demo_layout}

    def write_demo(self, out: Path, n: int, seed: int) -> Path:
        from domainclip.domains.wsi.demo import write_demo

        return write_demo(out, n, seed)

    def default_vocabulary(self) -> Path:
        return VOCABULARY

    def discover_images(self, folder: Path) -> list[Path]:
        return discover_slides(folder)

    def feature_files(self, folder: Path) -> list[Path]:
        from domainclip.domains.wsi.feature_files import find_feature_files

        return find_feature_files(folder)

    def given_features(self, records: Sequence[Record]) -> dict[str, Any] | None:
        from domainclip.domains.wsi.feature_files import feature_source, is_feature_file

        files = [Path(r.image) for r in records if is_feature_file(Path(r.image))]
        if not files:
            return None
        if len(files) < len(records):
            slide = next(r for r in records if not is_feature_file(Path(r.image)))
            raise DataError(
                f"{slide.source or slide.image} (id={slide.id}) is a slide, {files[0]} a feature file: a run trains "
                "either on slides (tiled and extracted here) or on feature files, not on both"
            )
        return feature_source(files)

    def feature_file_reader(self, source: Mapping[str, Any]) -> Any:
        from domainclip.domains.wsi.features import FeatureFileBags

        return FeatureFileBags(int(source["width"]), source.get("encoder"))

    def check_image(
        self, path: Path, image_meta: Mapping[str, Any] | None = None, preprocess: Any = None
    ) -> str | None:
        """Why ``path`` is no usable slide (unreadable, truncated, unsupported, no mpp and no override, no tissue, no
        tile with enough tissue) or no readable feature file, or None; decodes only a few tiles and a low-resolution
        level, never the slide."""
        from domainclip.domains.wsi.feature_files import is_feature_file, read_features

        try:
            if is_feature_file(path):
                read_features(Path(path))
                return None
            SlideTiler(as_preprocess_config(preprocess)).checked(Path(path), image_meta)
        except DomainClipError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure to decode a user file is a reason, not a crash
            return f"{path}: unreadable slide ({type(exc).__name__}: {exc})"
        return None

    def findings(self, recipe: Recipe, records: Sequence[Record]) -> Findings:
        return recipe_findings(recipe, self.default_vocabulary(), records)

    def text_sampler(self, recipe: Recipe, records: Sequence[Record], findings: Findings) -> TextSampler:
        vocab, keep = recipe_vocabulary(recipe, self.default_vocabulary())
        return ReportSentenceSampler(records, recipe.text_sampling, vocab, keep)

    def augmentation(self, recipe: Recipe) -> Augmentation | None:
        return None  # a bag of tile features has no geometry left to augment

    def explain(
        self, loaded: Any, records: Sequence[Record], out: Path, cache_dir: Path | None, findings: Sequence[str]
    ) -> list[Path]:
        """Attention and zero-shot tile-score heatmaps over each slide's thumbnail with its tissue contour."""
        from domainclip.domains.wsi.heatmap import write_heatmap

        if loaded.tile_encoder is None:
            log.info("no heatmaps: the model was trained on feature files and has no slides to draw them on")
            return []

        return [
            write_heatmap(
                loaded,
                record.image,
                Path(out) / f"{record.id}.png",
                cache_dir=cache_dir,
                image_meta=record.image_meta or None,
                findings=findings,
                title=f"{record.id} ({record.label})" if record.label else record.id,
            )
            for record in records
        ]

    def preview(self, record: Record, recipe: Recipe) -> np.ndarray | None:
        """The slide's thumbnail (from its lowest-resolution level, never level 0 whole); None for a record that is
        a feature file (TRIDENT / CLAM h5: no pixels to show)."""
        from domainclip.data.preview import PREVIEW_SIDE, fit_within
        from domainclip.domains.wsi.feature_files import is_feature_file

        if is_feature_file(Path(record.image)):
            return None
        from domainclip.domains.wsi.heatmap import thumbnail
        from domainclip.domains.wsi.slides import open_slide

        with open_slide(Path(record.image)) as slide:
            return fit_within(thumbnail(slide, PREVIEW_SIDE)[0])

    def stage_dataset(self, stage: str, records: Sequence[Record], images: Any, recipe: Recipe) -> Any:
        """MAE: every tile of the given slides (read on demand); alignment: the slides' feature bags."""
        if stage != "mae":
            return images
        from domainclip.domains.wsi.tiles import slide_tiles

        return slide_tiles(records, images, recipe.preprocess)


def _manifest_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    """The generic manifest (``image`` = a slide file); an ``mpp.csv`` beside it gives mpp overrides by record id."""
    records, problems = manifest_layout(cfg)
    overrides = read_mpp_overrides(Path(cfg.manifest).parent)
    return [
        replace(r, image_meta={**r.image_meta, MPP_META: overrides[r.id]}) if r.id in overrides else r for r in records
    ], problems


def _demo_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    from domainclip.domains.wsi.demo import DEMO_VERSION, ensure_demo

    folder = cfg.demo.dir or demo_folder(cfg.cache_dir, "wsi", DEMO_VERSION, cfg.demo.n, cfg.demo.seed)
    ensure_demo(Path(folder), cfg.demo.n, cfg.demo.seed)
    return tcga_records(cfg.model_copy(update={"root": Path(folder)}))
