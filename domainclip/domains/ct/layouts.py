"""The ``ct-rate`` dataset layout (Hugging Face ``ibrahimhamamci/CT-RATE``) -> records.

Expected under ``data.root`` (the repository root, or its ``dataset/`` folder)::

    dataset/{train,valid}[_fixed]/train_1/train_1_a/train_1_a_1.nii.gz   patient / scan / reconstruction
    dataset/radiology_text_reports/{train,validation}_reports.csv        VolumeName, ..., Findings_EN, Impressions_EN
    dataset/metadata/{train,validation}_metadata.csv                     VolumeName, RescaleSlope, RescaleIntercept,
                                                                         XYSpacing, ZSpacing[, ImagePositionPatient,
                                                                         ImageOrientationPatient]
    dataset/multi_abnormality_labels/{train,valid}_predicted_labels.csv  VolumeName + 18 label columns

The three CSV folders may also sit beside ``dataset/`` instead of inside it (copies that keep the volumes in
``dataset/`` and the tables at the top): each is looked up inside first, then beside.

Records are built for the volumes found on disk (partial downloads are normal); each must
have a report row and a metadata row. Mapping:

- ``patient_id`` = ``train_1``, ``report_id`` = the scan ``train_1_a`` (its reconstructions
  share one report), ``id`` = the volume name without extension;
- ``report`` = ``Findings_EN + " " + Impressions_EN``;
- ``findings`` = the 18 label columns, named as in the CSV header (model-predicted,
  silver labels: used as evaluation ground truth, as in CT-CLIP);
- ``split``: ``train`` folder -> train, except a seeded ``VAL_FRACTION`` of its patients
  -> val; ``valid`` folder -> test (CT-RATE's own held-out set);
- ``image_meta``: slope/intercept and geometry from the metadata CSV (the stored voxels are
  not HU, and the original headers' geometry is unreliable; see
  :mod:`domainclip.domains.ct.readers`, which also recognises volumes already fixed by
  CT-RATE's ``fix_metadata.py``).
"""

from __future__ import annotations

import ast
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from domainclip.data.splits import carve_validation
from domainclip.errors import DataError
from domainclip.records import Record

log = logging.getLogger(__name__)

CT_RATE_LABELS: tuple[str, ...] = (
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
VAL_FRACTION = 0.1


@dataclass(frozen=True)
class _Part:
    """One CT-RATE part: its volume folder name, CSV file stems and the split its volumes go to."""

    folder: str
    reports: str
    metadata: str
    labels: str
    split: str


PARTS = (
    _Part("train", "train_reports.csv", "train_metadata.csv", "train_predicted_labels.csv", "train"),
    _Part("valid", "validation_reports.csv", "validation_metadata.csv", "valid_predicted_labels.csv", "test"),
)


def parse_volume_name(name: str) -> tuple[str, str, str]:
    """``train_1_a_1[.nii.gz]`` -> (volume id, patient ``train_1``, scan ``train_1_a``)."""
    stem = name.removesuffix(".gz").removesuffix(".nii")
    parts = stem.split("_")
    if len(parts) != 4 or not parts[1].isdigit():
        raise DataError(f"{name}: not a CT-RATE volume name (expected <part>_<patient>_<scan>_<reconstruction>)")
    return stem, "_".join(parts[:2]), "_".join(parts[:3])


def read_ct_rate(root: Path, seed: int = 0, val_fraction: float = VAL_FRACTION) -> list[Record]:
    """Records of every CT-RATE volume on disk under ``root``; volumes without their CSV rows are an error."""
    records, problems = ct_rate_records(root, seed, val_fraction)
    if problems:
        raise DataError(
            f"{root}: {len(problems)} CT-RATE volume(s) without their CSV rows; is data.root the "
            "CT-RATE folder with its CSVs?",
            problems,
        )
    return records


def ct_rate_records(root: Path, seed: int = 0, val_fraction: float = VAL_FRACTION) -> tuple[list[Record], list[str]]:
    """Records of every CT-RATE volume on disk under ``root`` (see the module docstring), and one problem line
    per volume that lacks its report or metadata row (the layout reports them with every other bad row, so
    ``data.skip_bad_rows`` can skip them)."""
    base = _dataset_folder(Path(root))
    records: list[Record] = []
    problems: list[str] = []
    tables = _table_folders(base, Path(root))
    for part in PARTS:
        volumes = _volumes(base, part)
        if not volumes:
            continue
        reports = _index(_read_csv(tables["radiology_text_reports"] / part.reports, ("Findings_EN", "Impressions_EN")))
        metadata = _index(
            _read_csv(tables["metadata"] / part.metadata, ("RescaleSlope", "RescaleIntercept", "XYSpacing", "ZSpacing"))
        )
        labels_file = tables["multi_abnormality_labels"] / part.labels
        labels = _index(_read_csv(labels_file, CT_RATE_LABELS)) if labels_file.exists() else {}
        if not labels:
            log.warning("%s not found: %s volumes have no ground-truth labels", labels_file, part.folder)
        _warn_missing_volumes(reports, volumes, part)
        for path in volumes:
            volume_id, patient, scan = parse_volume_name(path.name)
            volume_name = f"{volume_id}.nii.gz"
            where = path.relative_to(base).as_posix()
            if volume_name not in reports:
                problems.append(f"{where}: no row in radiology_text_reports/{part.reports}")
                continue
            if volume_name not in metadata:
                problems.append(f"{where}: no row in metadata/{part.metadata} (slope/intercept unknown)")
                continue
            try:
                image_meta = _image_meta(metadata[volume_name])
            except (ValueError, SyntaxError, TypeError) as exc:
                problems.append(f"{where}: unreadable geometry in metadata/{part.metadata} ({exc})")
                continue
            records.append(
                Record(
                    id=volume_id,
                    patient_id=patient,
                    image=path,
                    texts=(_report_text(reports[volume_name]),),
                    split=part.split,
                    findings=_labels(labels.get(volume_name)),
                    report_id=scan,
                    source=where,
                    image_meta=image_meta,
                )
            )
    if not records and not problems:
        raise DataError(
            f"{root}: no CT-RATE volumes found (expected dataset/train/train_1/train_1_a/train_1_a_1.nii.gz)"
        )
    return carve_validation(records, val_fraction, seed), problems


def _warn_missing_volumes(reports: dict[str, Any], volumes: list[Path], part: _Part, shown: int = 10) -> None:
    """Name the volumes the reports CSV lists that are not on disk: a partial download is common, and a run on it
    is legitimate, but the user should know how much of the split is absent (a warning, never an error)."""
    on_disk = {path.name for path in volumes}
    missing = sorted(name for name in reports if name not in on_disk)
    if missing:
        more = f" ... and {len(missing) - shown} more" if len(missing) > shown else ""
        log.warning(
            "radiology_text_reports/%s lists %d volume(s) not found under %s/ (partial download?): %s%s",
            part.reports,
            len(missing),
            part.folder,
            ", ".join(missing[:shown]),
            more,
        )


def _table_folders(base: Path, root: Path) -> dict[str, Path]:
    """Each CSV folder inside the dataset folder, else beside it (under ``data.root``), else inside (so the
    not-found error names the release's own place)."""
    folders = {}
    for name in ("radiology_text_reports", "metadata", "multi_abnormality_labels"):
        inside, beside = base / name, root / name
        folders[name] = beside if not inside.is_dir() and beside.is_dir() else inside
    return folders


def _dataset_folder(root: Path) -> Path:
    """``root`` itself or its ``dataset/`` folder: the release keeps volumes and CSVs under ``dataset/``, and
    users point data.root at either."""
    if not root.is_dir():
        raise DataError(f"data.root {root}: not a folder")
    if (root / "dataset").is_dir():
        log.info("data.root %s: reading the CT-RATE release under its dataset/ folder", root)
        return root / "dataset"
    log.info("data.root %s: reading it as CT-RATE's dataset/ folder (volumes and CSV folders directly inside)", root)
    return root


def _volumes(base: Path, part: _Part) -> list[Path]:
    """Volumes of a part; CT-RATE's ``<part>_fixed`` folder (HU, fixed headers) wins over ``<part>``."""
    for folder in (base / f"{part.folder}_fixed", base / part.folder):
        if folder.is_dir():
            return sorted(folder.glob("*/*/*.nii.gz"))
    return []


def _read_csv(path: Path, required: tuple[str, ...]) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: CT-RATE CSV not found")
    table = pd.read_csv(path)
    missing = [c for c in ("VolumeName", *required) if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}")
    return table


def _index(table: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Rows by volume file name (CT-RATE writes ``VolumeName`` with the ``.nii.gz`` extension)."""
    rows = {}
    for row in table.to_dict("records"):
        name = str(row["VolumeName"]).strip()
        rows[name if name.endswith(".nii.gz") else f"{name}.nii.gz"] = row
    return rows


def _report_text(row: dict[str, Any]) -> str:
    parts = [row.get("Findings_EN"), row.get("Impressions_EN")]
    return " ".join(str(p).strip() for p in parts if isinstance(p, str) and p.strip())


def _labels(row: dict[str, Any] | None) -> dict[str, float]:
    if row is None:
        return {}
    return {name: float(row[name]) for name in CT_RATE_LABELS if not _missing(row[name])}


def _image_meta(row: dict[str, Any]) -> dict[str, Any]:
    xy = _sequence(row["XYSpacing"])
    meta: dict[str, Any] = {
        "rescale_slope": float(row["RescaleSlope"]),
        "rescale_intercept": float(row["RescaleIntercept"]),
        "spacing": [float(xy[0]), float(xy[1]), float(row["ZSpacing"])],
    }
    if not _missing(row.get("ImageOrientationPatient")) and not _missing(row.get("ImagePositionPatient")):
        meta["orientation_lps"] = [float(v) for v in _sequence(row["ImageOrientationPatient"])]
        meta["origin_lps"] = [float(v) for v in _sequence(row["ImagePositionPatient"])]
    if not all(math.isfinite(v) and v > 0 for v in meta["spacing"]):
        raise ValueError(f"spacing {meta['spacing']} must be positive and finite")
    return meta


def _sequence(value: Any) -> list[float]:
    """CSV cells like ``"[0.7, 0.7]"`` (literal lists, never evaluated as code)."""
    parsed = ast.literal_eval(value) if isinstance(value, str) else value
    return [float(v) for v in parsed]


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""
