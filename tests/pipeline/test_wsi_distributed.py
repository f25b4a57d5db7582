"""The WSI quickstart on two processes (``domainclip run --nproc 2``: torchrun, gloo, CPU): the extraction stage
splits the slides between the ranks, both ranks freeze the same synchronised tile encoder (so every feature file
lands in one store, under one weights digest), and rank 0 evaluates on files the other rank wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conftest import RECIPES
from overrides import tiny_overrides

from domainclip.domains.wsi.feature_files import features_complete

TIMEOUT_S = 420


def test_two_ranks_extract_disjoint_shares_into_one_feature_store(request, wsi_demo_dir: Path, tmp_path: Path) -> None:
    cache, run = tmp_path / "cache", tmp_path / "run"
    overrides = [
        *tiny_overrides("wsi", "demo", request.getfixturevalue),
        f"data.cache_dir={cache}",
        f"output.dir={run}",
    ]
    sets = [arg for override in overrides for arg in ("--set", override)]
    command = [sys.executable, "-m", "domainclip.cli.main", "run", str(RECIPES / "wsi" / "quickstart.yaml"), *sets]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [*command, "--nproc", "2"], capture_output=True, text=True, timeout=TIMEOUT_S, env=env, check=False
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    shares = [json.loads((run / "logs" / f"extract.rank{rank}.json").read_text()) for rank in (0, 1)]
    assert [s["world_size"] for s in shares] == [2, 2] and [s["rank"] for s in shares] == [0, 1]
    first, second = (set(s["records"]) for s in shares)
    assert first.isdisjoint(second) and len(first) == len(second) == 12, "24 slides, 12 a rank, none twice"

    stores = {path.parent for path in cache.rglob("*.h5") if path.parent.name.startswith("features_")}
    assert len(stores) == 1, f"the ranks froze different tile encoders: {sorted(map(str, stores))}"
    files = sorted(next(iter(stores)).glob("*.h5"))
    slide_ids = {f.name.split(".")[0] for f in files}  # TCGA: a slide's id is its file name up to the first "."
    assert slide_ids == first | second and all(features_complete(f) for f in files)

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["evaluate.n"] > 0 and "zeroshot.auc_mean" in metrics and "retrieval.mean_recall" in metrics
