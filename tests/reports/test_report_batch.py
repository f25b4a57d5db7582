"""Many reports at once: each distinct text once, across processes, cached on disk, identical to one by one."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from domainclip.domains.ct.domain import CTDomain
from domainclip.reports import ReportStructurer, Vocabulary
from domainclip.reports.batch import ReportVectorCache, vocabulary_digest

TEXTS = ["Small left pleural effusion.", "No ascites.", "Possible splenomegaly.", "See attached."]


def vocabulary() -> Vocabulary:
    return Vocabulary.load(CTDomain().default_vocabulary())


def test_vectors_equal_reading_every_record_and_a_second_run_reads_the_cache(tmp_path: Path, monkeypatch) -> None:
    vocab = vocabulary()
    texts = TEXTS * 3  # several records share each report
    expected = ReportStructurer(vocab).structure_many((str(i), t) for i, t in enumerate(texts))[0]
    np.testing.assert_array_equal(ReportVectorCache(vocab, tmp_path).vectors(texts), expected)
    assert len(list(tmp_path.rglob("*.npy"))) == len(TEXTS)  # one entry per distinct text

    def refuse(self, texts):
        raise AssertionError(f"structured {len(texts)} text(s) again")

    monkeypatch.setattr(ReportVectorCache, "_structure", refuse)
    np.testing.assert_array_equal(ReportVectorCache(vocab, tmp_path).vectors(texts), expected)


def test_worker_processes_give_the_same_vectors(monkeypatch) -> None:
    from domainclip.reports import batch

    monkeypatch.setattr(batch, "PARALLEL_FROM", 1)
    monkeypatch.setattr(batch, "CHUNK", 2)
    vocab = vocabulary()
    expected = ReportStructurer(vocab).structure_many((str(i), t) for i, t in enumerate(TEXTS))[0]
    np.testing.assert_array_equal(ReportVectorCache(vocab, None, workers=2).vectors(TEXTS), expected)


def test_the_cache_is_keyed_by_vocabulary_and_values_and_survives_a_damaged_entry(tmp_path: Path) -> None:
    vocab = vocabulary()
    other = Vocabulary.from_dict({"findings": [{"name": "ascites"}]})
    assert vocabulary_digest(vocab, 0.5, 0.0) != vocabulary_digest(other, 0.5, 0.0)
    assert vocabulary_digest(vocab, 0.5, 0.0) != vocabulary_digest(vocab, 0.5, float("nan"))
    cache = ReportVectorCache(vocab, tmp_path)
    first = cache.vectors(TEXTS)
    next(tmp_path.rglob("*.npy")).write_bytes(b"not an array")
    np.testing.assert_array_equal(ReportVectorCache(vocab, tmp_path).vectors(TEXTS), first)
