"""Training metrics: JSON lines in ``<run>/logs/metrics.jsonl``, TensorBoard when installed.

Lines are appended and flushed one by one, so a run killed mid-stage keeps every
line it logged and a resumed run continues the same file.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any


def _tensorboard_writer(log_dir: Path) -> Any | None:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # the optional ``tensorboard`` package is missing
        return None
    return SummaryWriter(log_dir=str(log_dir))


class MetricsLogger:
    """Appends one JSON object per logged step; create it on rank 0 only."""

    def __init__(self, run_dir: Path, stage: str, *, tensorboard: bool = True) -> None:
        self.stage = stage
        self.path = Path(run_dir) / "logs" / "metrics.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - open for the whole stage
        self._tensorboard = _tensorboard_writer(self.path.parent / "tensorboard") if tensorboard else None

    def log(self, step: int, values: dict[str, float]) -> None:
        record = {"stage": self.stage, "step": step, "time": round(time.time(), 3), **values}
        # JSON has no NaN/inf: write them as null rather than produce an unparsable line.
        record = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in record.items()}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        if self._tensorboard is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)):
                    self._tensorboard.add_scalar(f"{self.stage}/{key}", value, step)

    def close(self) -> None:
        self._file.close()
        if self._tensorboard is not None:
            self._tensorboard.close()
