"""The log-sum-exp core of every InfoNCE-style loss, dense or tile by tile.

For logits ``Z = scale * a @ b.T`` an InfoNCE loss needs only three things: the
log-sum-exp of every row (image -> text), of every column (text -> image), and the
weighted sum ``sum(W * Z)`` for a target weight matrix ``W``. Their gradient with
respect to ``Z`` is ``g_row * softmax_rows(Z) + g_col * softmax_cols(Z) + g_w * W``,
so neither ``Z`` nor ``W`` has to exist as a whole:

* dense (``chunk_size=None``): one matmul, both log-sum-exps from the same logits
  (the transpose is reused, unlike open_clip's second matmul); the shifted
  exponentials of both softmaxes are kept, so the backward pass is two in-place
  passes and two matmuls. Two (m, n) buffers in all, against open_clip's six or so.
* memory-bounded (``chunk_size=c``): the logits are produced ``c x c`` tiles at a time
  with running log-sum-exps, and recomputed tile by tile in the backward pass
  (one extra matmul). Peak memory is O((m + n) * D + c * c): linear in the batch.

``W`` is never an input: the caller passes ``weights(rows, cols) -> tile`` so soft
targets can be generated tile by tile too. Double backward is not supported.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch.autograd.function import once_differentiable

WeightTiles = Callable[[slice, slice], torch.Tensor]
"""``weights(rows, cols)`` returns the target-weight tile for those rows and columns."""


def _spans(total: int, size: int) -> list[slice]:
    return [slice(start, min(start + size, total)) for start in range(0, total, size)]


def _tile_logsumexp(z: torch.Tensor, columns: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Row (and column) log-sum-exp of one tile, sharing one scratch buffer."""
    scratch = torch.empty_like(z)
    row_max = z.amax(dim=1, keepdim=True)
    torch.sub(z, row_max, out=scratch)
    row = scratch.exp_().sum(dim=1).log_().add_(row_max.squeeze(1))
    if not columns:
        return row, None
    col_max = z.amax(dim=0, keepdim=True)
    torch.sub(z, col_max, out=scratch)
    col = scratch.exp_().sum(dim=0).log_().add_(col_max.squeeze(0))
    return row, col


class _DenseLogSumExp(torch.autograd.Function):
    """One matmul; keeps the shifted exponentials so the backward pass is two fused passes."""

    @staticmethod
    def forward(ctx, a, b, scale, columns, weights, _chunk_size):
        z = (a * scale) @ b.T
        w = weights(slice(0, a.shape[0]), slice(0, b.shape[0])) if weights is not None else None
        weighted = torch.dot(w.reshape(-1), z.reshape(-1)) if w is not None else a.new_zeros(())
        row_max = z.amax(dim=1, keepdim=True)
        exp_rows = torch.sub(z, row_max).exp_()  # exp(z - row max)
        row_sums = exp_rows.sum(dim=1)
        lse_rows = row_sums.log().add_(row_max.squeeze(1))
        exp_cols = col_sums = None
        lse_cols = a.new_empty(0)
        if columns:
            col_max = z.amax(dim=0, keepdim=True)
            exp_cols = z.sub_(col_max).exp_()  # z is not needed any more: reuse its memory
            col_sums = exp_cols.sum(dim=0)
            lse_cols = col_sums.log().add_(col_max.squeeze(0))
        del z
        ctx.save_for_backward(a, b, scale)
        ctx.buffers = (exp_rows, row_sums, exp_cols, col_sums, w)
        return lse_rows, lse_cols, weighted

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rows, grad_cols, grad_weighted):
        a, b, scale = ctx.saved_tensors
        if ctx.buffers is None:
            raise RuntimeError("contrastive_logsumexp: backward called twice (retain_graph is not supported)")
        exp_rows, row_sums, exp_cols, col_sums, w = ctx.buffers
        ctx.buffers = None
        # dLoss/dZ = g_row * softmax over rows + g_col * softmax over columns + g_w * W, in place.
        grad_z = exp_rows.mul_((grad_rows / row_sums)[:, None])
        if exp_cols is not None:
            grad_z.addcmul_(exp_cols, (grad_cols / col_sums)[None, :])
            del exp_cols
        if w is not None:
            grad_z.addcmul_(w, grad_weighted)
        return _grads_from_logit_grad(
            ctx,
            grad_z @ b if _needs_a(ctx) else None,
            grad_z.T @ a if ctx.needs_input_grad[1] else None,
            a,
            scale,
        )


def _needs_a(ctx) -> bool:
    return ctx.needs_input_grad[0] or ctx.needs_input_grad[2]


def _grads_from_logit_grad(ctx, sum_gb, sum_ga, a, scale):
    """Chain rule through ``Z = scale * a @ b.T`` given ``G @ b`` and ``G.T @ a``."""
    grad_a = sum_gb * scale if ctx.needs_input_grad[0] else None
    grad_b = sum_ga * scale if ctx.needs_input_grad[1] else None
    grad_scale = torch.dot(a.reshape(-1), sum_gb.reshape(-1)) if ctx.needs_input_grad[2] else None
    return grad_a, grad_b, grad_scale, None, None, None


class _TiledLogSumExp(torch.autograd.Function):
    """Tiles of ``chunk x chunk`` logits with running log-sum-exps; recomputed in backward."""

    @staticmethod
    def forward(ctx, a, b, scale, columns, weights, chunk_size):
        row_spans, col_spans = _spans(a.shape[0], chunk_size), _spans(b.shape[0], chunk_size)
        lse_rows = a.new_full((a.shape[0],), float("-inf"))
        lse_cols = a.new_full((b.shape[0],), float("-inf")) if columns else a.new_empty(0)
        weighted = a.new_zeros(())
        for rows in row_spans:
            a_scaled = a[rows] * scale
            for cols in col_spans:
                z = a_scaled @ b[cols].T
                row, col = _tile_logsumexp(z, columns)
                torch.logaddexp(lse_rows[rows], row, out=lse_rows[rows])
                if columns:
                    torch.logaddexp(lse_cols[cols], col, out=lse_cols[cols])
                if weights is not None:
                    weighted += torch.dot(weights(rows, cols).reshape(-1), z.reshape(-1))
        ctx.save_for_backward(a, b, scale, lse_rows, lse_cols)
        ctx.columns, ctx.weights, ctx.spans = columns, weights, (row_spans, col_spans)
        return lse_rows, lse_cols, weighted

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_rows, grad_cols, grad_weighted):
        a, b, scale, lse_rows, lse_cols = ctx.saved_tensors
        sum_gb = torch.zeros_like(a) if _needs_a(ctx) else None  # sum over column tiles of G @ b
        sum_ga = torch.zeros_like(b) if ctx.needs_input_grad[1] else None  # over row tiles of G.T @ a
        row_spans, col_spans = ctx.spans
        for rows in row_spans:
            a_rows = a[rows]
            a_scaled = a_rows * scale
            for cols in col_spans:
                z = a_scaled @ b[cols].T
                # dLoss/dZ for this tile in place: softmax over rows, then columns (reusing z).
                grad_z = torch.sub(z, lse_rows[rows, None]).exp_().mul_(grad_rows[rows, None])
                if ctx.columns:
                    z.sub_(lse_cols[None, cols]).exp_().mul_(grad_cols[None, cols])
                    grad_z.add_(z)
                del z
                if ctx.weights is not None:
                    grad_z.addcmul_(ctx.weights(rows, cols), grad_weighted)
                if sum_gb is not None:
                    sum_gb[rows].addmm_(grad_z, b[cols])
                if sum_ga is not None:
                    sum_ga[cols].addmm_(grad_z.T, a_rows)
        return _grads_from_logit_grad(ctx, sum_gb, sum_ga, a, scale)


def contrastive_logsumexp(
    a: torch.Tensor,
    b: torch.Tensor,
    scale: torch.Tensor,
    *,
    columns: bool = True,
    weights: WeightTiles | None = None,
    chunk_size: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """Log-sum-exps of ``Z = scale * a @ b.T`` and ``sum(W * Z)``, differentiable in a, b, scale.

    Args:
        a: (m, D) row features (e.g. images); b: (n, D) column features (texts).
        scale: 0-dim multiplier (an exponentiated logit scale).
        columns: also return the column log-sum-exps (needs the square, symmetric case).
        weights: target weights ``W`` as a tile function; ``None`` skips the weighted sum.
        chunk_size: ``None`` for the dense path; an int for the memory-bounded path.

    Returns:
        ``(lse_rows (m,), lse_cols (n,) or None, sum(W * Z) or None)``.
    """
    if chunk_size is not None and chunk_size < 1:
        raise ValueError(f"chunk_size must be a positive int or None, got {chunk_size}")
    function = _DenseLogSumExp if chunk_size is None else _TiledLogSumExp
    lse_rows, lse_cols, weighted = function.apply(a, b, scale, columns, weights, chunk_size)
    return lse_rows, (lse_cols if columns else None), (weighted if weights is not None else None)
