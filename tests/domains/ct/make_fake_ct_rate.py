"""Write a tiny CT-RATE-shaped tree for tests: same folders, file names and CSV columns as the real one.

Volumes are stored the way CT-RATE ships them: uint16 stored values (HU + 1024, intercept
-1024 in the metadata CSV) and a NIfTI header whose geometry is wrong (1 mm identity),
with the true spacing, origin and orientation in the metadata CSV. ``fixed`` volume names
are instead written as CT-RATE's ``fix_metadata.py`` leaves them: int16 HU and a correct
header. The HU content is known: air -1000 around a body of 40 HU with a 700 HU "spine"
cube at the low-index corner of the body along the first array axis (so orientation
mistakes are visible).

Run it directly to write a tree: ``python make_fake_ct_rate.py OUT``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

LABELS = (
    "Medical material",
    "Arterial wall calcification",
    "Cardiomegaly",
    "Pericardial effusion",
    "Coronary artery wall calcification",
    "Hiatal hernia",
    "Lymphadenopathy",
    "Emphysema",
    "Atelectasis",
    "Lung nodule",
    "Lung opacity",
    "Pulmonary fibrotic sequela",
    "Pleural effusion",
    "Mosaic attenuation pattern",
    "Peribronchial thickening",
    "Consolidation",
    "Bronchiectasis",
    "Interlobular septal thickening",
)
SHAPE = (20, 16, 12)
XY_SPACING = (0.8, 0.8)
Z_SPACING = 2.5
ORIGIN_LPS = (-8.0, -6.4, -100.0)
ORIENTATION_LPS = (1.0, 0.0, 0.0, 0.0, 1.0, 0.0)
INTERCEPT = -1024.0

# volume names on disk per part; "valid_2_a_2" is written already fixed (HU, good header)
TRAIN_VOLUMES = (
    "train_1_a_1",
    "train_1_a_2",
    "train_1_b_1",
    "train_2_a_1",
    "train_3_a_1",
    "train_4_a_1",
    "train_5_a_1",
    "train_6_a_1",
)
VALID_VOLUMES = ("valid_1_a_1", "valid_2_a_1", "valid_2_a_2")
FIXED_VOLUMES = ("valid_2_a_2",)
NOT_DOWNLOADED = ("train_7_a_1",)  # in the CSVs, not on disk


@dataclass(frozen=True)
class FakeCTRate:
    root: Path
    hu: np.ndarray  # the HU content of every volume, array order
    labels: dict[str, dict[str, int]]  # volume name (no extension) -> label values
    reports: dict[str, tuple[str, str]]  # volume name -> (Findings_EN, Impressions_EN)


def hu_volume() -> np.ndarray:
    hu = np.full(SHAPE, -1000.0, dtype=np.float32)
    hu += 5.0 * (np.indices(hu.shape).sum(axis=0) % 5)  # air varies; one constant at the minimum is a fill
    hu[3:17, 3:13, :] = 40.0  # body
    hu[3:6, 6:10, 4:8] = 700.0  # "spine" at low i
    return hu


def _scan(name: str) -> str:
    return "_".join(name.split("_")[:3])


def make_fake_ct_rate(root: Path, seed: int = 0) -> FakeCTRate:
    rng = np.random.default_rng(seed)
    root = Path(root)
    base = root / "dataset"
    hu = hu_volume()
    labels: dict[str, dict[str, int]] = {}
    reports: dict[str, tuple[str, str]] = {}
    for folder, volumes, stems in (
        ("train", TRAIN_VOLUMES + NOT_DOWNLOADED, ("train", "train", "train")),
        ("valid", VALID_VOLUMES, ("validation", "validation", "valid")),
    ):
        report_rows, meta_rows, label_rows = [], [], []
        for name in volumes:
            scan_labels = np.random.default_rng([seed, *map(ord, _scan(name))]).integers(0, 2, size=len(LABELS))
            labels[name] = dict(zip(LABELS, map(int, scan_labels)))
            findings = (
                f"Findings of scan {_scan(name)}: {'cardiomegaly' if labels[name]['Cardiomegaly'] else 'heart normal'}."
            )
            impression = f"Impression {_scan(name)}."
            reports[name] = (findings, impression)
            file_name = f"{name}.nii.gz"
            report_rows.append(
                {
                    "VolumeName": file_name,
                    "ClinicalInformation_EN": "Dyspnea.",
                    "Technique_EN": "Non-contrast chest CT.",
                    "Findings_EN": findings,
                    "Impressions_EN": impression,
                }
            )
            meta_rows.append(
                {
                    "VolumeName": file_name,
                    "Manufacturer": "FAKE",
                    "RescaleSlope": 1.0,
                    "RescaleIntercept": INTERCEPT,
                    "XYSpacing": str(list(XY_SPACING)),
                    "ZSpacing": Z_SPACING,
                    "ImagePositionPatient": str(list(ORIGIN_LPS)),
                    "ImageOrientationPatient": str(list(ORIENTATION_LPS)),
                }
            )
            label_rows.append({"VolumeName": file_name, **labels[name]})
            if name in NOT_DOWNLOADED:
                continue
            parts = name.split("_")
            target = base / folder / "_".join(parts[:2]) / "_".join(parts[:3]) / file_name
            target.parent.mkdir(parents=True, exist_ok=True)
            _write_volume(target, hu, fixed=name in FIXED_VOLUMES)
        rng.shuffle(report_rows)
        for sub, stem, rows in (
            ("radiology_text_reports", f"{stems[0]}_reports.csv", report_rows),
            ("metadata", f"{stems[1]}_metadata.csv", meta_rows),
            ("multi_abnormality_labels", f"{stems[2]}_predicted_labels.csv", label_rows),
        ):
            (base / sub).mkdir(parents=True, exist_ok=True)
            pd.DataFrame(rows).to_csv(base / sub / stem, index=False)
    return FakeCTRate(root, hu, labels, reports)


def true_affine_ras() -> np.ndarray:
    """The affine CT-RATE's fix_metadata.py would write (LPS geometry of the CSV, as RAS)."""
    affine = np.eye(4)
    affine[:3, 0] = np.asarray(ORIENTATION_LPS[:3]) * XY_SPACING[0]
    affine[:3, 1] = np.asarray(ORIENTATION_LPS[3:]) * XY_SPACING[1]
    affine[:3, 2] = np.cross(ORIENTATION_LPS[:3], ORIENTATION_LPS[3:]) * Z_SPACING
    affine[:3, 3] = ORIGIN_LPS
    return np.diag([-1.0, -1.0, 1.0, 1.0]) @ affine


def _write_volume(path: Path, hu: np.ndarray, fixed: bool) -> None:
    if fixed:
        image = nib.Nifti1Image(hu.astype(np.int16), true_affine_ras())
    else:
        image = nib.Nifti1Image((hu - INTERCEPT).astype(np.uint16), np.eye(4))  # stored values, wrong geometry
    nib.save(image, str(path))


if __name__ == "__main__":
    print(make_fake_ct_rate(Path(sys.argv[1])).root)
