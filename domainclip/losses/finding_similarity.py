"""Similarity of two finding vectors: cosine, with "no abnormality" as a finding.

Entries are probabilities that a finding is present (1 present, 0 absent, uncertain
in between; 0.5 is the suggested encoding for "possible"), NaN when the text says
nothing. The similarity of a pair is computed over the findings both know: each of
the two vectors, restricted to them, is extended by one more entry, "no abnormality",
the probability that all of them are absent (``prod_k (1 - f_k)``), and ``S`` is the
cosine of the extended vectors, in [0, 1] since entries are non-negative.

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
* "no abnormality" is taken over the *jointly* known findings, so a partial vector is
  compared with what it states and nothing else. This is what a single report sentence
  used as the text of a pair needs: "No pleural effusion." ({effusion: 0}) has ``S = 1``
  with every study without an effusion, whatever else that study shows, and ``S = 0``
  with every study with one. Taken over each vector's own known findings, it would call
  "No pleural effusion." and "No ascites." identical (both "normal") and a cardiomegaly
  study without effusion unlike "No pleural effusion.".
* a pair that knows no finding in common has no evidence either way: ``S = 0``.
* on fully known vectors ``S`` is one matmul of pre-normalised vectors, fused with the
  shift and scale the soft targets need: cheap enough for (B, B) every step. When one
  side is fully known (whole reports against report sentences) a tile costs three small
  (K-deep) matmuls, when both are partly known five: the "normal" entry of each side
  over each pair's joint findings is one matmul in log space.

Rows and columns may come from different vectors (an image's whole report against the
sentences its text was sampled from); ``S`` is symmetric in the pair, so the
column-major view is the same object with the roles swapped.
"""

from __future__ import annotations

import torch


class _Side:
    """One side's vectors in the forms the pairwise terms need."""

    def __init__(self, findings: torch.Tensor, dtype: torch.dtype) -> None:
        known = ~torch.isnan(findings)
        self.all_known = bool(known.all())
        self.present = torch.where(known, findings, 0).to(dtype)
        self.known = known.to(dtype)
        self.squares = self.present.square()
        self.min_known = int(known.sum(dim=1).min()) if len(findings) else 0
        # log(1 - f) over known entries (0 where unknown): "normal" over a joint set is exp(log_absent @ known.T),
        # see joint_normal.
        tiny = torch.finfo(dtype).tiny
        self.log_absent = torch.log((1 - self.present).clamp_(min=tiny)) * self.known
        # over its own known findings (what a fully known partner sees): exact, unknown entries count 1 - 0
        self.normal = torch.prod(1 - self.present, dim=1)
        norms = (self.squares.sum(dim=1) + self.normal.square()).sqrt()
        self.inverse_norm = torch.where(known.any(dim=1), norms.clamp(min=tiny).reciprocal(), 0)
        if self.all_known:
            extended = torch.cat([self.present, self.normal[:, None]], dim=1)
            self.unit = extended * self.inverse_norm[:, None]  # norm > 0, see module doc


class FindingSimilarity:
    """Tiles of ``(S - 1) / temperature`` between (N, K) row and (M, K) column finding vectors.

    Args:
        findings: the rows' vectors.
        dtype: compute precision.
        columns: the columns' vectors; ``None``: the rows' own (a square, symmetric ``S``).
    """

    def __init__(
        self,
        findings: torch.Tensor,
        dtype: torch.dtype = torch.float32,
        columns: torch.Tensor | None = None,
    ) -> None:
        if columns is not None and columns.shape[1] != findings.shape[1]:
            raise ValueError(
                f"row and column finding vectors must have the same length, got "
                f"{findings.shape[1]} and {columns.shape[1]}"
            )
        self._rows = _Side(findings, dtype)
        self._cols = self._rows if columns is None else _Side(columns, dtype)
        self._num_findings = findings.shape[1]
        self._tiny = torch.finfo(dtype).tiny
        self._dtype, self._device = dtype, findings.device

    def transposed(self) -> FindingSimilarity:
        """The same similarity with rows and columns swapped (``S`` is symmetric in the pair)."""
        swapped = object.__new__(FindingSimilarity)
        swapped.__dict__.update(self.__dict__)
        swapped._rows, swapped._cols = self._cols, self._rows
        return swapped

    def __call__(
        self, rows: slice, cols: slice, temperature: float = 1.0, out: torch.Tensor | None = None
    ) -> torch.Tensor:
        """A tile of ``(S - 1) / temperature`` (shifted and scaled because that is what the
        soft targets exponentiate; fused into the last operation it costs no extra pass)."""
        offset = torch.tensor(-1 / temperature, dtype=self._dtype, device=self._device)
        r, c = self._rows, self._cols
        if r.all_known and c.all_known:
            return torch.addmm(offset, r.unit[rows], c.unit[cols].T, alpha=1 / temperature, out=out)
        if r.all_known:
            dot, inverse_norms = _one_side_known(r, rows, c, cols)
        elif c.all_known:
            dot, inverse_norms = _one_side_known(c, cols, r, rows)
            dot, inverse_norms = dot.T, inverse_norms.T
        else:
            dot, inverse_norms = self._both_partial(rows, cols)
        return torch.addcmul(offset, dot, inverse_norms, value=1 / temperature, out=dot if out is None else out)

    def _both_partial(self, rows: slice, cols: slice) -> tuple[torch.Tensor, torch.Tensor]:
        """Over the joint findings J of each pair: x . y + normal_x(J) normal_y(J), and 1 / the norms."""
        r, c = self._rows, self._cols
        row_known, col_known = r.known[rows], c.known[cols]
        row_normal = joint_normal(r.log_absent[rows], col_known.T)
        col_normal = joint_normal(row_known, c.log_absent[cols].T)
        dot = torch.addcmul(r.present[rows] @ c.present[cols].T, row_normal, col_normal)
        norms = torch.addcmul(r.squares[rows] @ col_known.T, row_normal, row_normal)
        norms.mul_(torch.addcmul(row_known @ c.squares[cols].T, col_normal, col_normal))
        inverse_norms = norms.clamp_(min=self._tiny).rsqrt_()
        # unless every pair must share a finding (pigeonhole), some may know nothing in common: S = 0
        if r.min_known + c.min_known <= self._num_findings:
            inverse_norms.masked_fill_((row_known @ col_known.T) == 0, 0)
        return dot, inverse_norms


# exp(-30) stands for 0 (a present finding in the joint set): far below float32's resolution of S, and its
# square and products stay normal numbers. Letting it underflow instead (log(tiny) sums) makes the CPU take
# its denormal slow path on every such entry, which slows whole tiles down.
LOG_FLOOR = -30.0


def joint_normal(left: torch.Tensor, right: torch.Tensor) -> torch.Tensor:
    """``exp(left @ right)`` with the floor: one side's log(1 - f) against the other's known mask
    (in either order) gives, per pair, the product of (1 - f) over the findings both know."""
    return (left @ right).clamp_(min=LOG_FLOOR).exp_()


def _one_side_known(
    full: _Side, full_rows: slice, partial: _Side, partial_rows: slice
) -> tuple[torch.Tensor, torch.Tensor]:
    """(full x partial) dot products and inverse norms when one side knows every finding.

    Then J is the partial vector's known set: its "normal" and norm are its own (vectors), only the
    fully known side's normal over J is pairwise.
    """
    partial_known = partial.known[partial_rows]
    full_normal = joint_normal(full.log_absent[full_rows], partial_known.T)
    dot = torch.addcmul(
        full.present[full_rows] @ partial.present[partial_rows].T,
        full_normal,
        partial.normal[None, partial_rows],
    )
    full_norms = torch.addcmul(full.squares[full_rows] @ partial_known.T, full_normal, full_normal)
    inverse_norms = full_norms.clamp_(min=torch.finfo(full_norms.dtype).tiny).rsqrt_()
    return dot, inverse_norms.mul_(partial.inverse_norm[None, partial_rows])
