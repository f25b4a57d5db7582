"""Prompt ensembles, binary zero-shot probabilities and MI-Zero top-k pooling."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from domainclip.heads.zeroshot import (
    binary_zeroshot_probs,
    class_text_embeddings,
    fill_template,
    mi_zero_topk,
    other_class_negatives,
)
from domainclip.models.logit_scale import LogitScale


class FakeTextEncoder:
    """A fixed random vector per prompt; records the calls."""

    def __init__(self, dim: int = 8) -> None:
        self.dim, self.table, self.calls = dim, {}, []

    def __call__(self, prompts: list[str]) -> torch.Tensor:
        self.calls.append(list(prompts))
        for p in prompts:
            if p not in self.table:
                g = torch.Generator().manual_seed(len(self.table))
                self.table[p] = torch.randn(self.dim, generator=g) * (1 + len(self.table))  # unequal norms
        return torch.stack([self.table[p] for p in prompts])


def test_ensemble_is_the_renormalised_mean_of_normalised_prompt_embeddings():
    encode = FakeTextEncoder()
    classes = {
        "pleural effusion": ["pleural effusion", "fluid in the pleural space"],
        "cardiomegaly": ["cardiomegaly"],
    }
    templates = ["{finding}.", "a CT showing {finding}."]
    emb = class_text_embeddings(encode, classes, templates)
    assert len(encode.calls) == 1 and len(encode.calls[0]) == 6  # one batched call
    prompts = [t.format(finding=s) for s in classes["pleural effusion"] for t in templates]
    expected = F.normalize(torch.stack([F.normalize(encode.table[p], dim=0) for p in prompts]).mean(0), dim=0)
    assert emb.shape == (2, 8)
    assert torch.allclose(emb[0], expected, atol=1e-6)
    assert torch.allclose(emb.norm(dim=1), torch.ones(2))


def test_templates_accept_one_field_of_any_name():
    assert fill_template("no {finding}.", "nodule") == "no nodule."
    assert fill_template("a photo of {}.", "harbour") == "a photo of harbour."
    with pytest.raises(ValueError, match="exactly one"):
        fill_template("{a} and {b}", "x")
    with pytest.raises(ValueError, match="non-empty list"):
        class_text_embeddings(FakeTextEncoder(), {"x": "x"}, ["{}"])


def test_binary_probabilities_are_the_two_prompt_softmax():
    g = torch.Generator().manual_seed(0)
    image, pos, neg = (
        torch.randn(5, 8, generator=g),
        torch.randn(3, 8, generator=g),
        torch.randn(3, 8, generator=g),
    )
    scale = LogitScale()
    probs = binary_zeroshot_probs(image, pos, neg, scale)
    i, p, n = F.normalize(image, dim=1), F.normalize(pos, dim=1), F.normalize(neg, dim=1)
    logits = torch.stack([i @ p.T, i @ n.T], dim=-1) * scale().detach()
    assert probs.shape == (5, 3)
    assert torch.allclose(probs, logits.softmax(-1)[..., 0], atol=1e-6)
    assert torch.allclose(binary_zeroshot_probs(image, pos, neg, float(scale().detach())), probs)
    assert torch.allclose(binary_zeroshot_probs(image, neg, pos, scale), 1 - probs, atol=1e-6)


def test_other_class_negatives_are_the_renormalised_mean_of_the_other_classes():
    g = torch.Generator().manual_seed(0)
    emb = F.normalize(torch.randn(4, 8, generator=g), dim=1)
    names = ["water", "sea", "forest", "road"]
    neg = other_class_negatives(emb, names, ["forest", "water"])
    assert neg.shape == (2, 8)
    assert torch.allclose(neg[0], F.normalize(emb[[0, 1, 3]].mean(0), dim=0), atol=1e-6)
    assert torch.allclose(neg[1], F.normalize(emb[[1, 2, 3]].mean(0), dim=0), atol=1e-6)
    with pytest.raises(ValueError, match="not among"):
        other_class_negatives(emb, names, ["snow"])
    with pytest.raises(ValueError, match="at least two"):
        other_class_negatives(emb[:1], names[:1], names[:1])


def test_mi_zero_topk_pooling():
    logits = torch.tensor([[0.1, 0.9], [0.7, 0.2], [0.4, 0.3], [0.8, 0.0]])
    assert torch.allclose(mi_zero_topk(logits, 2), torch.tensor([0.75, 0.6]))
    assert torch.allclose(mi_zero_topk(logits, 100), logits.mean(0))  # k beyond the bag: mean pooling
    batched = torch.stack([logits, logits.flip(0)])
    assert torch.allclose(mi_zero_topk(batched, 1), torch.tensor([[0.8, 0.9], [0.8, 0.9]]))
    with pytest.raises(ValueError):
        mi_zero_topk(torch.zeros(0, 2), 1)
