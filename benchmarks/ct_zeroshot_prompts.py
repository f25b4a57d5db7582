"""Where zero-shot loses to the linear probe: the negative prompt, per finding, for one trained run.

For the held-out images of a run (``evaluate.split`` of its recipe, usually ``test``) it prints, per finding:

* the recipe's zero-shot AUC: positive vs negative prompt pair, templates x the finding's prompt terms
  (as in ``metrics.json``; by default the name alone);
* the same with the name and every vocabulary synonym as prompt terms (why the default is the name);
* the AUC of the positive prompt ensemble alone (images ranked by cosine to "{finding}."-style prompts);
* ``cos(P, d)`` and ``cos(N, d)``: how the positive and negative prompt embeddings point along
  ``d``, the unit difference of the mean image embedding with and without the finding. A text tower that
  reads negation puts ``N`` on the far side (negative); one that reads words as a bag puts it next to ``P``.

    python benchmarks/ct_zeroshot_prompts.py --run runs/ct-quickstart
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from domainclip.config.loader import load_recipe
from domainclip.data.dataset import image_dataset
from domainclip.heads.zeroshot import class_text_embeddings
from domainclip.models.model_dir import load_model
from domainclip.pipeline.data import checked_records, vocabulary_path
from domainclip.pipeline.embedding import embed_images
from domainclip.registry import get_domain
from domainclip.reports.findings import vocabulary_columns


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", type=Path, required=True, help="a run folder (recipe.yaml, model/)")
    args = parser.parse_args()
    recipe = load_recipe(args.run / "recipe.yaml", [])
    records, _ = checked_records(recipe)
    findings = get_domain(recipe.domain).findings(recipe, records)
    split = recipe.evaluate.split
    held_out = [i for i, r in enumerate(records) if r.split == split]
    loaded = load_model(args.run / "model")
    dataset = image_dataset(
        [records[i] for i in held_out],
        get_domain(recipe.domain).build_preprocessor(loaded.preprocess_config),
        recipe.data.cache_dir,
    )
    images = F.normalize(torch.as_tensor(embed_images(loaded, dataset, 32)).float(), dim=-1)
    labels = findings.labels_for_eval()[held_out]

    vocab, _ = vocabulary_columns(vocabulary_path(recipe, get_domain(recipe.domain)), recipe.data.findings)
    positives, negatives = [t[0] for t in findings.templates], [t[1] for t in findings.templates]

    print(f"run {args.run}, split {split}, n = {len(held_out)}")
    print(
        "| finding | zero-shot AUC (pair) | pair, name + synonyms | positive prompt alone AUC | cos(P, d) | cos(N, d) |"
    )
    print("|---|---|---|---|---|---|")
    columns: list[list[float]] = [[], [], []]
    for k, name in enumerate(findings.names):
        y = labels[:, k]
        known = ~np.isnan(y)
        if len(np.unique(y[known])) < 2:
            continue
        classes = {name: findings.prompts.get(name, [name])}
        pos = class_text_embeddings(loaded.encode_text, classes, positives)[0]
        neg = class_text_embeddings(loaded.encode_text, classes, negatives)[0]
        every_term = {name: list(vocab.finding(name).terms)}
        pos_all = class_text_embeddings(loaded.encode_text, every_term, positives)[0]
        neg_all = class_text_embeddings(loaded.encode_text, every_term, negatives)[0]
        present = torch.from_numpy(y == 1)
        direction = F.normalize(images[present].mean(0) - images[~present & torch.from_numpy(known)].mean(0), dim=0)
        row = [roc_auc_score(y[known], (images @ v).numpy()[known]) for v in (pos - neg, pos_all - neg_all, pos)]
        for column, value in zip(columns, row):
            column.append(value)
        print(
            f"| {name} | {row[0]:.3f} | {row[1]:.3f} | {row[2]:.3f} | {float(pos @ direction):+.2f} "
            f"| {float(neg @ direction):+.2f} |"
        )
    print(f"| mean | {np.mean(columns[0]):.3f} | {np.mean(columns[1]):.3f} | {np.mean(columns[2]):.3f} | | |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
