"""``domainclip run``: a recipe end to end, on 1 or N processes.

data -> stage 1 (MAE) -> stage 2 (soft-label alignment) -> model directory ->
evaluation through the saved model directory (so what is evaluated is exactly
what is served) -> metrics.json, plots, report.md.
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
from domainclip.data.records import Record
from domainclip.domains import get_domain
from domainclip.pipeline.data import Findings, build_findings, checked_records, vocabulary_path
from domainclip.pipeline.embedding import image_dataset
from domainclip.pipeline.inference import VOCABULARY_FILE
from domainclip.pipeline.run_folder import RunFolder

log = logging.getLogger(__name__)
SPLITS = ("train", "valid", "test")


def _indices(records: list[Record], split: str) -> list[int]:
    return [i for i, r in enumerate(records) if r.split == split]


def run_recipe(recipe: Recipe, resume: bool = False) -> dict[str, Any]:
    from domainclip.engine import distributed as dist
    from domainclip.models.domain_clip import DomainCLIP
    from domainclip.models.model_dir import save_model_dir
    from domainclip.models.text import TextTower
    from domainclip.models.weights import load_encoder_weights
    from domainclip.pipeline.stages import build_image_encoder, run_align_stage, run_mae_stage

    started = time.time()
    info = dist.init_distributed()
    if recipe.train.threads:
        torch.set_num_threads(recipe.train.threads)
    main = dist.is_main_process()
    folder = RunFolder(Path(recipe.output.dir))
    try:
        folder.prepare(recipe, resume=resume, is_main=main)
        dist.barrier()
        domain = get_domain(recipe.domain)
        records = checked_records(recipe, folder.root if main else None)
        findings = build_findings(recipe, records)
        preprocessor = domain.build_preprocessor(recipe.preprocess)
        dataset = image_dataset(records, preprocessor, recipe.data.cache_dir)
        train_set = Subset(dataset, _indices(records, "train"))
        if len(train_set) < recipe.stages.align.batch_size * info.world_size:
            from domainclip.errors import DataError

            raise DataError(
                f"only {len(train_set)} training records; fewer than one batch "
                f"({recipe.stages.align.batch_size} x {info.world_size} processes)"
            )

        if recipe.stages.align.steps > 0 and recipe.stages.align.batch_size < 2:
            from domainclip.errors import RecipeError

            raise RecipeError("stages.align.batch_size: must be at least 2 (the projection heads batch-normalise)")
        torch.manual_seed(recipe.train.seed)
        encoder = build_image_encoder(recipe, domain.in_channels)
        if recipe.stages.mae.steps > 0:
            encoder = run_mae_stage(recipe, train_set, encoder, folder.root, resume)
        # Stage 2 starts from a fresh encoder loaded strictly by parameter name: a stage-1 encoder that does
        # not match the stage-2 architecture fails loudly here instead of silently training from scratch.
        aligned_encoder = build_image_encoder(recipe, domain.in_channels)
        load_encoder_weights(aligned_encoder, encoder.state_dict())
        text_tower = TextTower.from_config(
            recipe.model.text, training_texts=[records[i].report for i in _indices(records, "train")]
        )
        model = DomainCLIP(aligned_encoder, text_tower, recipe.model.embed_dim)
        if recipe.stages.align.steps > 0:
            model = run_align_stage(
                recipe, train_set, model, records, findings.silver, folder.root, resume, distributed=info.world_size > 1
            )
        peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
        if main:
            save_model_dir(
                model,
                folder.model_dir,
                model_config=recipe.model.model_dump(mode="json"),
                preprocess=preprocessor.config,
                domain=recipe.domain,
            )
            shutil.copyfile(vocabulary_path(recipe, domain), folder.model_dir / VOCABULARY_FILE)
        dist.barrier()
        metrics: dict[str, Any] = {}
        if main:
            metrics = evaluate_into(folder, recipe, records, findings, folder.model_dir)
            metrics = folder.update_metrics(
                {"wall_seconds": time.time() - started, "memory.peak_rss_mb_through_training": peak_rss_mb}
            )
            from domainclip.pipeline.report import write_run_report

            write_run_report(folder, recipe, metrics)
            log.info("run finished: %s", folder.root)
        return metrics
    finally:
        dist.cleanup()


def evaluate_into(
    folder: RunFolder, recipe: Recipe, records: list[Record], findings: Findings, model_dir: Path
) -> dict[str, Any]:
    from domainclip.models.model_dir import load_model
    from domainclip.pipeline.evaluate import evaluate_splits

    loaded = load_model(model_dir)
    domain = get_domain(recipe.domain)
    dataset = image_dataset(records, domain.build_preprocessor(loaded.preprocess_config), recipe.data.cache_dir)
    by_split = {s: [records[i] for i in _indices(records, s)] for s in SPLITS}
    datasets = {s: Subset(dataset, _indices(records, s)) for s in SPLITS}
    split_findings = {s: findings.subset(_indices(records, s)) for s in SPLITS}
    ev = recipe.evaluate
    metrics = evaluate_splits(
        loaded,
        datasets,
        by_split,
        split_findings,
        folder.plots,
        batch_size=recipe.stages.align.batch_size,
        survival=ev.survival,
        zeroshot=ev.zeroshot,
        retrieval=ev.retrieval,
        eval_split=ev.split,
        linear_probe=ev.linear_probe,
    )
    return folder.update_metrics(metrics)


def evaluate_recipe(recipe: Recipe, model_dir: Path, out_dir: Path | None = None) -> dict[str, Any]:
    """``domainclip evaluate``: run the recipe's heads with a trained model; merge into metrics.json."""
    folder = RunFolder(Path(out_dir or recipe.output.dir))
    folder.root.mkdir(parents=True, exist_ok=True)
    folder.plots.mkdir(exist_ok=True)
    records = checked_records(recipe, None)
    return evaluate_into(folder, recipe, records, build_findings(recipe, records), model_dir)
