"""The generic manifest: a CSV of image-report pairs -> :class:`Record` list.

Columns (design.md): ``id, patient_id, image, report`` plus optional ``time``, ``event``,
``split`` and ``report_id``; every other column is a finding (1 present, 0 absent, empty
unknown), unless the recipe's ``data.columns`` declares it otherwise: text columns
(``texts``: several captions per image; default ``[report]``), a class ``label`` column,
numeric regression ``targets`` and columns to ``ignore``. Image paths are relative to the
manifest's folder, or absolute.

- No ``patient_id`` column: a loud warning, and each row is its own group (group-level splits
  then cannot keep related rows together). The domain's layout may word the warning for its
  data, or silence it when it groups the rows itself (``without_groups``).
- No ``split`` column: a seeded patient-level split (:func:`assign_splits`).
- No ``report_id`` column: rows of one patient with identical report text form one report
  group (several reconstructions of one scan share their report verbatim); a
  ``report_id`` column, when present, decides instead (an empty cell: the row alone).

Malformed cells (a finding that is not 0/1, a negative time, an unknown split...) are all
collected and raised together as one :class:`DataError`. Row-level problems that do not
prevent building a record (missing image, empty report, duplicate id...) are left to
:func:`domainclip.data.validate.validate_records`, so ``skip_bad_rows`` can drop them.
"""

from __future__ import annotations

import hashlib
import logging
import math
import warnings
from pathlib import Path

import pandas as pd

from domainclip.config.schema import DataConfig, ManifestColumnsConfig
from domainclip.data.splits import SPLIT_ALIASES, SPLITS, assign_splits
from domainclip.errors import DataError, RecipeError
from domainclip.records import Record

log = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("id", "image")
FIXED_COLUMNS = ("id", "patient_id", "image", "time", "event", "split", "report_id")
WITHOUT_GROUPS = (
    "every row is its own group, so splits cannot keep related rows together. Add a patient_id column naming "
    "each row's group (what a split must never cut apart)"
)


def manifest_layout(cfg: DataConfig) -> tuple[list[Record], list[str]]:
    """The ``manifest`` layout every domain can offer: ``data.manifest`` read with ``data.columns``."""
    if cfg.manifest is None:
        raise RecipeError("data.manifest: required for layout 'manifest' (a CSV with id, patient_id, image, report)")
    return read_manifest(cfg.manifest, columns=cfg.columns), []


def read_manifest(
    path: Path,
    seed: int = 0,
    columns: ManifestColumnsConfig | None = None,
    without_groups: str | None = WITHOUT_GROUPS,
    require_texts: bool = True,
) -> list[Record]:
    """Parse the manifest at ``path``; ``seed`` drives the split when the CSV has no ``split`` column.

    ``without_groups``: what a missing ``patient_id`` column means for the caller's data, warned after the path
    (a domain words it in its own terms); None says nothing, for a caller that groups the rows itself.
    ``require_texts=False`` (inference): the text columns may be absent; the records then have no texts.
    """
    path = Path(path)
    columns = columns or ManifestColumnsConfig()
    table = _read_table(path)
    declared = [*columns.texts, *([columns.label] if columns.label else []), *columns.targets, *columns.ignore]
    optional = set() if require_texts else set(columns.texts)
    missing = [c for c in (*REQUIRED_COLUMNS, *declared) if c not in table.columns and c not in optional]
    if missing:
        raise DataError(f"{path}: missing required column(s) {missing}; found {list(table.columns)}")
    time_column, event_column = columns.time or "time", columns.event or "event"
    fixed = {*FIXED_COLUMNS, time_column, event_column}
    finding_columns = [c for c in table.columns if c not in fixed and c not in declared]
    has_patients = "patient_id" in table.columns
    if not has_patients and without_groups is not None:
        message = f"{path}: no 'patient_id' column; {without_groups}."
        warnings.warn(message, UserWarning, stacklevel=2)
        log.warning(message)

    records: list[Record] = []
    problems: list[str] = []
    for position, row in enumerate(table.to_dict("records")):
        where = f"{path.name}:row {position + 2}"  # header is line 1
        cell_problems: list[str] = []
        record_id = row["id"].strip()
        if not record_id:
            cell_problems.append("empty id")
        patient = row["patient_id"].strip() if has_patients else record_id
        if has_patients and not patient:
            cell_problems.append("empty patient_id")
        image = row["image"].strip()
        if not image:
            cell_problems.append("empty image path")
        findings = {name: finding_cell(row[name], name, cell_problems) for name in finding_columns}
        targets = {name: _target(row[name], name, cell_problems) for name in columns.targets}
        label = row[columns.label].strip() or None if columns.label else None
        time = time_cell(row.get(time_column, ""), cell_problems)
        event = event_cell(row.get(event_column, ""), cell_problems)
        split = row.get("split", "").strip() or "train"
        split = SPLIT_ALIASES.get(split, split)
        if split not in SPLITS:
            cell_problems.append(f"split {split!r} is not one of {list(SPLITS)}")
        if cell_problems:
            problems.extend(f"{where} (id={record_id}): {p}" for p in cell_problems)
            continue
        records.append(
            Record(
                id=record_id,
                patient_id=patient,
                image=_resolve(image, path.parent),
                texts=tuple(row[c] for c in columns.texts if row.get(c, "").strip()),
                split=split,
                findings={k: v for k, v in findings.items() if v is not None},
                label=label,
                targets={k: v for k, v in targets.items() if v is not None},
                time=time,
                event=event,
                report_id=_report_id(row, patient, record_id, columns.texts),
                source=where,
            )
        )
    if problems:
        raise DataError(f"{path}: {len(problems)} malformed cell(s)", problems)
    if "split" not in table.columns:
        log.info("%s: no 'split' column; assigning a patient-level split with seed %d", path, seed)
        records = assign_splits(records, seed=seed)
    return records


def _read_table(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{path}: manifest not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable CSV ({exc})") from exc
    table.columns = [str(c).strip() for c in table.columns]
    duplicated = sorted({c for c in table.columns if list(table.columns).count(c) > 1})
    if duplicated:
        raise DataError(f"{path}: duplicate column(s) {duplicated}")
    return table


def _resolve(image: str, base: Path) -> Path:
    candidate = Path(image).expanduser()
    return candidate if candidate.is_absolute() else base / candidate


def _number(text: str) -> float:
    """The cell as a float; NaN when it is not a number (callers turn that into a problem line)."""
    try:
        return float(text)
    except ValueError:
        return math.nan


def finding_cell(value: str, name: str, problems: list[str]) -> float | None:
    """A 0/1 finding cell (empty: unknown); what is wrong is appended to ``problems``."""
    text = value.strip()
    if text == "":
        return None
    number = _number(text)
    if number not in (0.0, 1.0):
        problems.append(f"finding {name!r} is {text!r}; expected 0, 1 or empty")
        return None
    return number


def _target(value: str, name: str, problems: list[str]) -> float | None:
    text = value.strip()
    if text == "":
        return None
    number = _number(text)
    if not math.isfinite(number):
        problems.append(f"target {name!r} is {text!r}; expected a number or empty")
        return None
    return number


def time_cell(value: str, problems: list[str]) -> float | None:
    """A non-negative follow-up time (empty: unknown)."""
    text = value.strip()
    if text == "":
        return None
    number = _number(text)
    if not math.isfinite(number) or number < 0:
        problems.append(f"time {text!r} is not a non-negative number")
        return None
    return number


def event_cell(value: str, problems: list[str]) -> int | None:
    """0 (censored) or 1 (event); empty: unknown."""
    text = value.strip()
    if text == "":
        return None
    if text not in ("0", "1", "0.0", "1.0"):
        problems.append(f"event {text!r}; expected 0 (censored), 1 (event) or empty")
        return None
    return int(float(text))


def _report_id(row: dict[str, str], patient: str, record_id: str, text_columns: list[str]) -> str:
    if "report_id" in row:
        return row["report_id"].strip() or record_id
    text = "\n".join(row.get(c, "").strip() for c in text_columns)
    digest = hashlib.sha1(text.encode("utf-8")).hexdigest()[:12]
    return f"{patient}:{digest}"
