"""The zero-shot prompt fallback: a finding whose prompts rank the validation split backwards is scored from the
training reports' prototypes, and the model directory keeps the replacement for ``domainclip zeroshot``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from domainclip.errors import CheckpointError
from domainclip.heads.zeroshot import report_prototypes
from domainclip.labels import Findings
from domainclip.pipeline.tasks.multilabel import prompt_direction, zeroshot_probabilities
from domainclip.pipeline.tasks.prompt_fallback import PromptFallback
from domainclip.records import Record

POS, NEG = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
TEMPLATES = [("{finding}.", "no {finding}.")]


class BackwardsPrompts:
    """A loaded model whose text tower reads the prompt "effusion." as the normal side and "no effusion." as the
    effusion side (inverted), while the reports it was aligned on sit where their images sit. "ascites" prompts
    point the right way (the third axis)."""

    logit_scale = torch.tensor(10.0)

    def encode_text(self, texts: list[str]) -> torch.Tensor:
        table = {
            "effusion.": NEG,
            "no effusion.": POS,
            "ascites.": [0.0, 0.0, 1.0],
            "no ascites.": [0.0, 0.0, -1.0],
            "Right pleural effusion.": POS,
            "Lungs are clear.": NEG,
        }
        return F.normalize(torch.tensor([table[t] for t in texts]), dim=1)


def _split(n: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    """Images near POS for effusion cases and near NEG otherwise, a little ascites signal in both directions."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    ascites = (np.arange(n) // 2) % 2
    emb = np.where(y[:, None] == 1, POS, NEG) + 0.3 * rng.standard_normal((n, 3))
    emb[:, 2] += np.where(ascites == 1, 0.8, -0.8)
    labels = np.stack([y, ascites], axis=1).astype(np.float32)
    return F.normalize(torch.tensor(emb, dtype=torch.float32), dim=1), labels


def _findings(labels: np.ndarray) -> Findings:
    names = ["effusion", "ascites"]
    return Findings(names, TEMPLATES, {n: [n] for n in names}, labels, np.full(labels.shape, np.nan))


def _records(labels: np.ndarray) -> list[Record]:
    texts = ["Right pleural effusion." if y else "Lungs are clear." for y in labels[:, 0]]
    return [Record(id=f"r{i}", patient_id=f"p{i}", image=Path("x"), texts=(t,)) for i, t in enumerate(texts)]


def test_report_prototypes_are_the_mean_of_each_side() -> None:
    emb = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([[1.0, 0.0], [0.0, float("nan")], [1.0, 0.0]])
    pos, neg = report_prototypes(emb, labels)
    assert torch.allclose(pos[0], F.normalize(torch.tensor([1.0 + 2**-0.5, 2**-0.5]), dim=0))
    assert torch.allclose(neg[0], torch.tensor([0.0, 1.0]))
    assert torch.isnan(pos[1]).all()  # no report states the second finding
    assert torch.allclose(neg[1], F.normalize(torch.tensor([1.0 + 2**-0.5, 2**-0.5]), dim=0))


def test_inverted_prompts_fall_back_to_report_prototypes() -> None:
    model = BackwardsPrompts()
    val_emb, val_labels = _split(40, seed=1)
    _, train_labels = _split(60, seed=2)
    direction, fallback = prompt_direction(
        model, val_emb, _findings(val_labels), _records(train_labels), _findings(train_labels)
    )
    assert direction["zeroshot.inverted_on_val"] == ["effusion"]
    assert direction["zeroshot.fallback_findings"] == ["effusion"]  # ascites' prompts are kept
    assert direction["zeroshot.val_silver_fallback.auc.effusion"] > 0.9

    test_emb, test_labels = _split(40, seed=3)
    prompts = {"effusion": ["effusion"], "ascites": ["ascites"]}
    before = zeroshot_probabilities(model, test_emb, ["effusion", "ascites"], prompts, TEMPLATES)
    after = zeroshot_probabilities(model, test_emb, ["effusion", "ascites"], prompts, TEMPLATES, fallback)
    assert roc_auc_score(test_labels[:, 0], before[:, 0]) < 0.1
    assert roc_auc_score(test_labels[:, 0], after[:, 0]) > 0.9
    np.testing.assert_array_equal(before[:, 1], after[:, 1])  # a finding outside the fallback is untouched


def test_fallback_round_trips_through_the_model_directory(tmp_path: Path) -> None:
    fallback = PromptFallback(["effusion"], torch.tensor([POS]), torch.tensor([NEG]))
    path = tmp_path / "zeroshot_fallback.safetensors"
    fallback.save(path)
    loaded = PromptFallback.load(path)
    assert loaded is not None and loaded.names == ["effusion"]
    assert torch.equal(loaded.positive, fallback.positive) and torch.equal(loaded.negative, fallback.negative)
    PromptFallback([], torch.empty(0, 3), torch.empty(0, 3)).save(path)  # nothing to replace: no stale file
    assert PromptFallback.load(path) is None


def test_a_corrupt_fallback_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "zeroshot_fallback.safetensors"
    path.write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="zeroshot_fallback.safetensors: not a zero-shot fallback file"):
        PromptFallback.load(path)


def test_without_training_reports_the_prompts_stay() -> None:
    """``evaluate.prompt_fallback: false`` passes no training records: the check still flags, nothing is replaced."""
    val_emb, val_labels = _split(40, seed=1)
    _, train_labels = _split(60, seed=2)
    direction, fallback = prompt_direction(
        BackwardsPrompts(), val_emb, _findings(val_labels), [], _findings(train_labels)
    )
    assert direction["zeroshot.inverted_on_val"] == ["effusion"]
    assert direction["zeroshot.fallback_findings"] == [] and fallback.names == []
