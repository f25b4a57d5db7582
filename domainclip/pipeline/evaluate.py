"""Evaluation of an aligned model on a recipe's splits -> flat ``metrics.json`` keys + plots.

Every split is embedded once; then each task the evaluated split supports runs on the embeddings
(:mod:`domainclip.pipeline.tasks`). Contract keys (shared/design.md): ``zeroshot.auc.<finding>``,
``zeroshot.auc_mean``, ``zeroshot.top1``, ``zeroshot.balanced_accuracy`` (``zeroshot_topk.*`` beside it for towers
that embed tiles), ``linear_probe.auc.*``,
``retrieval.image_to_text.R@k``, ``retrieval.text_to_image.R@k``, ``retrieval.mean_recall``,
``regression.<target>.r2``, ``survival.c_index``; ``*.label_source`` beside each AUC family and
``<key>_ci_low|_ci_high`` bootstrap intervals beside the headline keys.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

from domainclip.config.schema import EvaluateConfig
from domainclip.labels import Findings
from domainclip.pipeline.tasks.multiclass import multiclass_metrics
from domainclip.pipeline.tasks.multilabel import multilabel_metrics
from domainclip.pipeline.tasks.regression import regression_metrics_for, target_names
from domainclip.pipeline.tasks.retrieval import retrieval_metrics_for
from domainclip.pipeline.tasks.survival import survival_task
from domainclip.records import Record
from domainclip.run_report.files import PROMPTS_FILE, RETRIEVAL_EXAMPLES_FILE

log = logging.getLogger(__name__)


def write_prompts(
    path: Path, findings: Findings, class_templates: list[str], records: dict[str, list[Record]] | None
) -> None:
    """The zero-shot prompts as evaluated, for the run report: per finding its positive and negative sentences
    (template pairs x the finding's prompt terms), and per class its sentences."""
    from domainclip.heads.zeroshot import fill_template
    from domainclip.pipeline.tasks.multiclass import class_names

    def sentences(side: int, name: str) -> list[str]:
        """One side of a finding's prompt pairs (0 positive, 1 negative), each sentence once."""
        terms = findings.prompts.get(name, [name])
        return list(dict.fromkeys(fill_template(pair[side], term) for pair in findings.templates for term in terms))

    per_finding = {
        name: {"positive": sentences(0, name), "negative": [] if findings.contrast else sentences(1, name)}
        for name in findings.names
    }
    classes = {c: [fill_template(t, c) for t in class_templates] for c in class_names(records)} if records else {}
    negatives = "the other findings' positive prompts" if findings.contrast else "the negated prompts"
    payload = {"findings": per_finding, "finding_negatives": negatives, "classes": classes}
    path.write_text(json.dumps(payload, indent=1) + "\n", encoding="utf-8")


def _needed_splits(cfg: EvaluateConfig, records: dict[str, list[Record]]) -> list[str]:
    """The splits to embed: the evaluated one, train for probes and heads, valid for survival / early stopping and
    the zero-shot prompt-direction check."""
    fitted = cfg.linear_probe or cfg.survival or (cfg.regression and target_names(records))
    extra = (["train", "valid"] if cfg.survival or cfg.regression else ["train"]) if fitted else []
    if cfg.zeroshot:
        extra.append("valid")
    return [s for s in dict.fromkeys([*extra, cfg.split]) if records.get(s)]


def evaluate_splits(
    loaded,
    datasets: dict[str, Any],
    records: dict[str, list[Record]],
    findings: dict[str, Findings],
    plots: Path,
    cfg: EvaluateConfig,
    batch_size: int = 8,
    fallback_file: Path | None = None,
) -> dict[str, Any]:
    """Embed the splits once, then run every task the evaluated split supports (``fallback_file``: where the
    zero-shot prompt fallback fitted on the validation split is written, see :func:`multilabel_metrics`)."""
    from domainclip.pipeline.embedding import embed_images, embed_images_and_tiles

    plots.mkdir(parents=True, exist_ok=True)
    eval_split = cfg.split
    test_records = records[eval_split]
    has_classes = any(r.label is not None for r in test_records)
    with_tiles = bool(has_classes and cfg.zeroshot and cfg.zeroshot_topk and loaded.model.has_tile_embeddings)
    image_emb, tiles = {}, None
    for s in _needed_splits(cfg, records):
        if with_tiles and s == eval_split:
            image_emb[s], tiles = embed_images_and_tiles(loaded, datasets[s], batch_size, f"embedding {s} slides+tiles")
        else:
            image_emb[s] = embed_images(loaded, datasets[s], batch_size, f"embedding {s} images")
    metrics: dict[str, Any] = {"evaluate.split": eval_split, "evaluate.n": len(test_records)}
    if findings[eval_split].names:
        metrics.update(multilabel_metrics(loaded, image_emb, findings, records, eval_split, plots, cfg, fallback_file))
    class_templates = cfg.class_templates or [pair[0] for pair in findings[eval_split].templates]
    write_prompts(plots / PROMPTS_FILE, findings[eval_split], class_templates, records if has_classes else None)
    if has_classes:
        metrics.update(multiclass_metrics(loaded, image_emb, records, eval_split, class_templates, plots, cfg, tiles))
    if cfg.retrieval and all(r.texts for r in test_records):
        examples = plots / RETRIEVAL_EXAMPLES_FILE
        metrics.update(retrieval_metrics_for(loaded, image_emb[eval_split], test_records, cfg.bootstrap, examples))
    if cfg.regression and target_names(records) and "train" in image_emb:
        metrics.update(regression_metrics_for(image_emb, records, eval_split, plots, cfg.bootstrap))
    splits = ["train", "valid", eval_split]
    has_survival = all(records.get(s) and all(r.has_survival for r in records[s]) for s in splits)
    if cfg.survival and has_survival:
        metrics.update(survival_task(image_emb, records, findings, eval_split, plots, cfg.bootstrap))
    elif cfg.survival:
        log.info("survival skipped: records have no time/event, or a split is empty")
    return metrics
