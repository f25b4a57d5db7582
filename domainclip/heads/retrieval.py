"""Cross-modal retrieval: recall@k both ways, ranks, mean recall, and exact top-k search.

Metrics follow the RSICD / RSITMD protocol: an image query is answered when *any*
of its positive texts is in the top k (several captions per image, several studies
sharing one report: ``positives`` is a many-to-many boolean matrix), and the mean
recall ``mean_recall`` is the mean of R@1/5/10 in both directions.

Recalls are **fractions in [0, 1]** (papers print percentages: multiply by 100).
Ranks are 1-based ranks of the best-ranked positive. Ties are pessimistic: a
negative with a similarity equal to the best positive counts as ranked above it,
so a collapsed model that scores everything the same does not get R@1 = 1.

Search (``topk_search``) is exact inner-product search: chunked matmul + top-k in
torch, or faiss' ``IndexFlatIP`` when installed; both return the same neighbours.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch

from domainclip.errors import DataError

RECALL_KS = (1, 5, 10)
FAISS_MIN_INDEX = 100_000  # "auto" uses faiss from this many index vectors on; see benchmarks/heads.py
_CHUNK_ELEMENTS = 1 << 25  # similarity entries held at once by the torch path (128 MB in float32)

Backend = Literal["auto", "torch", "faiss"]


def faiss_available() -> bool:
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _topk_torch(queries: torch.Tensor, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = max(1, _CHUNK_ELEMENTS // max(1, index.shape[0]))
    scores, ids = [], []
    for start in range(0, queries.shape[0], rows):
        top = torch.topk(queries[start : start + rows] @ index.T, k, dim=1)
        scores.append(top.values)
        ids.append(top.indices)
    return torch.cat(scores), torch.cat(ids)


def _topk_faiss(queries: torch.Tensor, index: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    import faiss

    flat = faiss.IndexFlatIP(index.shape[1])
    flat.add(np.ascontiguousarray(index.numpy(), dtype=np.float32))
    scores, ids = flat.search(np.ascontiguousarray(queries.numpy(), dtype=np.float32), k)
    return torch.from_numpy(scores), torch.from_numpy(ids).long()


@torch.no_grad()
def topk_search(
    queries: torch.Tensor, index: torch.Tensor, k: int, backend: Backend = "auto"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact top-``k`` by inner product: ``(scores (q, k), indices (q, k))``, best first.

    Normalise both sides first for cosine similarity. ``backend="auto"`` uses faiss
    when it is installed and the index has at least ``FAISS_MIN_INDEX`` vectors.
    """
    queries = torch.as_tensor(queries).detach().float().cpu()
    index = torch.as_tensor(index).detach().float().cpu()
    if queries.ndim == 1:
        queries = queries[None]
    if queries.ndim != 2 or index.ndim != 2 or queries.shape[1] != index.shape[1]:
        raise ValueError(
            f"queries (q, d) and index (n, d) must share d; got {tuple(queries.shape)} and {tuple(index.shape)}"
        )
    if not 1 <= k <= index.shape[0]:
        raise ValueError(f"k={k} must be between 1 and the index size {index.shape[0]}")
    if backend == "auto":
        backend = "faiss" if index.shape[0] >= FAISS_MIN_INDEX and faiss_available() else "torch"
    if backend == "faiss":
        return _topk_faiss(queries, index, k)
    if backend == "torch":
        return _topk_torch(queries, index, k)
    raise ValueError(f"backend must be 'auto', 'torch' or 'faiss', got {backend!r}")


def first_positive_ranks(similarity: torch.Tensor, positives: torch.Tensor, rows: int = 1024) -> torch.Tensor:
    """(n_queries,) 1-based rank of each row's best positive; equal-scoring negatives rank above it."""
    ranks = []
    for start in range(0, similarity.shape[0], rows):
        sim, pos = similarity[start : start + rows], positives[start : start + rows]
        best_positive = torch.where(pos, sim, torch.full_like(sim, -torch.inf)).max(dim=1, keepdim=True).values
        ranks.append(1 + ((sim >= best_positive) & ~pos).sum(dim=1))
    return torch.cat(ranks)


def _no_positive_error(pos: torch.Tensor, query: str, target: str) -> DataError:
    missing = torch.nonzero(~pos.any(dim=1)).reshape(-1).tolist()
    shown = ", ".join(map(str, missing[:5])) + (f" ... ({len(missing)} in all)" if len(missing) > 5 else "")
    return DataError(f"retrieval: {query} {shown} have no matching {target} in `positives`")


@torch.no_grad()
def retrieval_metrics(
    similarity: torch.Tensor, positives: torch.Tensor, ks: Sequence[int] = RECALL_KS
) -> dict[str, float]:
    """Recall@k (fractions), median / mean rank in both directions and ``mean_recall``.

    ``similarity`` is (n_images, n_texts); ``positives`` the same-shape boolean
    matrix of matching pairs. Keys: ``image_to_text.R@1`` ... ``text_to_image.R@10``,
    ``image_to_text.median_rank``, ``image_to_text.mean_rank`` (same for
    ``text_to_image``), ``mean_recall`` (mean of the 2 x len(ks) recalls) and the same recalls of a random
    ranking under ``chance.`` (:func:`chance_recalls`).
    """
    sim = torch.as_tensor(similarity).detach().float().cpu()
    pos = torch.as_tensor(positives).detach().cpu().bool()
    if sim.ndim != 2 or sim.shape != pos.shape:
        raise ValueError(
            f"similarity and positives must be the same (n_images, n_texts) shape; got "
            f"{tuple(sim.shape)} and {tuple(pos.shape)}"
        )
    if not pos.any(dim=1).all():
        raise _no_positive_error(pos, "images", "text")
    if not pos.any(dim=0).all():
        raise _no_positive_error(pos.T, "texts", "image")
    out: dict[str, float] = {}
    recalls = []
    for direction, (s, p) in {"image_to_text": (sim, pos), "text_to_image": (sim.T, pos.T)}.items():
        ranks = first_positive_ranks(s, p).double()
        for k in ks:
            recall = float((ranks <= k).double().mean())
            out[f"{direction}.R@{k}"] = recall
            recalls.append(recall)
        out[f"{direction}.median_rank"] = float(np.median(ranks.numpy()))
        out[f"{direction}.mean_rank"] = float(ranks.mean())
    out["mean_recall"] = float(np.mean(recalls))
    out.update({f"chance.{key}": value for key, value in chance_recalls(pos, ks).items()})
    return out


def chance_recalls(positives: torch.Tensor, ks: Sequence[int] = RECALL_KS) -> dict[str, float]:
    """Recall@k a random ranking scores on average, both ways, and their mean: the level to read recalls against.

    A query with ``p`` positives among ``g`` candidates misses all of them in a random top k with probability
    ``C(g - p, k) / C(g, k)``; the expected recall is the mean over queries of one minus that.
    """
    pos = torch.as_tensor(positives).bool()
    out: dict[str, float] = {}
    for direction, p in {"image_to_text": pos, "text_to_image": pos.T}.items():
        gallery = p.shape[1]
        counts = p.sum(dim=1).double().numpy()
        for k in ks:
            miss = np.ones_like(counts)
            for j in range(min(k, gallery)):
                miss *= np.clip(gallery - counts - j, 0, None) / (gallery - j)
            out[f"{direction}.R@{k}"] = float((1 - miss).mean())
    out["mean_recall"] = float(np.mean(list(out.values())))
    return out


__all__ = [
    "FAISS_MIN_INDEX",
    "RECALL_KS",
    "chance_recalls",
    "faiss_available",
    "first_positive_ranks",
    "retrieval_metrics",
    "topk_search",
]
