"""Ablation of the satellite quickstart: does each part of the recipe earn its place?

Runs ``recipes/satellite/quickstart.yaml`` on the same demo data and seed, by default five times:
  ours         band-group MAE -> soft-label caption alignment
  no-mae       alignment from a randomly initialised image encoder (stages.mae.steps=0)
  hard         two-stage with hard labels (stages.align.loss=clip, open_clip-style InfoNCE)
  one-group    every band in one patch embedding (model.image.type=vit, no channel_groups): a third of the
               grouped tower's tokens at the same patch size
  two-captions each image meets two of its captions per step (stages.align.texts_per_image=2), both positives
It prints, for each, the zero-shot mean AUC over the attributes, the linear-probe mean AUC on frozen image
embeddings (the image tower's share), zero-shot top-1 on the EuroSAT-like scene set, retrieval mean recall with
what a random ranking scores, the indicator R² of each regression target, and the run's wall time.

The variants share one ``data.cache_dir`` (default ``<out>/cache``): the demo chips are written once, before the
first variant (``domainclip validate-data``), and the preprocessed chips are cached by the first variant and read
back by the others (the band statistics, fitted on the same split, give the same cache key), so the wall time is
training and evaluation; the first variant's also holds filling the cache.

    python benchmarks/satellite_ablation.py [--out runs/satellite-ablation] [--variants ours no-mae ...]
        [--set key=value ...]
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from _ablation import number, parse_args, print_table, run_on_shared_cache

VARIANTS = {  # key: (row name, overrides)
    "ours": ("ours (band-group MAE + soft labels)", []),
    "no-mae": ("no MAE (random init)", ["stages.mae.steps=0"]),
    "hard": ("hard labels (ClipLoss)", ["stages.align.loss=clip"]),
    "one-group": ("one band group (vit)", ["model.image.type=vit", "model.image.channel_groups=null"]),
    "two-captions": ("two captions per image per step", ["stages.align.texts_per_image=2"]),
}
DEFAULT_VARIANTS = ["ours", "no-mae", "hard", "one-group", "two-captions"]
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "satellite" / "quickstart.yaml"
R2_KEY = re.compile(r"^regression\.(.+)\.r2$")


def regression_targets(rows: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Every target any variant scored, sorted (a column each)."""
    return sorted({match[1] for _, m in rows for key in m if (match := R2_KEY.match(key))})


def table_row(name: str, m: Mapping[str, Any], targets: Sequence[str]) -> list[str]:
    recall = f"{number(m, 'retrieval.mean_recall')} ({number(m, 'retrieval.chance.mean_recall')})"
    return [
        name,
        number(m, "zeroshot.auc_mean"),
        number(m, "linear_probe.auc_mean"),
        number(m, "eurosat.zeroshot.top1"),
        recall,
        *(number(m, f"regression.{t}.r2") for t in targets),
        number(m, "wall_seconds", 0),
    ]


def main() -> int:
    args = parse_args(__doc__, VARIANTS, DEFAULT_VARIANTS, Path("runs/satellite-ablation"))
    rows = run_on_shared_cache(RECIPE, VARIANTS, args.variants, args.out, args.overrides)
    targets = regression_targets(rows)
    header = [
        "variant",
        "zero-shot attribute mean AUC",
        "linear-probe mean AUC",
        "EuroSAT zero-shot top-1",
        "retrieval mean recall (chance)",
        *(f"R² {t}" for t in targets),
        "wall s",
    ]
    print_table(header, [table_row(name, m, targets) for name, m in rows])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
