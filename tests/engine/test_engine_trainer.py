"""The training loop in one process: accumulation, schedule, hooks, precision, metrics, resume."""

from __future__ import annotations

import json
import math
import shutil
from collections import namedtuple
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset
from train_tiny import mse_loss, tiny_dataset, tiny_model, tiny_stage

from domainclip.config.schema import TrainConfig
from domainclip.engine.checkpoint import CheckpointStore
from domainclip.engine.optim import warmup_cosine
from domainclip.engine.trainer import Trainer, move_to_device
from domainclip.errors import CheckpointError, RecipeError
from domainclip.models.logit_scale import LogitScale


def fit(
    run_dir: Path,
    *,
    model: nn.Module | None = None,
    loss_fn=mse_loss,
    dataset=None,
    train: TrainConfig | None = None,
    resume: bool = False,
    **stage: Any,
) -> nn.Module:
    trainer = Trainer(
        model=model or tiny_model(),
        loss_fn=loss_fn,
        dataset=dataset or tiny_dataset(),
        stage=tiny_stage(**stage),
        train=train or TrainConfig(seed=3),
        run_dir=run_dir,
        name="tiny",
        progress=False,
    )
    return trainer.fit(resume=resume)


def metrics(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "logs" / "metrics.jsonl").read_text().splitlines()]


def max_diff(a: nn.Module, b: nn.Module) -> float:
    sa, sb = a.state_dict(), b.state_dict()
    return max((sa[k] - sb[k]).abs().max().item() for k in sa)


def test_grad_accumulation_equals_the_doubled_batch(tmp_path: Path) -> None:
    # No clipping, so a wrongly scaled accumulated gradient shows in the logged norm.
    accumulated = fit(tmp_path / "accum", steps=6, batch_size=4, grad_accum=2, clip_grad_norm=None)
    doubled = fit(tmp_path / "double", steps=6, batch_size=8, grad_accum=1, clip_grad_norm=None)
    assert max_diff(accumulated, doubled) < 1e-6
    for a, b in zip(metrics(tmp_path / "accum"), metrics(tmp_path / "double"), strict=True):
        assert a["grad_norm"] == pytest.approx(b["grad_norm"], rel=1e-5)
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)


def test_metrics_lines_follow_log_every_and_the_schedule(tmp_path: Path) -> None:
    fit(tmp_path, steps=5, log_every=2, warmup_steps=2, lr=0.01)
    lines = metrics(tmp_path)
    assert [line["step"] for line in lines] == [2, 4, 5]  # every 2 steps, and the last one
    factor = warmup_cosine(2, 5)
    for line in lines:  # the lr used by the logged step (0-based step - 1)
        assert line["lr"] == pytest.approx(0.01 * factor(line["step"] - 1))
        assert line["stage"] == "tiny" and line["steps_per_s"] > 0 and math.isfinite(line["loss"])
        assert line["grad_norm"] > 0 and "target_mean" in line


class ScaleModel(nn.Module):
    """A loss that only pushes the logit scale up; counts the engine's hook calls."""

    def __init__(self) -> None:
        super().__init__()
        self.logit_scale = LogitScale()
        self.head = nn.Linear(8, 1)
        self.hook_calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x).mean() * 0 - self.logit_scale()

    def after_optimizer_step(self) -> None:
        self.hook_calls += 1


def test_logit_scale_is_clamped_and_hooks_run_after_every_step(tmp_path: Path) -> None:
    model = ScaleModel()
    trained = fit(tmp_path, model=model, loss_fn=lambda m, batch: (m(batch[0]), {}), steps=6, lr=1.0, warmup_steps=0)
    assert model.hook_calls == 6
    # Adam moves the 0-dim log-scale by ~lr per step: unclamped it would pass log(100) by step 2.
    assert trained.logit_scale.log_scale.item() == pytest.approx(math.log(100.0))


class Checkpointable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(8, 1)
        self.grad_checkpointing = False
        self.output_dtypes: list[torch.dtype] = []

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.linear(x)
        self.output_dtypes.append(out.dtype)
        return out


def test_activation_checkpointing_uses_the_timm_hook_or_warns(tmp_path: Path) -> None:
    model = Checkpointable()
    fit(tmp_path / "a", model=model, steps=1, train=TrainConfig(activation_checkpointing=True))
    assert model.grad_checkpointing
    with pytest.warns(UserWarning, match="set_grad_checkpointing"):
        fit(tmp_path / "b", steps=1, train=TrainConfig(activation_checkpointing=True))


@pytest.mark.parametrize(("precision", "dtype"), [("auto", torch.float32), ("bf16", torch.bfloat16)])
def test_precision_auto_is_fp32_on_cpu_and_bf16_autocasts(tmp_path: Path, precision: str, dtype: torch.dtype) -> None:
    model = Checkpointable()
    fit(
        tmp_path,
        model=model,
        loss_fn=lambda m, b: (m(b[0]).float().pow(2).mean(), {}),
        steps=1,
        train=TrainConfig(precision=precision),
    )
    assert model.output_dtypes == [dtype]


def test_interrupted_run_resumes_from_its_checkpoint_to_the_same_weights(tmp_path: Path) -> None:
    full = fit(tmp_path / "full", steps=8, checkpoint_every=4)
    # The same run as if stopped after its step-4 checkpoint: remove the final one (step 8);
    # the engine then falls back to the newest checkpoint left.
    fit(tmp_path / "cut", steps=8, checkpoint_every=4)
    store = CheckpointStore(tmp_path / "cut" / "checkpoints" / "tiny")
    shutil.rmtree(store.directory / "step-00000008")
    assert store.latest().step == 4
    resumed = fit(tmp_path / "cut", steps=8, checkpoint_every=4, resume=True)
    assert store.latest().step == 8 and store.latest().finished
    assert max_diff(full, resumed) < 1e-6
    assert [line["step"] for line in metrics(tmp_path / "cut")] == [*range(1, 9), *range(5, 9)]


def test_resuming_a_finished_stage_returns_its_final_weights_without_training(tmp_path: Path) -> None:
    trained = fit(tmp_path, steps=3)
    lines = len(metrics(tmp_path))
    fresh = tiny_model()
    assert max_diff(fresh, trained) > 1e-3
    again = fit(tmp_path, model=fresh, steps=3, resume=True)
    assert max_diff(again, trained) == 0.0 and len(metrics(tmp_path)) == lines


def test_a_dataset_smaller_than_one_batch_names_the_batch_size(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match=r"stages\.tiny\.batch_size"):
        fit(tmp_path, dataset=TensorDataset(torch.zeros(3, 8), torch.zeros(3, 1)), batch_size=4)


def test_move_to_device_moves_nested_tensors_and_keeps_structure() -> None:
    Pair = namedtuple("Pair", "image text")
    batch = {"pair": Pair(torch.zeros(2), [torch.ones(1), "id-7"]), "n": 3}
    moved = move_to_device(batch, torch.device("meta"))
    assert isinstance(moved["pair"], Pair) and moved["n"] == 3 and moved["pair"].text[1] == "id-7"
    assert moved["pair"].image.is_meta and moved["pair"].text[0].is_meta


def test_resume_with_another_batch_size_warns_and_continues_from_the_next_epoch(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fit(tmp_path, steps=12, checkpoint_every=3, batch_size=8)
    store = CheckpointStore(tmp_path / "checkpoints" / "tiny")
    shutil.rmtree(store.directory / "step-00000012")  # as if stopped after step 9 (epoch 1, batch 1)
    with caplog.at_level("WARNING", logger="domainclip.engine.trainer"):
        fit(tmp_path, steps=12, checkpoint_every=3, batch_size=4, resume=True)
    assert "continuing from the next epoch" in caplog.text
    state = store.load_state(store.latest())
    assert (state["step"], state["epoch"], state["batch"]) == (12, 2, 3)


def test_resume_refuses_an_optimizer_state_of_another_strategy(tmp_path: Path) -> None:
    fit(tmp_path, steps=4, checkpoint_every=2)
    store = CheckpointStore(tmp_path / "checkpoints" / "tiny")
    shutil.rmtree(store.directory / "step-00000004")
    ref = store.latest()
    state = store.load_state(ref)
    state["optimizer_format"], state["strategy"], state["world_size"] = "names", "fsdp", 2
    store.save(ref.step, store.load_weights(ref), state, finished=False)
    with pytest.raises(CheckpointError, match="multi-process FSDP run .* resume with the same strategy"):
        fit(tmp_path, steps=4, checkpoint_every=2, resume=True)
