"""Heatmaps over a slide's thumbnail: where the slide tower looked (attention) and, per finding, how strongly each
tile's own embedding matches the finding's prompts (zero-shot tile scores), with the tissue contour on top.

Why tile scores mean something: a tile's embedding is the one the model gives a bag of that tile alone, so it lies in
the joint space of the slides and of the prompts (:meth:`~domainclip.models.domain_clip.DomainClip.encode_tiles`);
its cosine to a prompt ensemble is the tile's zero-shot score. With one attention head and an affine projection the
slide's embedding is moreover the attention-weighted mean of these tile embeddings (:mod:`domainclip.models.mil`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domainclip.errors import DataError

THUMBNAIL_SIDE = 1024
"""Longest side (px) of the thumbnail a heatmap is drawn on."""

PANELS_PER_ROW = 4
"""Panels (thumbnail, attention, a tile-score map per finding) side by side before a heatmap figure wraps."""


@dataclass(frozen=True, eq=False)
class SlideMaps:
    """One slide's tiles and what the model says about each: what a heatmap is drawn from."""

    coords: np.ndarray
    """(N, 2) level-0 top-left of every tile."""
    patch_size_level0: int
    attention: np.ndarray
    """(N,) the slide tower's attention (mean over heads), summing to 1."""
    tile_scores: dict[str, np.ndarray]
    """finding -> (N,) cosine of each projected tile embedding to the finding's prompt ensemble."""


def tile_embeddings(loaded: Any, bag: torch.Tensor) -> torch.Tensor:
    """(N, embed_dim) unit-norm joint-space embeddings of a ``(D, N)`` bag's tiles
    (:meth:`~domainclip.models.domain_clip.DomainClip.encode_tiles`)."""
    if not loaded.model.has_tile_embeddings:
        tower = loaded.model.image_encoder
        raise DataError(f"model.image {tower.tower_type!r} has no per-tile embeddings: no tile-score heatmap")
    with torch.no_grad():
        return loaded.model.encode_tiles(bag[None].to(loaded.device))[0].float().cpu()


def slide_maps(
    loaded: Any, bag: torch.Tensor, coords: np.ndarray, patch_size_level0: int, prompts: Mapping[str, torch.Tensor]
) -> SlideMaps:
    """Attention and per-finding tile scores of one slide's ``(D, N)`` ``bag`` (``prompts``: finding -> unit text
    embedding, e.g. a prompt ensemble)."""
    tower = loaded.model.image_encoder
    if not hasattr(tower, "attention"):
        raise DataError(f"model.image {tower.tower_type!r} has no attention to draw")
    with torch.no_grad():
        attention = tower.attention(bag[None].to(loaded.device))[0].mean(0).float().cpu().numpy()
    scores = {}
    if prompts:
        tiles = tile_embeddings(loaded, bag)
        scores = {name: (tiles @ text.float().cpu()).numpy() for name, text in prompts.items()}
    return SlideMaps(np.asarray(coords), int(patch_size_level0), attention, scores)


def thumbnail(slide: Any, side: int = THUMBNAIL_SIDE) -> tuple[np.ndarray, float]:
    """(H, W, 3) uint8 overview of the whole slide with its longest side ``side``, and level-0 px per pixel."""
    from domainclip.domains.wsi.regions import read_downsampled

    width0, height0 = slide.dimensions
    downsample = max(1.0, max(width0, height0) / side)
    rgb = read_downsampled(slide, downsample)
    return rgb, width0 / rgb.shape[1]


def score_image(shape: tuple[int, int], coords: np.ndarray, patch0: int, downsample: float, values: np.ndarray):
    """(H, W) float map with each tile's value over its footprint at the thumbnail's scale (NaN off the tiles;
    where tiles overlap, the later one)."""
    canvas = np.full(shape, np.nan, dtype=np.float32)
    side = max(1, round(patch0 / downsample))
    for (x, y), value in zip(np.asarray(coords), np.asarray(values), strict=True):
        col, row = int(x / downsample), int(y / downsample)
        canvas[row : row + side, col : col + side] = value
    return canvas


def draw_heatmaps(
    rgb: np.ndarray,
    downsample: float,
    maps: SlideMaps,
    tissue_contours: Sequence[tuple[np.ndarray, list[np.ndarray]]],
    title: str,
    path: Path,
    tile_findings: Sequence[str] = (),
) -> Path:
    """A PNG: the thumbnail with its tissue contour, then the attention map, then one tile-score map per name in
    ``tile_findings``; maps are rank-scaled colours over the thumbnail (only where there are tiles)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("thumbnail", None), ("attention", maps.attention)]
    panels += [(f"tile score: {name}", maps.tile_scores[name]) for name in tile_findings if name in maps.tile_scores]
    height, width = rgb.shape[:2]
    columns = min(PANELS_PER_ROW, len(panels))
    rows = -(-len(panels) // columns)
    side = 3.2 / max(height, width)  # inches per thumbnail pixel
    fig, axes = plt.subplots(
        rows, columns, figsize=(columns * width * side + 0.4, rows * (height * side + 0.35) + 0.4), squeeze=False
    )
    for ax in axes.flat[len(panels) :]:
        ax.set_axis_off()
    for ax, (label, values) in zip(axes.flat, panels):
        ax.imshow(rgb)
        if values is not None:
            ranks = np.argsort(np.argsort(values)) / max(1, len(values) - 1)  # rank scale: spread whatever the range
            image = score_image((height, width), maps.coords, maps.patch_size_level0, downsample, ranks)
            ax.imshow(np.ma.masked_invalid(image), cmap="inferno", alpha=0.6, vmin=0, vmax=1, interpolation="nearest")
        for outer, holes in tissue_contours:
            for ring in (outer, *holes):
                closed = np.vstack([ring, ring[:1]]) / downsample
                ax.plot(closed[:, 0], closed[:, 1], color="#00a000", linewidth=0.8)
        ax.set_title(label, fontsize=8)
        ax.set_axis_off()
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_quantized(fig, path)
    plt.close(fig)
    return path


def save_quantized(fig: Any, path: Path, dpi: int = 110) -> None:
    """The figure as a 256-colour PNG: a thumbnail's stain texture is noise to PNG's compressor, and at 24 bits a
    few heatmaps would take megabytes each (a run report embeds them)."""
    import io

    from PIL import Image

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    buffer.seek(0)
    Image.open(buffer).convert("RGB").quantize(256, method=Image.Quantize.MEDIANCUT).save(path, optimize=True)


def finding_prompt_embeddings(loaded: Any, findings: Sequence[str]) -> dict[str, torch.Tensor]:
    """finding -> unit embedding of its positive prompt ensemble (its zero-shot terms x the positive templates the
    model was evaluated with), as zero-shot scores a slide."""
    from domainclip.heads.zeroshot import class_text_embeddings

    if not findings:
        return {}
    terms, templates = loaded.finding_prompts()
    classes = {name: terms.get(name, [name]) for name in findings}
    with torch.no_grad():
        embeddings = class_text_embeddings(loaded.encode_text, classes, [pair[0] for pair in templates])
    return dict(zip(findings, embeddings.cpu(), strict=True))


def write_heatmap(
    loaded: Any,
    slide: Path,
    out: Path,
    *,
    cache_dir: Path | None = None,
    image_meta: Mapping[str, Any] | None = None,
    findings: Sequence[str] = (),
    title: str | None = None,
) -> Path:
    """Tile and extract ``slide`` as the model was trained (cached features reused), and draw its attention and the
    tile scores of ``findings`` into the PNG ``out``."""
    from domainclip.domains.wsi.feature_files import read_features
    from domainclip.domains.wsi.slides import open_slide

    features = loaded.preprocessor_for(cache_dir)
    if not hasattr(features, "feature_file"):
        raise DataError(f"{loaded.path}: not a WSI model with a tile encoder; it cannot draw slide heatmaps")
    slide = Path(slide)
    bag = features(slide, image_meta)
    stored = read_features(features.feature_file(slide))
    _, tissue = features.tiler.tiling(slide, image_meta)
    maps = slide_maps(
        loaded, bag, stored.coords, int(stored.attrs["patch_size_level0"]), finding_prompt_embeddings(loaded, findings)
    )
    handle = open_slide(slide)
    try:
        rgb, downsample = thumbnail(handle)
    finally:
        handle.close()
    return draw_heatmaps(rgb, downsample, maps, tissue.contours, title or slide.name, out, findings)
