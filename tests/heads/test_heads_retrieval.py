"""Retrieval metrics with many-to-many ground truth, pessimistic ties, and exact torch / faiss search."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from domainclip.errors import DataError
from domainclip.heads.retrieval import (
    faiss_available,
    first_positive_ranks,
    retrieval_metrics,
    topk_search,
)


def test_hand_built_many_to_many_example():
    # 2 images, 4 captions: image 0 owns captions 0,1; image 1 owns captions 2,3.
    sim = torch.tensor([[0.9, 0.1, 0.8, 0.2], [0.3, 0.4, 0.1, 0.5]])
    pos = torch.tensor([[1, 1, 0, 0], [0, 0, 1, 1]]).bool()
    out = retrieval_metrics(sim, pos, ks=(1, 2))
    # image 0: best positive 0.9 ranks 1; image 1: best positive 0.5 ranks 1
    assert out["image_to_text.R@1"] == 1.0 and out["image_to_text.mean_rank"] == 1.0
    # captions (columns): c0 -> image 0 (0.9 > 0.3) rank 1; c1 -> image 1 0.4 > 0.1: rank 2;
    # c2 -> image 0 0.8 > 0.1: rank 2; c3 -> image 1 0.5 > 0.2: rank 1
    assert out["text_to_image.R@1"] == 0.5 and out["text_to_image.R@2"] == 1.0
    assert out["text_to_image.median_rank"] == 1.5 and out["text_to_image.mean_rank"] == 1.5
    assert out["mean_recall"] == pytest.approx(np.mean([1.0, 1.0, 0.5, 1.0]))


def test_equals_a_brute_force_argsort_reference_on_random_data():
    g = torch.Generator().manual_seed(0)
    sim = torch.randn(40, 90, generator=g)
    pos = torch.rand(40, 90, generator=g) < 0.04
    pos[torch.arange(40), torch.arange(40)] = True
    pos[torch.arange(40) % 40, 40 + torch.arange(40)] = True
    pos[:10, 80:] = True  # a shared report matched by ten studies
    out = retrieval_metrics(sim, pos)
    for direction, (s, p) in {"image_to_text": (sim, pos), "text_to_image": (sim.T, pos.T)}.items():
        order = torch.argsort(s, dim=1, descending=True)
        ranks = np.array([int(torch.nonzero(p[i, order[i]])[0]) + 1 for i in range(len(s))])
        for k in (1, 5, 10):
            assert out[f"{direction}.R@{k}"] == pytest.approx((ranks <= k).mean())
        assert out[f"{direction}.median_rank"] == np.median(ranks)
        assert out[f"{direction}.mean_rank"] == pytest.approx(ranks.mean())
    recalls = [out[f"{d}.R@{k}"] for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)]
    assert out["mean_recall"] == pytest.approx(np.mean(recalls))


def test_ties_are_pessimistic_so_a_collapsed_model_scores_badly():
    pos = torch.eye(5).bool()
    ranks = first_positive_ranks(torch.zeros(5, 5), pos)
    assert ranks.tolist() == [5] * 5
    assert retrieval_metrics(torch.zeros(5, 5), pos)["image_to_text.R@1"] == 0.0


def test_queries_without_a_positive_are_named():
    pos = torch.eye(3).bool()
    pos[1, 1] = False
    with pytest.raises(DataError, match="images 1 have no matching text"):
        retrieval_metrics(torch.randn(3, 3), pos)
    with pytest.raises(ValueError, match="same"):
        retrieval_metrics(torch.randn(3, 4), torch.eye(3).bool())


def test_torch_search_is_exact_and_chunked(monkeypatch):
    from domainclip.heads import retrieval

    g = torch.Generator().manual_seed(1)
    index, queries = torch.randn(500, 16, generator=g), torch.randn(37, 16, generator=g)
    expected = torch.topk(queries @ index.T, 7, dim=1)
    monkeypatch.setattr(retrieval, "_CHUNK_ELEMENTS", 500 * 5)  # 5 queries per chunk
    scores, ids = topk_search(queries, index, 7, backend="torch")
    assert torch.equal(ids, expected.indices) and torch.allclose(scores, expected.values)


@pytest.mark.skipif(not faiss_available(), reason="faiss not installed")
def test_faiss_and_torch_return_the_same_neighbours():
    g = torch.Generator().manual_seed(2)
    index = torch.nn.functional.normalize(torch.randn(3000, 64, generator=g), dim=1)
    queries = torch.nn.functional.normalize(torch.randn(50, 64, generator=g), dim=1)
    s_torch, i_torch = topk_search(queries, index, 10, backend="torch")
    s_faiss, i_faiss = topk_search(queries, index, 10, backend="faiss")
    assert torch.equal(i_torch, i_faiss)
    assert torch.allclose(s_torch, s_faiss, atol=1e-5)


def test_search_argument_errors():
    with pytest.raises(ValueError, match="k=11"):
        topk_search(torch.randn(2, 4), torch.randn(10, 4), 11)
    with pytest.raises(ValueError, match="share d"):
        topk_search(torch.randn(2, 3), torch.randn(10, 4), 1)
    with pytest.raises(ValueError, match="backend"):
        topk_search(torch.randn(2, 4), torch.randn(10, 4), 1, backend="annoy")
