"""Shared data-layer fixtures: a tiny manifest over tiny NIfTI volumes."""

from __future__ import annotations

from pathlib import Path

import pytest
from tiny_files import write_manifest, write_volume


@pytest.fixture
def small_study(tmp_path) -> Path:
    """A 4-row manifest with relative image paths, patients, a finding and survival."""
    rows = []
    for i in range(4):
        write_volume(tmp_path / "img" / f"s{i}.nii.gz", seed=i)
        rows.append(
            {
                "id": f"s{i}",
                "patient_id": f"p{i // 2}",
                "image": f"img/s{i}.nii.gz",
                "report": f"Report {i}. No effusion.",
                "pleural effusion": i % 2,
                "time": 10.0 + i,
                "event": i % 2,
                "split": "train" if i < 2 else "test",
            }
        )
    return write_manifest(tmp_path, rows)
