"""classification_metrics: scikit-learn's values, bootstrap intervals that equal scikit-learn's weighted metrics."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    recall_score,
    roc_auc_score,
)

from domainclip.errors import DataError
from domainclip.heads.bootstrap import (
    resample_weights,
    weighted_auc,
    weighted_average_precision,
    weighted_balanced_accuracy,
    weighted_f1,
)
from domainclip.heads.classification_metrics import _class_statistic, classification_metrics, per_class_recall


def _binary(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.35).astype(float)
    score = np.clip(0.35 * y + rng.random(n) * 0.65, 0, 1).round(2)  # rounded: tied scores
    return y, score


@pytest.mark.parametrize("seed", range(4))
def test_vectorised_weighted_metrics_equal_scikit_learn_sample_weight(seed):
    y, score = _binary(50, seed)
    yb, pred = y.astype(bool), score >= 0.5
    weights = next(resample_weights(len(y), 6, seed))
    auc, ap = weighted_auc(yb, score, weights), weighted_average_precision(yb, score, weights)
    f1, ba = weighted_f1(yb, pred, weights), weighted_balanced_accuracy(yb, pred, weights)
    for b, w in enumerate(weights):
        assert auc[b] == pytest.approx(roc_auc_score(y, score, sample_weight=w), abs=1e-12)
        assert ap[b] == pytest.approx(average_precision_score(y, score, sample_weight=w), abs=1e-12)
        assert f1[b] == pytest.approx(f1_score(y, pred, sample_weight=w), abs=1e-12)
        assert ba[b] == pytest.approx(balanced_accuracy_score(y, pred, sample_weight=w), abs=1e-12)


def test_multiclass_bootstrap_statistics_equal_scikit_learn_on_the_resampled_rows():
    rng = np.random.default_rng(0)
    n, c = 60, 3
    y = rng.integers(0, c, n)
    logits = rng.normal(size=(n, c)) + 1.5 * np.eye(c)[y]
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    onehot, pred = np.eye(c, dtype=bool)[y], proba.argmax(1)
    weights = next(resample_weights(n, 3, 5))
    for w in weights:
        rows = np.repeat(np.arange(n), w.astype(int))  # the resample as duplicated rows
        expected = {
            "auc": roc_auc_score(y[rows], proba[rows], multi_class="ovr"),
            "average_precision": average_precision_score(onehot[rows], proba[rows]),
            "f1": f1_score(y[rows], pred[rows], average="macro"),
            "balanced_accuracy": balanced_accuracy_score(y[rows], pred[rows]),
        }
        for metric, value in expected.items():
            got = _class_statistic(metric, onehot, proba, np.eye(c, dtype=bool)[pred])(w[None])[0]
            assert got == pytest.approx(value, abs=1e-12), metric


def test_binary_point_estimates_and_intervals():
    y, score = _binary(400, 0)
    out = classification_metrics(y, score, n_boot=300, seed=0)
    assert out["auc"] == pytest.approx(roc_auc_score(y, score))
    assert out["average_precision"] == pytest.approx(average_precision_score(y, score))
    assert out["f1"] == pytest.approx(f1_score(y, score >= 0.5))
    assert out["balanced_accuracy"] == pytest.approx(balanced_accuracy_score(y, score >= 0.5))
    for metric in ("auc", "average_precision", "f1", "balanced_accuracy"):
        assert out[f"{metric}_ci_low"] < out[metric] < out[f"{metric}_ci_high"]
    assert classification_metrics(y, score, n_boot=300, seed=0) == out  # seeded
    small = classification_metrics(y[:100], score[:100], n_boot=300, seed=0)
    assert small["auc_ci_high"] - small["auc_ci_low"] > out["auc_ci_high"] - out["auc_ci_low"]  # less data, wider
    none = classification_metrics(y, score, n_boot=0)
    assert none["auc_ci_low"] is None and none["auc"] == out["auc"]


def test_multiclass_recall_per_class_equals_scikit_learn_and_averages_to_balanced_accuracy():
    y = np.array([0, 0, 0, 0, 1, 1, 2, 2, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 0, 2, 1, 1, 1])  # recalls 3/4, 1/2, 1/4
    proba = np.full((len(y), 3), 0.1) + 0.7 * np.eye(3)[pred]
    out = classification_metrics(y, proba, n_boot=0)
    assert out["recall_per_class"] == pytest.approx([0.75, 0.5, 0.25])
    assert out["recall_per_class"] == pytest.approx(recall_score(y, pred, average=None).tolist())
    assert np.mean(out["recall_per_class"]) == pytest.approx(out["balanced_accuracy"])


def test_per_class_recall_of_a_class_without_examples_is_nan():
    matrix = confusion_matrix([0, 0, 1], [0, 2, 2], labels=[0, 1, 2])
    recall = per_class_recall(matrix)
    assert recall[:2].tolist() == [0.5, 0.0] and np.isnan(recall[2])


def test_multilabel_skips_constant_labels_and_ignores_unknown_values():
    rng = np.random.default_rng(1)
    n = 200
    labels = (rng.random((n, 3)) < 0.4).astype(float)
    labels[:, 2] = 0.0  # constant: skipped
    scores = np.clip(labels * 0.3 + rng.random((n, 3)) * 0.7, 0, 1)
    labels[:20, 0] = np.nan  # unknown
    out = classification_metrics(labels, scores, n_boot=200, label_names=["effusion", "nodule", "hernia"])
    assert out["skipped_labels"] == ["hernia"]
    assert set(out["per_label"]) == {"effusion", "nodule"}
    assert out["per_label"]["effusion"]["n"] == 180
    assert out["per_label"]["effusion"]["auc"] == pytest.approx(roc_auc_score(labels[20:, 0], scores[20:, 0]))
    assert out["auc"] == pytest.approx((out["per_label"]["effusion"]["auc"] + out["per_label"]["nodule"]["auc"]) / 2)
    assert out["auc_ci_low"] < out["auc"] < out["auc_ci_high"]


def test_single_class_and_bad_labels_raise_data_error():
    with pytest.raises(DataError, match="only class 1 is present"):
        classification_metrics(np.ones(5), np.linspace(0, 1, 5))
    with pytest.raises(DataError, match="labels must be 0 or 1"):
        classification_metrics(np.array([0, 1, 2.0]), np.array([0.1, 0.2, 0.3]))
    with pytest.raises(DataError, match="classes \\[2\\] have no example"):
        classification_metrics(np.array([0, 1, 0, 1]), np.full((4, 3), 1 / 3))
    with pytest.raises(DataError, match="rows sum to 1"):
        classification_metrics(np.array([0, 1, 2]), np.ones((3, 3)))
