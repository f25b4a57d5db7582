"""Evaluation plots (matplotlib, Agg backend): ROC curves, confusion matrices, predicted-vs-true scatter."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_roc(fpr: np.ndarray, tpr: np.ndarray, auc: float, title: str, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="false positive rate", ylabel="true positive rate", title=title)
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_confusion(matrix: np.ndarray, classes: Sequence[str], title: str, path: Path) -> None:
    plt = _pyplot()
    size = max(4.0, 0.5 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(classes)), classes, rotation=90)
    ax.set_yticks(range(len(classes)), classes)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(j, i, str(int(count)), ha="center", va="center", fontsize=8)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_scatter(truth: np.ndarray, predicted: np.ndarray, title: str, path: Path) -> None:
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.scatter(truth, predicted, s=10)
    low, high = float(min(truth.min(), predicted.min())), float(max(truth.max(), predicted.max()))
    ax.plot([low, high], [low, high], "--", color="grey", linewidth=0.8)
    ax.set(xlabel="true", ylabel="predicted", title=title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def plot_calibration(labels: np.ndarray, probs: np.ndarray, title: str, path: Path, bins: int = 10) -> bool:
    """Reliability diagram: observed frequency against mean predicted probability in ``bins`` quantile bins, over
    every known (label, probability) pair given (findings pooled; for classes, whether the top-1 was right against
    its probability). Zero-shot probabilities come from a softmax at the learnt logit scale, never fitted to
    frequencies, so this is where a reader sees whether 0.8 means 80 %. False (nothing drawn) without both
    outcomes among the pairs."""
    from sklearn.calibration import calibration_curve

    y, p = np.asarray(labels, dtype=float).ravel(), np.asarray(probs, dtype=float).ravel()
    known = ~np.isnan(y) & ~np.isnan(p)
    y, p = y[known], p[known]
    if len(np.unique(y)) < 2:
        return False
    observed, predicted = calibration_curve(y, p, n_bins=min(bins, len(y)), strategy="quantile")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], "--", color="grey", linewidth=0.8, label="calibrated")
    ax.plot(predicted, observed, "o-", label=f"{len(y)} predictions")
    ax.set(xlabel="mean predicted probability", ylabel="observed frequency", title=title, xlim=(0, 1), ylim=(0, 1))
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
