"""Weight-decay groups and the warmup + cosine schedule."""

from __future__ import annotations

import pytest
import torch
from open_clip_train.scheduler import cosine_lr
from torch import nn
from train_tiny import tiny_stage

from domainclip.engine.optim import (
    build_optimizer,
    build_scheduler,
    no_weight_decay_names,
    resolve_groups,
    weight_decay_groups,
)
from domainclip.models.logit_scale import LogitScale


class PatchEmbed(nn.Module):
    """timm-style module: lists a 3-D parameter and a submodule as exempt from decay."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.pos_embed = nn.Parameter(torch.zeros(1, 3, 4))
        self.special = nn.Linear(4, 4)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "special"}


class TwoTowers(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.image = nn.Sequential(PatchEmbed(), nn.LayerNorm(4))
        self.text = nn.Linear(4, 4)
        self.frozen = nn.Linear(4, 4).requires_grad_(False)
        self.logit_scale = LogitScale()


def _names(groups: list[dict]) -> list[tuple[set[str], float, float | None]]:
    return [(set(g["param_names"]), g["weight_decay"], g.get("lr")) for g in groups]


def test_no_weight_decay_names_are_relative_to_the_declaring_module() -> None:
    assert no_weight_decay_names(TwoTowers()) == {"image.0.pos_embed", "image.0.special.weight", "image.0.special.bias"}


def test_groups_split_decay_from_no_decay_and_keep_caller_options() -> None:
    model = TwoTowers()
    groups = weight_decay_groups(model, 0.05, [{"params": model.text.parameters(), "lr": 1e-3}])
    assert _names(groups) == [
        ({"image.0.proj.weight"}, 0.05, None),
        (
            {
                "image.0.proj.bias",
                "image.0.pos_embed",
                "image.0.special.weight",
                "image.0.special.bias",
                "image.1.weight",
                "image.1.bias",
                "logit_scale.log_scale",
            },
            0.0,
            None,
        ),
        ({"text.weight"}, 0.05, 1e-3),
        ({"text.bias"}, 0.0, 1e-3),
    ]
    optimizer = build_optimizer(resolve_groups(model, groups), tiny_stage(lr=0.01, weight_decay=0.05))
    lrs_and_decay = [(g["lr"], g["weight_decay"]) for g in optimizer.param_groups]
    assert lrs_and_decay == [(0.01, 0.05), (0.01, 0.0), (1e-3, 0.05), (1e-3, 0.0)]
    trained = {id(p) for g in optimizer.param_groups for p in g["params"]}
    assert all(id(p) not in trained for p in model.frozen.parameters())


def test_a_parameter_in_two_caller_groups_is_refused() -> None:
    model = TwoTowers()
    with pytest.raises(ValueError, match="text.weight"):
        weight_decay_groups(model, 0.05, [{"params": [model.text.weight]}, {"params": [model.text.weight]}])


@pytest.mark.parametrize("warmup", [0, 3])
def test_schedule_matches_open_clip_cosine(warmup: int) -> None:
    steps, base_lr = 12, 0.5
    stage = tiny_stage(steps=steps, warmup_steps=warmup, lr=base_lr)
    ours = build_optimizer([{"params": [nn.Parameter(torch.zeros(2, 2))]}], stage)
    scheduler = build_scheduler(ours, stage)
    reference_optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=base_lr)
    reference = cosine_lr(reference_optimizer, base_lr, warmup, steps)
    for step in range(steps):
        assert ours.param_groups[0]["lr"] == pytest.approx(reference(step), abs=1e-12)
        ours.step()
        scheduler.step()
    assert ours.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)  # decayed to 0 at the end
