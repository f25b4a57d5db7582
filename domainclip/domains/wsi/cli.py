"""``domainclip wsi ...``: feature extraction into TRIDENT's layout and attention heatmaps, from a trained model.

Light at import (typer only): the commands import the WSI readers and torch when they run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

wsi_app = typer.Typer(
    name="wsi", help="Pathology whole-slide images: tile features (TRIDENT h5) and heatmaps.", no_args_is_help=True
)

ModelOpt = Annotated[Path, typer.Option("--model", help="a trained WSI model directory (run folder's model/)")]
MppCsvOpt = Annotated[
    Path | None, typer.Option("--mpp-csv", help="slide_id,mpp overrides for slides whose files carry no mpp")
]


def _mpp_overrides(mpp_csv: Path | None) -> dict[str, float]:
    from domainclip.domains.wsi.layouts import read_mpp_csv

    return {} if mpp_csv is None else read_mpp_csv(mpp_csv)


@wsi_app.command("extract-features")
def extract_features(
    model: ModelOpt,
    slides: Annotated[Path, typer.Option("--slides", help="a slide file or a folder searched recursively")],
    out: Annotated[Path, typer.Option("--out", help="job folder: TRIDENT's layout (patches/, features_<enc>/, ...)")],
    mpp_csv: MppCsvOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="tiles per encoder batch")] = 64,
    workers: Annotated[int, typer.Option("--workers", min=0, help="DataLoader workers reading tiles")] = 0,
) -> None:
    """Tile every slide as the model was trained and write its tile-encoder features as TRIDENT h5 files.

    Resumable: a slide whose feature file is complete (same slide file, tiling and encoder) is skipped; an
    interrupted file is never left under its final name. Bad slides are all named before any is extracted.

    Example: domainclip wsi extract-features --model runs/wsi-quickstart/model --slides slides/ --out features/
    """
    from domainclip.domains.wsi.extract import extract_folder

    extract_folder(model, slides, out, _mpp_overrides(mpp_csv), batch_size=batch_size, workers=workers)


@wsi_app.command("heatmap")
def heatmap(
    model: ModelOpt,
    slide: Annotated[Path, typer.Option("--slide", help="the slide file")],
    out: Annotated[Path, typer.Option("--out", help="PNG to write")],
    finding: Annotated[
        list[str] | None, typer.Option("--finding", help="also draw this finding's zero-shot tile scores (repeatable)")
    ] = None,
    mpp: Annotated[float | None, typer.Option("--mpp", help="level-0 um/px when the file has none")] = None,
    cache_dir: Annotated[
        Path | None, typer.Option("--cache-dir", help="feature cache (default ~/.cache/domainclip)")
    ] = None,
) -> None:
    """Draw the slide tower's attention (and zero-shot tile scores) over the slide's thumbnail and tissue contour.

    Example: domainclip wsi heatmap --model runs/wsi-quickstart/model --slide a.svs --out a.png --finding necrosis
    """
    from domainclip.domains.wsi.heatmap import write_heatmap
    from domainclip.domains.wsi.layouts import MPP_META
    from domainclip.models.model_dir import load_model

    loaded = load_model(model)
    meta = {MPP_META: mpp} if mpp is not None else None
    path = write_heatmap(loaded, slide, out, cache_dir=cache_dir, image_meta=meta, findings=finding or ())
    typer.echo(f"wrote {path}")


def register(app: typer.Typer) -> None:
    """Add the ``wsi`` command group to the ``domainclip`` command line."""
    app.add_typer(wsi_app, name="wsi")


__all__ = ["register"]
