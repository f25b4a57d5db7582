"""Reports CSV in, finding-vector CSV (and audit CSV) out: the work behind ``extract-findings``.

The vectors CSV has the id column, then one column per finding named exactly as
in the vocabulary, so it can be joined onto a generic manifest as silver finding
columns (1 present, 0 absent, the uncertain value, empty when unknown).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from domainclip.data.text_quality import suspect_reason, unusable_reason
from domainclip.errors import DataError, RecipeError
from domainclip.reports.audit import AuditRow, write_audit_csv
from domainclip.reports.structurer import HISTORICAL, NEGATED, PRESENT, UNCERTAIN, UNMENTIONED, ReportStructurer
from domainclip.reports.vocabulary import Vocabulary

_CT_DIR = Path(__file__).resolve().parents[1] / "domains" / "ct"
BUNDLED_VOCABULARIES: dict[str, Path] = {
    "ct": _CT_DIR / "vocabulary.yaml",
    "ct-rate": _CT_DIR / "ct_rate_vocabulary.yaml",
    "pathology": Path(__file__).with_name("vocabularies") / "pathology.yaml",
    "satellite": Path(__file__).with_name("vocabularies") / "satellite.yaml",
}


def load_vocabulary(spec: str | Path) -> Vocabulary:
    """A vocabulary from a YAML path or a bundled name (``ct``, ``ct-rate``, ``pathology``, ``satellite``)."""
    path = Path(spec)
    if path.is_file():
        return Vocabulary.load(path)
    if str(spec) in BUNDLED_VOCABULARIES:
        return Vocabulary.load(BUNDLED_VOCABULARIES[str(spec)])
    raise RecipeError(
        f"--vocabulary: {spec} is neither a file nor a bundled vocabulary ({', '.join(BUNDLED_VOCABULARIES)})"
    )


def read_reports_csv(path: Path, id_col: str, text_cols: Sequence[str]) -> list[tuple[str, str]]:
    """(id, text) pairs; several text columns are joined as labelled sections.

    Every bad row (empty or duplicate id) is listed at once in one ``DataError``.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: reports CSV not found")
    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read as CSV: {exc}") from None
    missing = [c for c in (id_col, *text_cols) if c not in table.columns]
    if missing:
        raise DataError(
            f"{path}: missing column(s) {missing}; the file has {list(table.columns)} "
            "(choose them with --id-col / --text-col)"
        )
    problems = []
    seen: dict[str, int] = {}
    for row_number, report_id in enumerate(table[id_col].str.strip(), start=2):  # line 1 is the header
        if not report_id:
            problems.append(f"{path}:{row_number}: empty {id_col!r}")
        elif report_id in seen:
            problems.append(f"{path}:{row_number}: {id_col!r} {report_id!r} repeats line {seen[report_id]}")
        else:
            seen[report_id] = row_number
    if problems:
        raise DataError(f"{path}: {len(problems)} bad row(s)", problems)
    if len(text_cols) == 1:
        texts = table[text_cols[0]].tolist()
    else:
        texts = [
            "\n".join(f"{col}: {value}" for col, value in zip(text_cols, values) if value.strip())
            for values in table[list(text_cols)].itertuples(index=False)
        ]
    return list(zip(table[id_col].str.strip().tolist(), texts))


@dataclass(frozen=True)
class ExtractionResult:
    ids: list[str]
    names: list[str]
    vectors: np.ndarray
    audit: list[AuditRow]
    texts: list[str]

    def status_counts(self) -> pd.DataFrame:
        """Per finding, how many reports were present / uncertain / negated / historical / unmentioned."""
        columns = [PRESENT, UNCERTAIN, NEGATED, HISTORICAL, UNMENTIONED]
        counts = pd.DataFrame(0, index=self.names, columns=columns)
        for row in self.audit:
            counts.loc[row.finding, row.status] += 1
        counts.index.name = "finding"
        return counts

    def silent_reports(self) -> list[str]:
        """Ids of the reports that mention no finding of the vocabulary at all (boilerplate, another language,
        garbled text): their vector is only the unmentioned value, which a reader should know."""
        mentioned = {row.report_id for row in self.audit if row.status != UNMENTIONED}
        return [report_id for report_id in self.ids if report_id not in mentioned]

    def silent_report_reasons(self) -> dict[str, str]:
        """Each silent report's id and the likely reason: empty, boilerplate, garbled or not English
        (:mod:`domainclip.data.text_quality`), else that it names none of the vocabulary's findings."""
        text_of = dict(zip(self.ids, self.texts))
        return {
            report_id: unusable_reason(text_of[report_id])
            or suspect_reason(text_of[report_id])
            or "names none of the vocabulary's findings"
            for report_id in self.silent_reports()
        }


def extract_findings(
    reports_csv: Path,
    vocabulary: Vocabulary,
    out: Path,
    *,
    audit: Path | None = None,
    id_col: str = "id",
    text_cols: Sequence[str] = ("report",),
    uncertain_value: float = 0.5,
    unmentioned_value: float = 0.0,
) -> ExtractionResult:
    """Structure every report of ``reports_csv``; write the vectors CSV and, if asked, the audit CSV."""
    reports = read_reports_csv(reports_csv, id_col, text_cols)
    structurer = ReportStructurer(vocabulary, uncertain_value=uncertain_value, unmentioned_value=unmentioned_value)
    vectors, rows = structurer.structure_many(reports)
    ids = [report_id for report_id, _ in reports]
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(vectors.astype(np.float64), columns=structurer.names)
    frame.insert(0, id_col, ids)
    frame.to_csv(out, index=False, na_rep="", float_format="%g")
    if audit is not None:
        write_audit_csv(rows, audit)
    return ExtractionResult(ids, structurer.names, vectors, rows, [text for _, text in reports])


__all__ = [
    "BUNDLED_VOCABULARIES",
    "ExtractionResult",
    "extract_findings",
    "load_vocabulary",
    "read_reports_csv",
]
