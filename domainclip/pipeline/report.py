"""A human-readable run report (``report.md``) next to metrics.json."""

from __future__ import annotations

from typing import Any

from domainclip.config.schema import Recipe
from domainclip.pipeline.run_folder import RunFolder


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def write_run_report(folder: RunFolder, recipe: Recipe, metrics: dict[str, Any]) -> None:
    lines = [
        f"# Run report: {folder.root.name}",
        "",
        f"- domain: `{recipe.domain}`, layout: `{recipe.data.layout}`",
        f"- stage 1 (MAE): {recipe.stages.mae.steps} steps, batch {recipe.stages.mae.batch_size}",
        (
            f"- stage 2 (alignment, `{recipe.stages.align.loss}` loss): {recipe.stages.align.steps} steps, "
            f"batch {recipe.stages.align.batch_size}"
        ),
        f"- wall time: {metrics.get('wall_seconds', float('nan')):.1f} s",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| `{key}` | {_fmt(value)} |" for key, value in sorted(metrics.items())]
    plots = sorted(p.relative_to(folder.root) for p in folder.plots.rglob("*.png"))
    if plots:
        lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.as_posix()})" for p in plots]
    (folder.root / "report.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
