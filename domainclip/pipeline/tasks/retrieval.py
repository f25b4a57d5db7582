"""Image-text retrieval on the evaluated split: every text of every record, many-to-many positives."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from domainclip.pipeline.tasks.intervals import interval_keys
from domainclip.records import Record, group_ids


def texts_and_owners(records: Sequence[Record]) -> tuple[list[str], torch.Tensor]:
    """Every text of ``records`` in order, and the index of the record each belongs to."""
    texts = [text for r in records for text in r.texts]
    owners = torch.tensor([i for i, r in enumerate(records) for _ in r.texts], dtype=torch.long)
    return texts, owners


def retrieval_positives(records: Sequence[Record], texts: Sequence[str], owners: torch.Tensor) -> torch.Tensor:
    """(images, texts): image i matches text j when j belongs to i, to a record sharing i's report (same
    report id), or says exactly what one of i's texts says (identical normal reports, repeated captions)."""
    groups = group_ids(records)
    own = {i: {t.strip() for t in r.texts} for i, r in enumerate(records)}
    same_text = torch.tensor([[t.strip() in own[i] for t in texts] for i in range(len(records))])
    return (groups[:, None] == groups[owners][None, :]) | same_text


def _recall_interval(similarity: torch.Tensor, positives: torch.Tensor, n_boot: int) -> dict[str, Any]:
    """CI of the mean recall over resampled queries (images and texts resampled separately, gallery fixed)."""
    from domainclip.heads.retrieval import RECALL_KS, first_positive_ranks

    if n_boot == 0:
        return {}
    ranks = (
        first_positive_ranks(similarity, positives).numpy(),
        first_positive_ranks(similarity.T, positives.T).numpy(),
    )
    rng = np.random.default_rng(0)
    values = []
    for _ in range(n_boot):
        recalls = [
            (r[rng.integers(0, len(r), len(r))][:, None] <= np.array(RECALL_KS)[None, :]).mean(axis=0) for r in ranks
        ]
        values.append(float(np.concatenate(recalls).mean()))
    return interval_keys("retrieval.mean_recall", np.array(values))


def retrieval_metrics_for(loaded, image_emb: torch.Tensor, records: Sequence[Record], n_boot: int) -> dict[str, Any]:
    from domainclip.heads.retrieval import retrieval_metrics
    from domainclip.pipeline.embedding import embed_texts

    texts, owners = texts_and_owners(records)
    similarity = image_emb @ embed_texts(loaded, texts).T
    positives = retrieval_positives(records, texts, owners)
    out = {f"retrieval.{k}": v for k, v in retrieval_metrics(similarity, positives).items()}
    out.update(_recall_interval(similarity, positives, n_boot))
    out["retrieval.n_texts"] = len(texts)
    return out
