"""A tiny regression run of the engine, started as real processes by the engine tests.

``python train_tiny.py --out DIR ...`` (one process), under torchrun (N processes), or
``run_rank`` in processes the tests fork.
``--hang-after K`` makes every rank block forever in its (K+1)-th loss call after
writing its pid to ``DIR/hanging-rank<r>``, so a test can SIGKILL the run mid-stage at a
known point.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.utils.data import TensorDataset

from domainclip.config.schema import StageConfig, TrainConfig
from domainclip.engine.distributed import cleanup, init_distributed
from domainclip.engine.trainer import Trainer
from domainclip.models.logit_scale import LogitScale


class TinyRegressor(nn.Module):
    """Blocks in an nn.ModuleList, so FSDP shards them as separate units, and a 0-dim
    parameter with a clamp hook (a LogitScale), which FSDP2 cannot shard."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Linear(8, 16)
        self.blocks = nn.ModuleList(nn.Sequential(nn.LayerNorm(16), nn.Linear(16, 16), nn.GELU()) for _ in range(2))
        self.head = nn.Linear(16, 1)
        self.scale = LogitScale(init=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return self.head(x) * self.scale()


def tiny_model() -> nn.Module:
    torch.manual_seed(0)
    return TinyRegressor()


def tiny_dataset(n: int = 64) -> TensorDataset:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(n, 8, generator=generator)
    y = x[:, :1] * 2.0 - x[:, 1:2] + 0.1 * torch.randn(n, 1, generator=generator)
    return TensorDataset(x, y)


def tiny_stage(**overrides: object) -> StageConfig:
    """The stage every engine test starts from (warmup, clipping and decay all active)."""
    values: dict[str, object] = {
        "steps": 8,
        "batch_size": 4,
        "lr": 0.01,
        "weight_decay": 0.05,
        "warmup_steps": 2,
        "grad_accum": 1,
        "clip_grad_norm": 1.0,
        "checkpoint_every": 0,
        "log_every": 1,
    }
    return StageConfig(**{**values, **overrides})


def mse_loss(model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    x, y = batch
    return nn.functional.mse_loss(model(x), y), {"target_mean": float(y.mean())}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--accum", type=int, default=1)
    parser.add_argument("--checkpoint-every", type=int, default=0)
    parser.add_argument("--strategy", choices=["ddp", "fsdp"], default="ddp")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--hang-after", type=int, default=None)
    args = parser.parse_args(argv)

    info = init_distributed()
    calls = 0

    def loss_fn(model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        nonlocal calls
        if args.hang_after is not None and calls == args.hang_after:
            marker = args.out / f"hanging-rank{info.rank}"
            marker.with_suffix(".tmp").write_text(str(os.getpid()))
            os.replace(marker.with_suffix(".tmp"), marker)
            while True:
                time.sleep(0.05)
        calls += 1
        return mse_loss(model, batch)

    stage = tiny_stage(
        steps=args.steps, batch_size=args.batch, grad_accum=args.accum, checkpoint_every=args.checkpoint_every
    )
    train = TrainConfig(seed=3, strategy=args.strategy, threads=1)
    trainer = Trainer(
        model=tiny_model(),
        loss_fn=loss_fn,
        dataset=tiny_dataset(),
        stage=stage,
        train=train,
        run_dir=args.out,
        name="tiny",
        progress=False,
    )
    trained = trainer.fit(resume=args.resume)
    if info.is_main:  # lets the test check what fit() hands back (FSDP: gathered weights)
        weights = {k: v.contiguous() for k, v in trained.state_dict().items()}
        save_file(weights, str(args.out / "returned.safetensors"))
    cleanup()


def run_rank(argv: list[str], env: dict[str, str], log_path: str) -> None:
    """Entry point of a rank forked by the tests: torchrun's variables in ``env``, output to ``log_path``."""
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        os.environ.pop(name, None)
    os.environ.update(env)
    main(argv)


if __name__ == "__main__":
    main()
