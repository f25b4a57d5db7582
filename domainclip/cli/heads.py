"""``domainclip survival``: a Cox head on a table of covariates or embeddings, evaluated on its test split.

Registered on the main app by ``register(app)``; heavy imports happen inside the
command so that ``domainclip --help`` stays fast. Bad input raises
:class:`~domainclip.errors.DataError`, which the main entry point prints and turns
into its exit code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from domainclip.errors import DataError


def _names(value: str | None, option: str) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise DataError(f"{option}: give comma-separated names, e.g. {option} age,size")
    return names


def _widths(value: str | None) -> tuple[int, ...]:
    if not value:
        return ()
    try:
        widths = tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise DataError(f"--hidden {value!r}: expected comma-separated layer widths, e.g. --hidden 64,32") from None
    if any(w < 1 for w in widths):
        raise DataError(f"--hidden {value!r}: layer widths must be >= 1")
    return widths


def survival_command(
    table: Path,
    time_col: str,
    event_col: str,
    out: Path,
    *,
    feature_cols: str | None = None,
    features: Path | None = None,
    id_col: str | None = None,
    split_col: str | None = None,
    penalty: float = 1e-2,
    hidden: str | None = None,
    tau: float | None = None,
    seed: int = 0,
) -> dict:
    """The command's work, callable without typer: returns what it writes to ``out/metrics.json``."""
    from domainclip.heads.survival import fit_evaluate_survival
    from domainclip.heads.survival_table import load_survival_table, split_indices

    if penalty < 0:
        raise DataError(f"--penalty {penalty}: must be >= 0")
    widths = _widths(hidden)
    data = load_survival_table(
        table,
        time_col,
        event_col,
        feature_cols=_names(feature_cols, "--feature-cols"),
        features=features,
        id_col=id_col,
        split_col=split_col,
    )
    rows = split_indices(data, with_validation=bool(widths), seed=seed, event_col=event_col)
    valid = rows["valid"] if len(rows["valid"]) else None

    def part(idx):  # (X, time, event) of a split, or Nones
        return (None, None, None) if idx is None else (data.features[idx], data.time[idx], data.event[idx])

    metrics = fit_evaluate_survival(
        *part(rows["train"]),
        *part(valid),
        *part(rows["test"]),
        out_dir=out,
        penalty=penalty,
        hidden=widths,
        tau=tau,
        feature_names=data.feature_names,
        seed=seed,
    )
    metrics.update(
        {
            "n_valid": int(0 if valid is None else len(valid)),
            "head": "linear" if not widths else "mlp " + ",".join(map(str, widths)),
            "split": "column " + split_col if split_col else f"stratified on {event_col!r}, seed {seed}",
        }
    )
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def survival(
    table: Annotated[Path, typer.Option("--table", help="CSV with one row per patient/study")],
    time_col: Annotated[str, typer.Option("--time-col", help="column of follow-up times (>= 0)")],
    event_col: Annotated[str, typer.Option("--event-col", help="column of events: 1 event, 0 censored")],
    out: Annotated[Path, typer.Option("--out", help="output folder")],
    feature_cols: Annotated[
        str | None, typer.Option("--feature-cols", help="comma-separated covariate columns")
    ] = None,
    features: Annotated[
        Path | None,
        typer.Option(
            "--features",
            help="features file joined on --id-col: CSV, or .safetensors from `domainclip embed`",
        ),
    ] = None,
    id_col: Annotated[str | None, typer.Option("--id-col", help="id column shared by the table and --features")] = None,
    split_col: Annotated[
        str | None,
        typer.Option(
            "--split-col",
            help="column with train/valid/test; default: 70/30 split stratified on the event",
        ),
    ] = None,
    penalty: Annotated[
        float,
        typer.Option("--penalty", help="L2 penalty (lifelines' penalizer); 0 = maximum likelihood"),
    ] = 1e-2,
    hidden: Annotated[str | None, typer.Option("--hidden", help="MLP widths, e.g. 64,32 (default: linear Cox)")] = None,
    tau: Annotated[
        float | None,
        typer.Option("--tau", help="truncation time of Uno's C (capped at the training follow-up)"),
    ] = None,
    seed: Annotated[int, typer.Option("--seed", help="seed of the split and the head")] = 0,
) -> None:
    """Fit a Cox head and report Harrell/Uno C, time-dependent AUC, IBS and a Kaplan-Meier plot.

    Writes metrics.json, coefficients.csv (linear head) and km_risk_groups.png to --out.

    Example: domainclip survival --table gbsg2.csv --time-col time --event-col cens
    --feature-cols age,tsize,pnodes,progrec,estrec --penalty 0 --out runs/gbsg2-cox
    """
    metrics = survival_command(
        table,
        time_col,
        event_col,
        out,
        feature_cols=feature_cols,
        features=features,
        id_col=id_col,
        split_col=split_col,
        penalty=penalty,
        hidden=hidden,
        tau=tau,
        seed=seed,
    )
    shown = ", ".join(
        f"{k}={metrics[k]:.4f}" if isinstance(metrics[k], float) else f"{k}={metrics[k]}"
        for k in ("c_index", "c_index_uno", "td_auc_mean", "ibs")
    )
    typer.echo(f"{shown}\nwrote {out / 'metrics.json'}")


def register(app: typer.Typer) -> None:
    """Add the ``survival`` command to ``app``."""
    app.command("survival")(survival)


__all__ = ["register", "survival_command"]
