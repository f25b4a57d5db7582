"""Cross-modal prototype loss: swapped prediction of Sinkhorn-Knopp assignments.

SwAV-style (and SongCi's prototype bag for pathology) applied across modalities: a
set of learnable prototypes (unit vectors) is shared by both towers. Each sample's
similarities to the prototypes are turned into a balanced soft assignment ``q`` by a
few Sinkhorn-Knopp iterations (no gradient), which stops the trivial solution of all
samples picking one prototype. The image of a pair must predict its report's
assignment and the report the image's::

    L = -1/2 mean_i [ sum_k q_text_ik log p_image_ik + sum_k q_image_ik log p_text_ik ]

with ``p = softmax(similarity / temperature)``. The loss is usable alone or added to a
contrastive loss (``output_dict`` returns ``{"prototype_loss": ...}`` for summing).

Distributed: Sinkhorn's normalisations are all-reduced, so the assignments are those
of the concatenated batch; rank r returns the mean over its samples. The mean over
ranks is the single-process loss ``L``; rank r's features receive
``world_size * dL/d(features_r)`` (so DDP's average is exact) and the prototypes'
gradient averaged over ranks is ``dL/dprototypes``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import distributed as dist
from torch import nn

from ._checks import check_features, check_finite, compute_dtype, full_precision
from ._distributed import all_reduce_, resolve_world


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float, iterations: int, world_size: int = 1) -> torch.Tensor:
    """Balanced soft assignments (B, K) of samples to prototypes; each row sums to 1.

    ``scores`` are this rank's (B, K) similarities; with ``world_size > 1`` the
    normalisations run over the batch of all ranks (as in SwAV).
    """
    distributed = world_size > 1
    peak = scores.max()
    if distributed:
        all_reduce_(peak, dist.ReduceOp.MAX)
    q = torch.exp((scores - peak) / epsilon).T  # (K, B), in (0, 1]
    num_prototypes = q.shape[0]
    num_samples = q.shape[1] * world_size
    total = q.sum()
    if distributed:
        all_reduce_(total)
    q /= total
    for _ in range(iterations):
        per_prototype = q.sum(dim=1, keepdim=True)
        if distributed:
            all_reduce_(per_prototype)
        q /= per_prototype * num_prototypes  # every prototype gets 1/K of the mass
        q /= q.sum(dim=0, keepdim=True) * num_samples  # every sample gets 1/B of the mass
    return (q * num_samples).T


class PrototypeLoss(nn.Module):
    """Learnable prototypes with cross-modal swapped Sinkhorn assignments.

    Args:
        dim: feature width of both towers.
        num_prototypes: number of prototypes (SongCi uses 1024 on patch features).
        temperature: softmax temperature of the predictions.
        epsilon: Sinkhorn entropy regularisation (0.05 in SwAV and SongCi).
        sinkhorn_iterations: Sinkhorn-Knopp iterations (3 in SwAV and SongCi).
        rank, world_size: ``None`` reads them from torch.distributed at every call.
    """

    def __init__(
        self,
        dim: int,
        num_prototypes: int = 256,
        temperature: float = 0.1,
        epsilon: float = 0.05,
        sinkhorn_iterations: int = 3,
        rank: int | None = None,
        world_size: int | None = None,
    ) -> None:
        super().__init__()
        if dim < 1 or num_prototypes < 1:
            raise ValueError(f"dim and num_prototypes must be >= 1, got {dim}, {num_prototypes}")
        if temperature <= 0 or epsilon <= 0 or sinkhorn_iterations < 1:
            raise ValueError(
                f"temperature and epsilon must be > 0 and sinkhorn_iterations >= 1, got "
                f"{temperature}, {epsilon}, {sinkhorn_iterations}"
            )
        self.temperature = temperature
        self.epsilon = epsilon
        self.sinkhorn_iterations = sinkhorn_iterations
        self.rank = rank
        self.world_size = world_size
        self.prototypes = nn.Parameter(torch.randn(num_prototypes, dim) / math.sqrt(dim))

    def forward(
        self, image_features: torch.Tensor, text_features: torch.Tensor, output_dict: bool = False
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Loss for (B, D) image and text features of matching pairs."""
        check_features(image_features, text_features)
        if image_features.shape[1] != self.prototypes.shape[1]:
            raise ValueError(
                f"image_features width {image_features.shape[1]} does not match the prototypes' "
                f"dim {self.prototypes.shape[1]}"
            )
        check_finite(image_features=image_features, text_features=text_features)
        _, world_size = resolve_world(self.rank, self.world_size)
        with full_precision(image_features.device):
            dtype = compute_dtype(image_features, text_features, self.prototypes)
            prototypes = F.normalize(self.prototypes.to(dtype), dim=1)
            image_scores = F.normalize(image_features.to(dtype), dim=1) @ prototypes.T
            text_scores = F.normalize(text_features.to(dtype), dim=1) @ prototypes.T
            image_assign = sinkhorn_knopp(image_scores, self.epsilon, self.sinkhorn_iterations, world_size)
            text_assign = sinkhorn_knopp(text_scores, self.epsilon, self.sinkhorn_iterations, world_size)
            image_predicts = (text_assign * F.log_softmax(image_scores / self.temperature, dim=1)).sum(dim=1)
            text_predicts = (image_assign * F.log_softmax(text_scores / self.temperature, dim=1)).sum(dim=1)
            loss = -(image_predicts.mean() + text_predicts.mean()) / 2
        return {"prototype_loss": loss} if output_dict else loss
