"""The ``domainclip`` command line.

Heavy imports (torch, MONAI, transformers) happen inside the commands so that
``--help`` stays instant. Every :class:`DomainClipError` is printed as one
message and turned into its exit code; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from domainclip.errors import DataError, DomainClipError

app = typer.Typer(
    name="domainclip",
    help="Domain-specialised CLIP foundation models: MAE pretraining, soft-label image-report alignment, "
    "zero-shot diagnosis and downstream heads for CT, pathology and satellite imagery.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

RecipeArg = Annotated[Path, typer.Argument(help="recipe YAML (see `domainclip recipes`)", show_default=False)]
ManifestOpt = Annotated[Path | None, typer.Option("--manifest", help="generic manifest CSV")]
ImagesOpt = Annotated[Path | None, typer.Option("--images", help="a folder of images (the model's domain finds them)")]
FeaturesOpt = Annotated[
    Path | None,
    typer.Option(
        "--features",
        help="WSI: a folder of feature h5 files (TRIDENT features_<encoder>/, CLAM h5_files/, `wsi extract-features`)"
        " of the model's tile encoder, read instead of extracting from slides",
    ),
]
RecipeOpt = Annotated[
    Path | None, typer.Option("--recipe", help="a recipe whose data layout finds the images (with their reader hints)")
]
SplitOpt = Annotated[str | None, typer.Option("--split", help="with --recipe: only this split (train, valid, test)")]
SetOpt = Annotated[
    list[str] | None,
    typer.Option("--set", help="override a recipe key, YAML-typed: --set stages.align.steps=100 (repeatable)"),
]


@app.command()
def run(
    recipe: RecipeArg,
    overrides: SetOpt = None,
    resume: Annotated[
        bool, typer.Option("--resume", help="continue from the latest checkpoint of the run folder")
    ] = False,
    nproc: Annotated[int, typer.Option("--nproc", min=1, help="launch N local processes through torchrun")] = 1,
) -> None:
    """Run a recipe: MAE pretraining -> soft-label alignment -> evaluation, into output.dir.

    Example: domainclip run recipes/ct/quickstart.yaml --set stages.align.steps=100
    """
    if nproc > 1:
        from domainclip.engine.distributed import launch_local

        argv = ["run", str(recipe)] + [a for o in overrides or [] for a in ("--set", o)]
        raise typer.Exit(launch_local(nproc, argv + (["--resume"] if resume else [])))
    from domainclip.config import load_recipe
    from domainclip.pipeline.run import run_recipe

    run_recipe(load_recipe(recipe, overrides), resume=resume, source=recipe)


@app.command("demo-data")
def demo_data(
    domain: Annotated[str, typer.Argument(help="the domain, e.g. ct (see `domainclip recipes`)")],
    out: Annotated[Path, typer.Option("--out", help="output folder")],
    n: Annotated[int, typer.Option("--n", min=4, help="number of studies")] = 64,
    seed: Annotated[int, typer.Option("--seed")] = 0,
) -> None:
    """Write synthetic demo data (images, reports, manifest.csv).

    Example: domainclip demo-data ct --out demo_ct --n 200 --seed 0
    """
    from domainclip.registry import get_domain

    manifest = get_domain(domain).write_demo(out, n, seed)
    typer.echo(f"wrote {manifest}")


@app.command("validate-data")
def validate_data(recipe: RecipeArg, overrides: SetOpt = None) -> None:
    """Check every row of a recipe's data and report all problems at once (file, row, reason).

    Example: domainclip validate-data recipes/ct/ct_rate_cpu.yaml --set data.root=/data/ct-rate
    """
    from domainclip.config import load_recipe
    from domainclip.pipeline.data import load_records

    recipe_obj = load_recipe(recipe, overrides)
    records, problems = load_records(recipe_obj, check=True)
    for problem in problems:
        typer.echo(problem)
    if problems:
        typer.echo(f"{len(problems)} problem(s); {len(records)} row(s) are usable", err=True)
        raise typer.Exit(3)
    typer.echo(f"ok: {len(records)} rows, no problems")


@app.command()
def embed(
    model: Annotated[Path, typer.Option("--model", help="model directory")],
    out: Annotated[Path, typer.Option("--out", help="output .safetensors or .parquet (GeoParquet for rasters)")],
    manifest: ManifestOpt = None,
    images: ImagesOpt = None,
    features: FeaturesOpt = None,
    recipe: RecipeOpt = None,
    split: SplitOpt = None,
    overrides: SetOpt = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
    text: Annotated[bool, typer.Option("--text/--no-text", help="also embed the records' texts")] = True,
) -> None:
    """Embed images (and reports) with a trained model, using the model's own preprocessing.

    Georeferenced rasters (satellite) also get their CRS, footprint polygon and lon/lat bounds; a .parquet index
    is then GeoParquet (with geopandas installed: pip install 'domainclip[geo]') that QGIS and geopandas open.

    Example: domainclip embed --model runs/ct-quickstart/model --manifest demo/manifest.csv --out emb.safetensors
    Example: domainclip embed --model runs/ct-rate/model --recipe recipes/ct/ct_rate.yaml --split test
    --set data.root=/data/CT-RATE --out test.safetensors
    Example: domainclip embed --model runs/satellite-quickstart/model --images /data/EuroSAT_MS --out tiles.parquet
    Example: domainclip embed --model runs/wsi-quickstart/model --features job/1x_32px_0px_overlap/features_vit-0a1b
    --out slides.safetensors
    """
    from domainclip.pipeline.inference import ImageSource, embed_command

    source = ImageSource(manifest, images, recipe, split, tuple(overrides or ()), features=features)
    embed_command(model, out, source=source, batch_size=batch_size, with_text=text)


@app.command()
def zeroshot(
    model: Annotated[Path, typer.Option("--model", help="model directory")],
    out: Annotated[
        Path,
        typer.Option("--out", help="output CSV: id, one probability column per finding or class (+ predicted)"),
    ],
    findings: Annotated[
        str | None,
        typer.Option("--findings", help="comma-separated finding names: one yes/no probability each (multi-label)"),
    ] = None,
    classes: Annotated[
        str | None,
        typer.Option("--classes", help="comma-separated class names: one softmax over them per image (multi-class)"),
    ] = None,
    manifest: ManifestOpt = None,
    images: ImagesOpt = None,
    features: FeaturesOpt = None,
    folder: Annotated[
        Path | None,
        typer.Option("--folder", help="class folders <DIR>/<Class>/<image> (EuroSAT); the folder is the truth"),
    ] = None,
    recipe: RecipeOpt = None,
    split: SplitOpt = None,
    overrides: SetOpt = None,
    label_column: Annotated[
        str | None,
        typer.Option("--label-column", help="with --manifest --classes: the class column (default: 'label')"),
    ] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1)] = 8,
) -> None:
    """Zero-shot diagnosis: per-finding probabilities (--findings) or a scene / subtype class (--classes).

    --findings scores each finding from positive/negative prompt ensembles (AUC printed when the manifest has
    labels). --classes scores a softmax over the classes' prompt ensembles, with the templates the model was
    evaluated with, and writes the predicted class; top-1, balanced accuracy and per-class recall are printed
    when the images' classes are known (class folders, a label column, a recipe's layout).

    Example: domainclip zeroshot --model runs/ct-quickstart/model --manifest demo/manifest.csv
    --findings "pleural effusion,cardiomegaly" --out preds.csv
    Example: domainclip zeroshot --model runs/satellite-quickstart/model --folder /data/EuroSAT_MS
    --classes "annual crop,forest,highway,industrial area,river,sea or lake" --out preds.csv
    """
    from domainclip.pipeline.inference import ImageSource, zeroshot_command

    if (findings is None) == (classes is None):
        raise DataError("give exactly one of --findings (yes/no per finding) or --classes (one class per image)")
    if label_column is not None and (classes is None or manifest is None):
        raise DataError("--label-column: only with --manifest and --classes (the manifest's class column)")
    source = ImageSource(
        manifest, images, recipe, split, tuple(overrides or ()), folder, label_column, features=features
    )
    if findings is not None:
        zeroshot_command(model, findings, out, source=source, batch_size=batch_size)
        return
    from domainclip.pipeline.zeroshot_classes import zeroshot_classes_command

    zeroshot_classes_command(model, classes, out, source=source, batch_size=batch_size)


@app.command()
def evaluate(
    model: Annotated[Path, typer.Option("--model", help="model directory")],
    recipe: Annotated[Path, typer.Option("--recipe", help="recipe naming the data, splits and heads")],
    overrides: SetOpt = None,
    out: Annotated[
        Path | None, typer.Option("--out", help="folder for metrics.json; default the recipe's output.dir")
    ] = None,
) -> None:
    """Run a recipe's evaluation heads with a trained model and merge results into metrics.json.

    Example: domainclip evaluate --model runs/ct-quickstart/model --recipe recipes/ct/quickstart.yaml
    """
    from domainclip.config import load_recipe
    from domainclip.pipeline.run import evaluate_recipe

    evaluate_recipe(load_recipe(recipe, overrides), model_dir=model, out_dir=out)


@app.command()
def retrieve(
    model: Annotated[Path, typer.Option("--model", help="model directory")],
    index: Annotated[
        Path, typer.Option("--index", help="embeddings file written by `domainclip embed` (.safetensors / .parquet)")
    ],
    query: Annotated[str, typer.Option("--query", help="free text")],
    k: Annotated[int, typer.Option("-k", min=1)] = 10,
) -> None:
    """Find the images whose embeddings best match a text query: rank, id, score (and, for a satellite index,
    the image's lon/lat bounds).

    Example: domainclip retrieve --model runs/ct-quickstart/model --index emb.safetensors --query "ascites" -k 5
    Example: domainclip retrieve --model runs/satellite-quickstart/model --index tiles.parquet
    --query "a river winding through fields" -k 10
    """
    from domainclip.pipeline.inference import retrieve_command

    retrieve_command(model, index, query, k)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="a run folder (a recipe's output.dir)", show_default=False)],
) -> None:
    """Write (or redraw) RUN_DIR/report.html: one self-contained page with the training curves, the evaluation
    with intervals and label sources, ROC / calibration / confusion / Kaplan-Meier plots, retrieval examples and
    the zero-shot prompts. A run that stopped early gets a report of what it left, marked incomplete.

    Example: domainclip report runs/ct-quickstart
    """
    from domainclip.run_report.report import write_html_report

    path = write_html_report(run_dir)
    typer.echo(str(path))


@app.command()
def recipes() -> None:
    """List the bundled recipes with one-line descriptions.

    Example: domainclip recipes
    """
    from domainclip.config.bundled import list_bundled

    for path, description in list_bundled():
        typer.echo(f"{path}  {description}")


def _register_plugins() -> None:
    """Commands that live next to their feature (survival heads) and each domain's own commands.

    Only the small command modules are imported here, never a domain's plug-in, so ``--help`` stays instant.
    """
    import importlib

    from domainclip.registry import available_domains, domain_entry

    modules = ["domainclip.cli.heads", *(m for name in available_domains() for m in domain_entry(name).commands)]
    for module in dict.fromkeys(modules):
        importlib.import_module(module).register(app)


_register_plugins()


def _configure_logging() -> None:
    """The package's own messages at INFO on rank 0 (what a run did: resumed, wrote heatmaps, finished), others'
    at WARNING; other ranks say only what goes wrong."""
    import logging
    import os

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    main_rank = int(os.environ.get("RANK", "0")) == 0
    logging.getLogger("domainclip").setLevel(logging.INFO if main_rank else logging.WARNING)


def main() -> None:
    _configure_logging()
    try:
        app()
    except DomainClipError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
