"""Fingerprint everything the report structurer hands a run: silver finding vectors and sentence statements.

    python benchmarks/structurer_outputs.py RECIPE [--set key=value ...]

Prints the number of records and a SHA-1 of the recipe's silver vectors (``Domain.findings``) and of every
record's per-sentence finding statements (what CT's alignment sampler trains on). Run it before and after a
change to the structurer or a vocabulary: the same fingerprint means the change cannot move that recipe's run,
so its metrics need not be re-measured; a different one means they must be.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from pathlib import Path

import numpy as np

from domainclip.config import load_recipe
from domainclip.pipeline.data import load_records
from domainclip.registry import get_domain
from domainclip.reports.findings import recipe_vocabulary
from domainclip.reports.sampling import sentence_statements


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    recipe = load_recipe(args.recipe, args.overrides)
    domain = get_domain(recipe.domain)
    records, _ = load_records(recipe, check=False)
    silver = domain.findings(recipe, records).silver
    vocab, keep = recipe_vocabulary(recipe, domain.default_vocabulary())
    statements = [
        [[(text, np.nan_to_num(values, nan=-1).tolist()) for text, values in sentence] for sentence in record]
        for record in sentence_statements(records, vocab, keep)
    ]
    blob = json.dumps([np.nan_to_num(silver, nan=-1).tolist(), statements])
    print(f"{len(records)} records, structurer outputs {hashlib.sha1(blob.encode()).hexdigest()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
