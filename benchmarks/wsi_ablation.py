"""Ablation of the WSI quickstart: does each part of the recipe earn its place?

Runs ``recipes/wsi/quickstart.yaml`` on the same demo slides and seed, by default four times:

  ours      tile MAE -> TRIDENT features -> gated ABMIL aligned with soft labels
  no-mae    features from a randomly initialised tile encoder (stages.mae.steps=0)
  hard      two-stage with hard labels (stages.align.loss=clip, open_clip-style InfoNCE)
  mean-mil  mean pooling of the tile features instead of attention (model.image.type=mean-mil)

It prints, for each, the zero-shot finding mean AUC (ground truth: the drawn findings and the clinical subtype),
zero-shot subtype balanced accuracy from the slide embedding and by MI-Zero's top-k over tile scores, the
linear-probe finding mean AUC on frozen slide embeddings, report -> slide R@5 with what a random ranking scores,
the Cox C-index on the slide embedding beside the same head on the true findings, and the run's wall time.

The variants share one ``data.cache_dir`` (default ``<out>/cache``): the demo slides are written once, before the
first variant (``domainclip validate-data``), and tile coordinates are cached by the first; features are keyed by
the tile encoder's weights, so each variant whose stage 1 differs extracts its own.

    python benchmarks/wsi_ablation.py [--out runs/wsi-ablation] [--variants ours no-mae ...] [--set key=value ...]
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from _ablation import number, parse_args, print_table, run_on_shared_cache

VARIANTS = {  # key: (row name, overrides)
    "ours": ("ours (tile MAE + ABMIL + soft labels)", []),
    "no-mae": ("no MAE (random tile encoder)", ["stages.mae.steps=0"]),
    "hard": ("hard labels (ClipLoss)", ["stages.align.loss=clip"]),
    "mean-mil": ("mean pooling instead of attention", ["model.image.type=mean-mil"]),
}
DEFAULT_VARIANTS = list(VARIANTS)
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "wsi" / "quickstart.yaml"


def table_row(name: str, m: Mapping[str, Any]) -> list[str]:
    recall = f"{number(m, 'retrieval.text_to_image.R@5')} ({number(m, 'retrieval.chance.text_to_image.R@5')})"
    survival = f"{number(m, 'survival.c_index')} ({number(m, 'survival.ceiling_true_findings.c_index')})"
    return [
        name,
        number(m, "zeroshot.auc_mean"),
        number(m, "zeroshot.balanced_accuracy"),
        number(m, "zeroshot_topk.balanced_accuracy"),
        number(m, "linear_probe.auc_mean"),
        recall,
        survival,
        number(m, "wall_seconds", 0),
    ]


def main() -> int:
    args = parse_args(__doc__, VARIANTS, DEFAULT_VARIANTS, Path("runs/wsi-ablation"))
    rows = run_on_shared_cache(RECIPE, VARIANTS, args.variants, args.out, args.overrides)
    header = [
        "variant",
        "zero-shot finding mean AUC",
        "zero-shot subtype balanced acc.",
        "MI-Zero top-k subtype bal. acc.",
        "linear-probe mean AUC",
        "report->slide R@5 (chance)",
        "C-index (true findings)",
        "wall s",
    ]
    print_table(header, [table_row(name, m) for name, m in rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
