"""Tiny NIfTI volumes and manifests for the data-layer tests (imported by tests and conftest)."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd


def write_volume(path: Path, shape=(12, 10, 8), seed: int = 0) -> Path:
    hu = np.random.default_rng(seed).normal(-200, 300, size=shape).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(nib.Nifti1Image(hu, np.diag([2.0, 2.0, 3.0, 1.0])), path)
    return path


def write_manifest(folder: Path, rows: list[dict], name: str = "manifest.csv") -> Path:
    path = folder / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path
