"""Negation, uncertainty and history cues, and the report sections that are never read.

These are the package defaults; a vocabulary YAML may add to every list (see
:mod:`domainclip.reports.vocabulary`). The lists follow NegEx's split into cues that
scope *forward* ("no pleural effusion") and cues that scope *backward*
("a renal cyst is not seen"), plus pseudo-cues that contain a cue word but negate
nothing ("no change in"). Where cues overlap, the longest match wins, so
"cannot be excluded" is uncertainty, not negation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

NEGATION_PRE: tuple[str, ...] = (
    "no",
    "not",
    "without",
    "none",
    "never",
    "nor",
    "neither",
    "no evidence of",
    "no evidence for",
    "without evidence of",
    "no sign of",
    "no signs of",
    "no definite",
    "no convincing",
    "no findings of",
    "no findings to suggest",
    "negative for",
    "free of",
    "clear of",
    "absence of",
    "resolution of",
    "ruled out for",
    "not suspicious for",
    "not concerning for",
    "not suggestive of",
    "not consistent with",
    "no history of",
    "no prior history of",
    "no known history of",
)

NEGATION_POST: tuple[str, ...] = (
    "is not seen",
    "are not seen",
    "not seen",
    "is not identified",
    "are not identified",
    "not identified",
    "is not visualized",
    "are not visualized",
    "not visualized",
    "not present",
    "not demonstrated",
    "not detected",
    "not observed",
    "not appreciated",
    "is absent",
    "are absent",
    "absent",
    "has resolved",
    "have resolved",
    "resolved",
    "was ruled out",
    "is ruled out",
    "are ruled out",
    "ruled out",
    "is excluded",
    "are excluded",
    ": none",
    ": negative",
    ": absent",
    "no longer seen",
    "no longer present",
    "no longer visualized",
    "no longer visible",
    "no longer identified",
    "no longer evident",
    "has cleared",
    "have cleared",
    "has been resected",
    "have been resected",
    "was resected",
    "is unlikely",
    "are unlikely",
)

UNCERTAINTY_PRE: tuple[str, ...] = (
    "possible",
    "possibly",
    "probable",
    "probably",
    "likely",
    "presumed",
    "presumably",
    "suspected",
    "questionable",
    "question of",
    "may represent",
    "may be",
    "might represent",
    "could represent",
    "could be",
    "could reflect",
    "may reflect",
    "might reflect",
    "suspicious for",
    "suspicious of",
    "concerning for",
    "suggestive of",
    "suggesting",
    "cannot exclude",
    "can not exclude",
    "cannot rule out",
    "can not rule out",
    "equivocal",
    "borderline",
    "rule out",
    "evaluate for",
    "assess for",
    "differential diagnosis includes",
)

UNCERTAINTY_POST: tuple[str, ...] = (
    "cannot be excluded",
    "can not be excluded",
    "cannot be ruled out",
    "can not be ruled out",
    "not excluded",
    "not ruled out",
    "is not excluded",
    "is suspected",
    "are suspected",
    "is questioned",
    "is possible",
    "is not entirely excluded",
)

# "No <change>" says the finding is still there ("no interval increase in the nodule"): every lead x degree x
# change word below is a pseudo-cue, so the "no" inside it negates nothing.
_CHANGE_LEADS = ("no", "without")
_CHANGE_DEGREES = (
    "",
    "significant",
    "substantial",
    "appreciable",
    "definite",
    "further",
    "interval",
    "significant interval",
    "substantial interval",
    "appreciable interval",
    "definite interval",
)
_CHANGE_WORDS = ("change", "changes", "increase", "decrease", "progression", "worsening", "growth", "enlargement")

# Contain a cue word but scope nothing; they occupy their span so the cue inside is ignored.
PSEUDO: tuple[str, ...] = (
    *(
        " ".join(w for w in (lead, degree, word) if w)
        for lead in _CHANGE_LEADS
        for degree in _CHANGE_DEGREES
        for word in _CHANGE_WORDS
    ),
    "not significantly changed",
    "not changed",
    "not only",
    "not necessarily",
    "gram negative",
)

# Statements about the patient's past, not this study ("history of pleural effusion", "status post resection
# of a lung nodule"): a finding they govern is *historical*, valued like an unmentioned one (ConText's
# HISTORICAL modifier). A finding stated now as well ("History of emphysema. Emphysema.") is still present.
HISTORICAL_PRE: tuple[str, ...] = (
    "history of",
    "h/o",
    "prior history of",
    "past history of",
    "previous history of",
    "known history of",
    "personal history of",
    "family history of",
    "status post",
    "s/p",
)

HISTORICAL_POST: tuple[str, ...] = (
    "in the past",
    "years ago",
)

# Words that end a clause: a cue's scope never crosses them (";" does the same).
TERMINATORS: tuple[str, ...] = (
    "but",
    "however",
    "although",
    "though",
    "whereas",
    "except",
    "apart from",
    "aside from",
    "which",
    "otherwise",
)

# Section headers whose text is not a statement about this study (indications name
# findings the study may not have, "evaluate for nephrolithiasis").
IGNORED_SECTIONS: tuple[str, ...] = (
    "clinical information",
    "clinical history",
    "clinical indication",
    "clinical details",
    "history",
    "indication",
    "indications",
    "reason for exam",
    "reason for examination",
    "reason for study",
    "technique",
    "comparison",
    "comparisons",
    "procedure",
    "protocol",
)

# Section headers that are read (recognised anywhere in the text, also in one-line reports).
READ_SECTIONS: tuple[str, ...] = (
    "findings",
    "impression",
    "impressions",
    "conclusion",
    "conclusions",
    "report",
    "summary",
    "opinion",
    "result",
    "results",
    "addendum",
    "interpretation",
)


@dataclass(frozen=True)
class CueLists:
    """All cue lists one structurer uses (defaults plus a vocabulary's additions)."""

    negation_pre: tuple[str, ...] = NEGATION_PRE
    negation_post: tuple[str, ...] = NEGATION_POST
    uncertainty_pre: tuple[str, ...] = UNCERTAINTY_PRE
    uncertainty_post: tuple[str, ...] = UNCERTAINTY_POST
    historical_pre: tuple[str, ...] = HISTORICAL_PRE
    historical_post: tuple[str, ...] = HISTORICAL_POST
    pseudo: tuple[str, ...] = PSEUDO
    terminators: tuple[str, ...] = TERMINATORS
    ignored_sections: tuple[str, ...] = IGNORED_SECTIONS
    read_sections: tuple[str, ...] = field(default=READ_SECTIONS)

    def extended(self, **extra: list[str]) -> CueLists:
        """A copy with ``extra[name]`` appended to list ``name`` (duplicates dropped)."""
        merged = {}
        for name, values in extra.items():
            current = getattr(self, name)
            merged[name] = current + tuple(v for v in dict.fromkeys(values) if v not in current)
        return CueLists(**{**self.__dict__, **merged})
