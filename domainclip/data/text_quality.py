"""Say what is wrong with a report or caption that cannot be read as one, in words a user can act on.

Two kinds of answer. *Unusable* texts (empty, or only boilerplate such as "See attached.") carry no finding at all:
the data check refuses their rows like a missing image. *Suspect* texts (mostly symbols or digits, mostly
non-Latin letters, or no common English word in a long text) are heuristics: they are named beside the reports
that yielded no finding (``extract-findings``), never refused, because a terse English report can look like them.
"""

from __future__ import annotations

import re

# Whole-text placeholders that institutions put where a report should be (compared after lower-casing and
# dropping punctuation).
BOILERPLATE: frozenset[str] = frozenset(
    {
        "see attached",
        "see attached report",
        "see attachment",
        "see scanned report",
        "see scanned document",
        "see report",
        "see separate report",
        "see below",
        "see comment",
        "see note",
        "report to follow",
        "dictation to follow",
        "final report to follow",
        "pending",
        "report pending",
        "preliminary",
        "none",
        "nil",
        "na",
        "n a",
        "null",
        "nan",
        "tbd",
        "test",
        "xxx",
    }
)

# Words nearly every English report has and other languages' reports rarely do ("in", "a", "no", "normal" are
# left out: German, Spanish and Italian use them too); a long text with none of them is rarely English.
_ENGLISH_WORDS = frozenset(
    ("the", "of", "and", "is", "are", "was", "were", "with", "there", "not", "to", "for", "at", "by", "or", "be")
    + ("this", "that", "which", "from", "without", "seen", "noted")
)
_WORD = re.compile(r"[^\W\d_]+", re.UNICODE)


def unusable_reason(text: str) -> str | None:
    """Why ``text`` carries nothing to read ("report is empty", "report is only boilerplate ..."), else None."""
    normalised = " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())
    if not normalised:
        return "report is empty" if not text.strip() else "report holds no words"
    if normalised in BOILERPLATE:
        return f"report is only boilerplate ({text.strip()[:40]!r})"
    return None


def suspect_reason(text: str, min_words: int = 15) -> str | None:
    """Why ``text`` may not be an English report (garbled OCR, another language), else None."""
    visible = [ch for ch in text if not ch.isspace()]
    if not visible:
        return None
    letters = [ch for ch in visible if ch.isalpha()]
    if len(letters) / len(visible) < 0.5:
        return f"looks garbled: only {len(letters) / len(visible):.0%} of its characters are letters"
    latin = sum(ch.isascii() for ch in letters)
    if latin / len(letters) < 0.7:
        return f"not in the Latin alphabet: {1 - latin / len(letters):.0%} of its letters are outside a-z"
    words = [w.lower() for w in _WORD.findall(text)]
    if len(words) >= min_words and not any(w in _ENGLISH_WORDS for w in words):
        return f"does not read as English: none of its {len(words)} words is a common English word"
    return None


__all__ = ["BOILERPLATE", "suspect_reason", "unusable_reason"]
