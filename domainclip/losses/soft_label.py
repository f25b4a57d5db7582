"""CLIP loss towards soft targets built from the findings in the reports.

Two studies with the same findings should not be pushed apart as if they were
unrelated: the targets are :class:`~.soft_targets.SoftTargets` (see there for the
similarity, unknown/uncertain handling and why all-normal vectors are safe), and the
loss is the symmetric cross-entropy ``-1/2 mean_i sum_j T_ij log softmax_rows(Z)_ij``
plus the same over texts. With ``soft_weight=0`` (or no findings, no groups) it is
exactly :class:`~.clip.ClipLoss`; so it is when every finding vector is a distinct
one-hot and the temperature goes to 0.

Findings and group ids are gathered from all ranks with the features (no gradient),
so every rank builds the targets of the global batch; group ids must therefore mean
the same on every rank (e.g. the report's row in the dataset). Distributed gradient
semantics are those of :class:`~.clip.ClipLoss`.
"""

from __future__ import annotations

import torch

from ._checks import check_features, check_findings, check_groups
from .clip import ClipLoss, gather_targets_inputs
from .soft_targets import SoftTargets


class SoftLabelClipLoss(ClipLoss):
    """Symmetric InfoNCE towards finding-similarity soft labels.

    Args:
        temperature: softmax temperature of the finding agreement (see SoftTargets).
        soft_weight: weight of the finding-similarity targets; the rest goes to the (group)
            identity. 0 is plain CLIP.
        local_loss, gather_with_grad, cache_labels, rank, world_size, memory_bounded,
            chunk_size: as in :class:`ClipLoss`.
        num_findings: if given, finding vectors of any other length are rejected
            (catches a vocabulary that does not match the model's).
    """

    def __init__(
        self,
        temperature: float = 0.1,
        soft_weight: float = 0.5,
        local_loss: bool = False,
        gather_with_grad: bool = False,
        cache_labels: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
        memory_bounded: bool = False,
        chunk_size: int = 1024,
        num_findings: int | None = None,
    ) -> None:
        super().__init__(
            local_loss=local_loss,
            gather_with_grad=gather_with_grad,
            cache_labels=cache_labels,
            rank=rank,
            world_size=world_size,
            memory_bounded=memory_bounded,
            chunk_size=chunk_size,
        )
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= soft_weight <= 1.0:
            raise ValueError(f"soft_weight must be in [0, 1], got {soft_weight}")
        self.temperature = temperature
        self.soft_weight = soft_weight
        self.num_findings = num_findings

    def _targets(
        self,
        world_size: int,
        dtype: torch.dtype,
        findings: torch.Tensor | None = None,
        groups: torch.Tensor | None = None,
        text_findings: torch.Tensor | None = None,
    ) -> SoftTargets | None:
        if findings is None and groups is None:
            return None
        findings, groups, text_findings = gather_targets_inputs(findings, groups, text_findings, world_size=world_size)
        return SoftTargets(
            findings,
            groups,
            temperature=self.temperature,
            soft_weight=self.soft_weight,
            dtype=dtype,
            text_findings=text_findings,
        )

    def forward(
        self,
        image_features: torch.Tensor,
        text_features: torch.Tensor,
        logit_scale: torch.Tensor | float,
        findings: torch.Tensor | None = None,
        groups: torch.Tensor | None = None,
        output_dict: bool = False,
        text_findings: torch.Tensor | None = None,
    ) -> torch.Tensor | dict[str, torch.Tensor]:
        """Loss for (B, D) features.

        Args:
            findings: (B, K) float; 1 present, 0 absent, uncertain as a probability of
                presence (pass 0.5), NaN unknown. ``None``: identity targets.
            groups: (B,) int64; equal ids share a report and are positives of each other.
            text_findings: (B, K) what each text states, when it is not the whole report
                its image's ``findings`` come from (e.g. a few sentences sampled from it);
                ``None``: the texts carry ``findings`` too.
        """
        check_features(image_features, text_features)
        batch_size = image_features.shape[0]
        if text_findings is not None and findings is None:
            raise ValueError("text_findings given without findings (the images' finding vectors)")
        if findings is not None:
            check_findings(findings, batch_size, self.num_findings)
            findings = findings.to(image_features.device)
        if text_findings is not None:
            check_findings(text_findings, batch_size, findings.shape[1])
            text_findings = text_findings.to(image_features.device)
        if groups is not None:
            check_groups(groups, batch_size)
            groups = groups.to(image_features.device)
        loss = self._loss(
            image_features,
            text_features,
            logit_scale,
            findings=findings,
            groups=groups,
            text_findings=text_findings,
        )
        return {"contrastive_loss": loss} if output_dict else loss
