"""Multi-class labels (scenes, subtypes): zero-shot over class prompts (and, for towers that embed tiles, MI-Zero's
top-k over tile scores) and a multinomial linear probe, each scored by top-1, balanced accuracy, per-class recall
and a confusion-matrix plot."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domainclip.config.schema import EvaluateConfig
from domainclip.pipeline.tasks.intervals import resampled_interval
from domainclip.pipeline.tasks.plots import plot_calibration, plot_confusion
from domainclip.records import Record


def class_names(records: dict[str, list[Record]]) -> list[str]:
    """Every class named on any split, sorted (a class absent from the evaluated split still competes)."""
    return sorted({r.label for rs in records.values() for r in rs if r.label is not None})


def class_prompt_embeddings(loaded, classes: Sequence[str], templates: Sequence[str]) -> torch.Tensor:
    """(C, embed_dim) unit-length prompt ensemble of each class (the class name in every template)."""
    from domainclip.heads.zeroshot import class_text_embeddings

    return class_text_embeddings(loaded.encode_text, {c: [c] for c in classes}, list(templates))


def zeroshot_class_probabilities(
    loaded, image_emb: torch.Tensor, classes: Sequence[str], templates: Sequence[str]
) -> np.ndarray:
    """(N, C) softmax over the scaled cosine similarity to each class's prompt ensemble (CLIP's zero-shot)."""
    class_emb = class_prompt_embeddings(loaded, classes, templates)
    image = torch.nn.functional.normalize(image_emb.float(), dim=-1)
    return torch.softmax(loaded.logit_scale * image @ class_emb.T, dim=-1).numpy().astype(np.float64)


def topk_class_probabilities(
    loaded, tiles: Sequence[torch.Tensor], classes: Sequence[str], templates: Sequence[str], k: int
) -> np.ndarray:
    """(N, C) MI-Zero's top-k zero-shot (Lu et al. 2023): each slide's score for a class is the mean cosine of its
    ``k`` tiles most similar to the class's prompts (all its tiles when it has fewer), softmax-scaled as the
    slide-level zero-shot. It asks whether a few tiles show the class, where the slide embedding averages them."""
    class_emb = class_prompt_embeddings(loaded, classes, templates)
    scores = torch.stack([(t @ class_emb.T).topk(min(k, len(t)), dim=0).values.mean(dim=0) for t in tiles])
    return torch.softmax(loaded.logit_scale * scores, dim=-1).numpy().astype(np.float64)


def _scores(prefix: str, y: np.ndarray, probs: np.ndarray, classes: Sequence[str], plots: Path, n_boot: int) -> dict:
    """``<prefix>.top1``, ``.balanced_accuracy`` (with intervals), ``.recall.<class>`` for every class the evaluated
    split has an example of (a class only named on another split has no defined recall, so no key), and the
    confusion matrix as ``plots/confusion_<prefix>.png``."""
    from sklearn.metrics import balanced_accuracy_score, confusion_matrix

    from domainclip.heads.classification_metrics import per_class_recall

    pred = probs.argmax(axis=1)
    matrix = confusion_matrix(y, pred, labels=list(range(len(classes))))
    recall = per_class_recall(matrix)
    out: dict[str, Any] = {
        f"{prefix}.top1": float((pred == y).mean()),
        # scikit-learn's balanced accuracy, without its warning about predicted classes the split lacks
        f"{prefix}.balanced_accuracy": float(np.nanmean(recall)),
    }
    out.update({f"{prefix}.recall.{c}": float(r) for c, r in zip(classes, recall) if not np.isnan(r)})
    with warnings.catch_warnings():  # a resample may lack a class that is predicted: expected, not news
        warnings.simplefilter("ignore", UserWarning)
        for key, metric in (
            ("top1", lambda i: float((pred[i] == y[i]).mean())),
            ("balanced_accuracy", lambda i: float(balanced_accuracy_score(y[i], pred[i]))),
        ):
            out.update(resampled_interval(f"{prefix}.{key}", metric, len(y), n_boot))
    plot_confusion(matrix, classes, prefix.replace("_", " "), plots / f"confusion_{prefix}.png")
    confidence = probs[np.arange(len(y)), pred]
    title = f"{prefix.replace('_', ' ')}: top-1 confidence"
    plot_calibration((pred == y).astype(float), confidence, title, plots / f"calibration_{prefix}_classes.png")
    return out


def multiclass_metrics(
    loaded,
    image_emb: dict[str, torch.Tensor],
    records: dict[str, list[Record]],
    eval_split: str,
    templates: Sequence[str],
    plots: Path,
    cfg: EvaluateConfig,
    tiles: Sequence[torch.Tensor] | None = None,
) -> dict[str, Any]:
    """Zero-shot (and, given the evaluated split's ``tiles``, MI-Zero top-k) and the linear probe over the classes."""
    classes = class_names(records)
    index = {c: k for k, c in enumerate(classes)}
    test = [(i, index[r.label]) for i, r in enumerate(records[eval_split]) if r.label is not None]
    if len(classes) < 2 or not test:
        return {}
    rows, y = (np.array(v) for v in zip(*test))
    metrics: dict[str, Any] = {"classes.n": len(classes)}
    if cfg.zeroshot:
        probs = zeroshot_class_probabilities(loaded, image_emb[eval_split][rows], classes, templates)
        metrics.update(_scores("zeroshot", y, probs, classes, plots, cfg.bootstrap))
    if cfg.zeroshot and cfg.zeroshot_topk and tiles is not None:
        probs = topk_class_probabilities(loaded, [tiles[i] for i in rows], classes, templates, cfg.zeroshot_topk)
        metrics["zeroshot_topk.k"] = cfg.zeroshot_topk
        metrics.update(_scores("zeroshot_topk", y, probs, classes, plots, cfg.bootstrap))
    train = [(i, index[r.label]) for i, r in enumerate(records.get("train", [])) if r.label is not None]
    counts = Counter(c for _, c in train)
    if cfg.linear_probe and "train" in image_emb and len(counts) >= 2 and min(counts.values()) < 2:
        # the probe picks its regularisation by cross-validation, which needs two examples of every class
        metrics["linear_probe.multiclass_skipped"] = "a class has fewer than 2 training examples"
    elif cfg.linear_probe and "train" in image_emb and len(counts) >= 2:
        from domainclip.heads.classification import LinearProbe

        train_rows, train_y = (np.array(v) for v in zip(*train))
        probe = LinearProbe().fit(image_emb["train"].numpy()[train_rows], train_y)
        probs = np.zeros((len(rows), len(classes)))
        probs[:, probe.classes_.astype(int)] = probe.predict_proba(image_emb[eval_split].numpy()[rows])
        metrics.update(_scores("linear_probe", y, probs, classes, plots, cfg.bootstrap))
    return metrics
