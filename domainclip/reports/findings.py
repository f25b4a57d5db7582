"""Finding vectors of a dataset's records: silver from their texts (the report structurer), truth from the data.

Domains whose texts are free-text reports or captions build their label vectors here; the core never reads
texts itself.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from domainclip.config.schema import Recipe
from domainclip.data.cache import default_cache_root
from domainclip.errors import RecipeError
from domainclip.labels import Findings
from domainclip.records import Record
from domainclip.reports.batch import ReportVectorCache
from domainclip.reports.vocabulary import Vocabulary


def vocabulary_columns(path: Path, findings: Sequence[str] | None = None) -> tuple[Vocabulary, list[int]]:
    """The vocabulary at ``path`` and the columns of ``findings`` in it (all, in order, if None).

    Reports are always read with the whole vocabulary and the columns picked afterwards, so a finding's value
    does not depend on which others the recipe keeps.
    """
    vocab = Vocabulary.load(path)
    names = list(vocab.names)
    if findings:
        unknown = sorted(set(findings) - set(names))
        if unknown:
            raise RecipeError(f"data.findings: {unknown} not in the vocabulary {path}")
    return vocab, [names.index(n) for n in (findings or names)]


def per_text_vectors(
    records: Sequence[Record], vocab: Vocabulary, keep: Sequence[int], cache_root: Path | None = None
) -> list[np.ndarray]:
    """Per record, ``(texts, K)``: what each of its texts (captions) states alone in the ``keep`` columns, NaN
    where a text does not mention a finding."""
    texts = [text for r in records for text in r.texts]
    vectors = ReportVectorCache(vocab, cache_root, unmentioned_value=float("nan")).vectors(texts)[:, keep]
    bounds = np.cumsum([0, *(len(r.texts) for r in records)])
    return [vectors[start:end] for start, end in itertools.pairwise(bounds)]


def report_findings(
    records: Sequence[Record],
    vocab: Vocabulary,
    keep: Sequence[int],
    templates: Sequence[tuple[str, str]] | None = None,
    cache_root: Path | None = None,
    per_text: bool = False,
) -> Findings:
    """Silver vectors from each record's texts, ground truth from its ``findings``, in the ``keep`` columns.

    Each distinct text is structured once (:class:`~domainclip.reports.batch.ReportVectorCache`), and kept under
    ``cache_root`` when given. A record's texts are read as one report, or with ``per_text`` (several captions by
    different people) each alone, a finding then taking its strongest value over them (present in one caption is
    present; mentioned in none is absent, as in a report).
    """
    if per_text:
        stated = per_text_vectors(records, vocab, range(len(vocab.names)), cache_root)
        silver = np.stack([_strongest(v, len(vocab.names)) for v in stated]) if stated else np.zeros((0, 0))
    else:
        silver = ReportVectorCache(vocab, cache_root).vectors([r.report for r in records])
    names = list(vocab.names)
    truth = np.full((len(records), len(names)), np.nan, dtype=np.float32)
    for i, record in enumerate(records):
        for j, name in enumerate(names):
            value = record.findings.get(name)
            if value is not None:
                truth[i, j] = value
    return Findings(
        names=[names[k] for k in keep],
        templates=[tuple(t) for t in (templates or vocab.templates)],
        prompts={vocab.findings[k].name: vocab.findings[k].zeroshot_terms for k in keep},
        silver=silver[:, keep].astype(np.float32),
        truth=truth[:, keep],
        contrast={f.name: f.zeroshot_terms for f in vocab.findings} if vocab.negatives == "other_findings" else None,
    )


def _strongest(stated: np.ndarray, width: int) -> np.ndarray:
    """Per finding the strongest value its texts state (present 1 > uncertain > negated 0), 0 where none does."""
    if len(stated) == 0:
        return np.zeros(width, dtype=np.float32)
    mentioned = ~np.isnan(stated).all(axis=0)
    out = np.zeros(width, dtype=np.float32)
    out[mentioned] = np.nanmax(stated[:, mentioned], axis=0)
    return out


def recipe_vocabulary(recipe: Recipe, default_vocabulary: Path) -> tuple[Vocabulary, list[int]]:
    """The recipe's vocabulary (``data.vocabulary``, else the domain's default) and its ``data.findings`` columns."""
    return vocabulary_columns(recipe.data.vocabulary or default_vocabulary, recipe.data.findings)


def recipe_findings(
    recipe: Recipe, default_vocabulary: Path, records: Sequence[Record], per_text: bool = False
) -> Findings:
    """:func:`report_findings` with :func:`recipe_vocabulary` and the recipe's zero-shot ``evaluate.templates``:
    a text domain's ``Domain.findings``."""
    vocab, keep = recipe_vocabulary(recipe, default_vocabulary)
    cache_root = default_cache_root(recipe.data.cache_dir)
    return report_findings(records, vocab, keep, recipe.evaluate.templates, cache_root, per_text)
