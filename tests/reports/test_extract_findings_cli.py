"""``domainclip extract-findings`` end to end on tiny CSVs, and its error messages."""

from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from domainclip.errors import DataError, RecipeError
from domainclip.reports import AuditRow, write_audit_csv
from domainclip.reports.cli import register


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer(add_completion=False, rich_markup_mode=None)

    @app.command()
    def version() -> None:  # a second command, so that extract-findings is a subcommand as in main
        """Print nothing."""

    register(app)
    return app


def _csv(path: Path, rows: list[dict[str, str]]) -> Path:
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_help_shows_an_example(app: typer.Typer) -> None:
    result = CliRunner().invoke(app, ["extract-findings", "--help"])
    assert result.exit_code == 0
    assert "domainclip extract-findings --reports" in result.output and "--vocabulary" in result.output


def test_writes_vectors_and_audit(app: typer.Typer, tmp_path: Path) -> None:
    reports = _csv(
        tmp_path / "manifest.csv",
        [
            {
                "id": "s1",
                "patient_id": "p1",
                "image": "a.nii.gz",
                "report": "FINDINGS: Small left pleural effusion. No cardiomegaly.",
            },
            {
                "id": "s2",
                "patient_id": "p2",
                "image": "b.nii.gz",
                "report": "Possible ascites. Liver: unremarkable.",
            },
        ],
    )
    out, audit = tmp_path / "out" / "vectors.csv", tmp_path / "audit.csv"
    result = CliRunner().invoke(
        app,
        [
            "extract-findings",
            "--reports",
            str(reports),
            "--vocabulary",
            "ct",
            "--out",
            str(out),
            "--audit",
            str(audit),
            "--unmentioned-value",
            "nan",
        ],
    )
    assert result.exit_code == 0, result.output
    vectors = pd.read_csv(out, dtype=str, keep_default_na=False).set_index("id")
    assert list(vectors.columns)[:2] == ["renal mass", "liver lesion"] and len(vectors.columns) == 7
    assert vectors.loc["s1", "pleural effusion"] == "1" and vectors.loc["s1", "cardiomegaly"] == "0"
    assert vectors.loc["s2", "ascites"] == "0.5" and vectors.loc["s2", "liver lesion"] == ""
    with audit.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 14
    row = next(r for r in rows if r["report_id"] == "s1" and r["finding"] == "cardiomegaly")
    assert row == {
        "report_id": "s1",
        "finding": "cardiomegaly",
        "value": "0",
        "status": "negated",
        "cue": "No",
        "sentence": "No cardiomegaly.",
    }
    assert "wrote" in result.output and "pleural effusion" in result.output


def test_joins_several_text_columns(app: typer.Typer, tmp_path: Path) -> None:
    reports = _csv(
        tmp_path / "ct_rate.csv",
        [
            {
                "VolumeName": "train_1_a_1.nii.gz",
                "ClinicalInformation_EN": "Rule out pleural effusion.",
                "Findings_EN": "Emphysema. No pleural effusion.",
                "Impressions_EN": "Hiatal hernia.",
            },
        ],
    )
    out = tmp_path / "silver.csv"
    result = CliRunner().invoke(
        app,
        [
            "extract-findings",
            "--reports",
            str(reports),
            "--vocabulary",
            "ct-rate",
            "--out",
            str(out),
            "--id-col",
            "VolumeName",
            "--text-col",
            "Findings_EN",
            "--text-col",
            "Impressions_EN",
        ],
    )
    assert result.exit_code == 0, result.output
    row = pd.read_csv(out).set_index("VolumeName").loc["train_1_a_1.nii.gz"]
    assert row["Emphysema"] == 1 and row["Hiatal hernia"] == 1 and row["Pleural effusion"] == 0


def test_missing_column_names_file_and_column(app: typer.Typer, tmp_path: Path) -> None:
    reports = _csv(tmp_path / "r.csv", [{"id": "a", "text": "Cardiomegaly."}])
    result = CliRunner().invoke(
        app,
        [
            "extract-findings",
            "--reports",
            str(reports),
            "--vocabulary",
            "ct",
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert isinstance(result.exception, DataError)
    assert str(reports) in str(result.exception) and "['report']" in str(result.exception)
    assert not (tmp_path / "o.csv").exists()


def test_bad_rows_are_all_listed(app: typer.Typer, tmp_path: Path) -> None:
    reports = _csv(
        tmp_path / "r.csv",
        [
            {"id": "a", "report": "x"},
            {"id": "", "report": "y"},
            {"id": "a", "report": "z"},
        ],
    )
    result = CliRunner().invoke(
        app,
        [
            "extract-findings",
            "--reports",
            str(reports),
            "--vocabulary",
            "ct",
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert isinstance(result.exception, DataError)
    assert result.exception.problems == [
        f"{reports}:3: empty 'id'",
        f"{reports}:4: 'id' 'a' repeats line 2",
    ]


def test_bad_vocabulary_and_missing_reports(app: typer.Typer, tmp_path: Path) -> None:
    vocab = tmp_path / "v.yaml"
    vocab.write_text("findings:\n  - name: a\n    synonyms: [b]\n    negations: [c]\n", encoding="utf-8")
    reports = _csv(tmp_path / "r.csv", [{"id": "a", "report": "b"}])
    result = CliRunner().invoke(
        app,
        [
            "extract-findings",
            "--reports",
            str(reports),
            "--vocabulary",
            str(vocab),
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert isinstance(result.exception, RecipeError)
    assert str(vocab) in str(result.exception) and "findings[0] ('a').negations (line 4): unknown key" in str(
        result.exception
    )
    result = CliRunner().invoke(
        app,
        [
            "extract-findings",
            "--reports",
            str(tmp_path / "none.csv"),
            "--vocabulary",
            "ct",
            "--out",
            str(tmp_path / "o.csv"),
        ],
    )
    assert isinstance(result.exception, DataError) and "reports CSV not found" in str(result.exception)


def test_audit_csv_writes_nan_as_empty(tmp_path: Path) -> None:
    rows = [
        AuditRow("r1", "cardiomegaly", float("nan"), "", "unmentioned"),
        AuditRow("r1", "renal cyst", 0.5, 'Possible renal cyst, "small".', "uncertain", "Possible"),
    ]
    path = write_audit_csv(rows, tmp_path / "sub" / "audit.csv")
    with path.open(newline="", encoding="utf-8") as handle:
        got = list(csv.reader(handle))
    assert got[0] == ["report_id", "finding", "value", "status", "cue", "sentence"]
    assert got[1] == ["r1", "cardiomegaly", "", "unmentioned", "", ""]
    assert got[2] == [
        "r1",
        "renal cyst",
        "0.5",
        "uncertain",
        "Possible",
        'Possible renal cyst, "small".',
    ]


def test_reports_that_mention_no_finding_are_counted_and_named(app: typer.Typer, tmp_path: Path) -> None:
    reports = _csv(
        tmp_path / "reports.csv",
        [
            {"id": "a", "report": "Small left pleural effusion."},
            {"id": "b", "report": "See attached."},
            {"id": "c", "report": "Xqz lrrm ,, 0O0 tnnk."},
            {"id": "d", "report": "胸水なし。"},
            {"id": "e", "report": "|| 0O0 %% 12;; 34 ## 5l"},
        ],
    )
    result = CliRunner().invoke(
        app, ["extract-findings", "--reports", str(reports), "--vocabulary", "ct", "--out", str(tmp_path / "v.csv")]
    )
    assert result.exit_code == 0, result.output
    assert "4 of 5 report(s) mention no finding of the vocabulary:" in result.output
    assert "  b: report is only boilerplate ('See attached.')" in result.output
    assert "  c: names none of the vocabulary's findings" in result.output
    assert "  d: not in the Latin alphabet: 100% of its letters are outside a-z" in result.output
    assert "  e: looks garbled" in result.output
