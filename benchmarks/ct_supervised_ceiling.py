"""How much of the quickstart's findings can its image encoder learn at all? A supervised ceiling.

Trains the quickstart's ViT (same size, same data, same preprocessing) *supervised* on the
ground-truth findings of the training split (binary cross-entropy, a linear head on the
pooled features) and prints the held-out AUC per finding. Zero-shot through the text tower
cannot beat what the image tower can learn from these studies, so this bounds the quickstart's
zero-shot figure. It runs twice: with the recipe's input normalisation and without it
(``preprocess.normalize=null``: windowed values in [0, 1]), and also prints the mean pairwise
cosine of the pooled features of 32 studies at initialisation (near 1: the encoder cannot tell
the studies apart yet).

    python benchmarks/ct_supervised_ceiling.py [--steps 300] [--set key=value ...]
    python benchmarks/ct_supervised_ceiling.py --recipe recipes/ct/ct_rate_cpu.yaml --recipe-input-only \
        --set data.root=/data/ct_independent

``--recipe`` bounds another recipe's tower on its data the same way (findings whose test labels hold one class
only are left out: CT-RATE's label table has columns a dataset may never set).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score
from torch import nn

from domainclip.config.loader import load_recipe
from domainclip.data.dataset import image_dataset
from domainclip.pipeline.data import checked_records
from domainclip.pipeline.stages import build_image_encoder
from domainclip.registry import get_domain

BATCH, LR = 32, 5e-4
RECIPE = Path(__file__).resolve().parents[1] / "recipes" / "ct" / "quickstart.yaml"


def run(recipe_path: Path, overrides: list[str], steps: int) -> tuple[float, np.ndarray, list[str]]:
    recipe = load_recipe(recipe_path, overrides)
    torch.manual_seed(recipe.train.seed)
    records, _ = checked_records(recipe)
    domain = get_domain(recipe.domain)
    findings = domain.findings(recipe, records)
    dataset = image_dataset(records, domain.build_preprocessor(recipe.preprocess), recipe.data.cache_dir)
    images = torch.stack([dataset[i]["image"] for i in range(len(dataset))])
    labels = torch.from_numpy(np.nan_to_num(findings.labels_for_eval())).float()
    train = torch.tensor([i for i, r in enumerate(records) if r.split == "train"])
    test = [i for i, r in enumerate(records) if r.split == "test"]

    encoder = build_image_encoder(recipe, domain)
    with torch.no_grad():
        pooled = nn.functional.normalize(encoder(images[train[:32]]), dim=-1)
        cosine = float((pooled @ pooled.T)[~torch.eye(len(pooled), dtype=torch.bool)].mean())
    model = nn.Sequential(encoder, nn.LayerNorm(encoder.hidden_size), nn.Linear(encoder.hidden_size, labels.shape[1]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, LR, total_steps=steps, pct_start=0.1)
    for _ in range(steps):
        batch = train[torch.randint(len(train), (BATCH,))]
        loss = nn.functional.binary_cross_entropy_with_logits(model(images[batch]), labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    model.eval()
    with torch.no_grad():
        scores = torch.cat([model(images[test[i : i + BATCH]]) for i in range(0, len(test), BATCH)]).numpy()
    scored = [k for k in range(labels.shape[1]) if len(np.unique(labels[test, k].numpy())) == 2]
    aucs = np.array([roc_auc_score(labels[test, k].numpy(), scores[:, k]) for k in scored])
    return cosine, aucs, [findings.names[k] for k in scored]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    parser.add_argument("--recipe", type=Path, default=RECIPE)
    parser.add_argument("--recipe-input-only", action="store_true", help="skip the [0, 1]-input variant")
    args = parser.parse_args()
    rows = []
    variants = [("normalised (recipe)", [])]
    if not args.recipe_input_only:
        variants.append(("[0, 1] (preprocess.normalize=null)", ["preprocess.normalize=null"]))
    for name, extra in variants:
        start = time.perf_counter()
        cosine, aucs, names = run(args.recipe, [*args.overrides, *extra], args.steps)
        rows.append((name, cosine, aucs, time.perf_counter() - start))
    print(
        f"\nsupervised image tower of {args.recipe.name}, {args.steps} steps x batch {BATCH}; held-out AUC per finding"
    )
    print("| input | init pooled cosine | " + " | ".join(names) + " | mean | s |")
    print("|---" * (len(names) + 4) + "|")
    for name, cosine, aucs, seconds in rows:
        print(
            f"| {name} | {cosine:.3f} | "
            + " | ".join(f"{a:.3f}" for a in aucs)
            + f" | {aucs.mean():.3f} | {seconds:.0f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
