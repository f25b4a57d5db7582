"""A stage's progress on rank 0: a bar in an interactive terminal; when stderr is not a TTY (batch jobs, CI,
SLURM logs), one line every :data:`~domainclip.progress.LOG_EVERY_S` seconds and one at the end. Other ranks show
nothing; metrics.jsonl is the record of the losses either way.
"""

from __future__ import annotations

import sys
import time
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

from domainclip.progress import LOG_EVERY_S, progress_line


class StageProgress:
    """``with StageProgress(...) as bar: bar.advance(); bar.show_loss(x)``."""

    def __init__(self, stage: str, total_steps: int, start_step: int, *, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr.isatty()
        self.log_lines = enabled and not self.enabled
        self._stage, self._total, self._start_step, self._step = stage, total_steps, start_step, start_step
        self._loss = ""
        self._started = self._last_line = time.monotonic()
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
        if self.log_lines and self._step > self._start_step:
            self._print_line(finished=True)

    def advance(self) -> None:
        self._progress.advance(self._task)
        self._step += 1
        if self.log_lines and time.monotonic() - self._last_line >= LOG_EVERY_S:
            self._print_line()

    def show_loss(self, loss: float) -> None:
        self._loss = f"loss {loss:.4f}"
        self._progress.update(self._task, loss=self._loss)

    def _print_line(self, finished: bool = False) -> None:
        """``stage NAME: step/total (pct), rate/s, ETA, loss`` (the rate over this process's steps: a resumed stage
        starts counting where it resumed)."""
        now = time.monotonic()
        done, total = self._step - self._start_step, self._total - self._start_step
        line = progress_line(f"stage {self._stage} steps", done, total, now - self._started, finished)
        where = f" (at step {self._step} of {self._total})" if self._start_step else ""
        print(f"{line}{where}{', ' + self._loss if self._loss else ''}", file=sys.stderr, flush=True)
        self._last_line = now
