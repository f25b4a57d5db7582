"""Shared fixtures: tiny model overrides and tiny datasets for one-step recipe runs (torchgeo style)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
sys.path.insert(0, str(REPO / "tests" / "domains" / "ct"))

sys.path.insert(0, str(REPO / "tests" / "conf"))
from overrides import tiny_overrides

# Shrinks any CT recipe to a model that runs one step in about a second on one CPU thread (tests/conf/ct.yaml).
TINY = tiny_overrides("ct")


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small demo dataset shared by the pipeline tests (written once per session)."""
    from domainclip.domains.ct.demo import write_demo

    out = tmp_path_factory.mktemp("demo") / "ct"
    write_demo(out, n=20, seed=3)
    return out


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def fake_ct_rate(tmp_path_factory) -> Path:
    from make_fake_ct_rate import make_fake_ct_rate

    root = tmp_path_factory.mktemp("ct_rate")
    make_fake_ct_rate(root)
    return root


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, demo_dir: Path, cache_dir: Path) -> Path:
    """A tiny quickstart run folder (model directory, metrics) shared by the inference tests."""
    from domainclip.config import load_recipe
    from domainclip.pipeline.run import run_recipe

    run = tmp_path_factory.mktemp("trained") / "run"
    recipe = load_recipe(
        RECIPES / "ct" / "quickstart.yaml",
        TINY
        + [
            f"data.demo.dir={demo_dir}",
            "data.demo.n=20",
            "data.demo.seed=3",
            f"data.cache_dir={cache_dir}",
            f"output.dir={run}",
        ],
    )
    run_recipe(recipe)
    return run
