"""Process-group setup for runs started by torchrun.

``init_distributed`` reads the environment torchrun sets (``RANK``, ``WORLD_SIZE``,
``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``) and picks the backend from the
hardware: NCCL when CUDA is available, gloo otherwise. Without that environment
it is a no-op describing rank 0 of 1, so the same code runs from a plain
``python`` call, a test, or a laptop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from domainclip.engine.launch import launch_local, torchrun_command
from domainclip.errors import DomainClipError

__all__ = [
    "DistInfo",
    "barrier",
    "cleanup",
    "init_distributed",
    "is_main_process",
    "launch_local",
    "torchrun_command",
]

_TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the run and which device it computes on."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device
    backend: str | None  # None: no process group (single process)

    @property
    def distributed(self) -> bool:
        return self.backend is not None

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def _env_int(name: str) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value)
    except ValueError:
        raise DomainClipError(
            f"environment variable {name}={value!r} is not an integer; "
            "start distributed runs with torchrun or `domainclip run --nproc N`"
        ) from None


def _device_for(local_rank: int) -> torch.device:
    if not torch.cuda.is_available():
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if local_rank >= count:
        raise DomainClipError(
            f"LOCAL_RANK={local_rank} but this node has only {count} CUDA device(s); use --nproc {count} or fewer"
        )
    return torch.device("cuda", local_rank)


def init_distributed() -> DistInfo:
    """Join the torchrun process group (once) and describe this process.

    Idempotent: a second call returns the same description without re-initialising.
    """
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
        local_rank = int(os.environ.get("LOCAL_RANK", rank))
        return DistInfo(rank, world, local_rank, _device_for(local_rank), dist.get_backend())
    if not all(name in os.environ for name in _TORCHRUN_VARS):
        return DistInfo(0, 1, 0, _device_for(0), None)

    rank, world, local_rank = (_env_int(name) for name in _TORCHRUN_VARS)
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if name not in os.environ]
    if missing:
        raise DomainClipError(
            f"RANK/WORLD_SIZE are set but {', '.join(missing)} is not; "
            "start distributed runs with torchrun or `domainclip run --nproc N`"
        )
    device = _device_for(local_rank)
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
        dist.init_process_group(backend=backend, rank=rank, world_size=world, device_id=device)
    else:
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    return DistInfo(rank, world, local_rank, device, backend)


def is_main_process() -> bool:
    """True on rank 0, and in a process that is not part of a process group."""
    return not (dist.is_available() and dist.is_initialized()) or dist.get_rank() == 0


def barrier() -> None:
    """Wait for every rank; a no-op without a process group."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def cleanup() -> None:
    """Leave the process group so that the process exits cleanly (NCCL warns otherwise)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
