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
    return {
        "input_ids": torch.zeros(len(texts), 4, dtype=torch.long),
        "attention_mask": torch.ones(len(texts), 4, dtype=torch.long),
    }


def items(n: int = 3) -> list[dict]:
    return [
        {"image": torch.arange(2 * 6 * 5 * 4, dtype=torch.float32).reshape(2, 6, 5, 4) + i, "index": i}
        for i in range(n)
    ]


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


def test_sentence_targets_come_from_the_kept_sentences() -> None:
    # findings (pleural effusion, renal mass); each sentence of REPORT states at most one of them
    per_sentence = np.array([[0.0, np.nan], [np.nan, 1.0], [np.nan, np.nan]], dtype=np.float32)
    report_level = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    sentence_findings = [per_sentence, per_sentence, np.full((1, 2), np.nan, dtype=np.float32)]
    torch.manual_seed(0)
    collate = AlignCollate(
        records(),
        report_level,
        fake_tokenize,
        sentence_dropout=1.0,
        sentence_findings=sentence_findings,
        sentence_targets=True,
    )
    sentences = split_sentences(REPORT)
    seen = set()
    for _ in range(50):
        batch = collate(items())
        kept = [sentences.index(s) for s in split_sentences(fake_tokenize.seen[0])]
        expected = [np.nan, np.nan]
        for k in kept:
            expected = [
                v if np.isnan(s) else (s if np.isnan(v) else max(v, s)) for v, s in zip(expected, per_sentence[k])
            ]
        np.testing.assert_array_equal(batch["text_findings"][0].numpy(), np.array(expected, dtype=np.float32))
        assert torch.equal(batch["findings"], torch.from_numpy(report_level))  # images: always the whole report
        seen.add(tuple(kept))
        assert batch["text_findings"][2].tolist() == [0.0, 0.0]  # a one-sentence report keeps its report-level vector
    assert (0,) in seen and (1,) in seen and any(len(k) > 1 for k in seen)
    assert (2,) not in seen  # "The liver is normal." states no finding of this vocabulary: never sampled alone


def test_report_targets_ignore_which_sentences_were_kept() -> None:
    report_level = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    per_sentence = np.array([[0.0, np.nan], [np.nan, 1.0], [np.nan, np.nan]], dtype=np.float32)
    collate = AlignCollate(
        records(),
        report_level,
        fake_tokenize,
        sentence_dropout=1.0,
        sentence_findings=[per_sentence, per_sentence, per_sentence[:1]],
    )
    for _ in range(10):
        batch = collate(items())
        assert torch.equal(batch["findings"], torch.from_numpy(report_level))
        assert "text_findings" not in batch  # the texts carry the images' vectors


def test_sentence_finding_values_read_each_sentence_alone_with_the_recipe_vocabulary() -> None:
    from domainclip.config.loader import load_recipe
    from domainclip.pipeline.stages import sentence_finding_values, sentence_statements

    recipe_file = Path(__file__).resolve().parents[2] / "recipes" / "ct" / "quickstart.yaml"
    recipe = load_recipe(recipe_file, ["data.findings=[cardiomegaly, pleural effusion]"])
    record = Record(
        id="r",
        patient_id="p",
        image=Path("r.nii.gz"),
        report="No pleural effusion. The heart is enlarged. The portal veins are patent.",
    )
    (statements,) = sentence_statements(recipe, [record])
    values = sentence_finding_values(statements, 2)
    np.testing.assert_array_equal(values, np.array([[np.nan, 0.0], [1.0, np.nan], [np.nan, np.nan]], dtype=np.float32))


def test_single_sentences_are_replaced_by_their_finding_statements() -> None:
    # findings (pleural effusion, renal mass); sentence 1 "A 3 cm renal mass is seen." states "Renal mass."
    per_sentence = np.array([[0.0, np.nan], [np.nan, 1.0], [np.nan, np.nan]], dtype=np.float32)
    report_level = np.array([[0.0, 1.0], [0.0, 1.0], [0.0, 0.0]], dtype=np.float32)
    statements = [[[("No pleural effusion.", per_sentence[0])], [("Renal mass.", per_sentence[1])], []]] * 2 + [[[]]]
    torch.manual_seed(0)
    collate = AlignCollate(
        records(),
        report_level,
        fake_tokenize,
        sentence_dropout=1.0,
        sentence_findings=[per_sentence, per_sentence, per_sentence[:1]],
        sentence_targets=True,
        statements=statements,
        statement_rate=1.0,
    )
    texts = set()
    for _ in range(40):
        batch = collate(items())
        text = fake_tokenize.seen[0]
        texts.add(text)
        if text == "Renal mass.":
            assert batch["text_findings"][0].tolist()[1] == 1.0 and np.isnan(batch["text_findings"][0][0].item())
    assert {"No pleural effusion.", "Renal mass."} <= texts  # single sentences: always their statement
    assert "A 3 cm renal mass is seen." not in texts  # never the full single sentence
    assert any(len(split_sentences(t)) > 1 for t in texts)  # subsets of sentences stay as they are


def test_statements_carry_the_recipe_finding_columns() -> None:
    from domainclip.config.loader import load_recipe
    from domainclip.pipeline.stages import sentence_statements

    recipe_file = Path(__file__).resolve().parents[2] / "recipes" / "ct" / "quickstart.yaml"
    recipe = load_recipe(recipe_file, ["data.findings=[cardiomegaly, pleural effusion]"])
    record = Record(
        id="r",
        patient_id="p",
        image=Path("r.nii.gz"),
        report="No pleural effusion or ascites. The heart is enlarged. No renal mass.",
    )
    ((first, second, third),) = sentence_statements(recipe, [record])
    assert [text for text, _ in first] == ["No pleural effusion.", "No pleural effusion or ascites."]
    np.testing.assert_array_equal(first[1][1], np.array([np.nan, 0.0], dtype=np.float32))  # ascites: not a column
    assert [text for text, _ in second] == ["Heart is enlarged."]
    assert third == []  # renal mass is not one of the recipe's findings
