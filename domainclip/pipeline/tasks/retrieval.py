"""Image-text retrieval on the evaluated split: every text of every record, many-to-many positives."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
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


RETRIEVAL_EXAMPLES, EXAMPLE_TOP_K = 4, 5


def retrieval_examples(
    similarity: torch.Tensor, positives: torch.Tensor, records: Sequence[Record], texts: Sequence[str], owners
) -> list[dict[str, Any]]:
    """A few text -> image queries as a person reads them: the text, its own record, the top images found and
    which of them are right. Queries are spread evenly over the split (the first text of each chosen record), so
    the examples are neither the best nor the worst cases."""
    first_text = {int(owner): j for j, owner in reversed(list(enumerate(owners.tolist())))}
    chosen = np.unique(np.linspace(0, len(records) - 1, min(RETRIEVAL_EXAMPLES, len(records))).round().astype(int))
    examples = []
    for i in chosen:
        j = first_text[int(i)]
        order = similarity[:, j].argsort(descending=True)
        ranked_right = positives[order, j]
        examples.append(
            {
                "query": texts[j],
                "record": records[i].id,
                "found": [records[k].id for k in order[:EXAMPLE_TOP_K].tolist()],
                "right": ranked_right[:EXAMPLE_TOP_K].tolist(),
                "scores": [round(float(similarity[k, j]), 4) for k in order[:EXAMPLE_TOP_K].tolist()],
                "first_right_rank": int(ranked_right.nonzero()[0, 0]) + 1,
            }
        )
    return examples


def retrieval_metrics_for(
    loaded, image_emb: torch.Tensor, records: Sequence[Record], n_boot: int, examples_file: Path | None = None
) -> dict[str, Any]:
    """``retrieval.*`` on ``records`` (every text against every image); with ``examples_file``, a few queries
    and what they found are written there as JSON for the run report."""
    from domainclip.heads.retrieval import retrieval_metrics
    from domainclip.pipeline.embedding import embed_texts

    texts, owners = texts_and_owners(records)
    similarity = image_emb @ embed_texts(loaded, texts).T
    positives = retrieval_positives(records, texts, owners)
    out = {f"retrieval.{k}": v for k, v in retrieval_metrics(similarity, positives).items()}
    out.update(_recall_interval(similarity, positives, n_boot))
    out["retrieval.n_texts"] = len(texts)
    if examples_file is not None:
        examples = retrieval_examples(similarity, positives, records, texts, owners)
        examples_file.write_text(json.dumps(examples, indent=1) + "\n", encoding="utf-8")
    return out
