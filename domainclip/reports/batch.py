"""Finding vectors of many reports, fast: each distinct text once, across processes, cached on disk.

Why: CT-RATE's 50,188 volumes share about 25,700 distinct reports (reconstructions of a scan share one), and a
recipe reads them at every run. Here each distinct text is structured once; texts not in the cache are split
over worker processes; results are kept under ``<cache>/reports/<vocabulary digest>/`` as one ``.npy`` per text
(written atomically, read with ``allow_pickle=False``), so a second run reads instead of structuring. The digest
covers the whole vocabulary (findings, terms, cues, sections), the uncertain / unmentioned values and
:data:`STRUCTURER_VERSION`, which changes whenever the rules change: a cached vector is never one that other
rules would have read differently.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from domainclip.reports.structurer import ReportStructurer
from domainclip.reports.vocabulary import Vocabulary

STRUCTURER_VERSION = 3  # bump with every change to how reports are read (cues, matching, sections)
PARALLEL_FROM = 2000  # distinct uncached texts from which worker processes pay for their start-up
CHUNK = 500


def vocabulary_digest(vocab: Vocabulary, uncertain_value: float, unmentioned_value: float) -> str:
    content = repr((vocab.findings, vocab.cues, uncertain_value, unmentioned_value, STRUCTURER_VERSION))
    return hashlib.sha256(content.encode("utf-8")).hexdigest()[:16]


def _structure_chunk(args: tuple[Vocabulary, float, float, list[str]]) -> np.ndarray:
    vocab, uncertain_value, unmentioned_value, texts = args
    structurer = ReportStructurer(vocab, uncertain_value=uncertain_value, unmentioned_value=unmentioned_value)
    return structurer.structure_many((str(i), text) for i, text in enumerate(texts))[0]


class ReportVectorCache:
    """``vectors(texts)`` -> (N, K) float32 in vocabulary order, as :meth:`ReportStructurer.structure_many`."""

    def __init__(
        self,
        vocab: Vocabulary,
        cache_root: Path | None,
        uncertain_value: float = 0.5,
        unmentioned_value: float = 0.0,
        workers: int | None = None,
    ) -> None:
        self.vocab = vocab
        self.values = (float(uncertain_value), float(unmentioned_value))
        digest = vocabulary_digest(vocab, *self.values)
        self.directory = None if cache_root is None else Path(cache_root) / "reports" / digest
        self.workers = workers or min(os.cpu_count() or 1, 8)

    def _path(self, text: str) -> Path:
        return self.directory / f"{hashlib.sha256(text.encode('utf-8')).hexdigest()[:32]}.npy"

    def _read(self, text: str) -> np.ndarray | None:
        if self.directory is None:
            return None
        path = self._path(text)
        try:
            return np.load(path, allow_pickle=False) if path.exists() else None
        except (OSError, ValueError, EOFError):  # a damaged entry is a miss and is rewritten
            return None

    def _write(self, text: str, vector: np.ndarray) -> None:
        if self.directory is None:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        descriptor, tmp = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".npy")
        with os.fdopen(descriptor, "wb") as handle:
            np.save(handle, vector, allow_pickle=False)
        os.replace(tmp, self._path(text))

    def _structure(self, texts: list[str]) -> np.ndarray:
        jobs = [(self.vocab, *self.values, texts[i : i + CHUNK]) for i in range(0, len(texts), CHUNK)]
        if len(texts) < PARALLEL_FROM or self.workers < 2:
            parts = [_structure_chunk(job) for job in jobs]
        else:
            with ProcessPoolExecutor(max_workers=self.workers) as pool:
                parts = list(pool.map(_structure_chunk, jobs))
        return np.concatenate(parts) if parts else np.zeros((0, len(self.vocab.findings)), dtype=np.float32)

    def vectors(self, texts: Sequence[str]) -> np.ndarray:
        distinct = list(dict.fromkeys(texts))
        found = {text: vector for text in distinct if (vector := self._read(text)) is not None}
        missing = [text for text in distinct if text not in found]
        if missing:
            for text, vector in zip(missing, self._structure(missing)):
                found[text] = vector
                self._write(text, vector)
        if not texts:
            return np.zeros((0, len(self.vocab.findings)), dtype=np.float32)
        return np.stack([found[text] for text in texts]).astype(np.float32, copy=False)
