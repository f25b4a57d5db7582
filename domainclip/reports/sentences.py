"""Cut a report into the sentences that describe the study, and sentences into clauses.

Negation and uncertainty never cross a sentence, and inside a sentence they stop at
a clause boundary (";" or a terminator word such as "but"). Sections whose text
is not a statement about this study (indication, history, technique, comparison)
are skipped: "evaluate for nephrolithiasis" says nothing about the kidneys.

Section headers are recognised anywhere when they are known names followed by a
colon ("FINDINGS:", also inside one-line CSV reports), and at the start of a line
for any short capitalised label ("Kidneys:"). A skipped section runs to the next
header.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from domainclip.reports.cues import CueLists

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_ENUMERATION = re.compile(r"^\s*(?:\(?\d{1,2}[.)]|[-*\u2022])\s+")
_LINE_HEADER = re.compile(r"(?m)^[ \t]*(?P<name>[A-Z][A-Za-z /&-]{1,40}?)[ \t]*:")


@dataclass(frozen=True)
class Sentence:
    """A sentence of a read section, with its clauses as (start, end) spans in ``text``."""

    text: str
    section: str
    clauses: tuple[tuple[int, int], ...]

    def clause_of(self, position: int) -> tuple[int, int]:
        """The clause containing character ``position`` (the nearest one after it if on a boundary)."""
        for start, end in self.clauses:
            if position < end:
                return (start, end) if position >= start else (position, end)
        return self.clauses[-1] if self.clauses else (0, len(self.text))


@lru_cache(maxsize=32)
def _known_header_pattern(names: tuple[str, ...]) -> re.Pattern[str]:
    alternation = "|".join(r"\s+".join(map(re.escape, n.split())) for n in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![\w-])(?P<name>{alternation})[ \t]*:", re.IGNORECASE)


@lru_cache(maxsize=32)
def _terminator_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    alternation = "|".join(r"\s+".join(map(re.escape, w.split())) for w in sorted(words, key=len, reverse=True))
    return re.compile(rf";|(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)


def _sections(report: str, cues: CueLists) -> list[tuple[str, str]]:
    """(lower-cased section name, text) in order; text before any header has name ''.

    Known headers ("FINDINGS:") are cut out of the text; line labels ("Kidneys:",
    "Pleural effusion: none") only start a new section and stay in it, because the
    label may itself name a finding.
    """
    known = _known_header_pattern(tuple(cues.ignored_sections) + tuple(cues.read_sections))
    boundaries = {m.start("name"): (m, False) for m in _LINE_HEADER.finditer(report)}
    boundaries.update({m.start("name"): (m, True) for m in known.finditer(report)})
    sections: list[tuple[str, str]] = []
    name, body_start = "", 0
    for start in sorted(boundaries):
        match, is_known = boundaries[start]
        if start < body_start:
            continue
        sections.append((name, report[body_start:start]))
        name = " ".join(match.group("name").lower().split())
        body_start = match.end() if is_known else start
    sections.append((name, report[body_start:]))
    return sections


def _clauses(text: str, cues: CueLists) -> tuple[tuple[int, int], ...]:
    spans, start = [], 0
    for match in _terminator_pattern(tuple(cues.terminators)).finditer(text):
        if match.start() > start:
            spans.append((start, match.start()))
        start = match.end()
    if start < len(text):
        spans.append((start, len(text)))
    return tuple(spans)


def read_sentences(report: str, cues: CueLists) -> list[Sentence]:
    """The sentences of ``report`` outside ignored sections, each with its clauses."""
    ignored = set(cues.ignored_sections)
    sentences = []
    for section, body in _sections(report, cues):
        if section in ignored:
            continue
        for piece in _SENTENCE_END.split(body):
            text = _ENUMERATION.sub("", piece).strip()
            if any(ch.isalpha() for ch in text):
                sentences.append(Sentence(text=text, section=section, clauses=_clauses(text, cues)))
    return sentences


__all__ = ["Sentence", "read_sentences"]
