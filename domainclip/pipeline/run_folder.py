"""The run folder: where a recipe's outputs live (contract in shared/design.md).

Layout: ``recipe.yaml``, ``metrics.json``, ``model/``, ``checkpoints/``,
``logs/metrics.jsonl``, plots and ``report.md``. A fresh run never writes into a
folder that already holds a run (that would lose it); ``--resume`` continues one.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from domainclip.config.loader import dump_recipe
from domainclip.config.schema import Recipe
from domainclip.errors import CheckpointError, DomainClipError


@dataclass(frozen=True)
class RunFolder:
    root: Path

    @property
    def model_dir(self) -> Path:
        return self.root / "model"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def metrics_path(self) -> Path:
        return self.root / "metrics.json"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def holds_a_run(self) -> bool:
        return (self.root / "recipe.yaml").exists() or self.checkpoints.exists()

    def check_can_start(self, resume: bool) -> None:
        """Refuse (nothing changed) a fresh run into a folder that holds one, or ``--resume`` without a checkpoint."""
        if resume and not self.checkpoints.exists():
            raise CheckpointError(
                f"{self.root}: --resume given but there is no checkpoint to resume "
                f"({self.checkpoints} does not exist); run without --resume to start"
            )
        if not resume and self.holds_a_run():
            raise DomainClipError(
                f"{self.root}: this run folder already holds a run; pass --resume to continue it, or choose "
                "another folder with --set output.dir=DIR (nothing was changed)"
            )

    def prepare(self, recipe: Recipe, resume: bool, is_main: bool = True) -> None:
        """Create (or reopen with ``resume``) the folder and save the resolved recipe (on the main process)."""
        if not is_main:
            return
        self.check_can_start(resume)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".write-test-"):
                pass
        except OSError as exc:
            raise DomainClipError(
                f"{self.root}: output folder is not writable ({exc.strerror}); set output.dir"
            ) from None
        for sub in ("logs", "plots"):
            (self.root / sub).mkdir(exist_ok=True)
        recipe_path = self.root / "recipe.yaml"
        if resume and recipe_path.exists():
            recipe_path.replace(self.root / "recipe.previous.yaml")
        dump_recipe(recipe, recipe_path)

    def update_metrics(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """Merge ``metrics`` into metrics.json (flat dotted keys) atomically; return the merged dict."""
        merged: dict[str, Any] = {}
        if self.metrics_path.exists():
            merged = json.loads(self.metrics_path.read_text())
        merged.update(metrics)
        write_json_atomic(self.metrics_path, merged)
        return merged


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=True, allow_nan=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
