"""The report structurer with negspaCy's NegEx deciding negation: the engine issue 12 measured against ours.

medspaCy cannot be installed beside this project's stack on Python 3.11 (docs/report_structuring.md, "Engine"),
so the library engine measured is negspaCy 1.1 (NegEx with its ``en_clinical`` termset on spaCy 3.8's tokenizer):
the same sentences, sections and vocabulary mentions as :class:`~domainclip.reports.ReportStructurer`, the
mentions handed to NegEx as spaCy entities, NegEx deciding which are negated, and our cues deciding history and
uncertainty for the rest. ``with_our_cues`` adds our negation, pseudo and terminator lists to NegEx's termset.

Not part of the package (it measured worse, see the docs); needs ``pip install negspacy==1.1.0``.
"""

from __future__ import annotations

from domainclip.reports import ReportStructurer, Vocabulary
from domainclip.reports.sentences import Sentence
from domainclip.reports.structurer import NEGATED, PRESENT, _deciding, _scopes


def negspacy_available() -> bool:
    try:
        import negspacy  # noqa: F401
    except ImportError:
        return False
    return True


class NegspacyStructurer(ReportStructurer):
    """Negation by negspaCy's NegEx; mentions, sections, history and uncertainty as in ours."""

    def __init__(self, vocabulary: Vocabulary, *, with_our_cues: bool = True, **values: float) -> None:
        import spacy
        from negspacy.negation import Negex  # noqa: F401  (registers the "negex" factory)
        from negspacy.termsets import termset

        super().__init__(vocabulary, **values)
        cues = vocabulary.cues
        terms = termset("en_clinical")
        ours_uncertain = set(cues.uncertainty_pre) | set(cues.uncertainty_post)
        clinical = terms.get_patterns()
        terms.remove_patterns(  # "rule out", "evaluate for" are uncertainty here, as in our structurer
            {key: [p for p in clinical[key] if p in ours_uncertain] for key in clinical}
        )
        if with_our_cues:
            terms.add_patterns(
                {
                    "preceding_negations": list(cues.negation_pre),
                    "following_negations": list(cues.negation_post),
                    "pseudo_negations": list(cues.pseudo) + list(cues.uncertainty_post),
                    "termination": list(cues.terminators) + [";"],
                }
            )
        self._nlp = spacy.blank("en")
        self._sentencizer = self._nlp.add_pipe("sentencizer")
        self._negex = self._nlp.add_pipe("negex", config={"neg_termset": terms.get_patterns()})

    def _sentence_statuses(self, sentence: Sentence) -> list[tuple[int, str, str]]:
        mentions = self._mentions(sentence.text)
        if not mentions:
            return []
        doc = self._sentencizer(self._nlp.make_doc(sentence.text))
        spans = {m: doc.char_span(m.start, m.end, label="FINDING", alignment_mode="expand") for m in mentions}
        entities, last_end = [], -1
        for span in sorted(
            {(s.start, s.end): s for s in spans.values() if s is not None}.values(), key=lambda s: s.start
        ):
            if span.start >= last_end:  # spaCy entities may not overlap: the first of overlapping mentions
                entities.append(span)
                last_end = span.end
        doc.ents = entities
        negated = {(e.start, e.end) for e in self._negex(doc).ents if e._.negex}
        scopes = [s for s in _scopes(self._cues(sentence.text), sentence) if not s[0].kind.startswith("neg")]
        statuses = []
        for mention in mentions:
            span = spans[mention]
            if mention.absent or (span is not None and (span.start, span.end) in negated):
                statuses.append((mention.finding, NEGATED, "negex"))
                continue
            status, cue = _deciding(mention, sentence.text, scopes)
            statuses.append((mention.finding, status, cue.text if cue is not None and status != PRESENT else ""))
        return statuses
