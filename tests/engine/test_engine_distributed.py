"""Process-group setup, the torchrun launcher, the resumable sampler and RNG state."""

from __future__ import annotations

import io
import random
import sys

import numpy as np
import pytest
import torch

from domainclip.engine.distributed import init_distributed, is_main_process
from domainclip.engine.launch import launch_local, torchrun_command
from domainclip.engine.rng import capture_rng_state, restore_rng_state
from domainclip.engine.sampler import ResumableDistributedSampler
from domainclip.errors import DomainClipError, RecipeError

TORCHRUN_VARS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID")


@pytest.fixture
def no_torchrun_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_without_torchrun_this_is_rank_0_of_1_on_cpu(no_torchrun_env: pytest.MonkeyPatch) -> None:
    info = init_distributed()
    assert (info.rank, info.world_size, info.distributed, info.device.type) == (0, 1, False, "cpu")
    assert is_main_process()


def test_an_incomplete_torchrun_env_names_the_missing_variable(no_torchrun_env: pytest.MonkeyPatch) -> None:
    for name, value in (("RANK", "0"), ("WORLD_SIZE", "2"), ("LOCAL_RANK", "0")):
        no_torchrun_env.setenv(name, value)
    with pytest.raises(DomainClipError, match="MASTER_ADDR, MASTER_PORT is not"):
        init_distributed()
    no_torchrun_env.setenv("RANK", "first")
    with pytest.raises(DomainClipError, match="RANK='first' is not an integer"):
        init_distributed()


def test_torchrun_command_runs_the_cli_module_in_n_processes() -> None:
    command = torchrun_command(3, ["run", "recipe.yaml"])
    assert command[:4] == [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    assert command[4:] == ["--nproc_per_node=3", "-m", "domainclip.cli.main", "run", "recipe.yaml"]
    with pytest.raises(RecipeError, match="--nproc must be at least 1"):
        torchrun_command(0, [])


def test_launch_local_refuses_to_nest_inside_torchrun(no_torchrun_env: pytest.MonkeyPatch) -> None:
    no_torchrun_env.setenv("LOCAL_RANK", "0")
    with pytest.raises(RecipeError, match="drop --nproc"):
        launch_local(2, ["run"])


def test_sampler_started_mid_epoch_continues_the_same_order() -> None:
    def sampler() -> ResumableDistributedSampler:
        s = ResumableDistributedSampler(range(20), num_replicas=2, rank=1, seed=5, drop_last=True)
        s.set_epoch(3)
        return s

    full = list(sampler())
    resumed = sampler()
    resumed.set_start_index(4)
    assert list(resumed) == full[4:] and len(resumed) == len(full) - 4
    assert full != sorted(full)  # shuffled
    with pytest.raises(ValueError):
        resumed.set_start_index(11)


def test_rng_state_survives_a_weights_only_round_trip() -> None:
    state = capture_rng_state()
    expected = (random.random(), np.random.rand(), torch.rand(1).item())
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    restore_rng_state(torch.load(buffer, weights_only=True))
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == expected


def test_fsdp_units_are_the_repeated_blocks() -> None:
    from torch import nn

    from domainclip.engine.parallel import _block_stacks

    model = nn.Module()
    model.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])  # HF / MONAI style
    model.blocks = nn.Sequential(*(nn.TransformerEncoderLayer(4, 1) for _ in range(3)))  # timm style
    model.mlp = nn.Sequential(nn.Linear(2, 2), nn.GELU(), nn.Linear(2, 2))  # not a stack of blocks
    stacks = dict(_block_stacks(model))
    assert set(stacks) >= {"layers", "blocks"} and "mlp" not in stacks
    assert len(stacks["blocks"]) == 3
