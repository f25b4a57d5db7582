"""Registers the toy2d domain for the tests in this folder, and unregisters it afterwards.

The plug-in's modules are imported as ``toy2d.domain``, ``toy2d.config`` and ``toy2d.data``: ``tests/domains`` goes
on ``sys.path`` (``toy2d`` is then a namespace package), so their names cannot collide with other test modules.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from fixtures import one_thread  # noqa: F401 - autouse: one torch thread per test

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

PLUGIN = "toy2d.domain:Toy2DDomain"
SECTIONS = "toy2d.config:SECTIONS"
RECIPE = HERE / "recipe.yaml"


@pytest.fixture(scope="module", autouse=True)
def toy2d_registered():
    """``domain: toy2d`` validates and runs while this folder's tests run."""
    from domainclip.registry import DomainEntry, register_domain, unregister_domain

    register_domain("toy2d", DomainEntry(plugin=PLUGIN, sections=SECTIONS))
    yield "toy2d"
    unregister_domain("toy2d")


@pytest.fixture(scope="module")
def toy_dir(tmp_path_factory) -> Path:
    """A toy2d data set of 24 studies shared by this folder's tests."""
    from toy2d.data import write_toy2d

    out = tmp_path_factory.mktemp("toy2d") / "data"
    write_toy2d(out, n=24, seed=0)
    return out
