"""``run_info.json``: what a run was made from and on — package version and commit, hardware, data counts and
prevalence — written when the run starts, so the report of a run that died still says what it was."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections import Counter
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from domainclip.labels import Findings
from domainclip.records import Record, split_indices
from domainclip.run_report.files import RUN_INFO_FILE

PACKAGE_DIR = Path(__file__).resolve().parents[1]


def git_commit(where: Path = PACKAGE_DIR) -> str | None:
    """The commit of the git work tree holding the package (``+dirty`` with uncommitted changes); None for an
    installed wheel or without git."""

    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, timeout=10, check=False)

    try:
        head = git("rev-parse", "HEAD")
        if head.returncode != 0:
            return None
        status = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.TimeoutExpired):
        return None
    return head.stdout.strip() + ("+dirty" if status.stdout.strip() else "")


def hardware(world_size: int) -> dict[str, Any]:
    import torch

    gpus = (
        [torch.cuda.get_device_name(k) for k in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    )
    return {
        "cpu_threads": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpus": gpus,
        "processes": world_size,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
    }


def _prevalence(values: np.ndarray) -> float | None:
    known = values[~np.isnan(values)]
    return round(float(known.mean()), 4) if known.size else None


def data_summary(records: list[Record], findings: Findings, eval_split: str) -> dict[str, Any]:
    """Records per split; per finding, its prevalence in the training reports (silver labels, what the soft labels
    learn from) and in the evaluated split's labels with their source; class counts per split."""
    splits = {s: split_indices(records, s) for s in dict.fromkeys(["train", "valid", "test", eval_split])}
    train, evaluated = findings.subset(splits["train"]), findings.subset(splits[eval_split])
    per_finding = {
        name: {
            "train_reports": _prevalence(train.silver_labels()[:, k]),
            eval_split: _prevalence(evaluated.labels_for_eval()[:, k]),
        }
        for k, name in enumerate(findings.names)
    }
    classes = {
        s: dict(sorted(Counter(records[i].label for i in rows if records[i].label is not None).items()))
        for s, rows in splits.items()
    }
    return {
        "splits": {s: len(rows) for s, rows in splits.items()},
        "eval_split": eval_split,
        "findings": per_finding,
        "findings_label_source": evaluated.label_source() if findings.names else None,
        "classes": {s: c for s, c in classes.items() if c},
    }


def vocabulary_prevalence(domain, recipe, records: list[Record]) -> dict[str, float | None]:
    """Every finding of the recipe's vocabulary (not only the ``data.findings`` it trains on) with its prevalence
    in the training split's texts, as the domain's own structuring reads them (a cache hit: the run structured
    them already). What the vocabulary could offer a recipe on this data, and what the data rarely mentions."""
    train = [records[i] for i in split_indices(records, "train")]
    everything = recipe.model_copy(update={"data": recipe.data.model_copy(update={"findings": None})})
    findings = domain.findings(everything, train)
    silver = findings.silver_labels()
    return {name: _prevalence(silver[:, k]) for k, name in enumerate(findings.names)}


def write_run_info(
    root: Path,
    recipe,
    domain,
    records: list[Record],
    findings: Findings,
    world_size: int,
    source: Path | None = None,
) -> Path:
    info = {
        "recipe": {
            "file": None if source is None else str(source),
            "description": recipe.description,
            "domain": recipe.domain,
            "layout": recipe.data.layout,
        },
        "package": {"version": metadata.version("domainclip"), "commit": git_commit()},
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "hardware": hardware(world_size),
        "data": data_summary(records, findings, recipe.evaluate.split),
        "vocabulary_prevalence": vocabulary_prevalence(domain, recipe, records) if findings.names else {},
    }
    path = root / RUN_INFO_FILE
    path.write_text(json.dumps(info, indent=1) + "\n", encoding="utf-8")
    return path
