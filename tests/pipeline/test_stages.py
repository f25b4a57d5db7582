"""The alignment collate (report groups, the domain's text sampler, augmentation) and the stage list."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from domainclip.data.augment import SpatialAugment, SpatialAugmentConfig
from domainclip.data.text_sampling import RandomTextSampler
from domainclip.errors import RecipeError
from domainclip.pipeline.stages import AlignCollate, StageContext, run_stages
from domainclip.records import Record, group_ids

REPORT = "No pleural effusion. A 3 cm renal mass is seen. The liver is normal."


def records() -> list[Record]:
    return [
        Record(id="a1", patient_id="a", image=Path("a1.nii.gz"), texts=REPORT, report_id="scan-a"),
        Record(id="a2", patient_id="a", image=Path("a2.nii.gz"), texts=REPORT, report_id="scan-a"),
        Record(id="b", patient_id="b", image=Path("b.nii.gz"), texts=("Normal study.", "Nothing seen.")),
    ]


def fake_tokenize(texts: list[str]) -> dict[str, torch.Tensor]:
    fake_tokenize.seen = list(texts)
    return {
        "input_ids": torch.zeros(len(texts), 4, dtype=torch.long),
        "attention_mask": torch.ones(len(texts), 4, dtype=torch.long),
    }


def items(n: int = 3) -> list[dict]:
    return [
        {"image": torch.arange(2 * 6 * 5 * 4, dtype=torch.float32).reshape(2, 6, 5, 4) + i, "index": i}
        for i in range(n)
    ]


class StatingSampler:
    """A sampler whose text of record 0 states only its first finding."""

    carries_findings = True

    def __call__(self, index: int) -> tuple[str, torch.Tensor | None]:
        return (f"text {index}", torch.tensor([1.0, float("nan")])) if index == 0 else (f"text {index}", None)


def test_reconstructions_sharing_a_report_share_a_group() -> None:
    groups = group_ids(records())
    assert groups[0] == groups[1] != groups[2]


def test_collate_uses_the_sampled_texts_and_keeps_images_and_vectors() -> None:
    torch.manual_seed(0)
    findings = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    collate = AlignCollate(records(), findings, fake_tokenize, RandomTextSampler(records()))
    seen_b = set()
    for _ in range(20):
        batch = collate(items())
        assert fake_tokenize.seen[:2] == [REPORT, REPORT]
        seen_b.add(fake_tokenize.seen[2])
        assert torch.equal(batch["image"], torch.stack([it["image"] for it in items()]))
        assert torch.equal(batch["findings"], torch.from_numpy(findings)) and "text_findings" not in batch
        assert batch["groups"].tolist()[0] == batch["groups"].tolist()[1] != batch["groups"].tolist()[2]
    assert seen_b == {"Normal study.", "Nothing seen."}  # several texts: each is drawn in turn


def test_text_findings_fall_back_to_the_record_vector() -> None:
    findings = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    batch = AlignCollate(records(), findings, fake_tokenize, StatingSampler(), text_findings=True)(items())
    np.testing.assert_array_equal(batch["text_findings"].numpy(), np.array([[1, np.nan], [0, 1], [1, 0]], np.float32))


def test_augmentation_moves_voxels_but_keeps_their_values() -> None:
    torch.manual_seed(1)
    augment = SpatialAugment.from_config(SpatialAugmentConfig(flip=True, max_shift=4))
    collate = AlignCollate(records(), np.zeros((3, 2)), fake_tokenize, RandomTextSampler(records()), augment=augment)
    original = torch.stack([it["image"] for it in items()])
    changed = False
    for _ in range(5):
        batch = collate(items())["image"]
        for a, b in zip(batch, original):
            assert torch.equal(a.flatten().sort().values, b.flatten().sort().values)  # a permutation of voxels
            assert torch.equal(a[0] - a[0].min(), a[1] - a[1].min())  # channels move together
        changed |= not torch.equal(batch, original)
    assert changed
    assert SpatialAugment.from_config(SpatialAugmentConfig()) is None  # nothing asked: no augmentation


def test_several_texts_per_image_are_rows_of_their_image_group() -> None:
    torch.manual_seed(0)
    findings = np.array([[0.0, 1.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    collate = AlignCollate(records(), findings, fake_tokenize, StatingSampler(), text_findings=True, texts_per_image=2)
    batch = collate(items())
    assert fake_tokenize.seen == ["text 0", "text 0", "text 1", "text 1", "text 2", "text 2"]
    assert batch["image"].shape[0] == 3 and batch["input_ids"].shape[0] == 6  # images once, texts k times
    assert batch["text_owner"].tolist() == [0, 0, 1, 1, 2, 2]
    groups = batch["groups"].tolist()
    assert groups[0] == groups[1] == groups[2] == groups[3] != groups[4] == groups[5]  # a1, a2 share a report
    np.testing.assert_array_equal(batch["findings"].numpy(), findings[[0, 0, 1, 1, 2, 2]])
    assert np.isnan(batch["text_findings"][0, 1]) and batch["text_findings"][2, 1] == 1.0
    assert "text_owner" not in AlignCollate(records(), findings, fake_tokenize, StatingSampler())(items())


def test_the_rows_of_several_texts_per_image_give_the_many_to_many_loss() -> None:
    """The loss on the collated rows (each image once per text, one group per image) is the multi-positive
    contrastive loss written directly on B images x B*k texts: image i against every text with its k texts as
    targets, each text against the B images with its own as target; the copies add log k to the text side."""
    from domainclip.losses import SoftLabelClipLoss

    torch.manual_seed(0)
    n_images, k, scale = 4, 3, 5.0
    images = torch.nn.functional.normalize(torch.randn(n_images, 8), dim=1)
    texts = torch.nn.functional.normalize(torch.randn(n_images * k, 8), dim=1)
    owner = torch.arange(n_images).repeat_interleave(k)
    rows = SoftLabelClipLoss(soft_weight=0.0)(images[owner], texts, scale, groups=owner)

    logits = scale * images @ texts.T  # (B, B*k)
    own = (owner[None, :] == torch.arange(n_images)[:, None]).float() / k
    image_side = -(own * logits.log_softmax(dim=1)).sum(dim=1).mean()
    text_side = torch.nn.functional.cross_entropy(logits.T, owner)
    expected = (image_side + text_side + torch.log(torch.tensor(float(k)))) / 2
    torch.testing.assert_close(rows, expected)


class _Domain:
    stages = ("mae", "distill")


def test_an_unknown_stage_of_a_domain_is_a_recipe_error() -> None:
    class _Recipe:
        domain = "x"

        class stages:
            class mae:
                steps = 0

        class model:
            tile = None

    ctx = StageContext(_Recipe(), _Domain(), [], None, None, [], Path("."), False, False)
    with pytest.raises(RecipeError, match="stage 'distill'"):
        run_stages(ctx)
