"""Checkpoint files: format, atomicity, pruning, and clear errors that never delete anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from train_tiny import mse_loss, tiny_dataset, tiny_model, tiny_stage

import domainclip.engine.checkpoint as checkpoint_module
from domainclip.config.schema import TrainConfig
from domainclip.engine.checkpoint import CheckpointStore
from domainclip.engine.trainer import Trainer
from domainclip.errors import CheckpointError


def fit(run_dir: Path, *, resume: bool = False, model: torch.nn.Module | None = None, **stage: object) -> None:
    Trainer(
        model=model or tiny_model(),
        loss_fn=mse_loss,
        dataset=tiny_dataset(),
        stage=tiny_stage(**stage),
        train=TrainConfig(seed=3),
        run_dir=run_dir,
        name="tiny",
        progress=False,
    ).fit(resume=resume)


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` and its bytes: proves an error deleted or changed nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture
def finished_run(tmp_path: Path) -> Path:
    """A finished 4-step run with checkpoints at steps 2 and 4, plus a user file in the run folder."""
    (tmp_path / "recipe.yaml").write_text("domain: ct\n")
    fit(tmp_path, steps=4, checkpoint_every=2)
    return tmp_path


def store_of(run_dir: Path) -> CheckpointStore:
    return CheckpointStore(run_dir / "checkpoints" / "tiny")


def test_files_are_safetensors_and_a_weights_only_state(finished_run: Path) -> None:
    ref = store_of(finished_run).latest()
    assert (ref.step, ref.finished) == (4, True)
    assert set(load_file(str(ref.weights_path))) == set(tiny_model().state_dict())
    state = torch.load(ref.state_path, weights_only=True)
    assert {"optimizer", "scheduler", "rng", "epoch", "batch", "world_size"} <= set(state)
    assert state["step"] == 4 and state["scheduler"]["last_epoch"] == 4
    assert len(state["optimizer"]["state"]) == len(list(tiny_model().parameters()))


def test_only_the_last_two_checkpoints_are_kept(tmp_path: Path) -> None:
    fit(tmp_path, steps=4, checkpoint_every=1)
    assert sorted(p.name for p in store_of(tmp_path).directory.iterdir()) == [
        "latest.json",
        "step-00000003",
        "step-00000004",
    ]


def test_resume_without_any_checkpoint_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / "recipe.yaml").write_text("domain: ct\n")
    before = snapshot(tmp_path)
    with pytest.raises(CheckpointError, match="holds no checkpoint; run without --resume") as error:
        fit(tmp_path, resume=True)
    assert str(tmp_path / "checkpoints") in str(error.value)
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", ["state.pt", "model.safetensors"])
def test_a_truncated_checkpoint_file_is_named_and_nothing_is_deleted(finished_run: Path, name: str) -> None:
    path = store_of(finished_run).latest().directory / name
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    before = snapshot(finished_run)
    with pytest.raises(CheckpointError) as error:
        fit(finished_run, steps=4, checkpoint_every=2, resume=True)
    message = str(error.value)
    assert str(path) in message and "corrupt" in message
    assert "previous checkpoint (step 2)" in message and "step-00000004" in message
    assert snapshot(finished_run) == before


def test_an_unreadable_pointer_is_named(finished_run: Path) -> None:
    pointer = store_of(finished_run).pointer_path
    pointer.write_text("{not json")
    with pytest.raises(CheckpointError, match="latest.json is unreadable"):
        fit(finished_run, steps=4, checkpoint_every=2, resume=True)
    assert pointer.read_text() == "{not json"


def test_a_checkpoint_of_another_model_is_refused(finished_run: Path) -> None:
    other = torch.nn.Sequential(torch.nn.Linear(8, 1))
    with pytest.raises(CheckpointError, match="does not match the model"):
        fit(finished_run, model=other, steps=4, checkpoint_every=2, resume=True)


def test_a_fresh_run_refuses_to_overwrite_existing_checkpoints(finished_run: Path) -> None:
    before = snapshot(finished_run)
    with pytest.raises(CheckpointError, match="already has checkpoints"):
        fit(finished_run, steps=4)
    assert snapshot(finished_run) == before


def test_a_save_that_dies_midway_leaves_the_previous_checkpoint_intact(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = CheckpointStore(tmp_path)
    weights = {"w": torch.arange(6.0).reshape(2, 3)}
    store.save(1, weights, {"note": "first"}, finished=False)

    def dies_after_half_a_file(tensors: dict, filename: str, metadata: dict) -> None:
        Path(filename).write_bytes(b"half a safetensors file")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", dies_after_half_a_file)
    with pytest.raises(OSError, match="disk full"):
        store.save(2, {"w": torch.zeros(2, 3)}, {"note": "second"}, finished=False)
    ref = store.latest()
    assert ref.step == 1 and torch.equal(store.load_weights(ref)["w"], weights["w"])
    assert store.load_state(ref)["note"] == "first"
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]  # no half-written files left


def test_tied_weights_are_saved(tmp_path: Path) -> None:
    shared = torch.randn(3, 3)
    store = CheckpointStore(tmp_path)
    store.save(1, {"encoder.weight": shared, "decoder.weight": shared, "row": shared[0]}, {}, finished=True)
    loaded = store.load_weights(store.latest())
    assert torch.equal(loaded["decoder.weight"], shared) and torch.equal(loaded["row"], shared[0])
