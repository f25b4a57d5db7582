"""The alignment collate: report groups, sentence sampling and augmentation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from domainclip.data.records import Record
from domainclip.pipeline.stages import AlignCollate, group_ids, split_sentences

REPORT = "No pleural effusion. A 3 cm renal mass is seen. The liver is normal."


def records() -> list[Record]:
    return [
        Record(id="a1", patient_id="a", image=Path("a1.nii.gz"), report=REPORT, report_id="scan-a"),
        Record(id="a2", patient_id="a", image=Path("a2.nii.gz"), report=REPORT, report_id="scan-a"),
        Record(id="b", patient_id="b", image=Path("b.nii.gz"), report="Normal study."),
    ]


def fake_tokenize(texts: list[str]) -> dict[str, torch.Tensor]:
    fake_tokenize.seen = list(texts)
    return {"input_ids": torch.zeros(len(texts), 4, dtype=torch.long),
            "attention_mask": torch.ones(len(texts), 4, dtype=torch.long)}


def items(n: int = 3) -> list[dict]:
    return [{"image": torch.arange(2 * 6 * 5 * 4, dtype=torch.float32).reshape(2, 6, 5, 4) + i, "index": i}
            for i in range(n)]


def test_reconstructions_sharing_a_report_share_a_group() -> None:
    groups = group_ids(records())
    assert groups[0] == groups[1] != groups[2]


def test_sentence_sampling_keeps_only_sentences_of_the_report() -> None:
    torch.manual_seed(0)
    collate = AlignCollate(records(), np.zeros((3, 2)), fake_tokenize, sentence_dropout=1.0)
    sentences = set(split_sentences(REPORT))
    seen_single = seen_subset = False
    for _ in range(50):
        collate(items())
        text = fake_tokenize.seen[0]
        parts = split_sentences(text)
        assert parts and set(parts) <= sentences
        seen_single |= len(parts) == 1
        seen_subset |= len(parts) > 1
        assert fake_tokenize.seen[2] == "Normal study."  # a one-sentence report is kept whole
    assert seen_single and seen_subset


def test_without_sampling_the_whole_report_is_used() -> None:
    collate = AlignCollate(records(), np.zeros((3, 2)), fake_tokenize, sentence_dropout=0.0)
    batch = collate(items())
    assert fake_tokenize.seen == [REPORT, REPORT, "Normal study."]
    assert torch.equal(batch["image"], torch.stack([it["image"] for it in items()]))
    assert batch["findings"].shape == (3, 2) and batch["groups"].tolist()[0] == batch["groups"].tolist()[1]


def test_augmentation_moves_voxels_but_keeps_their_values() -> None:
    torch.manual_seed(1)
    collate = AlignCollate(records(), np.zeros((3, 2)), fake_tokenize, augment=True)
    original = torch.stack([it["image"] for it in items()])
    changed = False
    for _ in range(5):
        batch = collate(items())["image"]
        for a, b in zip(batch, original):
            assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)  # a permutation of voxels
            assert torch.equal(a[0] - a[0].min(), a[1] - a[1].min())  # channels move together
        changed |= not torch.equal(batch, original)
    assert changed
