"""The small torch training loop shared by the MLP heads: minibatches, early stopping, seeded.

Heads on frozen embeddings are cheap to train but overfit quickly, so every head
monitors a validation loss after each epoch, keeps the best weights and stops
after ``patience`` epochs without improvement. The whole run happens inside
``torch.random.fork_rng`` so that a seeded head is reproducible and does not
disturb the caller's global random state.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn

BatchLoss = Callable[
    [nn.Module, torch.Tensor], torch.Tensor
]  # (module, sample indices) -> scalar loss
ValidationLoss = Callable[[nn.Module], float]


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch for initialisation and dropout without touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_mlp(
    in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0
) -> nn.Sequential:
    """Linear layers with GELU and dropout between them; ``hidden=()`` is a single linear layer.

    Returned as a plain ``nn.Sequential`` so it can also sit on top of an encoder for fine-tuning.
    """
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.GELU(), nn.Dropout(dropout)]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


def weight_l2(module: nn.Module) -> torch.Tensor:
    """Sum of squared weight-matrix entries (biases are not penalised)."""
    return sum(
        (p.pow(2).sum() for name, p in module.named_parameters() if name.endswith("weight")),
        start=torch.zeros((), dtype=next(module.parameters()).dtype),
    )


@dataclass
class TrainingHistory:
    """What the loop did: losses per epoch and the epoch whose weights were kept."""

    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    best_epoch: int = -1
    stopped_early: bool = False


def train_minibatch(
    module: nn.Module,
    batch_loss: BatchLoss,
    n_train: int,
    *,
    val_loss: ValidationLoss | None,
    lr: float,
    weight_decay: float,
    max_epochs: int,
    batch_size: int | None,
    patience: int,
    seed: int,
) -> TrainingHistory:
    """AdamW over shuffled minibatches (``batch_size=None``: full batch); restores the best-validation weights."""
    history = TrainingHistory()
    optimizer = torch.optim.AdamW(module.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    size = n_train if batch_size is None else max(1, min(batch_size, n_train))
    best, best_state, waited = math.inf, None, 0
    for epoch in range(max_epochs):
        module.train()
        order = torch.randperm(n_train, generator=generator)
        total = 0.0
        for start in range(0, n_train, size):
            optimizer.zero_grad(set_to_none=True)
            loss = batch_loss(module, order[start : start + size])
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * min(size, n_train - start)
        history.train_loss.append(total / n_train)
        if val_loss is None:
            continue
        module.eval()
        with torch.no_grad():
            current = float(val_loss(module))
        history.val_loss.append(current)
        if math.isfinite(current) and (
            best == math.inf or current < best - 1e-7 * max(1.0, abs(best))
        ):
            best, best_state, waited, history.best_epoch = (
                current,
                copy.deepcopy(module.state_dict()),
                0,
                epoch,
            )
        else:
            waited += 1
            if waited >= patience:
                history.stopped_early = True
                break
    if best_state is not None:
        module.load_state_dict(best_state)
    else:
        history.best_epoch = len(history.train_loss) - 1
    module.eval()
    return history


__all__ = [
    "BatchLoss",
    "TrainingHistory",
    "ValidationLoss",
    "build_mlp",
    "seeded",
    "train_minibatch",
    "weight_l2",
]
