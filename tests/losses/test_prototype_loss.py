"""PrototypeLoss: Sinkhorn-Knopp assignments and cross-modal swapped prediction."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from loss_helpers import unit_features

from domainclip.losses import PrototypeLoss, sinkhorn_knopp


def test_sinkhorn_rows_are_distributions_and_prototypes_balance():
    scores = F.normalize(torch.randn(64, 16, generator=torch.Generator().manual_seed(0)), dim=1)
    assignments = sinkhorn_knopp(scores, epsilon=0.05, iterations=3)
    assert (assignments >= 0).all()
    torch.testing.assert_close(assignments.sum(dim=1), torch.ones(64))
    converged = sinkhorn_knopp(scores, epsilon=0.05, iterations=200)
    torch.testing.assert_close(converged.sum(dim=0), torch.full((16,), 64 / 16), atol=1e-3, rtol=1e-3)
    # without balancing, the raw softmax piles samples onto few prototypes
    raw = torch.softmax(scores / 0.05, dim=1).sum(dim=0)
    assert raw.max() / raw.min() > 5 * (converged.sum(0).max() / converged.sum(0).min())


def test_matching_pairs_predict_each_other_better_than_mismatched():
    torch.manual_seed(0)
    loss = PrototypeLoss(dim=16, num_prototypes=32)
    image, _ = unit_features(48, 16, seed=3)
    text = image + 0.05 * torch.randn_like(image)
    shuffled = text[torch.randperm(48)]
    assert loss(image, text) < loss(image, shuffled) - 0.5


def test_gradients_reach_features_and_prototypes_and_training_lowers_the_loss():
    torch.manual_seed(1)
    loss = PrototypeLoss(dim=8, num_prototypes=16)
    image, text = unit_features(32, 8, seed=4)
    projection = torch.nn.Linear(8, 8)
    optimizer = torch.optim.SGD([*loss.parameters(), *projection.parameters()], lr=0.5)
    first = loss(projection(image.detach()), text.detach())
    for _ in range(30):
        optimizer.zero_grad()
        value = loss(projection(image.detach()), text.detach())
        value.backward()
        assert loss.prototypes.grad.abs().sum() > 0
        optimizer.step()
    assert value < first - 0.1


def test_output_dict_key():
    image, text = unit_features(4, 8, seed=0)
    assert set(PrototypeLoss(dim=8, num_prototypes=4)(image, text, output_dict=True)) == {"prototype_loss"}
