"""The ``tcga`` layout: GDC slides, TCGA-Reports texts, TCGA-CDR survival, optional labels and mpp overrides.

::

    data.root/
      <uuid>/TCGA-AB-1234-01Z-00-DX1.<uuid>.svs   slides anywhere below the root (GDC's layout)
      TCGA_Reports.csv                            patient_filename,text (one report per patient)
      clinical.tsv | clinical.csv                 bcr_patient_barcode, type, OS, OS.time (days), [split]
      labels.csv                                  optional: slide_id or bcr_patient_barcode + 0/1 finding columns
      mpp.csv                                     optional: slide_id,mpp

The slide id is the file name up to its first ``.``, the patient its first 12 characters (``TCGA-AB-1234``). A
report's ``patient_filename`` carries a UUID of its own, not the slide's, so reports are matched on the patient
barcode; the slides of one patient share the report (one report group: positives of each other in the loss).
Splits are by patient, seeded, unless the clinical table has a ``split`` column.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from domainclip.config.schema import DataConfig
from domainclip.data.manifest import event_cell, finding_cell, time_cell
from domainclip.data.splits import SPLIT_ALIASES, SPLITS, assign_splits
from domainclip.errors import DataError, RecipeError
from domainclip.records import Record

log = logging.getLogger(__name__)

# What OpenSlide or tiffslide open (OpenSlide's formats, OME-TIFF and plain tiled TIFF through tiffslide).
SLIDE_SUFFIXES = (".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif")
REPORTS_FILE = "TCGA_Reports.csv"
CLINICAL_FILES = ("clinical.tsv", "clinical.csv")
LABELS_FILE = "labels.csv"
MPP_FILE = "mpp.csv"
MPP_META = "mpp"  # Record.image_meta key: a slide's level-0 mpp from mpp.csv (wins over the file's metadata)
PATIENT_CHARS = 12

# TCGA project codes of the demo's subtypes -> the names prompts and reports use (codes mean nothing to a text
# tower trained on report wording). Other codes keep their code as the class name.
TCGA_TYPE_NAMES = {
    "LUAD": "lung adenocarcinoma",
    "LUSC": "lung squamous cell carcinoma",
    "MESO": "mesothelioma",
    "BRCA": "breast carcinoma",
    "COAD": "colon adenocarcinoma",
    "KIRC": "clear cell renal cell carcinoma",
}


def slide_id(path: Path) -> str:
    """``TCGA-AB-1234-01Z-00-DX1.<uuid>.svs`` -> ``TCGA-AB-1234-01Z-00-DX1``."""
    return path.name.split(".", 1)[0]


def patient_id(slide: str) -> str:
    return slide[:PATIENT_CHARS]


def discover_slides(root: Path) -> list[Path]:
    """Slide files below ``root`` (recursive), sorted; a MIRAX ``.mrxs`` keeps its data folder beside it."""
    return sorted(p for p in Path(root).rglob("*") if p.is_file() and p.suffix.lower() in SLIDE_SUFFIXES)


def discover_feature_bags(root: Path) -> list[Path]:
    """Feature h5 files below ``root`` (recursive: TRIDENT's ``features_<encoder>/``, CLAM's ``h5_files/``), sorted;
    TRIDENT's ``*_patches.h5`` (coordinates only) are not bags."""
    from domainclip.domains.wsi.feature_files import is_feature_file

    return sorted(
        p for p in Path(root).rglob("*") if p.is_file() and is_feature_file(p) and not p.stem.endswith("_patches")
    )


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or TSV (by suffix) as strings, stripped column names; errors name the file."""
    try:
        table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable table ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    return table


def _require_columns(table: pd.DataFrame, path: Path, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {list(table.columns)}")


def read_reports(root: Path) -> dict[str, str]:
    """Patient barcode -> report text from ``TCGA_Reports.csv``; two reports for one patient are an error."""
    path = root / REPORTS_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found (the tcga layout needs TCGA-Reports' patient_filename,text table)")
    table = read_table(path)
    _require_columns(table, path, ("patient_filename", "text"))
    reports: dict[str, str] = {}
    problems = []
    for line, row in enumerate(table.to_dict("records"), start=2):
        patient = row["patient_filename"].strip().split(".", 1)[0][:PATIENT_CHARS]
        if not patient:
            problems.append(f"{path.name}:row {line}: empty patient_filename")
        elif patient in reports:
            problems.append(f"{path.name}:row {line}: a second report for patient {patient}")
        else:
            reports[patient] = row["text"]
    if problems:
        raise DataError(f"{path}: {len(problems)} bad row(s)", problems)
    return reports


@dataclasses.dataclass(frozen=True)
class ClinicalRow:
    label: str | None
    time: float | None
    event: int | None
    split: str | None
    problems: tuple[str, ...]


def read_clinical(root: Path, time_column: str, event_column: str) -> tuple[dict[str, ClinicalRow], Path | None]:
    """Patient barcode -> its TCGA-CDR row (class ``type``, survival, optional ``split``); a negative or
    non-numeric time is a problem of that patient's slides, a missing one leaves survival unknown."""
    path = next((root / name for name in CLINICAL_FILES if (root / name).is_file()), None)
    if path is None:
        return {}, None
    table = read_table(path)
    _require_columns(table, path, ("bcr_patient_barcode",))
    rows: dict[str, ClinicalRow] = {}
    for line, row in enumerate(table.to_dict("records"), start=2):
        problems: list[str] = []
        time = time_cell(row.get(time_column, ""), problems)
        event = event_cell(row.get(event_column, ""), problems)
        split = row.get("split", "").strip() or None
        split = SPLIT_ALIASES.get(split, split) if split else None
        if split is not None and split not in SPLITS:
            problems.append(f"split {split!r} is not one of {list(SPLITS)}")
        label = row.get("type", "").strip() or None
        where = f"{path.name}:row {line}"
        rows[row["bcr_patient_barcode"].strip()] = ClinicalRow(
            TCGA_TYPE_NAMES.get(label, label) if label else None,
            time,
            event,
            split,
            tuple(f"{where}: {p}" for p in problems),
        )
    return rows, path


def read_labels(root: Path) -> dict[str, dict[str, float]]:
    """Slide or patient id -> ground-truth 0/1 findings from the optional ``labels.csv`` (evaluation only)."""
    path = root / LABELS_FILE
    if not path.is_file():
        return {}
    table = read_table(path)
    key = next((c for c in ("slide_id", "bcr_patient_barcode") if c in table.columns), None)
    if key is None:
        raise DataError(f"{path}: needs a slide_id or bcr_patient_barcode column; found {list(table.columns)}")
    labels: dict[str, dict[str, float]] = {}
    problems: list[str] = []
    for line, row in enumerate(table.to_dict("records"), start=2):
        cells: list[str] = []
        values = {c: finding_cell(row[c], c, cells) for c in table.columns if c != key}
        problems.extend(f"{path.name}:row {line}: {p}" for p in cells)
        labels[row[key].strip()] = {c: v for c, v in values.items() if v is not None}
    if problems:
        raise DataError(f"{path}: {len(problems)} malformed cell(s)", problems)
    return labels


def type_truth(row: ClinicalRow | None, types: list[str]) -> dict[str, float]:
    """The clinical ``type`` as ground truth of the diagnosis findings named like the types: 1 for the patient's own
    type, 0 for every other type in the table. A recipe that lists "lung adenocarcinoma" among ``data.findings``
    (so the soft targets tell subtypes apart) is then scored against the TCGA project, not against the silver
    label read from the same report it trained on; ``labels.csv`` still wins where it names the column."""
    if row is None or row.label is None:
        return {}
    return {name: float(name == row.label) for name in types}


def read_mpp_overrides(root: Path) -> dict[str, float]:
    """``slide_id -> mpp`` from the optional ``root/mpp.csv``."""
    path = root / MPP_FILE
    return read_mpp_csv(path) if path.is_file() else {}


def read_mpp_csv(path: Path) -> dict[str, float]:
    """``slide_id -> mpp`` from a ``slide_id,mpp`` table; every value that is not a positive number, and every slide
    listed twice, is named at once."""
    table = read_table(path)
    _require_columns(table, path, ("slide_id", "mpp"))
    overrides: dict[str, float] = {}
    problems = []
    for line, row in enumerate(table.to_dict("records"), start=2):
        try:
            value = float(row["mpp"])
        except ValueError:
            value = math.nan
        name = row["slide_id"].strip()
        if not math.isfinite(value) or value <= 0:
            problems.append(f"{path.name}:row {line}: mpp {row['mpp']!r} is not a positive number")
        elif name in overrides:
            problems.append(f"{path.name}:row {line}: slide {name} is listed twice")
        overrides[name] = value
    if problems:
        raise DataError(f"{path}: {len(problems)} bad row(s)", problems)
    return overrides


def tcga_records(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    """Records of every slide under ``data.root`` (or, where it holds no slide, of every feature h5 file: TRIDENT's or
    CLAM's output, aligned on as it is); problems name the slide or table row (a slide without a report,
    a clinical row with a bad time). A report without any slide is only logged: nothing trains on it."""
    if cfg.root is None:
        raise RecipeError("data.root: required for layout 'tcga' (the folder with the slides and TCGA_Reports.csv)")
    root = Path(cfg.root)
    if not root.is_dir():
        raise DataError(f"{root}: data.root is not a folder")
    reports = read_reports(root)
    clinical, clinical_path = read_clinical(root, cfg.columns.time or "OS.time", cfg.columns.event or "OS")
    labels, overrides = read_labels(root), read_mpp_overrides(root)
    types = sorted({row.label for row in clinical.values() if row.label})
    records, problems = [], []
    # slides, or (a root without any) the feature files another tool extracted from them, to align on directly
    for path in discover_slides(root) or discover_feature_bags(root):
        sid, pid = slide_id(path), patient_id(slide_id(path))
        where = str(path.relative_to(root))
        row = clinical.get(pid)
        if pid not in reports:
            problems.append(f"{where} (id={sid}): no report for patient {pid} in {REPORTS_FILE}")
            continue
        if row is not None and row.problems:
            problems.extend(f"{where} (id={sid}): {p}" for p in row.problems)
            continue
        records.append(
            Record(
                id=sid,
                patient_id=pid,
                image=path,
                texts=(reports[pid],),
                split=(row.split if row is not None and row.split else "train"),
                findings={**type_truth(row, types), **labels.get(sid, labels.get(pid, {}))},
                label=None if row is None else row.label,
                time=None if row is None else row.time,
                event=None if row is None else row.event,
                report_id=f"report:{pid}",
                source=where,
                image_meta={MPP_META: overrides[sid]} if sid in overrides else {},
            )
        )
    if not records and not problems:
        raise DataError(f"{root}: no slide files ({', '.join(SLIDE_SUFFIXES)}) and no feature h5 files below data.root")
    _log_reports_without_slides(reports, records)
    has_splits = clinical_path is not None and any(r.split for r in clinical.values())
    return (records if has_splits else assign_splits(records, seed=cfg.demo.seed)), problems


def _log_reports_without_slides(reports: Mapping[str, str], records: list[Record]) -> None:
    patients = {r.patient_id for r in records}
    orphans = sorted(set(reports) - patients)
    if orphans:
        log.warning(
            "%d report(s) in %s have no slide (first: %s); they are not used",
            len(orphans),
            REPORTS_FILE,
            ", ".join(orphans[:5]),
        )
