"""Soft contrastive targets from per-sample finding vectors.

The target matrix over a batch of N image-report pairs is::

    T = (1 - soft_weight) * G + soft_weight * P

* ``G`` is the identity extended to groups: ``G_ij = [g_i == g_j] / |group of i|``. Two
  reconstructions of one scan that share a report (same group id) are positives of
  each other; without group ids ``G`` is the identity matrix.
* ``P`` is a row softmax of ``S / temperature``, ``S`` the finding similarity of
  :mod:`.finding_similarity` (cosine of the finding vectors extended by a "no
  abnormality" entry: two normal studies have ``S = 1``, unknown entries are ignored
  pairwise). A sample, and every sample of its group, has ``S = 1`` with it.

Why a temperature: ``S`` lives in [0, 1], and a softmax of numbers that close is
nearly uniform (Cardiac-CLIP's temperature-free softmax leaves the matching pair little
more mass than any other); with a small temperature a study unlike the others keeps
nearly all of its row. Numerics: the kernel is ``exp((S - 1) / temperature)``, in (0, 1] and exactly 1 on
the diagonal, so every row sum is at least 1: no overflow, no division by zero, no NaN,
and rows of ``T`` sum to 1.

Images and texts may carry different finding vectors (``text_findings``): an image's
is its whole report's, its text may be a few sentences sampled from that report, which
state less. ``S`` is then taken between image i's and text j's vectors, and the text ->
image targets of text j are column j of the kernel, normalised over images. Without
``text_findings`` both sides carry the same vector, ``S`` is symmetric and text j's
target over images is ``T[j, :]``.
"""

from __future__ import annotations

import torch

from ._checks import check_findings, check_groups
from .finding_similarity import FindingSimilarity
from .tiled import WeightTiles, _spans

# Rows per kernel block. The partly known similarity makes about six (rows, B) temporaries; at 64 rows
# they stay in cache (1 MB each at B = 4096), which halves its time against 256 rows; no cost when known.
_BLOCK_ROWS = 64


class SoftTargets:
    """Tile generator for the soft-label target matrix of one (gathered) batch.

    Args:
        findings: (N, K) floats in [0, 1], NaN for unknown; ``None`` leaves only ``G``.
        groups: (N,) integer ids, equal ids are positives; ``None``: every sample alone.
        temperature: softmax temperature of the finding similarity.
        soft_weight: weight of ``P`` in the mix; 0 gives plain CLIP targets.
        dtype: precision of the targets (the loss' compute dtype).
        text_findings: (N, K) the texts' own vectors, if they differ from the images'.
    """

    def __init__(
        self,
        findings: torch.Tensor | None,
        groups: torch.Tensor | None,
        *,
        temperature: float,
        soft_weight: float,
        dtype: torch.dtype = torch.float32,
        text_findings: torch.Tensor | None = None,
    ) -> None:
        if temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {temperature}")
        if not 0.0 <= soft_weight <= 1.0:
            raise ValueError(f"soft_weight must be in [0, 1], got {soft_weight}")
        self.temperature = temperature
        self.soft_weight = soft_weight if findings is not None else 0.0
        self.groups = groups
        reference = findings if findings is not None else groups
        if reference is None:
            raise ValueError("SoftTargets needs findings or groups")
        self._size, self._dtype, self._device = reference.shape[0], dtype, reference.device
        if groups is not None:
            _, self._group_index, counts = torch.unique(groups, return_inverse=True, return_counts=True)
            self._group_size = counts.to(dtype)
        if text_findings is not None and findings is None:
            raise ValueError("text_findings needs the images' findings too")
        self._similarity = self._text_similarity = None
        if findings is not None:  # rows: images, columns: texts; and the transposed view
            self._similarity = FindingSimilarity(findings, dtype, columns=text_findings)
            self._text_similarity = self._similarity if text_findings is None else self._similarity.transposed()

    @property
    def _same_vectors(self) -> bool:
        return self._text_similarity is self._similarity

    @property
    def identity_weight(self) -> float:
        """Weight of the group identity ``G`` (1 when no findings were given)."""
        return 1.0 - self.soft_weight

    # -- G: group identity --------------------------------------------------------------

    def group_mean(self, features: torch.Tensor) -> torch.Tensor:
        """Row i: the mean ``m_i`` of ``features`` over i's group.

        Then ``sum(G * Z) = scale * sum_i a_i . m_i``: the identity part costs O(B * D).
        """
        if self.groups is None:
            return features
        sums = features.new_zeros((len(self._group_size), features.shape[1]))
        sums = sums.index_add(0, self._group_index, features)
        means = sums / self._group_size[:, None].to(features.dtype)
        return means[self._group_index]

    # -- P: finding agreement -------------------------------------------------------------

    def kernel(
        self,
        rows: slice,
        cols: slice,
        out: torch.Tensor | None = None,
        texts_as_rows: bool = False,
    ) -> torch.Tensor:
        """``exp((S - 1) / temperature)`` for a tile of images x texts (or texts x images):
        in (0, 1], exactly 1 for same group."""
        similarity = self._text_similarity if texts_as_rows else self._similarity
        logits = similarity(rows, cols, self.temperature, out=out)
        if self.groups is None:
            logits.diagonal(rows.start - cols.start).zero_()
        else:
            logits.masked_fill_(self.groups[rows, None] == self.groups[None, cols], 0)
        return logits.exp_()

    def _dense_kernel(self, rows: slice, texts_as_rows: bool = False) -> torch.Tensor:
        """``kernel[rows, :]`` as one tensor, filled in row blocks: fresh (B, B) temporaries
        cost page faults comparable to the arithmetic, small blocks are reused by malloc."""
        out = torch.empty((rows.stop - rows.start, self._size), dtype=self._dtype, device=self._device)
        for block in _spans(rows.stop - rows.start, _BLOCK_ROWS):
            shifted = slice(rows.start + block.start, rows.start + block.stop)
            self.kernel(shifted, slice(0, self._size), out=out[block], texts_as_rows=texts_as_rows)
        return out

    def inverse_row_sums(self, rows: slice, chunk_size: int, texts_as_rows: bool = False) -> torch.Tensor:
        """``1 / sum_j kernel[i, j]`` for the given rows, over all columns, tile by tile."""
        total = torch.zeros(rows.stop - rows.start, dtype=self._dtype, device=self._device)
        for part in _spans(rows.stop - rows.start, chunk_size):
            shifted = slice(rows.start + part.start, rows.start + part.stop)
            for cols in _spans(self._size, chunk_size):
                total[part] += self.kernel(shifted, cols, texts_as_rows=texts_as_rows).sum(dim=1)
        return total.reciprocal_()

    def row_weights(self, rows: slice, chunk_size: int | None, texts_as_rows: bool = False) -> WeightTiles:
        """Tiles of ``P[rows, :]`` (image rows over texts, or text rows over images) for a
        local-loss rank; tile rows are relative to ``rows``."""
        if chunk_size is None:
            dense = self._dense_kernel(rows, texts_as_rows)
            dense.mul_(dense.sum(dim=1, keepdim=True).reciprocal_())
            return lambda _rows, _cols: dense
        inverse = self.inverse_row_sums(rows, chunk_size, texts_as_rows)

        def tile(local_rows: slice, cols: slice) -> torch.Tensor:
            shifted = slice(rows.start + local_rows.start, rows.start + local_rows.stop)
            kernel = self.kernel(shifted, cols, texts_as_rows=texts_as_rows)
            return kernel.mul_(inverse[local_rows, None])

        return tile

    def symmetric_weights(self, chunk_size: int | None) -> WeightTiles:
        """Tiles (images x texts) of the image -> text targets plus the transposed text -> image
        targets, square case: ``kernel * (u_i + v_j)`` with ``u = 1 / row sums`` and
        ``v = 1 / column sums`` (equal when both sides carry the same vectors).
        """
        everything = slice(0, self._size)
        if chunk_size is None:
            dense = self._dense_kernel(everything)
            inverse = dense.sum(dim=1).reciprocal_()
            inverse_columns = inverse if self._same_vectors else dense.sum(dim=0).reciprocal_()
            for block in _spans(self._size, _BLOCK_ROWS):
                dense[block].mul_(inverse[block, None] + inverse_columns[None, :])
            return lambda _rows, _cols: dense
        inverse = self.inverse_row_sums(everything, chunk_size)
        inverse_columns = (
            inverse if self._same_vectors else self.inverse_row_sums(everything, chunk_size, texts_as_rows=True)
        )

        def tile(rows: slice, cols: slice) -> torch.Tensor:
            return self.kernel(rows, cols).mul_(inverse[rows, None] + inverse_columns[None, cols])

        return tile

    # -- the whole matrix, for inspection and tests --------------------------------------------

    def dense(self, texts_as_rows: bool = False) -> torch.Tensor:
        """The full (N, N) target matrix ``T`` (image rows over texts, or text rows over
        images); every row sums to 1."""
        if self.groups is None:
            identity = torch.eye(self._size, dtype=self._dtype, device=self._device)
        else:
            same = (self.groups[:, None] == self.groups[None, :]).to(self._group_size.dtype)
            identity = same / self._group_size[self._group_index][:, None]
        if self.soft_weight == 0:
            return identity
        everything = slice(0, self._size)
        kernel = self.kernel(everything, everything, texts_as_rows=texts_as_rows)
        soft = kernel / kernel.sum(dim=1, keepdim=True)
        return self.identity_weight * identity + self.soft_weight * soft


def soft_targets(
    findings: torch.Tensor,
    groups: torch.Tensor | None = None,
    *,
    temperature: float = 0.1,
    soft_weight: float = 0.5,
    text_findings: torch.Tensor | None = None,
    texts_as_rows: bool = False,
) -> torch.Tensor:
    """The (B, B) soft target matrix :class:`SoftLabelClipLoss` trains towards (rows sum to 1):
    images over texts, or with ``texts_as_rows`` texts over images."""
    check_findings(findings, findings.shape[0] if findings.ndim == 2 else -1, None)
    if text_findings is not None:
        check_findings(text_findings, findings.shape[0], findings.shape[1])
    if groups is not None:
        check_groups(groups, findings.shape[0])
    dtype = torch.promote_types(findings.dtype, torch.float32)
    targets = SoftTargets(
        findings,
        groups,
        temperature=temperature,
        soft_weight=soft_weight,
        dtype=dtype,
        text_findings=text_findings,
    )
    return targets.dense(texts_as_rows)
