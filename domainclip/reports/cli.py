"""``domainclip extract-findings``: finding vectors and an audit trail from a reports CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def extract_findings_command(
    reports: Annotated[
        Path,
        typer.Option(
            "--reports",
            help="CSV with an id column and report text column(s), e.g. a generic manifest",
        ),
    ],
    vocabulary: Annotated[
        str, typer.Option("--vocabulary", help="vocabulary YAML, or a bundled one: ct, ct-rate, pathology, satellite")
    ],
    out: Annotated[Path, typer.Option("--out", help="output CSV: id, one column per finding")],
    audit: Annotated[
        Path | None,
        typer.Option(
            "--audit",
            help="also write the audit CSV (report_id, finding, value, status, cue, sentence)",
        ),
    ] = None,
    id_col: Annotated[str, typer.Option("--id-col", help="column with the report id")] = "id",
    text_col: Annotated[
        list[str] | None,
        typer.Option("--text-col", help="report text column; repeat to join several (default: report)"),
    ] = None,
    uncertain_value: Annotated[
        float, typer.Option("--uncertain-value", help="value of a hedged finding ('possible ...')")
    ] = 0.5,
    unmentioned_value: Annotated[
        float,
        typer.Option(
            "--unmentioned-value",
            help="value of a finding the report never mentions; 'nan' leaves the cell empty",
        ),
    ] = 0.0,
) -> None:
    """Extract a finding vector per report (negation and uncertainty scoped to the sentence) and an audit CSV.

    \b
    Examples:
      domainclip extract-findings --reports demo_ct/manifest.csv --vocabulary ct \\
          --out findings.csv --audit audit.csv
      domainclip extract-findings --reports radiology_text_reports/train_reports.csv \\
          --vocabulary ct-rate --id-col VolumeName --text-col Findings_EN \\
          --text-col Impressions_EN --unmentioned-value nan --out silver.csv
    """
    from domainclip.reports.extract import extract_findings, load_vocabulary

    result = extract_findings(
        reports,
        load_vocabulary(vocabulary),
        out,
        audit=audit,
        id_col=id_col,
        text_cols=tuple(text_col or ["report"]),
        uncertain_value=uncertain_value,
        unmentioned_value=unmentioned_value,
    )
    typer.echo(result.status_counts().to_string())
    silent = result.silent_report_reasons()
    if silent:
        typer.echo(f"{len(silent)} of {len(result.ids)} report(s) mention no finding of the vocabulary:")
        for report_id, reason in list(silent.items())[:20]:
            typer.echo(f"  {report_id}: {reason}")
        if len(silent) > 20:
            typer.echo(f"  ... and {len(silent) - 20} more (the audit CSV lists every report)")
    typer.echo(f"wrote {out} ({len(result.ids)} reports x {len(result.names)} findings)")
    if audit is not None:
        typer.echo(f"wrote {audit} ({len(result.audit)} rows)")


def register(app: typer.Typer) -> None:
    """Add ``extract-findings`` to the ``domainclip`` command line."""
    app.command("extract-findings")(extract_findings_command)


__all__ = ["register"]
