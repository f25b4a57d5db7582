"""The model as the training loop sees it: plain, DDP or FSDP2.

One small adapter hides the differences the loop cares about: how gradient
sync is skipped on accumulation micro-batches, how a full state dict is
gathered for a checkpoint, and how the trained model is handed back.
FSDP modules are imported only for ``strategy="fsdp"`` (they add seconds of
import time to every process).

FSDP2 cannot shard 0-dim parameters (a CLIP logit scale is one), so under FSDP
they are left out of sharding, kept replicated, and their gradients averaged
across ranks by :meth:`ParallelModel.sync_replicated_grads`.
"""

from __future__ import annotations

import contextlib
import copy
import warnings
from collections.abc import Iterator
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from domainclip.engine.distributed import DistInfo

Strategy = Literal["ddp", "fsdp"]


def _enable_activation_checkpointing(model: nn.Module) -> None:
    setter = getattr(model, "set_grad_checkpointing", None)
    if callable(setter):
        setter(True)
    else:
        warnings.warn(
            f"train.activation_checkpointing is on but {type(model).__name__} has no "
            "set_grad_checkpointing(); training without it",
            stacklevel=3,
        )


def _block_stacks(model: nn.Module) -> list[tuple[str, list[nn.Module]]]:
    """Stacks of repeated blocks: every ``nn.ModuleList``, and ``nn.Sequential`` of one block class (timm)."""
    stacks = []
    for name, module in model.named_modules():
        children = list(module.children())
        homogeneous = len(children) > 1 and len({type(c) for c in children}) == 1
        if isinstance(module, nn.ModuleList) or (isinstance(module, nn.Sequential) and homogeneous):
            stacks.append((name, children))
    return stacks


def _shard_blocks(model: nn.Module, ignored: set[nn.Parameter]) -> None:
    """FSDP2 policy: each block of each stack (transformer layers) is a unit, innermost first, then the root."""
    from torch.distributed.fsdp import fully_shard

    for _, blocks in sorted(_block_stacks(model), key=lambda item: item[0].count("."), reverse=True):
        for block in blocks:
            if any(p.ndim > 0 for p in block.parameters()):
                fully_shard(block, ignored_params=ignored)
    fully_shard(model, ignored_params=ignored)


class ParallelModel:
    """Wraps ``model`` for ``info``'s process group (no wrapper in a single plain process)."""

    def __init__(
        self,
        model: nn.Module,
        info: DistInfo,
        strategy: Strategy,
        *,
        activation_checkpointing: bool = False,
        find_unused_parameters: bool = False,
    ) -> None:
        self.info = info
        self.strategy: Strategy = strategy if info.distributed else "ddp"
        self._template: nn.Module | None = None
        self._replicated: list[nn.Parameter] = []
        if activation_checkpointing:
            _enable_activation_checkpointing(model)
        if info.distributed and info.device.type == "cuda":
            # Batch statistics over the global batch, so N processes normalise like one process with
            # N times the batch (SyncBatchNorm is CUDA-only; on CPU each process uses its own batch).
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        if self._sharded:
            # fully_shard turns parameters into DTensors in place; keep an unsharded CPU
            # copy (made before the model moves to the GPU) to hand back at the end.
            self._template = copy.deepcopy(model).to("cpu")
        self.module = model.to(info.device)
        if not info.distributed:
            self.wrapped: nn.Module = model
        elif self._sharded:
            self._replicated = [p for p in model.parameters() if p.ndim == 0]
            for param in self._replicated:
                dist.broadcast(param.data, src=0)
            _shard_blocks(model, set(self._replicated))
            self.wrapped = model
        else:
            device_ids = [info.device.index] if info.device.type == "cuda" else None
            self.wrapped = DistributedDataParallel(
                model, device_ids=device_ids, find_unused_parameters=find_unused_parameters
            )

    @contextlib.contextmanager
    def gradient_sync(self, enabled: bool) -> Iterator[None]:
        """Skip the gradient all-reduce on all but the last accumulation micro-batch."""
        if enabled or not self.info.distributed:
            yield
        elif self.strategy == "fsdp":
            self.wrapped.set_requires_gradient_sync(False)
            try:
                yield
            finally:
                self.wrapped.set_requires_gradient_sync(True)
        else:
            with self.wrapped.no_sync():
                yield

    def sync_replicated_grads(self) -> None:
        """Average the gradients of FSDP-ignored (0-dim) parameters; call after the last backward."""
        for param in self._replicated:
            if not param.requires_grad:
                continue
            if param.grad is None:
                param.grad = torch.zeros_like(param)
            dist.all_reduce(param.grad)
            param.grad.div_(self.info.world_size)

    # ------------------------------------------------------------- state dicts
    @property
    def optimizer_format(self) -> str:
        """How :meth:`optimizer_state` keys its entries: "names" under FSDP, "indices" otherwise."""
        return "names" if self._sharded else "indices"

    @property
    def _sharded(self) -> bool:
        return self.strategy == "fsdp" and self.info.distributed

    def _full_options(self, **kwargs: Any) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, **kwargs)

    def model_state(self) -> dict[str, torch.Tensor]:
        """Full weights; under FSDP a collective (every rank calls), filled on rank 0 only."""
        if not self._sharded:
            return self.module.state_dict()
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        return get_model_state_dict(self.wrapped, options=self._full_options(cpu_offload=True))

    def optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        """Full optimizer state; under FSDP a collective keyed by parameter names."""
        if not self._sharded:
            return optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        return get_optimizer_state_dict(self.wrapped, optimizer, options=self._full_options(cpu_offload=True))

    def load_optimizer_state(self, optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        """Inverse of :meth:`optimizer_state` (every rank passes the full state)."""
        if not self._sharded:
            optimizer.load_state_dict(state)
            return
        from torch.distributed.checkpoint.state_dict import set_optimizer_state_dict

        set_optimizer_state_dict(self.wrapped, optimizer, state, options=self._full_options())

    def trained_model(self) -> nn.Module:
        """The plain module with the trained weights (FSDP: gathered into the unsharded copy)."""
        if self._template is None:
            return self.module
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        full = get_model_state_dict(self.wrapped, options=self._full_options(cpu_offload=False))
        self._template.load_state_dict({k: v.to("cpu") for k, v in full.items()})
        return self._template.to(self.info.device)
