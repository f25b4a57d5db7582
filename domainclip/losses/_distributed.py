"""Collectives the losses need, with the gradient semantics spelled out.

Every helper assumes that all ranks hold tensors of the same shape (the data loader
drops the last incomplete batch), as ``all_gather`` requires.

* :func:`gather_with_grad` concatenates the tensors of all ranks; the gradient that
  reaches each gathered slice is summed over ranks and returned to the rank that owns
  it. When every rank computes the same objective this sums identical gradients, which
  is why the losses document a factor ``world_size`` on their inputs' gradients.
* :func:`gather_keep_local` gathers without communicating gradients (open_clip's
  ``gather_with_grad=False``); the local slice is the caller's live tensor, so only
  the terms computed on this rank send gradient into it.
* :func:`neighbour_shift` passes a tensor one step around the ring of ranks and sends
  its gradient back the other way (SigLIP's chunk exchange).
"""

from __future__ import annotations

import torch
from torch import distributed as dist


def resolve_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Rank and world size: the given values, else torch.distributed's, else ``(0, 1)``.

    Losses are often built before the process group exists, so ``None`` is resolved
    at every call rather than in the constructor.
    """
    initialised = dist.is_available() and dist.is_initialized()
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if world_size is None:
        world_size = dist.get_world_size() if initialised else 1
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
    if world_size > 1 and not initialised:
        raise RuntimeError(f"world_size={world_size} but torch.distributed is not initialised")
    return rank, world_size


def _all_gather_into(output: torch.Tensor, tensor: torch.Tensor) -> None:
    gather_single = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor
    gather_single(output, tensor)


def _gather(tensor: torch.Tensor, world_size: int) -> torch.Tensor:
    tensor = tensor.contiguous()
    output = tensor.new_empty((world_size * tensor.shape[0], *tensor.shape[1:]))
    _all_gather_into(output, tensor)
    return output


class _GatherWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
        ctx.rank, ctx.world_size, ctx.rows = rank, world_size, tensor.shape[0]
        return _gather(tensor, world_size)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        grad = grad.contiguous()
        if dist.get_backend() == "gloo":  # gloo has no reduce-scatter
            summed = grad.clone()
            dist.all_reduce(summed)
            local = summed[ctx.rank * ctx.rows : (ctx.rank + 1) * ctx.rows]
        else:
            local = grad.new_empty((ctx.rows, *grad.shape[1:]))
            scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
            scatter(local, grad)
        return local, None, None


def gather_with_grad(tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """All ranks' tensors concatenated along dim 0; gradients are summed over ranks."""
    return _GatherWithGrad.apply(tensor, rank, world_size)


def gather_keep_local(tensor: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """All ranks' tensors concatenated; other ranks' slices carry no gradient, ours does."""
    with torch.no_grad():
        gathered = _gather(tensor.detach(), world_size)
    parts = list(gathered.chunk(world_size))
    parts[rank] = tensor
    return torch.cat(parts)


@torch.no_grad()
def gather_no_grad(tensor: torch.Tensor, world_size: int) -> torch.Tensor:
    """All ranks' tensors concatenated, for labels and masks (no gradient at all)."""
    if tensor.dtype == torch.bool:  # not every backend reduces/gathers bool
        return _gather(tensor.to(torch.uint8), world_size).bool()
    return _gather(tensor, world_size)


@torch.no_grad()
def all_reduce_(tensor: torch.Tensor, op: dist.ReduceOp.RedOpType = dist.ReduceOp.SUM) -> torch.Tensor:
    """In-place all-reduce (no gradient), returned for chaining."""
    dist.all_reduce(tensor, op=op)
    return tensor


def _exchange(tensor: torch.Tensor, to_rank: int, from_rank: int) -> torch.Tensor:
    received = torch.empty_like(tensor)
    ops = [
        dist.P2POp(dist.isend, tensor.contiguous(), to_rank),
        dist.P2POp(dist.irecv, received, from_rank),
    ]
    for request in dist.batch_isend_irecv(ops):
        request.wait()
    return received


class _NeighbourShift(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor, to_rank: int, from_rank: int) -> torch.Tensor:
        ctx.to_rank, ctx.from_rank = to_rank, from_rank
        return _exchange(tensor, to_rank, from_rank)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return _exchange(grad, ctx.from_rank, ctx.to_rank), None, None


def neighbour_shift(tensor: torch.Tensor, to_rank: int, from_rank: int) -> torch.Tensor:
    """Send ``tensor`` to ``to_rank`` and return the one received from ``from_rank``.

    The gradient of the received tensor travels back to the rank that sent it.
    """
    return _NeighbourShift.apply(tensor, to_rank, from_rank)
