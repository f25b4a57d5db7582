"""The one training loop every stage of every domain runs through.

A stage is: a model, a ``loss_fn(wrapped_model, batch) -> (loss, extras)``, a
map-style dataset and a :class:`~domainclip.config.schema.StageConfig`. The
trainer adds what each stage would otherwise re-implement: AdamW with decay /
no-decay groups, linear warmup + cosine schedule, gradient accumulation and
clipping, bf16 autocast on CUDA, DDP or FSDP2, a seeded distributed data order
that resumes at the exact batch, atomic checkpoints and metrics.

``loss_fn`` must call the wrapped model's ``forward`` (``wrapped_model(...)``), not
its submodules directly, or DDP/FSDP will not synchronise the gradients.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, IterableDataset

from domainclip.config.schema import StageConfig, TrainConfig
from domainclip.engine.checkpoint import POINTER_NAME, CheckpointRef, CheckpointStore
from domainclip.engine.distributed import DistInfo, barrier, init_distributed
from domainclip.engine.metrics import MetricsLogger
from domainclip.engine.optim import (
    build_optimizer,
    build_scheduler,
    resolve_groups,
    weight_decay_groups,
)
from domainclip.engine.parallel import ParallelModel
from domainclip.engine.progress import StageProgress
from domainclip.engine.rng import capture_rng_state, restore_rng_state, seed_everything
from domainclip.engine.sampler import ResumableDistributedSampler
from domainclip.errors import CheckpointError, DomainClipError, RecipeError

log = logging.getLogger(__name__)

LossFn = Callable[[nn.Module, Any], tuple[Tensor, dict[str, float]]]


@dataclass
class Position:
    """Where the run is: optimiser steps done, epoch, micro-batches consumed in that epoch (per rank)."""

    step: int = 0
    epoch: int = 0
    batch: int = 0


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors nested in dicts / lists / tuples (named tuples too) to ``device``."""
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return {key: move_to_device(value, device) for key, value in batch.items()}
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device) for v in batch)
    return batch


def _autocast(train: TrainConfig, device: torch.device) -> contextlib.AbstractContextManager[Any]:
    """bf16 autocast on CUDA ("auto") or wherever asked ("bf16"); fp32 otherwise."""
    use_bf16 = train.precision == "bf16" or (train.precision == "auto" and device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


class Trainer:
    """Runs one stage; see the module docstring.

    ``name`` names the stage in checkpoints (``<run_dir>/checkpoints/<name>/``) and
    metrics. ``param_groups`` are optional caller groups (e.g. another lr for a
    text tower); every group is still split into decay / no-decay, and trainable
    parameters no group names train with ``stage.lr``. ``num_workers`` is the
    DataLoader's; ``find_unused_parameters`` is passed to DDP for models whose
    forward leaves some trainable parameters unused.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        loss_fn: LossFn,
        dataset: Dataset,
        stage: StageConfig,
        train: TrainConfig,
        run_dir: Path,
        name: str,
        collate_fn: Callable | None = None,
        param_groups: list[dict] | None = None,
        progress: bool = True,
        num_workers: int = 0,
        find_unused_parameters: bool = False,
    ) -> None:
        if isinstance(dataset, IterableDataset):
            raise TypeError("Trainer needs a map-style dataset (len + indexing) for a resumable data order")
        if not name or "/" in name or name.startswith("."):
            raise ValueError(f"stage name {name!r} must be a plain folder name")
        self.model = model
        self.loss_fn = loss_fn
        self.dataset = dataset
        self.stage = stage
        self.train = train
        self.run_dir = Path(run_dir)
        self.name = name
        self.collate_fn = collate_fn
        self.progress = progress
        self.num_workers = num_workers
        self.find_unused_parameters = find_unused_parameters
        self.info: DistInfo = init_distributed()
        self.store = CheckpointStore(self.run_dir / "checkpoints" / name)
        # Resolved by name: FSDP replaces parameter objects when it shards the model.
        self._groups = weight_decay_groups(model, stage.weight_decay, param_groups)
        self._hooks = [m for m in model.modules() if callable(getattr(m, "after_optimizer_step", None))]
        self._sampler = ResumableDistributedSampler(
            dataset,
            num_replicas=self.info.world_size,
            rank=self.info.rank,
            shuffle=True,
            seed=train.seed,
            drop_last=True,
        )
        self._batches_per_epoch = len(self._sampler) // stage.batch_size
        if self._batches_per_epoch == 0:
            raise RecipeError(
                f"stage '{name}': the dataset has {len(dataset)} samples, fewer than batch_size "
                f"{stage.batch_size} x {self.info.world_size} process(es); lower "
                f"stages.{name}.batch_size or add data"
            )

    # ================================================================== public
    def fit(self, resume: bool = False) -> nn.Module:
        """Train ``stage.steps`` optimiser steps; return the plain (unwrapped) trained model.

        ``resume=True`` continues from this stage's latest checkpoint, or returns at
        once with the final weights if the stage had finished. A stage with no
        checkpoint yet starts from scratch when other stages of the run have
        checkpoints (the run was stopped before this stage's first one).
        """
        if self.stage.steps == 0:
            return self.model
        if self.train.threads:
            torch.set_num_threads(self.train.threads)
        seed_everything(self.train.seed + self.info.rank)

        if resume:
            ref = self._resume_point()
        else:
            self._refuse_overwrite()
            ref = None
        state: dict[str, Any] | None = None
        if ref is not None:
            weights = self.store.load_weights(ref)
            state = self.store.load_state(ref)
            self._load_weights(ref, weights)
            if state["finished"]:
                log.info("stage %s already finished at step %d; using %s", self.name, ref.step, ref.directory)
                return self.model.to(self.info.device)
            log.info("stage %s: resuming from %s", self.name, ref.directory)

        parallel = ParallelModel(
            self.model,
            self.info,
            self.train.strategy,
            activation_checkpointing=self.train.activation_checkpointing,
            find_unused_parameters=self.find_unused_parameters,
        )
        if state is not None:
            self._check_compatible(ref, state, parallel)
        optimizer = build_optimizer(resolve_groups(parallel.module, self._groups), self.stage)
        scheduler = build_scheduler(optimizer, self.stage)
        position = Position()
        if state is not None:
            parallel.load_optimizer_state(optimizer, state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            position = self._restore_position(state)

        self._run(parallel, optimizer, scheduler, position)
        barrier()
        return parallel.trained_model()

    # ================================================================ resuming
    def _resume_point(self) -> CheckpointRef | None:
        ref = self.store.latest()
        if ref is not None:
            return ref
        checkpoints = self.run_dir / "checkpoints"
        if not any(checkpoints.glob(f"*/{POINTER_NAME}")):
            raise CheckpointError(
                f"resume was asked but {checkpoints} holds no checkpoint; run without --resume "
                f"to start {self.run_dir} from scratch"
            )
        log.info("stage %s has no checkpoint yet; starting it from scratch", self.name)
        return None

    def _refuse_overwrite(self) -> None:
        if self.store.pointer_path.exists():
            raise CheckpointError(
                f"{self.store.pointer_path} exists: this run folder already has checkpoints of stage "
                f"'{self.name}'. Resume it (--resume) or choose another output.dir"
            )

    def _load_weights(self, ref: CheckpointRef, weights: dict[str, Tensor]) -> None:
        try:
            self.model.load_state_dict(weights, strict=True)
        except RuntimeError as error:
            raise CheckpointError(
                f"{ref.weights_path} does not match the model ({error}); it was written by another "
                "recipe. Resume with the recipe that wrote it, or use a new output dir"
            ) from None

    def _check_compatible(self, ref: CheckpointRef, state: dict[str, Any], parallel: ParallelModel) -> None:
        if state["optimizer_format"] != parallel.optimizer_format:
            was = "a multi-process FSDP run" if state["optimizer_format"] == "names" else "a DDP or 1-process run"
            raise CheckpointError(
                f"{ref.state_path} was written by {was} (train.strategy={state['strategy']}, "
                f"{state['world_size']} process(es)); resume with the same strategy and process count"
            )
        if state["total_steps"] != self.stage.steps:
            log.warning(
                "stage %s: steps changed from %d to %d since the checkpoint; the lr schedule follows the new value",
                self.name,
                state["total_steps"],
                self.stage.steps,
            )

    def _restore_position(self, state: dict[str, Any]) -> Position:
        same_layout = state["world_size"] == self.info.world_size and state["batch_size"] == self.stage.batch_size
        if same_layout:
            restore_rng_state(state["rng"][self.info.rank])
            return Position(state["step"], state["epoch"], state["batch"])
        # Another process count or batch size splits epochs differently: the exact
        # batch cannot be found, so continue at the next epoch with fresh seeds.
        log.warning(
            "stage %s: checkpoint written by %d process(es) x batch %d, now %d x %d; "
            "continuing from the next epoch (not bit-exact)",
            self.name,
            state["world_size"],
            state["batch_size"],
            self.info.world_size,
            self.stage.batch_size,
        )
        seed_everything(self.train.seed + self.info.rank + 1_000_003 * state["step"])
        return Position(state["step"], state["epoch"] + (1 if state["batch"] else 0), 0)

    # ==================================================================== data
    def _loader(self, epoch: int, start_batch: int) -> DataLoader:
        self._sampler.set_epoch(epoch)
        self._sampler.set_start_index(start_batch * self.stage.batch_size)
        # Own generator: worker seeds depend on (seed, epoch, rank) only, and the
        # global torch RNG (model randomness) is not consumed by the loader.
        generator = torch.Generator().manual_seed(
            hash((self.train.seed, epoch, self.info.rank)) & 0x7FFF_FFFF_FFFF_FFFF
        )
        return DataLoader(
            self.dataset,
            batch_size=self.stage.batch_size,
            sampler=self._sampler,
            drop_last=True,
            collate_fn=self.collate_fn,
            num_workers=self.num_workers,
            generator=generator,
            pin_memory=self.info.device.type == "cuda",
        )

    def _micro_batches(self, position: Position) -> Iterator[tuple[tuple[int, int], Any]]:
        """Yield ((epoch, batches consumed) after this batch, batch) forever, epoch after epoch."""
        epoch, start = position.epoch, position.batch
        while True:
            for consumed, batch in enumerate(self._loader(epoch, start), start=start + 1):
                yield ((epoch + 1, 0) if consumed == self._batches_per_epoch else (epoch, consumed)), batch
            epoch, start = epoch + 1, 0

    # ==================================================================== loop
    def _run(
        self,
        parallel: ParallelModel,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        position: Position,
    ) -> None:
        stage, info = self.stage, self.info
        accum = stage.grad_accum
        params = [p for g in optimizer.param_groups for p in g["params"]]
        metrics = MetricsLogger(self.run_dir, self.name) if info.is_main else None
        step, micro = position.step, 0
        window = _LogWindow(info.device, start_step=step)
        optimizer.zero_grad(set_to_none=True)
        try:
            with StageProgress(self.name, stage.steps, step, enabled=self.progress and info.is_main) as bar:
                for (epoch, consumed), host_batch in self._micro_batches(position):
                    micro += 1
                    batch = move_to_device(host_batch, info.device)
                    with parallel.gradient_sync(micro == accum):
                        with _autocast(self.train, info.device):
                            loss, extras = self.loss_fn(parallel.wrapped, batch)
                        (loss / accum).backward()  # outside autocast, as torch recommends
                    window.add_micro(loss, extras)
                    if micro < accum:
                        continue
                    micro = 0
                    parallel.sync_replicated_grads()
                    grad_norm = self._clip(params)
                    lr = optimizer.param_groups[0]["lr"]
                    optimizer.step()
                    scheduler.step()
                    optimizer.zero_grad(set_to_none=True)
                    for module in self._hooks:
                        module.after_optimizer_step()
                    step += 1
                    bar.advance()
                    finished = step == stage.steps
                    if step % stage.log_every == 0 or finished:
                        values = window.flush(step, lr, grad_norm, stage.batch_size * accum * info.world_size)
                        self._check_finite(values["loss"], step)
                        if metrics is not None:
                            metrics.log(step, values)
                        bar.show_loss(values["loss"])
                    periodic = stage.checkpoint_every and step % stage.checkpoint_every == 0
                    if periodic or finished:
                        here = Position(step, epoch, consumed)
                        self._save(parallel, optimizer, scheduler, here, finished=finished)
                    if finished:
                        break
        finally:
            if metrics is not None:
                metrics.close()

    def _clip(self, params: list[Tensor]) -> Tensor:
        """Clip to ``stage.clip_grad_norm`` (if set); return the pre-clip total norm."""
        if self.stage.clip_grad_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.stage.clip_grad_norm)
        else:
            norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        return norm.full_tensor() if hasattr(norm, "full_tensor") else norm

    def _check_finite(self, loss: float, step: int) -> None:
        if not math.isfinite(loss):
            raise DomainClipError(
                f"stage '{self.name}': the loss is {loss} at step {step}; lower stages.{self.name}.lr "
                f"or check the data. The last checkpoint is in {self.store.directory}"
            )

    # ============================================================ checkpoints
    def _save(
        self,
        parallel: ParallelModel,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        position: Position,
        *,
        finished: bool,
    ) -> None:
        weights = parallel.model_state()  # collective under FSDP
        optimizer_state = parallel.optimizer_state(optimizer)
        rng = _gather(capture_rng_state(), self.info)
        if self.info.is_main:
            state = {
                "stage": self.name,
                "strategy": self.train.strategy,
                "total_steps": self.stage.steps,
                "optimizer_format": parallel.optimizer_format,
                "world_size": self.info.world_size,
                "batch_size": self.stage.batch_size,
                "grad_accum": self.stage.grad_accum,
                "seed": self.train.seed,
                "epoch": position.epoch,
                "batch": position.batch,
                "optimizer": optimizer_state,
                "scheduler": scheduler.state_dict(),
                "rng": rng,
            }
            self.store.save(position.step, weights, state, finished=finished)
        barrier()


def _gather(obj: Any, info: DistInfo) -> list[Any]:
    """Every rank's ``obj``, in rank order."""
    if not info.distributed:
        return [obj]
    gathered: list[Any] = [None] * info.world_size
    dist.all_gather_object(gathered, obj)
    return gathered


class _LogWindow:
    """Loss and extras accumulated between two log lines, averaged over micro-batches and ranks."""

    def __init__(self, device: torch.device, start_step: int) -> None:
        self.device = device
        self.loss_sum = torch.zeros((), device=device)
        self.extras: dict[str, float] = {}
        self.micro = 0
        self.last_step = start_step
        self.last_time = time.perf_counter()

    def add_micro(self, loss: Tensor, extras: dict[str, float]) -> None:
        self.loss_sum += loss.detach().float()
        for key, value in extras.items():
            self.extras[key] = self.extras.get(key, 0.0) + float(value)
        self.micro += 1

    def flush(self, step: int, lr: float, grad_norm: Tensor, samples_per_step: int) -> dict[str, float]:
        keys = sorted(self.extras)
        means = torch.stack([self.loss_sum] + [torch.tensor(self.extras[k], device=self.device) for k in keys])
        means = means.float() / self.micro
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(means)
            means /= dist.get_world_size()
        values = means.tolist()
        now = time.perf_counter()
        steps_per_s = (step - self.last_step) / max(now - self.last_time, 1e-9)
        result = {
            "loss": values[0],
            "lr": lr,
            "grad_norm": float(grad_norm),
            "steps_per_s": steps_per_s,
            "samples_per_s": steps_per_s * samples_per_step,
        }
        result.update(zip(keys, values[1:], strict=True))
        self.loss_sum.zero_()
        self.extras = {}
        self.micro = 0
        self.last_step, self.last_time = step, now
        return result
