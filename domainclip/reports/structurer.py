"""Turn free-text reports into finding vectors (soft labels, silver labels).

For every sentence outside ignored sections (see :mod:`domainclip.reports.sentences`):

1. find mentions of each finding: its literal terms (name and synonyms, case and
   hyphen insensitive, optional plural), its paraphrase regexes, and its absence
   regexes (phrases that state it absent without naming it: "margins are free of
   tumor" for a positive margin). A mention that lies inside a longer *literal* term
   of another finding is dropped ("coronary artery wall calcification" is not also
   "artery wall calcification").
2. find cues (negation, uncertainty, history, pseudo); where cues overlap the longest wins.
3. a forward cue scopes from its end to the end of its clause or the next cue; a
   backward cue from the start of its clause or the previous cue to its start. An
   absence mention is *negated*; else a mention overlapping a negation scope is
   *negated*, else one overlapping a history scope is *historical*, else one
   overlapping an uncertainty scope is *uncertain*, else it is *present*.

Per report, a finding takes the strongest status over its mentions
(present > uncertain > negated > historical), as CheXpert-style labelers do, and its
value is 1.0, ``uncertain_value``, 0.0, or ``unmentioned_value`` when never mentioned
or only as history (ConText's HISTORICAL: not a statement about this study).
The default ``unmentioned_value`` is 0.0: radiologists do not list every normal
finding, so for soft labels an unmentioned finding is treated as absent. Pass
``float("nan")`` to keep "not mentioned" distinguishable (empty cells in CSVs).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from domainclip.reports.audit import AuditRow
from domainclip.reports.sentences import Sentence, read_sentences
from domainclip.reports.vocabulary import Finding, Vocabulary

PRESENT, UNCERTAIN, NEGATED, HISTORICAL, UNMENTIONED = "present", "uncertain", "negated", "historical", "unmentioned"
_STRENGTH = {PRESENT: 4, UNCERTAIN: 3, NEGATED: 2, HISTORICAL: 1}
_SCOPED_STATUS = (("neg", NEGATED), ("hist", HISTORICAL), ("unc", UNCERTAIN))  # checked in this order


@dataclass(frozen=True)
class _Mention:
    start: int
    end: int
    finding: int  # index in the vocabulary
    literal: bool  # matched a name/synonym (not a paraphrase regex)
    absent: bool = False  # matched an absence regex: the phrase itself states the finding absent


@dataclass(frozen=True)
class _Cue:
    start: int
    end: int
    kind: str  # neg_pre, neg_post, hist_pre, hist_post, unc_pre, unc_post, pseudo, or stated (an absence phrase)
    text: str


@dataclass(frozen=True)
class Statement:
    """The shortest span of a sentence that states findings: a mention with its deciding cue
    ("No abdominal aortic aneurysm", "pleural effusion is not seen", "splenomegaly"), and the
    value of every finding mentioned inside it (vocabulary index -> value)."""

    text: str
    values: dict[int, float]


@dataclass(frozen=True)
class StructuredReport:
    """One report's finding vector (float32, vocabulary order) and its audit rows."""

    report_id: str
    vector: np.ndarray
    audit: list[AuditRow] = field(default_factory=list)

    def values(self) -> dict[str, float]:
        return {row.finding: row.value for row in self.audit}


def _phrase_pattern(phrase: str, plural: bool) -> str:
    """Regex body for a literal phrase: any whitespace/hyphen between words, word-bounded end.

    The end may touch a hyphen ("pericardial effusion-thickening"), the start may not,
    so "non-calcified coronary plaque" is not "calcified coronary plaque".
    """
    words = [re.escape(w) for w in re.split(r"[\s-]+", phrase) if w]
    body = r"[\s-]+".join(words)
    if plural and re.search(r"[^aeiou\W]y$", phrase, re.IGNORECASE):
        body = body[:-1] + r"(?:y|ies)"  # opacity -> opacities
    elif plural and phrase[-1:].isalpha():
        body += r"(?:e?s)?"
    return body + (r"(?!\w)" if re.search(r"\w$", phrase) else "")


def _alternation(phrases: Iterable[str], plural: bool = False) -> re.Pattern[str] | None:
    """One regex matching any of ``phrases``, longest first so the longest wins at a position.

    Phrases that start with a word character must start at a word boundary; that
    check is hoisted out of the alternation, which keeps matching fast.
    """
    unique = sorted({p.strip() for p in phrases if p.strip()}, key=len, reverse=True)
    if not unique:
        return None
    wordy = [_phrase_pattern(p, plural) for p in unique if re.match(r"\w", p)]
    other = [_phrase_pattern(p, plural) for p in unique if not re.match(r"\w", p)]
    branches = ([r"(?<![\w-])(?:" + "|".join(wordy) + ")"] if wordy else []) + other
    return re.compile("|".join(branches), re.IGNORECASE)


def _union(patterns: Sequence[str]) -> re.Pattern[str] | None:
    joined = "|".join(f"(?:{p})" for p in patterns)
    return re.compile(joined, re.IGNORECASE) if joined else None


class _FindingMatcher:
    """Literal-term, paraphrase and absence regexes of one finding."""

    def __init__(self, finding: Finding) -> None:
        self.literal = _alternation(finding.terms, plural=True)
        self.paraphrases = _union(finding.paraphrases)
        self.absences = _union(finding.absent_paraphrases)

    def mentions(self, text: str, index: int) -> list[_Mention]:
        found = [_Mention(m.start(), m.end(), index, True) for m in self.literal.finditer(text)]
        for pattern, absent in ((self.paraphrases, False), (self.absences, True)):
            if pattern is not None:
                found += [
                    _Mention(m.start(), m.end(), index, False, absent)
                    for m in pattern.finditer(text)
                    if m.end() > m.start()
                ]
        return found


class ReportStructurer:
    """Finding vectors and audit rows from report text, for one vocabulary."""

    def __init__(
        self,
        vocabulary: Vocabulary,
        uncertain_value: float = 0.5,
        unmentioned_value: float = 0.0,
    ) -> None:
        self.vocabulary = vocabulary
        self.uncertain_value = float(uncertain_value)
        self.unmentioned_value = float(unmentioned_value)
        self._matchers = [_FindingMatcher(f) for f in vocabulary.findings]
        cues = vocabulary.cues
        self._cue_patterns = {
            "neg_pre": _alternation(cues.negation_pre),
            "neg_post": _alternation(cues.negation_post),
            "unc_pre": _alternation(cues.uncertainty_pre),
            "unc_post": _alternation(cues.uncertainty_post),
            "hist_pre": _alternation(cues.historical_pre),
            "hist_post": _alternation(cues.historical_post),
            "pseudo": _alternation(cues.pseudo),
        }

    @property
    def names(self) -> list[str]:
        return self.vocabulary.names

    def structure(self, report_text: str, report_id: str) -> StructuredReport:
        """The finding vector of one report and one audit row per finding."""
        best: dict[int, tuple[str, str, str]] = {}  # finding index -> (status, cue, sentence)
        for sentence in read_sentences(report_text or "", self.vocabulary.cues):
            for index, status, cue in self._sentence_statuses(sentence):
                if index not in best or _STRENGTH[status] > _STRENGTH[best[index][0]]:
                    best[index] = (status, cue, sentence.text)
        vector = np.empty(len(self._matchers), dtype=np.float32)
        rows = []
        for index, name in enumerate(self.names):
            status, cue, text = best.get(index, (UNMENTIONED, "", ""))
            vector[index] = self._value(status)
            rows.append(AuditRow(str(report_id), name, float(vector[index]), text, status, cue))
        return StructuredReport(str(report_id), vector, rows)

    def structure_many(self, reports: Iterable[tuple[str, str]]) -> tuple[np.ndarray, list[AuditRow]]:
        """``(report_id, text)`` pairs -> (N, K) float32 matrix and all audit rows."""
        vectors, rows = [], []
        for report_id, text in reports:
            structured = self.structure(text, report_id)
            vectors.append(structured.vector)
            rows.extend(structured.audit)
        matrix = np.stack(vectors) if vectors else np.zeros((0, len(self.names)), dtype=np.float32)
        return matrix.astype(np.float32, copy=False), rows

    def statements(self, text: str) -> list[Statement]:
        """The finding statements of ``text`` in reading order, one per distinct span.

        Why: a text tower trained only on whole report sentences reads a bare zero-shot prompt
        ("aortic aneurysm.") as ambiguous, because positive sentences say more ("Infrarenal
        abdominal aortic aneurysm measuring 5.6 cm") and the bare words also occur in "No aortic
        aneurysm." and "assess for aortic aneurysm". The report's own short statements of a finding
        (with negation or hedge when there is one) teach it what the bare mention means.
        """
        found: dict[tuple[int, int], tuple[str, dict[int, float]]] = {}
        for sentence in read_sentences(text or "", self.vocabulary.cues):
            mentions = sorted(self._mentions(sentence.text), key=lambda m: (m.start, m.end))
            if not mentions:
                continue
            scopes = _scopes(self._cues(sentence.text), sentence)
            decided = [(m, *_deciding(m, sentence.text, scopes)) for m in mentions]
            decided = [entry for entry in decided if entry[1] != HISTORICAL]  # history states nothing of this study
            for mention, _, cue in decided:
                start, end = mention.start, mention.end
                if cue is not None:
                    start, end = min(start, cue.start), max(end, cue.end)
                inside = {
                    other.finding: self._value(status)
                    for other, status, _ in decided
                    if start <= other.start and other.end <= end
                }
                phrase = sentence.text[start:end].strip(" ,;:")
                found.setdefault((id(sentence), start, end), (phrase, inside))
        return [Statement(f"{phrase[:1].upper()}{phrase[1:]}.", values) for phrase, values in found.values()]

    def _value(self, status: str) -> float:
        values = {PRESENT: 1.0, UNCERTAIN: self.uncertain_value, NEGATED: 0.0}
        return values.get(status, self.unmentioned_value)

    def _sentence_statuses(self, sentence: Sentence) -> list[tuple[int, str, str]]:
        """(finding index, status, deciding cue) for every mention in one sentence."""
        mentions = self._mentions(sentence.text)
        if not mentions:
            return []
        scopes = _scopes(self._cues(sentence.text), sentence)
        return [(m.finding, *_status(m, sentence.text, scopes)) for m in mentions]

    def _mentions(self, text: str) -> list[_Mention]:
        found = [span for i, m in enumerate(self._matchers) for span in m.mentions(text, i)]
        literal = [s for s in found if s.literal]
        return [s for s in found if not any(_inside_other(s, o) for o in literal)]

    def _cues(self, text: str) -> list[_Cue]:
        """Non-overlapping cues in text order; of overlapping candidates the longest wins."""
        candidates = [
            _Cue(m.start(), m.end(), kind, m.group(0))
            for kind, pattern in self._cue_patterns.items()
            if pattern is not None
            for m in pattern.finditer(text)
        ]
        chosen: list[_Cue] = []
        for cue in sorted(candidates, key=lambda c: (c.start - c.end, c.start)):
            if all(cue.end <= other.start or cue.start >= other.end for other in chosen):
                chosen.append(cue)
        return sorted(chosen, key=lambda c: c.start)


def _inside_other(mention: _Mention, other: _Mention) -> bool:
    """True if ``mention`` lies strictly inside ``other``, a mention of another finding."""
    return (
        other.finding != mention.finding
        and other.start <= mention.start
        and mention.end <= other.end
        and other.end - other.start > mention.end - mention.start
    )


def _deciding(mention: _Mention, text: str, scopes: Sequence[tuple[_Cue, int, int]]) -> tuple[str, _Cue | None]:
    """The mention's status and the cue that decided it: an absence phrase is its own cue; else the first
    of negation, history, uncertainty whose scope overlaps the mention; else present (no cue)."""
    if mention.absent:
        return NEGATED, _Cue(mention.start, mention.end, "stated", text[mention.start : mention.end])
    for prefix, status in _SCOPED_STATUS:
        for cue, start, end in scopes:
            if cue.kind.startswith(prefix) and mention.start < end and mention.end > start:
                return status, cue
    return PRESENT, None


def _status(mention: _Mention, text: str, scopes: Sequence[tuple[_Cue, int, int]]) -> tuple[str, str]:
    """The status of a mention and the text of the cue that decided it (empty when present)."""
    status, cue = _deciding(mention, text, scopes)
    return status, cue.text if cue is not None else ""


def _scopes(cues: Sequence[_Cue], sentence: Sentence) -> list[tuple[_Cue, int, int]]:
    """(cue, start, end) character ranges each negation/uncertainty cue governs."""
    active = [c for c in cues if c.kind != "pseudo"]
    scopes = []
    for i, cue in enumerate(active):
        clause_start, clause_end = sentence.clause_of(cue.start)
        if cue.kind.endswith("_pre"):
            end = min([clause_end] + [c.start for c in active[i + 1 :] if c.start >= cue.end][:1])
            scopes.append((cue, cue.end, end))
        else:
            start = max([clause_start] + [c.end for c in active[:i] if c.end <= cue.start][-1:])
            scopes.append((cue, start, cue.start))
    return scopes


__all__ = [
    "HISTORICAL",
    "NEGATED",
    "PRESENT",
    "UNCERTAIN",
    "UNMENTIONED",
    "ReportStructurer",
    "Statement",
    "StructuredReport",
]
