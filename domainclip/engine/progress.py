"""A progress bar for a stage, shown on rank 0 in an interactive terminal only.

Off rank 0 or when stderr is not a TTY (batch jobs, CI, pipes), nothing is
drawn: metrics.jsonl is the record there.
"""

from __future__ import annotations

import sys
from types import TracebackType
from typing import Self

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)


class StageProgress:
    """``with StageProgress(...) as bar: bar.advance(); bar.show_loss(x)``."""

    def __init__(self, stage: str, total_steps: int, start_step: int, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self._progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[loss]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            disable=not self.enabled,
        )
        self._task = self._progress.add_task(stage, total=total_steps, completed=start_step, loss="")

    def __enter__(self) -> Self:
        self._progress.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._progress.stop()

    def advance(self) -> None:
        self._progress.advance(self._task)

    def show_loss(self, loss: float) -> None:
        self._progress.update(self._task, loss=f"loss {loss:.4f}")
