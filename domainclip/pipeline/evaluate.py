"""Evaluation of an aligned model on a recipe's splits -> flat ``metrics.json`` keys + plots.

Keys (contract, shared/design.md): ``zeroshot.auc.<finding>``, ``zeroshot.auc_mean``,
``retrieval.image_to_text.R@k``, ``retrieval.text_to_image.R@k``, ``retrieval.mean_recall``,
``survival.c_index`` (+ Uno's C, time-dependent AUC, IBS and the ceiling from the true findings).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domainclip.data.records import Record
from domainclip.pipeline.data import Findings
from domainclip.pipeline.stages import group_ids

log = logging.getLogger(__name__)


def zeroshot_probabilities(
    loaded,
    image_emb: torch.Tensor,
    findings: list[str],
    prompts: dict[str, list[str]],
    templates: list[tuple[str, str]],
) -> np.ndarray:
    """(N, K) probability of each finding: softmax over the positive / negative prompt ensembles
    (templates x the finding's prompt terms; a finding not in ``prompts`` is prompted by its name)."""
    from domainclip.heads.zeroshot import binary_zeroshot_probs, class_text_embeddings

    classes = {f: prompts.get(f, [f]) for f in findings}
    pos = class_text_embeddings(loaded.encode_text, classes, [t[0] for t in templates])
    neg = class_text_embeddings(loaded.encode_text, classes, [t[1] for t in templates])
    probs = binary_zeroshot_probs(image_emb, pos, neg, loaded.logit_scale)
    return np.asarray(torch.as_tensor(probs).detach().cpu(), dtype=np.float64)


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


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
            _plot_roc(fpr, tpr, auc, f"{prefix.replace('_', ' ')}: {name}", plots / f"roc_{slug(name)}.png")
    aucs = [v for k, v in out.items() if k.startswith(f"{prefix}.auc.")]
    out[f"{prefix}.auc_mean"] = float(np.mean(aucs)) if aucs else float("nan")
    out[f"{prefix}.skipped_constant_labels"] = skipped
    return out


def linear_probe_probabilities(
    train_emb: np.ndarray, train_labels: np.ndarray, test_emb: np.ndarray, seed: int = 0
) -> np.ndarray:
    """(n_test, K) probabilities of a logistic-regression probe per finding on frozen image embeddings.

    Why: zero-shot AUC mixes what the image tower saw with how the text tower words it; the probe,
    fitted on the training split's embeddings and ground truth, measures the image side alone (the
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


def _plot_roc(fpr: np.ndarray, tpr: np.ndarray, auc: float, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def retrieval_positives(records: list[Record]) -> torch.Tensor:
    """Image i matches report j when they share a report (same report id or identical text)."""
    groups = group_ids(records)
    texts = [r.report.strip() for r in records]
    same_text = torch.tensor([[a == b for b in texts] for a in texts])
    return (groups[:, None] == groups[None, :]) | same_text


def report_retrieval_metrics(image_emb: torch.Tensor, text_emb: torch.Tensor, records: list[Record]) -> dict[str, Any]:
    from domainclip.heads.retrieval import retrieval_metrics

    sims = image_emb @ text_emb.T
    return {f"retrieval.{k}": v for k, v in retrieval_metrics(sims, retrieval_positives(records)).items()}


def survival_metrics_for(
    features: dict[str, np.ndarray], records: dict[str, list[Record]], out_dir: Path, prefix: str
) -> dict[str, Any]:
    """Cox head on ``features`` per split; metrics on the test split prefixed with ``prefix``."""
    from domainclip.heads.survival import fit_evaluate_survival

    def te(split: str) -> tuple[np.ndarray, np.ndarray]:
        rs = records[split]
        return np.array([r.time for r in rs], dtype=np.float64), np.array([r.event for r in rs], dtype=np.int64)

    (t_tr, e_tr), (t_va, e_va), (t_te, e_te) = te("train"), te("valid"), te("test")
    result = fit_evaluate_survival(
        features["train"],
        t_tr,
        e_tr,
        features["valid"],
        t_va,
        e_va,
        features["test"],
        t_te,
        e_te,
        out_dir=out_dir,
        penalty=1e-2,
    )
    return {f"{prefix}.{k}": v for k, v in result.items() if isinstance(v, (int, float))}


def evaluate_splits(
    loaded,
    datasets: dict[str, Any],
    records: dict[str, list[Record]],
    findings: dict[str, Findings],
    plots: Path,
    batch_size: int = 8,
    survival: bool = True,
    zeroshot: bool = True,
    retrieval: bool = True,
    eval_split: str = "test",
    linear_probe: bool = True,
) -> dict[str, Any]:
    """Embed every split once, then run zero-shot, linear probe, retrieval and survival on them."""
    from domainclip.pipeline.embedding import embed_images, embed_texts

    plots.mkdir(parents=True, exist_ok=True)
    needed = (["train", "valid"] if survival else ["train"] if linear_probe else []) + [eval_split]
    image_emb = {
        s: embed_images(loaded, datasets[s], batch_size, f"embedding {s} images")
        for s in dict.fromkeys(needed)
        if records.get(s)
    }
    test_records, test_findings = records[eval_split], findings[eval_split]
    metrics: dict[str, Any] = {"evaluate.split": eval_split, "evaluate.n": len(test_records)}
    if zeroshot:
        probs = zeroshot_probabilities(
            loaded, image_emb[eval_split], test_findings.names, test_findings.prompts, test_findings.templates
        )
        metrics.update(auc_metrics("zeroshot", probs, test_findings.labels_for_eval(), test_findings.names, plots))
    if linear_probe and records.get("train"):
        probe_dir = plots / "linear_probe"
        probe_dir.mkdir(exist_ok=True)
        probs = linear_probe_probabilities(
            image_emb["train"].numpy(), findings["train"].labels_for_eval(), image_emb[eval_split].numpy()
        )
        metrics.update(
            auc_metrics("linear_probe", probs, test_findings.labels_for_eval(), test_findings.names, probe_dir)
        )
    if retrieval:
        text_emb = embed_texts(loaded, [r.report for r in test_records])
        metrics.update(report_retrieval_metrics(image_emb[eval_split], text_emb, test_records))
    has_survival = all(r.has_survival for s in needed for r in records.get(s, []))
    if survival and has_survival and all(records.get(s) for s in needed):
        split_records = {"train": records["train"], "valid": records["valid"], "test": test_records}
        emb = {s: image_emb[s if s != "test" else eval_split].numpy() for s in split_records}
        metrics.update(survival_metrics_for(emb, split_records, plots, "survival"))
        truth = {s: np.nan_to_num(findings[s if s != "test" else eval_split].labels_for_eval()) for s in split_records}
        ceiling_dir = plots / "ceiling_true_findings"
        ceiling_dir.mkdir(exist_ok=True)
        metrics.update(survival_metrics_for(truth, split_records, ceiling_dir, "survival.ceiling_true_findings"))
    elif survival:
        log.info("survival skipped: records have no time/event, or a split is empty")
    return metrics
