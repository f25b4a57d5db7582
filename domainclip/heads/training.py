"""The small torch training loop shared by the MLP heads: minibatches, early stopping, seeded.

:class:`MinibatchMLPHead` holds the rest of what those heads share (feature
checks, z-scoring, building and training the MLP), so a head only adds its
targets, loss and output transform.

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
from typing import Any

import numpy as np
import torch
from torch import nn

from domainclip.errors import DataError
from domainclip.heads.inputs import ArrayLike, features_2d

BatchLoss = Callable[[nn.Module, torch.Tensor], torch.Tensor]  # (module, sample indices) -> scalar loss
ValidationLoss = Callable[[nn.Module], float]
TargetLoss = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (outputs, targets) -> scalar
TargetReader = Callable[[ArrayLike, int, str], torch.Tensor]  # (y, n_rows, arg name) -> (n, k)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed torch for initialisation and dropout without touching the caller's random state."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


def build_mlp(in_dim: int, hidden: Sequence[int], out_dim: int, dropout: float = 0.0) -> nn.Sequential:
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
        if math.isfinite(current) and (best == math.inf or current < best - 1e-7 * max(1.0, abs(best))):
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


class MinibatchMLPHead:
    """What the torch MLP heads share: z-scored features, the feature-count check and seeded training.

    A head fits its own feature scaler (it keeps its own public attribute name),
    turns ``y`` into a target tensor and supplies the loss; :meth:`_fit_module`
    does the rest, so all heads validate, scale and train in the same order.
    """

    def __init__(
        self,
        hidden: Sequence[int],
        dropout: float,
        *,
        lr: float,
        weight_decay: float,
        max_epochs: int,
        batch_size: int | None,
        patience: int,
        seed: int,
    ) -> None:
        self.hidden = tuple(hidden)
        self.dropout, self.lr, self.weight_decay = dropout, lr, weight_decay
        self.max_epochs, self.batch_size, self.patience, self.seed = (
            max_epochs,
            batch_size,
            patience,
            seed,
        )
        self.history_: TrainingHistory | None = None

    def _features(self, X: ArrayLike, name: str) -> np.ndarray:
        x = features_2d(X, name)
        if x.shape[1] != self.n_features_in_:
            raise DataError(f"{name}: {x.shape[1]} features, but the head was fitted on {self.n_features_in_}")
        return x

    def _scaled(self, scaler: Any, X: ArrayLike, name: str) -> torch.Tensor:
        """``X`` checked against the fitted width and z-scored, as the module's float32 input."""
        return torch.from_numpy(scaler.transform(self._features(X, name))).float()

    def _fit_module(
        self,
        scaler: Any,
        x: np.ndarray,
        targets: torch.Tensor,
        X_val: ArrayLike | None,
        y_val: ArrayLike | None,
        val_targets: TargetReader,
        loss: TargetLoss,
    ) -> None:
        """Build ``module_`` (seeded) and train it on scaled ``x``; ``X_val`` drives early stopping."""
        self.n_features_in_ = x.shape[1]
        z = torch.from_numpy(scaler.transform(x)).float()
        val_loss = None
        if X_val is not None:
            if y_val is None:
                raise ValueError("X_val needs y_val")
            zv = self._scaled(scaler, X_val, "X_val")
            tv = val_targets(y_val, len(zv), "y_val")
            val_loss = lambda m: float(loss(m(zv), tv))
        with seeded(self.seed):
            self.module_ = build_mlp(z.shape[1], self.hidden, targets.shape[1], self.dropout)
            self.history_ = train_minibatch(
                self.module_,
                lambda m, idx: loss(m(z[idx]), targets[idx]),
                len(z),
                val_loss=val_loss,
                lr=self.lr,
                weight_decay=self.weight_decay,
                max_epochs=self.max_epochs,
                batch_size=self.batch_size,
                patience=self.patience,
                seed=self.seed,
            )


__all__ = [
    "BatchLoss",
    "MinibatchMLPHead",
    "TargetLoss",
    "TargetReader",
    "TrainingHistory",
    "ValidationLoss",
    "build_mlp",
    "seeded",
    "train_minibatch",
    "weight_l2",
]
