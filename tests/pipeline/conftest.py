"""Shared fixtures: tiny model overrides and tiny datasets for one-step recipe runs (torchgeo style)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fixtures import one_thread  # noqa: F401 - autouse: one torch thread per test
from overrides import tiny_overrides

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "recipes"
sys.path.insert(0, str(REPO / "tests" / "domains" / "ct"))
sys.path.insert(0, str(REPO / "tests" / "data" / "satellite"))
sys.path.insert(0, str(REPO / "tests" / "domains" / "wsi"))

# Shrinks any CT recipe to a model that runs one step in about a second on one CPU thread (tests/conf/ct.yaml).
TINY = tiny_overrides("ct")


def tiny_quickstart(demo_dir: Path, cache_dir: Path, out: Path, *extra: str):
    """The CT quickstart recipe, tiny, on the session's demo data, writing to ``out``."""
    from domainclip.config import load_recipe

    data = tiny_overrides("ct", "demo", {"demo_dir": demo_dir}.__getitem__)
    return load_recipe(
        RECIPES / "ct" / "quickstart.yaml", [*data, f"data.cache_dir={cache_dir}", f"output.dir={out}", *extra]
    )


@pytest.fixture(scope="session")
def demo_dir(tmp_path_factory) -> Path:
    """A small demo dataset shared by the pipeline tests (written once per session)."""
    from domainclip.domains.ct.demo import write_demo

    out = tmp_path_factory.mktemp("demo") / "ct"
    write_demo(out, n=20, seed=3)
    return out


@pytest.fixture(scope="session")
def satellite_demo_dir(tmp_path_factory) -> Path:
    """A small satellite demo (60 captioned chips, 3 EuroSAT-like chips per class), written once per session."""
    from domainclip.domains.satellite.demo import write_demo

    out = tmp_path_factory.mktemp("demo") / "satellite"
    write_demo(out, n=60, seed=3, eurosat_per_class=3)
    return out


@pytest.fixture(scope="session")
def wsi_demo_dir(tmp_path_factory) -> Path:
    """A small WSI demo (24 pyramidal slides in the tcga layout), written once per session."""
    from domainclip.domains.wsi.demo import write_demo

    out = tmp_path_factory.mktemp("demo") / "wsi"
    write_demo(out, n=24, seed=3)
    return out


@pytest.fixture(scope="session")
def fake_tcga(tmp_path_factory) -> Path:
    """A tiny TCGA-layout folder (tests/domains/wsi/make_fake_tcga.py), written once per session."""
    from make_fake_tcga import make_fake_tcga

    return make_fake_tcga(tmp_path_factory.mktemp("tcga"), patients=20).root


@pytest.fixture(scope="session")
def fake_rsicd(tmp_path_factory) -> Path:
    """A tiny RSICD-format caption set (Karpathy JSON, RGB JPEGs), written once per session."""
    from make_fake_rsicd import make_fake_rsicd

    return make_fake_rsicd(tmp_path_factory.mktemp("rsicd")).root


@pytest.fixture(scope="session")
def fake_eurosat_ms(tmp_path_factory) -> Path:
    """Tiny EuroSAT-MS class folders (13-band GeoTIFFs without band descriptions), written once per session."""
    from make_fake_rsicd import make_fake_eurosat_ms

    return make_fake_eurosat_ms(tmp_path_factory.mktemp("eurosat"), per_class=3)


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
    from domainclip.pipeline.run import run_recipe

    run = tmp_path_factory.mktemp("trained") / "run"
    recipe = tiny_quickstart(demo_dir, cache_dir, run)
    run_recipe(recipe)
    return run


@pytest.fixture(scope="session")
def one_step_run(request, tmp_path_factory, cache_dir: Path):
    """``one_step_run("wsi/quickstart.yaml")``: the run folder of that bundled recipe, shrunk by its domain's
    tests/conf/<domain>.yaml and run once per session on the tiny data of its layout (the recipe tests check it,
    the report browser test opens its report.html)."""
    from domainclip.config import load_recipe
    from domainclip.config.loader import load_raw
    from domainclip.pipeline.run import run_recipe

    runs: dict[str, Path] = {}

    def run(relative: str) -> Path:
        if relative not in runs:
            raw = load_raw(RECIPES / relative)
            overrides = tiny_overrides(raw["domain"], raw["data"]["layout"], request.getfixturevalue)
            if raw.get("stages", {}).get("mae", {}).get("steps") == 0:  # a recipe without stage 1 stays without it
                overrides = [o for o in overrides if not o.startswith("stages.mae.")]
            out = tmp_path_factory.mktemp(Path(relative).stem) / "run"
            run_recipe(
                load_recipe(RECIPES / relative, [*overrides, f"data.cache_dir={cache_dir}", f"output.dir={out}"])
            )
            runs[relative] = out
        return runs[relative]

    return run
