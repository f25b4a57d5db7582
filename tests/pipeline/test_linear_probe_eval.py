"""The evaluation's linear probe: fitted on training embeddings, scored on the evaluation split."""

from __future__ import annotations

import numpy as np

from domainclip.pipeline.tasks.multilabel import auc_metrics, linear_probe_probabilities


def _embeddings(labels: np.ndarray, rng: np.random.Generator, signal: float) -> np.ndarray:
    """16-d noise whose first columns carry the labels with strength ``signal``."""
    x = rng.normal(size=(len(labels), 16))
    x[:, : labels.shape[1]] += signal * np.nan_to_num(labels)
    return x


def test_probe_recovers_a_linearly_encoded_finding_and_not_a_random_one() -> None:
    rng = np.random.default_rng(0)
    train_y = (rng.random((200, 2)) < 0.4).astype(float)
    test_y = (rng.random((100, 2)) < 0.4).astype(float)
    train_x, test_x = _embeddings(train_y[:, :1], rng, 3.0), _embeddings(test_y[:, :1], rng, 3.0)
    probs = linear_probe_probabilities(train_x, train_y, test_x)
    assert probs.shape == (100, 2)
    metrics = auc_metrics("linear_probe", probs, test_y, ["encoded", "absent"], plots=None)
    assert metrics["linear_probe.auc.encoded"] > 0.95  # the embedding carries it
    assert abs(metrics["linear_probe.auc.absent"] - 0.5) < 0.15  # the embedding does not: chance
    assert metrics["linear_probe.skipped_constant_labels"] == []


def test_constant_or_unknown_training_labels_are_skipped_and_listed() -> None:
    rng = np.random.default_rng(1)
    train_y = np.column_stack([rng.random(60) < 0.5, np.zeros(60), np.full(60, np.nan)]).astype(float)
    test_y = (rng.random((30, 3)) < 0.5).astype(float)
    probs = linear_probe_probabilities(rng.normal(size=(60, 8)), train_y, rng.normal(size=(30, 8)))
    assert not np.isnan(probs[:, 0]).any() and np.isnan(probs[:, 1:]).all()
    metrics = auc_metrics("linear_probe", probs, test_y, ["a", "never", "unknown"], plots=None)
    assert metrics["linear_probe.skipped_constant_labels"] == ["never", "unknown"]
    assert {k for k in metrics if k.startswith("linear_probe.auc.")} == {"linear_probe.auc.a"}
