"""Evaluation by task: multi-class zero-shot and probe, many-to-many retrieval, regression, label sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import (
    balanced_accuracy_score,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    r2_score,
    recall_score,
)

from domainclip.config.schema import EvaluateConfig
from domainclip.heads.regression import RegressionHead
from domainclip.labels import Findings
from domainclip.pipeline.tasks.multiclass import multiclass_metrics
from domainclip.pipeline.tasks.regression import regression_metrics_for
from domainclip.pipeline.tasks.retrieval import retrieval_metrics_for, retrieval_positives, texts_and_owners
from domainclip.records import Record

CLASSES = ["forest", "harbour", "river"]


class KeywordModel:
    """Stands in for a loaded model: a text is embedded by which class name it mentions."""

    logit_scale = 20.0

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        rows = [[float(c in t) for c in CLASSES] for t in texts]
        return F.normalize(torch.tensor(rows) + 1e-3, dim=-1)


def records(split: str, n: int) -> list[Record]:
    return [
        Record(
            id=f"{split}{i}",
            patient_id=f"{split}{i}",
            image=Path(f"{i}.tif"),
            split=split,
            texts=(f"a {CLASSES[i % 3]} seen from above, tile {i}", f"an aerial image of a {CLASSES[i % 3]}"),
            label=CLASSES[i % 3],
            targets={"ndvi": float(i % 3)},
        )
        for i in range(n)
    ]


def embeddings(rs: list[Record], noise: float = 0.0, seed: int = 0) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    rows = np.eye(3)[[CLASSES.index(r.label) for r in rs]] + noise * rng.normal(size=(len(rs), 3))
    return F.normalize(torch.tensor(rows, dtype=torch.float32), dim=-1)


def test_multiclass_zero_shot_and_probe_score_a_separable_set(tmp_path: Path) -> None:
    split_records = {"train": records("train", 30), "test": records("test", 12)}
    emb = {s: embeddings(rs, 0.1, seed=k) for k, (s, rs) in enumerate(split_records.items())}
    metrics = multiclass_metrics(
        KeywordModel(), emb, split_records, "test", ["a {finding}."], tmp_path, EvaluateConfig(bootstrap=50)
    )
    assert metrics["classes.n"] == 3
    assert metrics["zeroshot.top1"] == 1.0 and metrics["zeroshot.balanced_accuracy"] == 1.0
    assert metrics["linear_probe.top1"] == 1.0
    assert metrics["zeroshot.top1_ci_low"] <= metrics["zeroshot.top1"] <= metrics["zeroshot.top1_ci_high"]
    assert (tmp_path / "confusion_zeroshot.png").is_file()


def test_multiclass_zero_shot_on_random_embeddings_is_near_chance(tmp_path: Path) -> None:
    split_records = {"test": records("test", 300)}
    emb = {"test": F.normalize(torch.randn(300, 3, generator=torch.Generator().manual_seed(0)), dim=-1)}
    metrics = multiclass_metrics(
        KeywordModel(),
        emb,
        split_records,
        "test",
        ["a {finding}."],
        tmp_path,
        EvaluateConfig(linear_probe=False, bootstrap=0),
    )
    assert 0.2 < metrics["zeroshot.balanced_accuracy"] < 0.47


def test_multiclass_recall_per_class_and_confusion_plot_match_scikit_learn(tmp_path: Path) -> None:
    # the evaluated split has no river: it still competes (named on train) but has no recall of its own
    test = [r for r in records("test", 12) if r.label != "river"]
    split_records = {"train": records("train", 6), "test": test}
    predicted = [0, 1, 2, 1, 0, 0, 1, 1]  # an embedding on a class's axis is zero-shot predicted as that class
    emb = {"train": embeddings(split_records["train"]), "test": torch.eye(3)[predicted]}
    metrics = multiclass_metrics(
        KeywordModel(), emb, split_records, "test", ["a {finding}."], tmp_path, EvaluateConfig(bootstrap=0)
    )
    y = [CLASSES.index(r.label) for r in test]
    assert y == [0, 1, 0, 1, 0, 1, 0, 1]
    recall = recall_score(y, predicted, labels=[0, 1], average=None)
    assert recall.tolist() == [0.5, 0.75]
    assert metrics["zeroshot.recall.forest"] == pytest.approx(recall[0])
    assert metrics["zeroshot.recall.harbour"] == pytest.approx(recall[1])
    assert "zeroshot.recall.river" not in metrics
    with pytest.warns(UserWarning, match="classes not in y_true"):  # river is predicted, never true
        expected = balanced_accuracy_score(y, predicted)
    assert metrics["zeroshot.balanced_accuracy"] == pytest.approx(expected)
    assert metrics["zeroshot.top1"] == pytest.approx(5 / 8)
    assert {"linear_probe.recall.forest", "linear_probe.recall.harbour"} <= metrics.keys()
    for prefix in ("zeroshot", "linear_probe"):
        assert (tmp_path / f"confusion_{prefix}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_mi_zero_top_k_finds_the_class_a_few_tiles_show_where_the_slide_mean_misses_it(tmp_path: Path) -> None:
    # each slide: 3 tiles on its class's axis, 17 nearer the next class (cosine 0.8 to it): the mean embedding
    # points at the next class, the 3 best tiles per class at the right one
    split_records = {"test": records("test", 9)}
    eye = torch.eye(3)
    tiles = []
    for r in split_records["test"]:
        c = CLASSES.index(r.label)
        confounder = 0.8 * eye[(c + 1) % 3] + 0.6 * eye[(c + 2) % 3]
        tiles.append(torch.cat([eye[c].repeat(3, 1), confounder.repeat(17, 1)]))
    emb = {"test": F.normalize(torch.stack([t.mean(dim=0) for t in tiles]), dim=-1)}
    cfg = EvaluateConfig(linear_probe=False, bootstrap=0, zeroshot_topk=3)
    metrics = multiclass_metrics(KeywordModel(), emb, split_records, "test", ["a {finding}."], tmp_path, cfg, tiles)
    assert metrics["zeroshot.top1"] == 0.0, "the slide embedding is the mean, which the confounders dominate"
    assert metrics["zeroshot_topk.top1"] == 1.0 and metrics["zeroshot_topk.k"] == 3
    assert (tmp_path / "confusion_zeroshot_topk.png").is_file()
    # with k at least every tile, top-k is the mean tile score: the slide mean's answer again
    cfg = EvaluateConfig(linear_probe=False, bootstrap=0, zeroshot_topk=50)
    metrics = multiclass_metrics(KeywordModel(), emb, split_records, "test", ["a {finding}."], tmp_path, cfg, tiles)
    assert metrics["zeroshot_topk.top1"] == 0.0
    without = multiclass_metrics(KeywordModel(), emb, split_records, "test", ["a {finding}."], tmp_path, cfg)
    assert not any(k.startswith("zeroshot_topk") for k in without), "no tiles (not a bag tower): no top-k keys"


def test_several_captions_per_image_are_many_to_many_positives() -> None:
    rs = records("test", 6)
    texts, owners = texts_and_owners(rs)
    assert len(texts) == 12 and owners.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    positives = retrieval_positives(rs, texts, owners)
    # image 0's positives: its own two captions, and image 3's second caption, which says exactly its second
    assert positives[0].nonzero().flatten().tolist() == [0, 1, 7]
    metrics = retrieval_metrics_for(KeywordModel(), embeddings(rs), rs, n_boot=20)
    assert metrics["retrieval.n_texts"] == 12
    # each image has the same class as images i +- 3: recall@1 is a 1-in-2 tie-broken pessimistically
    assert metrics["retrieval.image_to_text.R@5"] == 1.0 and 0.0 <= metrics["retrieval.mean_recall"] <= 1.0
    assert "retrieval.mean_recall_ci_low" in metrics


def test_regression_recovers_a_target_the_embeddings_encode(tmp_path: Path) -> None:
    split_records = {"train": records("train", 60), "valid": records("valid", 12), "test": records("test", 24)}
    emb = {s: embeddings(rs, 0.05, seed=k) for k, (s, rs) in enumerate(split_records.items())}
    metrics = regression_metrics_for(emb, split_records, "test", tmp_path, n_boot=20)
    assert metrics["regression.ndvi.r2"] > 0.8 and metrics["regression.ndvi.rmse"] < 0.4
    assert (tmp_path / "regression_ndvi.png").is_file()
    # a third of the ndvi targets are 0: MAPE would divide by zero
    assert "regression.ndvi.mape" not in metrics and "|y|" in metrics["regression.ndvi.mape_skipped"]


def test_regression_keys_equal_scikit_learn_in_original_units(tmp_path: Path) -> None:
    split_records = {"train": records("train", 30), "test": records("test", 9)}
    for rs in split_records.values():
        for i, r in enumerate(rs):
            r.targets["density"] = 1000.0 + 500.0 * (i % 3)  # people per km2: no value near 0
    emb = {s: embeddings(rs, 0.05, seed=k) for k, (s, rs) in enumerate(split_records.items())}
    metrics = regression_metrics_for(emb, split_records, "test", tmp_path, n_boot=0)
    truth = np.array([r.targets["density"] for r in split_records["test"]])
    train_y = np.array([r.targets["density"] for r in split_records["train"]])
    pred = RegressionHead(seed=0).fit(emb["train"].numpy(), train_y).predict(emb["test"].numpy())
    assert metrics["regression.density.r2"] == pytest.approx(r2_score(truth, pred))
    assert metrics["regression.density.rmse"] == pytest.approx(np.sqrt(mean_squared_error(truth, pred)))
    assert metrics["regression.density.mae"] == pytest.approx(mean_absolute_error(truth, pred))
    assert metrics["regression.density.mape"] == pytest.approx(mean_absolute_percentage_error(truth, pred))


@pytest.mark.parametrize(
    ("truth", "source"),
    [
        (np.array([[1.0], [0.0]]), "truth"),
        (np.array([[np.nan], [np.nan]]), "silver"),
        (np.array([[1.0], [np.nan]]), "mixed"),
    ],
)
def test_label_source_says_where_the_evaluation_labels_came_from(truth: np.ndarray, source: str) -> None:
    findings = Findings(["a"], [("{finding}.", "no {finding}.")], {}, np.array([[1.0], [0.0]]), truth)
    assert findings.label_source() == source


def test_other_findings_negatives_rank_what_negated_prompts_cannot() -> None:
    from sklearn.metrics import roc_auc_score

    from domainclip.pipeline.tasks.multilabel import zeroshot_probabilities

    model = KeywordModel()  # reads "without X." as X, as a text tower trained on captions that hardly ever negate
    rs = records("test", 30)
    image = embeddings(rs, noise=0.3)
    truth = np.eye(3)[[CLASSES.index(r.label) for r in rs]]
    templates = [("an image of {finding}.", "an image without {finding}.")]
    prompts = {c: [c] for c in CLASSES}
    negated = zeroshot_probabilities(model, image, CLASSES, prompts, templates)
    contrast = zeroshot_probabilities(model, image, CLASSES, prompts, templates, contrast=prompts)
    assert np.allclose(negated, 0.5)  # "X." and "without X." embed alike: no ranking at all
    assert all(roc_auc_score(truth[:, k], contrast[:, k]) > 0.95 for k in range(3))
    # a finding evaluated alone is still contrasted with the rest of the vocabulary
    alone = zeroshot_probabilities(model, image, ["river"], prompts, templates, contrast=prompts)
    assert np.allclose(alone[:, 0], contrast[:, 2], atol=1e-6)
