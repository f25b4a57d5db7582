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

from pathlib import Path

from _ablation import number, parse_args, print_table, run_variants

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
HEADER = (
    "variant",
    "zero-shot mean AUC",
    "linear-probe mean AUC",
    "text->image R@5",
    "image->text R@5",
    "survival C-index",
    "wall s",
)


def main() -> int:
    args = parse_args(__doc__, VARIANTS, DEFAULT_VARIANTS, Path("runs/ablation"))
    rows = run_variants(RECIPE, VARIANTS, args.variants, args.out, args.overrides)
    print_table(
        HEADER,
        [
            (
                name,
                number(m, "zeroshot.auc_mean"),
                number(m, "linear_probe.auc_mean"),
                number(m, "retrieval.text_to_image.R@5"),
                number(m, "retrieval.image_to_text.R@5"),
                number(m, "survival.c_index"),
                number(m, "wall_seconds", 0),
            )
            for name, m in rows
        ],
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
