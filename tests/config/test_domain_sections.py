"""Each domain owns its recipe sections: another domain's key is refused with exit 2, naming key and domain."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from domainclip.config import load_recipe
from domainclip.config.schema import Strict
from domainclip.errors import RecipeError
from domainclip.registry import DomainEntry, available_domains, register_domain, unregister_domain

RECIPES = Path(__file__).resolve().parents[2] / "recipes"


class BandsPreprocess(Strict):
    bands: list[str] = Field(["B02", "B03", "B04"])
    size: tuple[int, int] = (32, 32)


SECTIONS = {"preprocess": BandsPreprocess}


@pytest.fixture
def bands_domain():
    register_domain("bands-test", DomainEntry(plugin="unused:Unused", sections=f"{__name__}:SECTIONS"))
    yield "bands-test"
    unregister_domain("bands-test")


def test_a_key_of_another_domain_names_the_key_and_both_domains(bands_domain: str) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(RECIPES / "ct" / "quickstart.yaml", ["preprocess.bands=[B02, B03]"])
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "preprocess.bands: not a key of domain 'ct''s preprocess section" in message
    assert "it is a key of domain 'bands-test'" in message


def test_a_key_no_domain_has_is_refused_as_unknown_to_this_domain() -> None:
    with pytest.raises(RecipeError, match=r"preprocess.nonsense: not a key of domain 'ct''s preprocess section"):
        load_recipe(RECIPES / "ct" / "quickstart.yaml", ["preprocess.nonsense=1"])


def test_moved_keys_are_unknown_where_they_used_to_be() -> None:
    """Report sampling is the CT domain's own section now (text_sampling), not a key of the alignment stage."""
    with pytest.raises(RecipeError, match="stages.align.sentence_dropout: unknown key"):
        load_recipe(RECIPES / "ct" / "quickstart.yaml", ["stages.align.sentence_dropout=0.3"])
    recipe = load_recipe(RECIPES / "ct" / "quickstart.yaml", ["text_sampling.sentence_dropout=0.3"])
    assert recipe.text_sampling.sentence_dropout == 0.3


def test_domain_accepts_exactly_the_registered_domains(bands_domain: str) -> None:
    assert {"ct", "satellite", "wsi"} <= set(available_domains()) and "bands-test" in available_domains()
    for name in ("mri", "ultrasound"):
        with pytest.raises(RecipeError, match=f"domain: Value error, unknown domain '{name}'"):
            load_recipe(RECIPES / "ct" / "quickstart.yaml", [f"domain={name}"])


def test_the_recipe_model_of_a_domain_carries_its_sections(bands_domain: str, tmp_path: Path) -> None:
    path = tmp_path / "bands.yaml"
    path.write_text("domain: bands-test\npreprocess:\n  bands: [B08]\n")
    recipe = load_recipe(path)
    assert recipe.preprocess.bands == ["B08"] and recipe.preprocess.size == (32, 32)
    path.write_text("domain: bands-test\npreprocess:\n  hu_window: [-100, 100]\n")
    with pytest.raises(RecipeError, match="preprocess.hu_window: not a key of domain 'bands-test'.*domain 'ct'"):
        load_recipe(path)


def test_cli_exit_code_is_2_for_another_domains_key() -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "domainclip.cli.main",
            "validate-data",
            str(RECIPES / "ct" / "quickstart.yaml"),
            "--set",
            "preprocess.bands=[B02]",
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 2 and "preprocess.bands: not a key of domain 'ct'" in result.stderr
