"""Report text sampling for alignment: sentences, subsets, finding statements and their finding vectors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from domainclip.domains.ct.domain import CTDomain
from domainclip.records import Record
from domainclip.reports.findings import vocabulary_columns
from domainclip.reports.sampling import (
    ReportSamplingConfig,
    ReportSentenceSampler,
    sentence_finding_values,
    sentence_statements,
    split_sentences,
)

REPORT = "No pleural effusion. A 3 cm renal mass is seen. The liver is normal."
FINDINGS = ["pleural effusion", "renal mass"]


def records() -> list[Record]:
    return [
        Record(id="a1", patient_id="a", image=Path("a1.nii.gz"), texts=REPORT, report_id="scan-a"),
        Record(id="a2", patient_id="a", image=Path("a2.nii.gz"), texts=REPORT, report_id="scan-a"),
        Record(id="b", patient_id="b", image=Path("b.nii.gz"), texts="Normal study."),
    ]


def sampler(findings: list[str] = FINDINGS, **config) -> ReportSentenceSampler:
    vocab, keep = vocabulary_columns(CTDomain().default_vocabulary(), findings)
    return ReportSentenceSampler(records(), ReportSamplingConfig(**config), vocab, keep)


def test_sentence_sampling_keeps_only_sentences_of_the_report() -> None:
    torch.manual_seed(0)
    sample = sampler(sentence_dropout=1.0)
    sentences = set(split_sentences(REPORT))
    seen_single = seen_subset = False
    for _ in range(50):
        text, stated = sample(0)
        parts = split_sentences(text)
        assert parts and set(parts) <= sentences and stated is None
        seen_single |= len(parts) == 1
        seen_subset |= len(parts) > 1
        assert sample(2) == ("Normal study.", None)  # a one-sentence report is kept whole
    assert seen_single and seen_subset


def test_without_sampling_the_whole_report_is_used_and_no_rng_is_drawn() -> None:
    sample = sampler(sentence_dropout=0.0)
    state = torch.get_rng_state()
    assert [sample(i) for i in range(3)] == [(REPORT, None), (REPORT, None), ("Normal study.", None)]
    assert torch.equal(torch.get_rng_state(), state)
    assert not sample.carries_findings


def test_sentence_targets_come_from_the_kept_sentences() -> None:
    per_sentence = np.array([[0.0, np.nan], [np.nan, 1.0], [np.nan, np.nan]], dtype=np.float32)
    torch.manual_seed(0)
    sample = sampler(sentence_dropout=1.0, sentence_targets="sentences")
    assert sample.carries_findings
    sentences = split_sentences(REPORT)
    seen = set()
    for _ in range(50):
        text, stated = sample(0)
        kept = [sentences.index(s) for s in split_sentences(text)]
        expected = [np.nan, np.nan]
        for k in kept:
            expected = [
                v if np.isnan(s) else (s if np.isnan(v) else max(v, s)) for v, s in zip(expected, per_sentence[k])
            ]
        np.testing.assert_array_equal(stated.numpy(), np.array(expected, dtype=np.float32))
        seen.add(tuple(kept))
        assert sample(2) == ("Normal study.", None)  # a one-sentence report keeps its report-level vector
    assert (0,) in seen and (1,) in seen and any(len(k) > 1 for k in seen)
    assert (2,) not in seen  # "The liver is normal." states no finding of these columns: never sampled alone


def test_single_sentences_are_replaced_by_their_finding_statements() -> None:
    torch.manual_seed(0)
    sample = sampler(sentence_dropout=1.0, sentence_targets="sentences", finding_statements=1.0)
    texts = set()
    for _ in range(40):
        text, stated = sample(0)
        texts.add(text)
        if text == "Renal mass.":
            assert stated.tolist()[1] == 1.0 and np.isnan(stated[0].item())
    assert {"No pleural effusion.", "Renal mass."} <= texts  # single sentences: always their statement
    assert "A 3 cm renal mass is seen." not in texts  # never the full single sentence
    assert any(len(split_sentences(t)) > 1 for t in texts)  # subsets of sentences stay as they are


def test_sentence_finding_values_read_each_sentence_alone_with_the_chosen_columns() -> None:
    vocab, keep = vocabulary_columns(CTDomain().default_vocabulary(), ["cardiomegaly", "pleural effusion"])
    record = Record(
        id="r",
        patient_id="p",
        image=Path("r.nii.gz"),
        texts="No pleural effusion. The heart is enlarged. The portal veins are patent.",
    )
    (statements,) = sentence_statements([record], vocab, keep)
    values = sentence_finding_values(statements, 2)
    np.testing.assert_array_equal(values, np.array([[np.nan, 0.0], [1.0, np.nan], [np.nan, np.nan]], dtype=np.float32))


def test_statements_carry_the_chosen_finding_columns() -> None:
    vocab, keep = vocabulary_columns(CTDomain().default_vocabulary(), ["cardiomegaly", "pleural effusion"])
    record = Record(
        id="r",
        patient_id="p",
        image=Path("r.nii.gz"),
        texts="No pleural effusion or ascites. The heart is enlarged. No renal mass.",
    )
    ((first, second, third),) = sentence_statements([record], vocab, keep)
    assert [text for text, _ in first] == ["No pleural effusion.", "No pleural effusion or ascites."]
    np.testing.assert_array_equal(first[1][1], np.array([np.nan, 0.0], dtype=np.float32))  # ascites: not a column
    assert [text for text, _ in second] == ["Heart is enlarged."]
    assert third == []  # renal mass is not one of the chosen findings
