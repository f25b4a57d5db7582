"""What a run folder holds, read once for the report: recipe, run info, training log, metrics, plots.

A run that died leaves some of these; what is missing is listed in ``missing`` (the report says so) rather than
guessed. A folder with neither a recipe nor a training log is not a run, and reading it is an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from domainclip.errors import DataError
from domainclip.run_report.files import RUN_INFO_FILE, TRAINING_LOG


@dataclass
class RunContents:
    root: Path
    recipe: dict[str, Any]
    info: dict[str, Any]
    metrics: dict[str, Any]
    training: list[dict[str, Any]]
    missing: list[str] = field(default_factory=list)  # what a complete run has and this one lacks
    notes: list[str] = field(default_factory=list)  # what was read but not as expected (a cut-off log line)

    @property
    def complete(self) -> bool:
        """Evaluation finished: metrics.json holds the evaluated split."""
        return "evaluate.n" in self.metrics

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def plot(self, relative: str) -> Path | None:
        path = self.plots / relative
        return path if path.is_file() else None

    def json_in_plots(self, name: str) -> Any:
        path = self.plots / name
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _json_file(path: Path, missing: list[str]) -> dict[str, Any]:
    if not path.is_file():
        missing.append(path.name)
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno}); the run folder is damaged") from None


def _training_log(path: Path, missing: list[str], notes: list[str]) -> list[dict[str, Any]]:
    """The training log's rows; a last line cut off by a killed process is left out and noted, a bad line
    elsewhere is an error naming it."""
    if not path.is_file():
        missing.append(str(TRAINING_LOG))
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    rows = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if number == len(lines):
                notes.append(f"{TRAINING_LOG} line {number} is cut off (the process stopped while writing it)")
                continue
            raise DataError(f"{path} line {number}: not a JSON object; the training log is damaged") from None
    return rows


def read_run(root: Path) -> RunContents:
    """Everything the report shows from run folder ``root``; a :class:`DataError` when it is no run folder."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: no such folder (give the run folder that `domainclip run` wrote)")
    recipe_path, log_path = root / "recipe.yaml", root / TRAINING_LOG
    if not recipe_path.is_file() and not log_path.is_file():
        raise DataError(
            f"{root}: not a run folder (it has neither recipe.yaml nor {TRAINING_LOG}); give the folder that "
            "`domainclip run` wrote (its output.dir)"
        )
    missing: list[str] = []
    notes: list[str] = []
    recipe: dict[str, Any] = {}
    if recipe_path.is_file():
        recipe = yaml.safe_load(recipe_path.read_text(encoding="utf-8")) or {}
    else:
        missing.append("recipe.yaml")
    return RunContents(
        root=root,
        recipe=recipe,
        info=_json_file(root / RUN_INFO_FILE, missing),
        metrics=_json_file(root / "metrics.json", missing),
        training=_training_log(log_path, missing, notes),
        missing=missing,
        notes=notes,
    )
