"""Similarity of two studies' finding vectors: cosine, with "no abnormality" as a finding.

Entries are probabilities that a finding is present (1 present, 0 absent, uncertain
in between; 0.5 is the suggested encoding for "possible"), NaN when the report says
nothing. Each vector is extended by one more entry, "no abnormality", the probability
that every known finding is absent (``prod_k (1 - f_k)``), and ``S`` is the cosine of
the extended vectors, in [0, 1] since entries are non-negative.

Why this one:

* it is the cosine Cardiac-CLIP uses, made well-defined: an all-zero ("normal")
  vector has no norm, so the plain cosine is 0/0 = NaN. Extended, a normal study is
  ``(0, ..., 0, 1)``: two normal studies have ``S = 1`` (positives of each other) and
  every extended vector has a norm > 0 (either some ``f_k > 0`` or "normal" is 1).
* abnormalities drive it: a nodule study and a normal study have ``S = 0``; {A, B}
  against {A} has 1/sqrt(2). Counting shared *absences* instead (agreement/Hamming)
  would make any two sparse reports ~(K-2)/K similar and the targets near-uniform.
* an uncertain finding sits halfway: {A: 0.5} has ``S = 1/sqrt(2)`` both with {A}
  and with a normal study.
* on fully known vectors ``S`` is one matmul of pre-normalised vectors, fused with the
  shift and scale the soft targets need: cheap enough for (B, B) every step.

Unknown entries are ignored pairwise: a finding counts in the dot product and in both
norms only where both studies know it. "No abnormality" is each study's own (none of
its known findings present); a study with nothing known has no evidence at all and is
similar to nothing but itself (``S = 0``, so it falls back to its identity target).
Partially known batches cost three small matmuls per tile instead of one.
"""

from __future__ import annotations

import torch


class FindingSimilarity:
    """Tiles of ``(S - 1) / temperature`` for one batch of (N, K) finding vectors."""

    def __init__(self, findings: torch.Tensor, dtype: torch.dtype = torch.float32) -> None:
        known = ~torch.isnan(findings)
        present = torch.where(known, findings, 0).to(dtype)
        normal = torch.prod(1 - present, dim=1, keepdim=True)  # unknown entries count as 1 - 0
        self._tiny = torch.finfo(dtype).tiny
        self._dtype, self._device = dtype, findings.device
        if bool(known.all()):
            extended = torch.cat([present, normal], dim=1)
            self._unit = extended / extended.norm(dim=1, keepdim=True)  # norm > 0, see module doc
            self._known = None
            return
        normal = normal * known.any(dim=1, keepdim=True)  # nothing known: no evidence of normality
        ones = torch.ones_like(normal)
        self._extended = torch.cat([present, normal], dim=1)
        self._squares = self._extended.square()
        self._known = torch.cat([known.to(dtype), ones], dim=1)  # "normal" is always comparable

    def __call__(
        self, rows: slice, cols: slice, temperature: float = 1.0, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A tile of ``(S - 1) / temperature`` (shifted and scaled because that is what the
        soft targets exponentiate; fused into the last operation it costs no extra pass)."""
        offset = torch.tensor(-1 / temperature, dtype=self._dtype, device=self._device)
        if self._known is None:
            return torch.addmm(
                offset, self._unit[rows], self._unit[cols].T, alpha=1 / temperature, out=out
            )
        # Cosine over the jointly known entries: each norm counts only what the other sample knows.
        dot = self._extended[rows] @ self._extended[cols].T
        norms = self._squares[rows] @ self._known[cols].T
        norms.mul_(self._known[rows] @ self._squares[cols].T)
        inverse_norms = norms.clamp_(min=self._tiny).rsqrt_()  # dot = 0 wherever a norm is 0
        return torch.addcmul(
            offset, dot, inverse_norms, value=1 / temperature, out=dot if out is None else out
        )
