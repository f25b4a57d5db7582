"""Multi-label findings / attributes: zero-shot from prompt pairs and a linear probe per finding, as ROC AUCs."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domainclip.config.schema import EvaluateConfig
from domainclip.labels import Findings
from domainclip.pipeline.tasks.intervals import mean_auc_interval
from domainclip.pipeline.tasks.plots import plot_calibration, plot_roc, slug
from domainclip.pipeline.tasks.prompt_fallback import PromptFallback, fit_prompt_fallback
from domainclip.records import Record


def zeroshot_probabilities(
    loaded,
    image_emb: torch.Tensor,
    findings: list[str],
    prompts: dict[str, list[str]],
    templates: list[tuple[str, str]],
    fallback: PromptFallback | None = None,
    contrast: Mapping[str, Sequence[str]] | None = None,
) -> np.ndarray:
    """(N, K) probability of each finding: softmax over the positive / negative prompt ensembles
    (templates x the finding's prompt terms; a finding not in ``prompts`` is prompted by its name), or over the
    ``fallback``'s report prototypes for the findings it holds. With ``contrast`` (prompt terms per vocabulary
    finding) a finding's negative is the other findings' positive ensembles instead of its negated prompts
    (:func:`~domainclip.heads.zeroshot.other_class_negatives`)."""
    from domainclip.heads.zeroshot import binary_zeroshot_probs, class_text_embeddings, other_class_negatives

    classes = {f: prompts.get(f, [f]) for f in findings}
    if contrast:
        pool = {**{name: list(terms) for name, terms in contrast.items()}, **classes}
        pool_emb = class_text_embeddings(loaded.encode_text, pool, [t[0] for t in templates])
        rows = {name: k for k, name in enumerate(pool)}
        pos = pool_emb[[rows[f] for f in findings]]
        neg = other_class_negatives(pool_emb, list(pool), findings)
    else:
        pos = class_text_embeddings(loaded.encode_text, classes, [t[0] for t in templates])
        neg = class_text_embeddings(loaded.encode_text, classes, [t[1] for t in templates])
    if fallback is not None:
        pos, neg = fallback.apply(findings, pos, neg)
    probs = binary_zeroshot_probs(image_emb, pos, neg, loaded.logit_scale)
    return np.asarray(torch.as_tensor(probs).detach().cpu(), dtype=np.float64)


def auc_metrics(
    prefix: str, probs: np.ndarray, labels: np.ndarray, names: list[str], plots: Path | None
) -> dict[str, Any]:
    """``{prefix}.auc.<finding>`` and ``{prefix}.auc_mean``; findings whose labels are constant on this split
    (or missing from ``probs``, NaN column) are skipped and listed in ``{prefix}.skipped_constant_labels``."""
    from sklearn.metrics import roc_auc_score, roc_curve

    out: dict[str, Any] = {}
    skipped = []
    for k, name in enumerate(names):
        known = ~np.isnan(labels[:, k]) & ~np.isnan(probs[:, k])
        y = labels[known, k]
        if len(np.unique(y)) < 2:
            skipped.append(name)
            continue
        auc = float(roc_auc_score(y, probs[known, k]))
        out[f"{prefix}.auc.{name}"] = auc
        if plots is not None:
            fpr, tpr, _ = roc_curve(y, probs[known, k])
            plot_roc(fpr, tpr, auc, f"{prefix.replace('_', ' ')}: {name}", plots / f"roc_{slug(name)}.png")
    aucs = [v for k, v in out.items() if k.startswith(f"{prefix}.auc.")]
    out[f"{prefix}.auc_mean"] = float(np.mean(aucs)) if aucs else float("nan")
    out[f"{prefix}.skipped_constant_labels"] = skipped
    return out


def linear_probe_probabilities(
    train_emb: np.ndarray, train_labels: np.ndarray, test_emb: np.ndarray, seed: int = 0
) -> np.ndarray:
    """(n_test, K) probabilities of a logistic-regression probe per finding on frozen image embeddings.

    Why: zero-shot AUC mixes what the image tower saw with how the text tower words it; the probe,
    fitted on the training split's embeddings and labels, measures the image side alone (the
    linear-probe protocol of CLIP, CT-CLIP and Merlin). A finding whose training labels are constant or
    too rare for cross-validation gets a NaN column (skipped in the AUCs).
    """
    from domainclip.heads.classification import LinearProbe

    out = np.full((len(test_emb), train_labels.shape[1]), np.nan)
    for k in range(train_labels.shape[1]):
        known = ~np.isnan(train_labels[:, k])
        y = train_labels[known, k]
        if len(np.unique(y)) < 2 or np.bincount(y.astype(int)).min() < 2:
            continue
        probe = LinearProbe(seed=seed).fit(train_emb[known], y.astype(int))
        out[:, k] = probe.predict_proba(test_emb)[:, list(probe.classes_).index(1)]
    return out


def _family(prefix: str, probs: np.ndarray, findings: Findings, plots: Path, n_boot: int) -> dict[str, Any]:
    labels = findings.labels_for_eval()
    out = auc_metrics(prefix, probs, labels, findings.names, plots)
    out.update(mean_auc_interval(f"{prefix}.auc_mean", labels, probs, n_boot))
    out[f"{prefix}.label_source"] = findings.label_source()
    plot_calibration(labels, probs, f"{prefix.replace('_', ' ')}: findings pooled", plots / f"calibration_{prefix}.png")
    return out


def prompt_direction(
    loaded, val_emb: torch.Tensor, val: Findings, train_records: Sequence[Record], train: Findings
) -> tuple[dict[str, Any], PromptFallback]:
    """Per finding, whether its positive prompt scores the validation studies whose *reports* state it higher:
    zero-shot AUC against the validation split's silver labels, the findings below 0.5, and the report-prototype
    fallback for those of them it scores better (:mod:`~domainclip.pipeline.tasks.prompt_fallback`).

    Why: a prompt pair can point the wrong way (a text tower that reads "not X." closer to X's images than "X.");
    the test AUC shows it only where ground truth exists, while every dataset with reports has silver labels on
    its validation split, so this check needs no labels and sees no test data.
    """
    probs = zeroshot_probabilities(loaded, val_emb, val.names, val.prompts, val.templates, contrast=val.contrast)
    out = auc_metrics("zeroshot.val_silver", probs, val.silver_labels(), val.names, None)
    inverted = {
        n: out[f"zeroshot.val_silver.auc.{n}"] for n in val.names if out.get(f"zeroshot.val_silver.auc.{n}", 0.5) < 0.5
    }
    out["zeroshot.inverted_on_val"] = sorted(inverted)
    fallback, fallback_metrics = fit_prompt_fallback(loaded, inverted, val_emb, val, train_records, train)
    out.update(fallback_metrics)
    return out, fallback


def multilabel_metrics(
    loaded,
    image_emb: dict[str, torch.Tensor],
    findings: dict[str, Findings],
    records: dict[str, list[Record]],
    eval_split: str,
    plots: Path,
    cfg: EvaluateConfig,
    fallback_file: Path | None = None,
) -> dict[str, Any]:
    """Zero-shot and linear-probe AUCs per finding on ``eval_split``, with the label source and the mean's CI.

    Where the prompt-direction check replaced a finding's prompts, ``zeroshot.*`` is scored with the fallback and
    ``zeroshot_prompts.*`` with the prompts alone; the fallback is written to ``fallback_file`` (the model
    directory's, so that ``domainclip zeroshot`` uses it too).
    """
    test = findings[eval_split]
    metrics: dict[str, Any] = {}
    if cfg.zeroshot:
        fallback = None
        if "valid" in image_emb and "valid" in findings and eval_split != "valid":
            train_records = records.get("train", []) if cfg.prompt_fallback else []
            direction, fallback = prompt_direction(
                loaded, image_emb["valid"], findings["valid"], train_records, findings["train"]
            )
            metrics.update(direction)
            if fallback_file is not None:
                fallback.save(fallback_file)
        probs = zeroshot_probabilities(
            loaded, image_emb[eval_split], test.names, test.prompts, test.templates, fallback, test.contrast
        )
        metrics.update(_family("zeroshot", probs, test, plots, cfg.bootstrap))
        if fallback is not None and fallback.names:
            prompts_only = zeroshot_probabilities(
                loaded, image_emb[eval_split], test.names, test.prompts, test.templates, contrast=test.contrast
            )
            metrics.update(auc_metrics("zeroshot_prompts", prompts_only, test.labels_for_eval(), test.names, None))
    if cfg.linear_probe and "train" in image_emb:
        probe_dir = plots / "linear_probe"
        probe_dir.mkdir(exist_ok=True)
        probs = linear_probe_probabilities(
            image_emb["train"].numpy(), findings["train"].labels_for_eval(), image_emb[eval_split].numpy()
        )
        metrics.update(_family("linear_probe", probs, test, probe_dir, cfg.bootstrap))
    return metrics
