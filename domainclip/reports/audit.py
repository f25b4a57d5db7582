"""Audit trail of report structuring: which sentence decided each finding's value.

A silver label is only trustworthy if a person can check it; the audit CSV has one
row per report and finding (``report_id, finding, value, status, cue, sentence``),
unmentioned findings included, so it can be filtered and reviewed in a spreadsheet.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

AUDIT_COLUMNS: tuple[str, ...] = ("report_id", "finding", "value", "status", "cue", "sentence")


@dataclass(frozen=True)
class AuditRow:
    """One finding of one report. ``status``: present, uncertain, negated or unmentioned."""

    report_id: str
    finding: str
    value: float
    sentence: str
    status: str = ""
    cue: str = ""


def write_audit_csv(rows: Iterable[AuditRow], path: str | Path) -> Path:
    """Write audit rows as CSV (NaN values as empty cells); returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(AUDIT_COLUMNS)
        for row in rows:
            value = "" if math.isnan(row.value) else f"{row.value:g}"
            writer.writerow((row.report_id, row.finding, value, row.status, row.cue, row.sentence))
    return path


__all__ = ["AUDIT_COLUMNS", "AuditRow", "write_audit_csv"]
