"""Survival: a Cox head on frozen image embeddings, and the same head on the finding labels as a reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from domainclip.labels import Findings
from domainclip.records import Record

SPLIT_ROLES = ("train", "valid", "test")


def survival_metrics_for(
    features: dict[str, np.ndarray], records: dict[str, list[Record]], out_dir: Path, prefix: str, n_boot: int = 0
) -> dict[str, Any]:
    """Cox head on ``features`` per split role; metrics on the test role prefixed with ``prefix``."""
    from domainclip.heads.survival import fit_evaluate_survival

    def te(split: str) -> tuple[np.ndarray, np.ndarray]:
        rs = records[split]
        return np.array([r.time for r in rs], dtype=np.float64), np.array([r.event for r in rs], dtype=np.int64)

    (t_tr, e_tr), (t_va, e_va), (t_te, e_te) = te("train"), te("valid"), te("test")
    result = fit_evaluate_survival(
        features["train"],
        t_tr,
        e_tr,
        features["valid"],
        t_va,
        e_va,
        features["test"],
        t_te,
        e_te,
        out_dir=out_dir,
        penalty=1e-2,
        n_boot=n_boot,
    )
    return {f"{prefix}.{k}": v for k, v in result.items() if isinstance(v, (int, float))}


def survival_task(
    image_emb: dict[str, Any],
    records: dict[str, list[Record]],
    findings: dict[str, Findings],
    eval_split: str,
    plots: Path,
    n_boot: int,
) -> dict[str, Any]:
    """``survival.*`` from the image embeddings, and the reference from the finding labels: named
    ``survival.ceiling_true_findings`` only when every label is ground truth, else
    ``survival.reference_silver_findings`` (silver labels are no ceiling)."""
    roles = {"train": "train", "valid": "valid", "test": eval_split}
    split_records = {role: records[split] for role, split in roles.items()}
    emb = {role: image_emb[split].numpy() for role, split in roles.items()}
    metrics = survival_metrics_for(emb, split_records, plots, "survival", n_boot)
    labels = {role: findings[split] for role, split in roles.items()}
    sources = {labels[role].label_source() for role in roles}
    name = "ceiling_true_findings" if sources == {"truth"} else "reference_silver_findings"
    truth = {role: np.nan_to_num(labels[role].labels_for_eval()) for role in roles}
    reference_dir = plots / name
    reference_dir.mkdir(exist_ok=True)
    metrics.update(survival_metrics_for(truth, split_records, reference_dir, f"survival.{name}"))
    return metrics
