"""Engine overhead: steps/s of ``Trainer.fit`` vs a bare PyTorch loop, same model, data and optimiser.

Both loops do the same work per step: forward, MSE, backward, clip to 1.0, AdamW,
warmup + cosine schedule, zero_grad. The engine adds what it is for: decay
groups, the resumable distributed sampler, hooks, metrics every ``--log-every``
steps and the final atomic checkpoint (all included in its time, as is each
loop's setup). Rounds alternate bare / engine.

Two rates are printed for each loop: steps per wall-clock second and steps per
CPU second of this process (torch runs 1 thread, so on an idle machine the two
agree). On a shared machine wall time swings by 2x between identical rounds, so
the overhead is judged on CPU time; the wall figure is the median of per-round
engine/bare ratios (adjacent rounds see similar load).

    python benchmarks/engine.py [--steps 300] [--rounds 7] [--threads 1]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from domainclip.config.schema import StageConfig, TrainConfig
from domainclip.engine.optim import warmup_cosine
from domainclip.engine.trainer import Trainer

FEATURES, HIDDEN, SAMPLES = 256, 512, 8192


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(FEATURES, HIDDEN),
        nn.LayerNorm(HIDDEN),
        nn.GELU(),
        nn.Linear(HIDDEN, HIDDEN),
        nn.GELU(),
        nn.Linear(HIDDEN, 1),
    )


def make_data() -> TensorDataset:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(SAMPLES, FEATURES, generator=generator)
    return TensorDataset(x, x[:, :1] - x[:, 1:2] + 0.1 * torch.randn(SAMPLES, 1, generator=generator))


def mse(model: nn.Module, batch: list[torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    x, y = batch
    return nn.functional.mse_loss(model(x), y), {}


def timed(run: Callable[[], None]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``run()``."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def bare_loop(stage: StageConfig, data: TensorDataset) -> None:
    """``stage.steps`` steps of the plain loop."""
    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=stage.lr, weight_decay=stage.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, warmup_cosine(stage.warmup_steps, stage.steps))
    loader = DataLoader(data, batch_size=stage.batch_size, shuffle=True, drop_last=True)
    step = 0
    while step < stage.steps:
        for x, y in loader:
            loss = nn.functional.mse_loss(model(x), y)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), stage.clip_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step == stage.steps:
                break


def engine_loop(stage: StageConfig, data: TensorDataset, run_dir: Path) -> None:
    Trainer(
        model=make_model(),
        loss_fn=mse,
        dataset=data,
        stage=stage,
        train=TrainConfig(seed=0),
        run_dir=run_dir,
        name="bench",
        progress=False,
    ).fit()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--log-every", type=int, default=50)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    stage = StageConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=1e-3,
        weight_decay=0.05,
        warmup_steps=args.steps // 10,
        clip_grad_norm=1.0,
        log_every=args.log_every,
    )
    data = make_data()
    results: dict[str, list[tuple[float, float]]] = {"bare PyTorch": [], "domainclip Trainer": []}
    with tempfile.TemporaryDirectory() as tmp:
        warmup = stage.model_copy(update={"steps": 5})  # first-call costs (lazy imports) out of the way
        bare_loop(warmup, data)
        engine_loop(warmup, data, Path(tmp) / "warmup")
        for round_index in range(args.rounds):
            results["bare PyTorch"].append(timed(lambda: bare_loop(stage, data)))
            results["domainclip Trainer"].append(
                timed(lambda i=round_index: engine_loop(stage, data, Path(tmp) / f"round{i}"))
            )
    bare, engine = results["bare PyTorch"], results["domainclip Trainer"]
    print(
        f"MLP {FEATURES}-{HIDDEN}-{HIDDEN}-1, batch {args.batch_size}, {args.steps} steps, "
        f"{args.threads} thread(s), {args.rounds} alternating rounds"
    )
    print("| loop | wall s per round | steps/s wall (median) | steps/s CPU (median) |")
    print("|---|---|---|---|")
    for name, rounds in results.items():
        walls = ", ".join(f"{wall:.2f}" for wall, _ in rounds)
        wall_rate = args.steps / statistics.median(w for w, _ in rounds)
        cpu_rate = args.steps / statistics.median(c for _, c in rounds)
        print(f"| {name} | {walls} | {wall_rate:.1f} | {cpu_rate:.1f} |")
    cpu_overhead = 100.0 * (statistics.median(c for _, c in engine) / statistics.median(c for _, c in bare) - 1)
    wall_overhead = 100.0 * (statistics.median(e[0] / b[0] for e, b in zip(engine, bare, strict=True)) - 1)
    print(
        f"engine overhead (extra time per step): CPU {cpu_overhead:+.1f}% (target <= 10%), "
        f"wall {wall_overhead:+.1f}% (median of per-round ratios)"
    )


if __name__ == "__main__":
    main()
