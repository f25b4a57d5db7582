"""The satellite domain plug-in: multispectral and RGB rasters paired with captions (RSICD-style)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from domainclip.config.schema import DataConfig, ManifestColumnsConfig, Recipe
from domainclip.data.cache import default_cache_root, demo_folder
from domainclip.data.manifest import read_manifest
from domainclip.domains.satellite.captions import CaptionSampler
from domainclip.domains.satellite.config import SatellitePreprocessConfig, as_preprocess_config
from domainclip.domains.satellite.demo import DEMO_VERSION, ensure_demo, write_demo
from domainclip.domains.satellite.gsd import pixel_size_m, warn_not_georeferenced
from domainclip.domains.satellite.layouts import (
    EUROSAT_CLASS_NAMES,
    EUROSAT_MS_BANDS,
    IMAGE_SUFFIXES,
    eurosat_records,
    merge_caption_rows,
    rsicd_records,
)
from domainclip.domains.satellite.preprocess import BAND_NAMES_META, SatellitePreprocessor
from domainclip.domains.satellite.readers import read_raster
from domainclip.domains.satellite.statistics import band_statistics
from domainclip.errors import DataError, DomainClipError, RecipeError
from domainclip.labels import Findings
from domainclip.protocols import Augmentation, Georeference, Layout, TextSampler
from domainclip.records import Record
from domainclip.reports.findings import per_text_vectors, recipe_findings, recipe_vocabulary

VOCABULARY = Path(__file__).resolve().parents[2] / "reports" / "vocabularies" / "satellite.yaml"
RGB_BAND_SETS = (("red", "green", "blue"), ("B04", "B03", "B02"))  # what a true-colour composite reads
WITHOUT_GROUPS = (
    "each image is its own group (its caption rows stay together), so overlapping chips or chips of one scene can "
    "land in different splits. Add a patient_id column naming each chip's scene or site to keep them in one split"
)
DEMO_COLUMNS = ManifestColumnsConfig(
    texts=["caption"], label="scene", targets=["population_density", "vegetation_index"]
)


class SatelliteDomain:
    """Multispectral GeoTIFF / COG chips and RGB aerial pictures, each with several captions."""

    name = "satellite"
    stages = ("mae", "align")
    check_fills_cache = False  # the check reads the chip; preprocessing needs the training statistics first

    def input_shape(self, preprocess: SatellitePreprocessConfig) -> tuple[int, tuple[int, ...]]:
        return len(self._bands(preprocess)), tuple(preprocess.size)

    def preview(self, record: Record, recipe: Recipe) -> np.ndarray:
        """A true-colour composite of the image file from its named bands (red / green / blue, or Sentinel-2's
        B04 / B03 / B02), one stretch for all three (between their joint 2nd and 98th percentile, so the colours
        keep their balance); grey from the first band when it has none of them. The raw file, not the
        preprocessed chip, whose bands are standardised one by one and would lose the colour balance."""
        from domainclip.data.preview import as_rgb, fit_within, stretch_to_uint8

        names = record.image_meta.get(BAND_NAMES_META) or recipe.preprocess.file_bands
        raster = read_raster(Path(record.image), None, names)
        bands = next((rgb for rgb in RGB_BAND_SETS if set(rgb) <= set(raster.bands)), raster.bands[:1])
        picture = raster.pixels[[raster.bands.index(b) for b in bands]]
        picture = np.where(raster.valid[None], picture, np.nan)
        joint = stretch_to_uint8(picture.reshape(1, -1).T).reshape(picture.shape)  # one stretch, all bands
        return fit_within(as_rgb(np.moveaxis(joint, 0, -1)))

    def channel_names(self, preprocess: SatellitePreprocessConfig) -> list[str]:
        return self._bands(preprocess)

    @staticmethod
    def _bands(preprocess: SatellitePreprocessConfig) -> list[str]:
        if preprocess.bands is not None:
            return list(preprocess.bands)
        if preprocess.band_stats is not None:
            return list(preprocess.band_stats)
        raise RecipeError("preprocess.bands: unknown until the band statistics are fitted on the training split")

    def fit_preprocess(
        self, preprocess: SatellitePreprocessConfig, records: Sequence[Record]
    ) -> SatellitePreprocessConfig:
        """Per-band mean/std over (an even sample of) the training images, nodata left out; given stats are kept."""
        if preprocess.band_stats is not None or not records:
            return preprocess
        step = max(1, len(records) // preprocess.stats_images)
        sample = list(records[::step])
        names = sample[0].image_meta.get(BAND_NAMES_META) or preprocess.file_bands
        bands = preprocess.bands or list(read_raster(sample[0].image, None, names).bands)
        # every image of one layout shares its band order, so the first record's hint serves the sample
        stats = band_statistics([r.image for r in sample], bands, names, preprocess.gsd)
        return preprocess.model_copy(update={"bands": bands, "band_stats": stats})

    def build_preprocessor(self, config: SatellitePreprocessConfig | Mapping[str, Any]) -> SatellitePreprocessor:
        return SatellitePreprocessor(config)

    def layouts(self) -> dict[str, Layout]:
        return {
            "manifest": _manifest_layout,
            "rsicd": _rsicd_layout,
            "eurosat": _eurosat_layout,
            "demo": _demo_layout,
            "demo-eurosat": _demo_eurosat_layout,
        }

    def write_demo(self, out: Path, n: int, seed: int) -> Path:
        return write_demo(out, n, seed)

    def default_vocabulary(self) -> Path:
        return VOCABULARY

    def discover_images(self, folder: Path) -> list[Path]:
        return sorted(p for p in Path(folder).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())

    def check_image(
        self, path: Path, image_meta: Mapping[str, Any] | None = None, preprocess: Any = None
    ) -> str | None:
        """Why ``path`` is no usable raster (unreadable, truncated, a band ``preprocess`` names is missing, every
        pixel of those bands nodata, a CRS ``preprocess.gsd`` cannot measure), or None; reads every pixel, since a
        truncated tile only fails when decoded. With ``gsd`` set, an image without georeference is usable (resized
        as with gsd null) but logged as a warning naming it."""
        cfg = as_preprocess_config(preprocess)
        names = (image_meta or {}).get(BAND_NAMES_META) or cfg.file_bands
        try:
            raster = read_raster(Path(path), cfg.bands, names)
            if cfg.gsd is not None and raster.georeferenced:
                pixel_size_m(raster, Path(path))
            elif cfg.gsd is not None:
                warn_not_georeferenced(Path(path), cfg.gsd)
        except DomainClipError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure to decode a user file is a reason, not a crash
            return f"{path}: unreadable image ({type(exc).__name__}: {exc})"
        return None

    def image_georeference(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> Georeference | None:
        """The raster's CRS, affine transform and size from its header (no pixels read); None for a plain picture
        (no CRS, or the identity transform GDAL reports for a JPEG / PNG), as :func:`read_raster` decides."""
        import warnings

        import rasterio
        from rasterio.errors import NotGeoreferencedWarning, RasterioIOError

        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", NotGeoreferencedWarning)
                src = rasterio.open(path)
        except RasterioIOError as exc:
            raise DataError(f"{path}: not a raster rasterio can read ({exc})") from None
        with src:
            if src.crs is None or src.transform.is_identity:
                return None
            return Georeference(src.crs.to_wkt(), tuple(src.transform)[:6], src.width, src.height)

    def findings(self, recipe: Recipe, records: Sequence[Record]) -> Findings:
        return recipe_findings(recipe, self.default_vocabulary(), records, per_text=True)

    def text_sampler(self, recipe: Recipe, records: Sequence[Record], findings: Findings) -> TextSampler:
        vocab, keep = recipe_vocabulary(recipe, self.default_vocabulary())
        stated = per_text_vectors(records, vocab, keep, default_cache_root(recipe.data.cache_dir))
        return CaptionSampler(records, recipe.text_sampling, stated)

    def augmentation(self, recipe: Recipe) -> Augmentation | None:
        return _flip_rotate

    def stage_dataset(self, stage: str, records: Sequence[Record], images: Any, recipe: Recipe) -> Any:
        return images  # both stages train on the preprocessed chips


def _flip_rotate(image: Any) -> Any:
    """A random flip and quarter turn: a view from above has no up (the torch RNG, which the engine seeds)."""
    import torch

    turns = int(torch.randint(4, ()))
    image = torch.rot90(image, turns, dims=(-2, -1))
    return image.flip(-1) if bool(torch.rand(()) < 0.5) else image


def _manifest_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    """The generic manifest, one row per caption. Without ``patient_id`` an image is its own group (its caption rows
    stay together), and without ``split`` the merged images are split, seeded."""
    from domainclip.data.splits import assign_splits

    if cfg.manifest is None:
        raise RecipeError("data.manifest: required for layout 'manifest' (a CSV with id, image, caption columns)")
    header = set(pd.read_csv(cfg.manifest, nrows=0).columns)
    rows = read_manifest(cfg.manifest, seed=cfg.demo.seed, columns=cfg.columns, without_groups=WITHOUT_GROUPS)
    if "patient_id" not in header:
        rows = [replace(r, patient_id=str(r.image)) for r in rows]
    if "split" not in header:
        rows = [replace(r, split="train") for r in rows]
        records, problems = merge_caption_rows(rows)
        return assign_splits(records, seed=cfg.demo.seed), problems
    return merge_caption_rows(rows)


def _rsicd_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    if cfg.root is None:
        raise RecipeError(
            "data.root: required for layout 'rsicd' (the folder with dataset_*.json); --set data.root=DIR"
        )
    return rsicd_records(cfg.root)


def _eurosat_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    if cfg.root is None:
        raise RecipeError("data.root: required for layout 'eurosat' (the folder of class folders)")
    return _with_band_order(*eurosat_records(cfg.root, EUROSAT_CLASS_NAMES, seed=cfg.demo.seed))


def _with_band_order(records: list[Record], problems: list[str]) -> tuple[list[Record], list[str]]:
    """EuroSAT-MS files carry no band descriptions; the order they are stored in travels with each record."""
    hint = {BAND_NAMES_META: list(EUROSAT_MS_BANDS)}
    return [replace(r, image_meta={**r.image_meta, **hint}) for r in records], problems


def _demo_root(cfg: DataConfig) -> Path:
    folder = cfg.demo.dir or demo_folder(cfg.cache_dir, "satellite", DEMO_VERSION, cfg.demo.n, cfg.demo.seed)
    ensure_demo(folder, cfg.demo.n, cfg.demo.seed)
    return Path(folder)


def _demo_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    return merge_caption_rows(read_manifest(_demo_root(cfg) / "manifest.csv", columns=DEMO_COLUMNS))


def _demo_eurosat_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    """The EuroSAT-like class folders the demo writes beside its chips (zero-shot scenes, ``evaluate.datasets``)."""
    return _with_band_order(*eurosat_records(_demo_root(cfg) / "eurosat", EUROSAT_CLASS_NAMES, seed=cfg.demo.seed))
