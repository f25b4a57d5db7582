"""AdamW parameter groups and the learning-rate schedule.

Weight decay is only meant for weight matrices: decaying biases, norm scales, a
temperature or positional embeddings pulls them towards 0 for no benefit. We
follow timm's convention: parameters with ``ndim < 2`` and the names a submodule
lists in ``no_weight_decay()`` (relative to that submodule) get no decay.

The schedule is linear warmup then cosine decay to 0, with open_clip's step
convention (``lr * (step + 1) / warmup`` during warmup, so the first step
already learns). It is a closed form inside ``LambdaLR``, so resuming cannot
drift, and the scheduler state is plain numbers that ``torch.load(weights_only=True)``
reads.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.optim.lr_scheduler import LambdaLR

from domainclip.config.schema import StageConfig


def no_weight_decay_names(model: nn.Module) -> set[str]:
    """Full parameter names excluded from decay by any submodule's ``no_weight_decay()``.

    A listed name may also be a submodule name; then all its parameters are excluded.
    """
    listed: set[str] = set()
    for prefix, module in model.named_modules():
        hook = getattr(module, "no_weight_decay", None)
        if callable(hook):
            listed |= {f"{prefix}.{name}" if prefix else name for name in hook()}
    names = set()
    for name, _ in model.named_parameters():
        if name in listed or any(name.startswith(entry + ".") for entry in listed):
            names.add(name)
    return names


def _named_trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def weight_decay_groups(
    model: nn.Module, weight_decay: float, param_groups: list[dict[str, Any]] | None = None
) -> list[dict[str, Any]]:
    """Split parameters into decay / no-decay AdamW groups.

    ``param_groups`` are the caller's groups (``{"params": [...], "lr": ...}``),
    each split in two; trainable parameters that no caller group names form a
    default group placed first. Groups refer to parameters by name (``"param_names"``)
    so they can be rebuilt after FSDP replaces the parameter objects; use
    :func:`resolve_groups` to turn them into optimiser groups. Frozen parameters
    are left out.
    """
    trainable = _named_trainable(model)
    name_of = {id(p): name for name, p in trainable.items()}
    exempt = no_weight_decay_names(model)

    caller_groups: list[tuple[dict[str, Any], list[str]]] = []
    claimed: set[str] = set()
    for index, group in enumerate(param_groups or []):
        if "params" not in group:
            raise ValueError(f"param_groups[{index}] has no 'params'")
        names = []
        for p in group["params"]:
            name = name_of.get(id(p))
            if name is None:
                if p.requires_grad:
                    raise ValueError(f"param_groups[{index}] holds a parameter that is not in the model")
                continue
            if name in claimed:
                raise ValueError(f"parameter {name!r} is in more than one of param_groups")
            claimed.add(name)
            names.append(name)
        options = {k: v for k, v in group.items() if k != "params"}
        caller_groups.append((options, names))
    leftover = [name for name in trainable if name not in claimed]
    all_groups = [({}, leftover), *caller_groups]

    result = []
    for options, names in all_groups:
        decay = [n for n in names if trainable[n].ndim >= 2 and n not in exempt]
        no_decay = [n for n in names if trainable[n].ndim < 2 or n in exempt]
        group_decay = options.get("weight_decay", weight_decay)
        for subset, wd in ((decay, group_decay), (no_decay, 0.0)):
            if subset:
                result.append({**options, "param_names": subset, "weight_decay": wd})
    return result


def resolve_groups(model: nn.Module, groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Replace ``"param_names"`` by the model's current parameter objects."""
    params = dict(model.named_parameters())
    return [
        {**{k: v for k, v in g.items() if k != "param_names"}, "params": [params[n] for n in g["param_names"]]}
        for g in groups
    ]


def build_optimizer(groups: Iterable[dict[str, Any]], stage: StageConfig) -> torch.optim.AdamW:
    """AdamW over resolved groups; groups without their own ``lr`` use ``stage.lr``."""
    return torch.optim.AdamW(list(groups), lr=stage.lr, weight_decay=stage.weight_decay)


def warmup_cosine(warmup_steps: int, total_steps: int) -> Callable[[int], float]:
    """LR multiplier at optimiser step ``step`` (0-based): linear warmup, then cosine to 0."""

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        decay_steps = max(1, total_steps - warmup_steps)
        progress = min(1.0, (step - warmup_steps) / decay_steps)
        return 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


def build_scheduler(optimizer: torch.optim.Optimizer, stage: StageConfig) -> LambdaLR:
    """Per-group warmup + cosine over ``stage.steps`` (each group scales its own lr)."""
    return LambdaLR(optimizer, warmup_cosine(stage.warmup_steps, stage.steps))
