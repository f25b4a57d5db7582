"""Which text of a report an alignment step trains on: the whole report, a few of its sentences, or a statement.

Why not always the whole report: zero-shot prompts are single short sentences ("no pleural effusion."), and a
text tower that only ever saw whole reports embeds them poorly. With probability ``sentence_dropout`` a report
is replaced by one of its sentences or by a random non-empty subset of them, anchored on a sentence that states
a finding ("The portal veins are patent." teaches the text tower nothing about findings). With probability
``finding_statements`` a single sampled sentence is replaced by one of its short finding statements
("Infrarenal abdominal aortic aneurysm measuring 5.6 cm" -> "Abdominal aortic aneurysm."), the form prompts
have (see :meth:`~domainclip.reports.ReportStructurer.statements`). With ``sentence_targets: sentences`` a cut
text carries only what it states (the rest unknown): "No pleural effusion." is then a positive of every image
without an effusion and of none with one, instead of standing for the whole report it was cut from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Literal, TypeVar

import numpy as np
import torch
from pydantic import Field

from domainclip.config.schema import Strict
from domainclip.records import Record
from domainclip.reports.structurer import ReportStructurer
from domainclip.reports.vocabulary import Vocabulary

T = TypeVar("T")
StatedText = tuple[str, np.ndarray]  # a short statement of findings and the (K,) values it states (NaN: unsaid)


class ReportSamplingConfig(Strict):
    sentence_dropout: float = Field(
        0.5, ge=0, le=1, description="probability of training on a random subset of a report's sentences"
    )
    sentence_targets: Literal["report", "sentences"] = Field(
        "report",
        description="finding vector of a text cut from a report (sentences, statements): the whole "
        "report's, or only what the text states (others unknown); images always carry the "
        "whole report's",
    )
    finding_statements: float = Field(
        0.0,
        ge=0,
        le=1,
        description="probability that a single sampled report sentence is replaced by one of its "
        "short finding statements ('No abdominal aortic aneurysm.'), the form of zero-shot "
        "prompts (needs sentence_dropout > 0)",
    )


def split_sentences(report: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", report) if s.strip()]


def sentence_statements(
    records: Sequence[Record], vocab: Vocabulary, keep: Sequence[int]
) -> list[list[list[StatedText]]]:
    """Per record and sentence (as :func:`split_sentences` cuts it), the finding statements in it
    (:meth:`ReportStructurer.statements`), with values in the ``keep`` columns of ``vocab``."""
    structurer = ReportStructurer(vocab)
    column = {vocabulary_index: k for k, vocabulary_index in enumerate(keep)}

    def read(record: Record) -> list[list[StatedText]]:
        per_sentence = []
        for sentence in split_sentences(record.report):
            statements = []
            for statement in structurer.statements(sentence):
                values = np.full(len(keep), np.nan, dtype=np.float32)
                for index, value in statement.values.items():
                    if index in column:
                        values[column[index]] = value
                if not np.isnan(values).all():
                    statements.append((statement.text, values))
            per_sentence.append(statements)
        return per_sentence

    return _once_per_report(records, read)


def sentence_finding_values(statements: list[list[StatedText]], num_findings: int) -> np.ndarray:
    """(sentences, K) values each sentence states alone (NaN: unmentioned), from its statements: per finding
    the strongest (present 1 > uncertain > negated 0), as the report structurer decides a report's value."""
    values = np.full((len(statements), num_findings), np.nan, dtype=np.float32)
    for k, sentence in enumerate(statements):
        for _, stated in sentence:
            values[k] = np.fmax(values[k], stated)
    return values


def _once_per_report(records: Sequence[Record], read: Callable[[Record], T]) -> list[T]:
    """``read(record)`` for every record, computed once per distinct report (reconstructions of one scan
    share their report)."""
    by_report: dict[str, T] = {}
    for record in records:
        if record.report not in by_report:
            by_report[record.report] = read(record)
    return [by_report[record.report] for record in records]


class ReportSentenceSampler:
    """The :class:`~domainclip.protocols.TextSampler` of report domains (see the module docstring)."""

    def __init__(
        self, records: Sequence[Record], config: ReportSamplingConfig, vocab: Vocabulary, keep: Sequence[int]
    ) -> None:
        self.reports = [r.report for r in records]
        self.sentences = [split_sentences(r.report) for r in records]
        self.sentence_dropout = config.sentence_dropout
        self.sentence_findings: list[np.ndarray] | None = None
        self.statements: list[list[list[StatedText]]] | None = None
        if config.sentence_dropout > 0:
            statements = sentence_statements(records, vocab, keep)  # read once: per-sentence values derive from them
            self.sentence_findings = [sentence_finding_values(s, len(keep)) for s in statements]
            if config.finding_statements > 0:
                self.statements = statements
        self.statement_rate = config.finding_statements if self.statements is not None else 0.0
        # whether sampled texts carry their own finding vectors (TextSampler protocol)
        self.carries_findings = config.sentence_targets == "sentences" and self.sentence_findings is not None
        # per report, the sentences that state at least one finding: a sampled subset is anchored on one of them
        self.informative = [np.flatnonzero(~np.isnan(v).all(axis=1)) for v in self.sentence_findings or []]

    def _kept_sentences(self, i: int) -> list[int] | None:
        """Indices of the sentences that stand in for report ``i``, or None for the whole report."""
        n = len(self.sentences[i])
        if self.sentence_dropout <= 0 or n < 2 or torch.rand(()) >= self.sentence_dropout:
            return None
        informative = self.informative[i] if self.informative else ()
        if len(informative):
            one = int(informative[int(torch.randint(len(informative), ()))])
        else:
            one = int(torch.randint(n, ()))
        if torch.rand(()) < 0.5:
            return [one]
        keep = torch.rand(n) < 0.5
        keep[one] = True
        return [k for k in range(n) if keep[k]]

    def __call__(self, i: int) -> tuple[str, torch.Tensor | None]:
        """The text standing in for report ``i`` and, with ``carries_findings``, the vector it states."""
        kept = self._kept_sentences(i)
        if kept is None:
            return self.reports[i], None
        choices = self.statements[i][kept[0]] if self.statement_rate > 0 and len(kept) == 1 else None
        if choices and torch.rand(()) < self.statement_rate:
            text, values = choices[int(torch.randint(len(choices), ()))]
            return text, torch.from_numpy(values) if self.carries_findings else None
        text = " ".join(self.sentences[i][k] for k in kept)
        if not self.carries_findings:
            return text, None
        stated = self.sentence_findings[i][kept]
        mentioned = ~np.isnan(stated).all(axis=0)
        values = np.full(stated.shape[1], np.nan, dtype=np.float32)
        values[mentioned] = np.nanmax(stated[:, mentioned], axis=0)  # strongest statement per finding
        return text, torch.from_numpy(values)
