"""Progress of long loops, on rank 0 only: a bar with rate and ETA on a terminal; elsewhere (CI, SLURM logs,
``nohup``) one plain line every :data:`LOG_EVERY_S` seconds and one when the loop ends, never a bar redrawn into a
log file thousands of times."""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

LOG_EVERY_S = 10.0


def is_main_rank() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    return f"{minutes} min {seconds:02d} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def progress_line(description: str, done: int, total: int | None, elapsed: float, finished: bool = False) -> str:
    """``description: done/total (pct), rate/s, ETA ...`` (``finished``: the time it took instead of the ETA)."""
    rate = done / elapsed if elapsed > 0 else 0.0
    count = f"{done}/{total} ({100 * done / total:.0f} %)" if total else str(done)
    if finished:
        return f"{description}: {count} in {_duration(elapsed)} ({rate:.1f}/s)"
    eta = f", ETA {_duration((total - done) / rate)}" if total and rate > 0 else ""
    return f"{description}: {count}, {rate:.1f}/s{eta}"


def _log_lines(items: Iterable[T], description: str, total: int | None, every_s: float) -> Iterator[T]:
    started = last = time.monotonic()
    done = 0
    for item in items:
        yield item
        done += 1
        now = time.monotonic()
        if now - last >= every_s:
            print(progress_line(description, done, total, now - started), file=sys.stderr, flush=True)
            last = now
    print(progress_line(description, done, total, time.monotonic() - started, True), file=sys.stderr, flush=True)


def _bar(items: Iterable[T], description: str, total: int | None) -> Iterator[T]:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TaskProgressColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
    )
    started = time.monotonic()
    with Progress(*columns, transient=False) as progress:
        task = progress.add_task(description, total=total, rate="")
        for done, item in enumerate(items, start=1):
            yield item
            elapsed = time.monotonic() - started
            progress.update(task, advance=1, rate=f"{done / elapsed:.1f}/s" if elapsed > 0 else "")


def track(items: Iterable[T], description: str, total: int | None = None, every_s: float = LOG_EVERY_S) -> Iterator[T]:
    """``items``, reporting progress as the module says; ``total`` defaults to ``len(items)`` where it has one."""
    if not is_main_rank():
        yield from items
        return
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    if sys.stderr.isatty():
        yield from _bar(items, description, total)
    else:
        yield from _log_lines(items, description, total, every_s)
