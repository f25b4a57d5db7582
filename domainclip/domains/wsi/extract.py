"""Feature extraction as a command: slides -> one TRIDENT h5 per slide, with a trained model's tile encoder.

Every slide is checked (header, mpp, a few tiles, tissue) before any is extracted, so a bad slide in a folder of
a thousand is named at the start, not after hours; extraction then resumes per slide (the feature store skips
complete files of the same slide state, tiling and encoder).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

from domainclip.domains.wsi.layouts import MPP_META, discover_slides, slide_id
from domainclip.errors import DataError

log = logging.getLogger(__name__)


def slide_files(slides: Path) -> list[Path]:
    """``slides`` itself (a file) or the slide files below it (a folder)."""
    slides = Path(slides)
    if slides.is_file():
        return [slides]
    if not slides.is_dir():
        raise DataError(f"--slides {slides}: no such file or folder")
    found = discover_slides(slides)
    if not found:
        raise DataError(f"--slides {slides}: no slide files below it")
    return found


def extract_folder(
    model_dir: Path,
    slides: Path,
    out: Path,
    mpp_overrides: Mapping[str, float],
    *,
    batch_size: int = 64,
    workers: int = 0,
) -> list[Path]:
    """Extract the features of every slide under ``slides`` into the job folder ``out``; return the h5 paths."""
    from domainclip.domains.wsi.domain import WSIDomain
    from domainclip.domains.wsi.features import SlideFeatures
    from domainclip.models.model_dir import load_model
    from domainclip.progress import track

    loaded = load_model(model_dir)
    if loaded.tile_encoder is None:
        raise DataError(f"{model_dir}: the model has no tile encoder (not a WSI model trained by domainclip)")
    paths = slide_files(slides)
    meta = {p: ({MPP_META: mpp_overrides[slide_id(p)]} if slide_id(p) in mpp_overrides else {}) for p in paths}
    domain = WSIDomain()
    problems = [
        reason for p in paths if (reason := domain.check_image(p, meta[p], loaded.preprocess_config)) is not None
    ]
    if problems:
        raise DataError(f"{len(problems)} unusable slide(s); nothing was extracted", problems)
    features = SlideFeatures(
        loaded.preprocess_config, loaded.tile_encoder, job_dir=out, batch_size=batch_size, num_workers=workers
    )
    written = []
    for path in track(paths, "extracting features"):
        features(path, meta[path] or None)
        written.append(features.feature_file(path))
    log.info("%d feature file(s) in %s", len(written), features.paths(paths[0]).features)
    print(f"{len(written)} feature file(s) in {features.paths(paths[0]).features}")
    return written
