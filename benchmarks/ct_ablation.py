"""Ablation of the CT quickstart: does each part of the recipe earn its place?

Runs ``recipes/ct/quickstart.yaml`` on the same demo data and seed, by default three times:
  ours            two-stage (MAE -> soft-label alignment)
  no-mae          alignment from a randomly initialised image encoder (stages.mae.steps=0)
  hard            two-stage with hard labels (stages.align.loss=clip, open_clip-style InfoNCE)
and, with ``--variants``, the text-side parts:
  no-statements   single report sentences are never cut to their bare finding statements
  report-targets  no statements, and a text cut from a report carries the whole report's finding vector
It prints, for each, zero-shot mean AUC, the linear-probe mean AUC on frozen image embeddings (the image
tower's share), R@5 both ways and the survival C-index.

    python benchmarks/ct_ablation.py [--out runs/ablation] [--variants ours no-mae ...] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

VARIANTS = {  # key: (row name, overrides)
    "ours": ("ours (MAE + soft labels)", []),
    "no-mae": ("no MAE (random init)", ["stages.mae.steps=0"]),
    "hard": ("hard labels (ClipLoss)", ["stages.align.loss=clip"]),
    "no-statements": ("no finding statements", ["text_sampling.finding_statements=0"]),
    "report-targets": (
        "no statements, cut texts carry the report's vector",
        ["text_sampling.finding_statements=0", "text_sampling.sentence_targets=report"],
    ),
}
DEFAULT_VARIANTS = ["ours", "no-mae", "hard"]
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "ct" / "quickstart.yaml"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/ablation"))
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=DEFAULT_VARIANTS)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    rows = []
    for key in args.variants:
        name, extra = VARIANTS[key]
        run_dir = args.out / key
        if run_dir.exists():
            shutil.rmtree(run_dir)
        overrides = [f"output.dir={run_dir}", *args.overrides, *extra]
        cmd = [sys.executable, "-m", "domainclip.cli.main", "run", str(RECIPE)]
        cmd += [a for o in overrides for a in ("--set", o)]
        print("$", " ".join(cmd), flush=True)
        subprocess.run(cmd, check=True)
        metrics = json.loads((run_dir / "metrics.json").read_text())
        rows.append((name, metrics))
    print()
    print(
        "| variant | zero-shot mean AUC | linear-probe mean AUC | text->image R@5 | image->text R@5 "
        "| survival C-index | wall s |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, m in rows:
        print(
            f"| {name} | {m.get('zeroshot.auc_mean', float('nan')):.3f} | "
            f"{m.get('linear_probe.auc_mean', float('nan')):.3f} | "
            f"{m.get('retrieval.text_to_image.R@5', float('nan')):.3f} | "
            f"{m.get('retrieval.image_to_text.R@5', float('nan')):.3f} | "
            f"{m.get('survival.c_index', float('nan')):.3f} | {m.get('wall_seconds', float('nan')):.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
