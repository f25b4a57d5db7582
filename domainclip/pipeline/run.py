"""``domainclip run``: a recipe end to end, on 1 or N processes.

data (checked before the run folder is touched) -> the domain's stages (MAE, alignment, ...) -> model
directory -> evaluation through the saved model directory (so what is evaluated is exactly what is served)
-> metrics.json, plots, report.md.
"""

from __future__ import annotations

import logging
import resource
import shutil
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Subset

from domainclip.config.schema import Recipe
from domainclip.data.splits import SPLITS
from domainclip.errors import DataError, RecipeError
from domainclip.labels import Findings
from domainclip.pipeline.data import (
    checked_records,
    evaluation_set_records,
    records_findings,
    vocabulary_path,
    write_skipped_rows,
)
from domainclip.pipeline.run_folder import RunFolder
from domainclip.pipeline.run_info import write_run_info
from domainclip.protocols import ExplainingDomain
from domainclip.records import Record, split_indices
from domainclip.registry import get_domain

log = logging.getLogger(__name__)


def _check_batch(recipe: Recipe, train_count: int, world_size: int) -> None:
    if train_count < recipe.stages.align.batch_size * world_size:
        raise DataError(
            f"only {train_count} training records; fewer than one batch "
            f"({recipe.stages.align.batch_size} x {world_size} processes)"
        )
    if recipe.stages.align.steps > 0 and recipe.stages.align.batch_size < 2:
        raise RecipeError("stages.align.batch_size: must be at least 2 (the projection heads batch-normalise)")


def fitted_recipe(recipe: Recipe, domain: Any, records: list[Record]) -> Recipe:
    """``recipe`` with the preprocessing fitted on the training split (``Domain.fit_preprocess``), so the saved
    recipe, the cache key and the model directory all hold the fitted values."""
    train = [records[i] for i in split_indices(records, "train")]
    fitted = domain.fit_preprocess(recipe.preprocess, train)
    return recipe if fitted is recipe.preprocess else recipe.model_copy(update={"preprocess": fitted})


def run_recipe(recipe: Recipe, resume: bool = False, source: Path | None = None) -> dict[str, Any]:
    """Run ``recipe`` into its run folder (``source``: the recipe file it was loaded from, recorded in
    run_info.json for the report). A run that fails after its folder was prepared still gets a report.html of
    what it left (training curves, marked incomplete) before the error propagates."""
    from domainclip.data.dataset import image_dataset
    from domainclip.engine import distributed as dist
    from domainclip.models.model_dir import VOCABULARY_FILE, save_model_dir
    from domainclip.pipeline.stages import StageContext, build_image_encoder, run_stages

    started = time.time()
    info = dist.init_distributed()
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    main = dist.is_main_process()
    folder = RunFolder(Path(recipe.output.dir))
    prepared = False
    try:
        folder.check_can_start(resume)  # before the data check, which can take long
        dist.barrier()  # every rank has looked before the main one writes
        domain = get_domain(recipe.domain)
        # Bad data is found before the run folder is prepared: a first run that fails on it leaves no
        # half-made run behind, so the same command (or --resume) works once the data is fixed.
        records, skipped = checked_records(recipe)
        recipe = fitted_recipe(recipe, domain, records)
        folder.prepare(recipe, resume=resume, is_main=main)
        prepared = True
        if main:
            write_skipped_rows(folder.root, skipped)
        dist.barrier()
        findings = domain.findings(recipe, records)
        if main:
            write_run_info(folder.root, recipe, domain, records, findings, info.world_size, source)
        preprocessor = domain.build_preprocessor(recipe.preprocess)
        train_indices = split_indices(records, "train")
        _check_batch(recipe, len(train_indices), info.world_size)
        torch.manual_seed(recipe.train.seed)
        ctx = StageContext(
            recipe=recipe,
            domain=domain,
            records=records,
            findings=findings,
            images=image_dataset(records, preprocessor, recipe.data.cache_dir),
            train_indices=train_indices,
            run_dir=folder.root,
            resume=resume,
            distributed=info.world_size > 1,
            encoder=build_image_encoder(recipe, domain),
            tower_input=domain.input_shape(recipe.preprocess),
        )
        model = run_stages(ctx)
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        if main:
            save_model_dir(
                model,
                folder.model_dir,
                model_config=recipe.model.model_dump(mode="json"),
                preprocess=preprocessor.config,
                domain=recipe.domain,
                input_shape=None if ctx.tower_input is None or not ctx.tower_input[1] else ctx.tower_input,
                tile_encoder=ctx.tile_encoder,
                tiling=None if ctx.tile_encoder is None else preprocessor.config,
                feature_source=ctx.given_features,
                extra={"prompts": recipe.evaluate.model_dump(mode="json", include={"templates", "class_templates"})},
            )
            shutil.copyfile(vocabulary_path(recipe, domain), folder.model_dir / VOCABULARY_FILE)
        dist.barrier()
        metrics: dict[str, Any] = {}
        if main:
            evaluate_into(folder, recipe, records, findings, folder.model_dir)
            metrics = folder.update_metrics(
                {"wall_seconds": time.time() - started, "memory.peak_rss_mb_through_training": peak_rss_mb}
            )
            from domainclip.pipeline.report import write_run_report

            write_run_report(folder, recipe, metrics)
            metrics = write_html_report_timed(folder)
            log.info("run finished: %s", folder.root)
        return metrics
    except Exception:
        if main and prepared:
            write_report_of_what_is_left(folder)
        raise
    finally:
        dist.cleanup()


def write_report_of_what_is_left(folder: RunFolder) -> None:
    """report.html for a run that is stopping on an error; never masks that error."""
    from domainclip.run_report.report import write_html_report

    try:
        path = write_html_report(folder.root)
    except Exception as exc:  # noqa: BLE001 - the run's own error is the one to report
        log.warning("the run stopped and its report could not be written either: %s", exc)
    else:
        log.warning("the run stopped; %s shows what it left", path)


def write_html_report_timed(folder: RunFolder) -> dict[str, Any]:
    """``report.html``, and the seconds it took in metrics.json (``report.seconds``, measured against the 10 %
    of a run's wall time the report may cost; the page itself is drawn before that key exists)."""
    from domainclip.run_report.report import write_html_report

    started = time.perf_counter()
    write_html_report(folder.root)
    return folder.update_metrics({"report.seconds": time.perf_counter() - started})


def evaluate_into(
    folder: RunFolder, recipe: Recipe, records: list[Record], findings: Findings, model_dir: Path
) -> dict[str, Any]:
    from domainclip.data.dataset import image_dataset
    from domainclip.models.model_dir import ZEROSHOT_FALLBACK_FILE, load_model
    from domainclip.pipeline.evaluate import evaluate_splits
    from domainclip.pipeline.previews import write_previews
    from domainclip.run_report.files import EXPLAINED_DIR, PREVIEWS_DIR, RETRIEVAL_EXAMPLES_FILE

    loaded = load_model(model_dir)
    preprocessor = loaded.preprocessor_for(recipe.data.cache_dir)  # what the model serves (features included)

    def evaluate(records: list[Record], findings: Findings, plots: Path, fallback: Path | None) -> dict[str, Any]:
        dataset = image_dataset(records, preprocessor, recipe.data.cache_dir)
        return evaluate_splits(
            loaded,
            {s: Subset(dataset, split_indices(records, s)) for s in SPLITS},
            {s: [records[i] for i in split_indices(records, s)] for s in SPLITS},
            {s: findings.subset(split_indices(records, s)) for s in SPLITS},
            plots,
            recipe.evaluate,
            batch_size=recipe.stages.align.batch_size,
            fallback_file=fallback,
        )

    metrics = evaluate(records, findings, folder.plots, model_dir / ZEROSHOT_FALLBACK_FILE)
    explain_examples(loaded, recipe, records, findings, folder.plots / EXPLAINED_DIR)
    started = time.perf_counter()
    examples = folder.plots / RETRIEVAL_EXAMPLES_FILE
    write_previews(get_domain(recipe.domain), recipe, records, examples, folder.plots / PREVIEWS_DIR)
    metrics["report.previews_seconds"] = time.perf_counter() - started
    for name in recipe.evaluate.datasets:
        extra = evaluation_set_records(recipe, name)
        scores = evaluate(extra, records_findings(recipe, extra), folder.plots / name, None)
        metrics.update({f"{name}.{key}": value for key, value in scores.items()})
    return folder.update_metrics(metrics)


EXPLAINED_IMAGES = 4


def explain_examples(loaded, recipe: Recipe, records: list[Record], findings: Findings, out: Path) -> list[Path]:
    """Pictures of what the model looked at in the first few evaluation images, where the domain draws them
    (:class:`~domainclip.protocols.ExplainingDomain`); nothing for other domains."""
    domain = get_domain(recipe.domain)
    if not isinstance(domain, ExplainingDomain):
        return []
    chosen = [records[i] for i in split_indices(records, recipe.evaluate.split)][:EXPLAINED_IMAGES]
    paths = domain.explain(loaded, chosen, out, recipe.data.cache_dir, list(findings.names))
    log.info("wrote %d explained image(s) to %s", len(paths), out)
    return paths


def evaluate_recipe(recipe: Recipe, model_dir: Path, out_dir: Path | None = None) -> dict[str, Any]:
    """``domainclip evaluate``: run the recipe's heads with a trained model; merge into metrics.json.

    Unlike ``run``, the recipe's data may carry no texts at all (class folders): then it is scored on the tasks
    its labels support."""
    folder = RunFolder(Path(out_dir or recipe.output.dir))
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.plots.mkdir(exist_ok=True)
    records, _ = checked_records(recipe, texts_required=False)
    return evaluate_into(folder, recipe, records, records_findings(recipe, records), model_dir)
