"""Recipe loading: inheritance, overrides, and clear errors (exit code 2) for bad recipes."""

from __future__ import annotations

from pathlib import Path

import pytest

from domainclip.config import load_recipe
from domainclip.config.bundled import RECIPES_DIR, list_bundled
from domainclip.config.loader import load_raw
from domainclip.errors import RecipeError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def base_and_child(tmp_path: Path) -> Path:
    write(tmp_path / "base.yaml", "domain: ct\nstages:\n  mae: {steps: 3, lr: 0.001}\n  align: {steps: 7}\n")
    return write(tmp_path / "child.yaml", "_base_: base.yaml\nstages:\n  mae: {steps: 5}\n")


def test_base_inheritance_merges_nested_keys(base_and_child: Path) -> None:
    recipe = load_recipe(base_and_child)
    assert recipe.stages.mae.steps == 5  # child wins
    assert recipe.stages.mae.lr == 0.001  # kept from the base
    assert recipe.stages.align.steps == 7


def test_overrides_are_yaml_typed(base_and_child: Path) -> None:
    recipe = load_recipe(
        base_and_child, ["preprocess.size=[64,64,48]", "stages.align.loss=clip", "data.skip_bad_rows=true"]
    )
    assert recipe.preprocess.size == (64, 64, 48)
    assert recipe.stages.align.loss == "clip"
    assert recipe.data.skip_bad_rows is True


def test_relative_paths_resolve_against_the_recipe_file(tmp_path: Path) -> None:
    write(tmp_path / "m.csv", "id,patient_id,image,report\n")
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub / "r.yaml", "domain: ct\ndata: {layout: manifest, manifest: ../m.csv}\n")
    assert load_recipe(sub / "r.yaml").data.manifest == (tmp_path / "m.csv").resolve()


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        (["stages.align.stepz=3"], "stages.align.stepz: unknown key"),
        (["stages.align.steps=abc"], "stages.align.steps: Input should be a valid integer"),
        (["stages.align.steps=-1"], "stages.align.steps: Input should be greater than or equal to 0"),
        (["stages.align"], "expected dotted.key=value"),
        (["stages.align.steps=[1"], "value is not valid YAML"),
        (["domain=mri"], "domain: Value error, unknown domain 'mri'; expected one of"),
        (["data.layout=manifest", "data.manifest=/nonexistent/m.csv"], "data.manifest: file not found"),
        (["data.layout=ct-rate"], "data.root: required for layout 'ct-rate'"),
        (["stages.mae.steps.x=1"], "stages.mae.steps is a value, not a section"),
    ],
)
def test_bad_overrides_name_the_key(base_and_child: Path, overrides: list[str], expected: str) -> None:
    with pytest.raises(RecipeError) as info:
        load_recipe(base_and_child, overrides)
    assert expected in str(info.value)
    assert info.value.exit_code == 2


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path) -> None:
    bad = write(tmp_path / "bad.yaml", "domain: ct\ndata:\n  layuot: demo\n")
    with pytest.raises(RecipeError) as info:
        load_recipe(bad)
    assert str(bad) in str(info.value) and "data.layuot: unknown key" in str(info.value)


def test_missing_file_and_missing_base(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe(tmp_path / "nope.yaml")
    child = write(tmp_path / "c.yaml", "_base_: missing.yaml\ndomain: ct\n")
    with pytest.raises(RecipeError, match="missing.yaml: recipe file not found"):
        load_recipe(child)


def test_inheritance_cycle_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", "_base_: b.yaml\ndomain: ct\n")
    write(tmp_path / "b.yaml", "_base_: a.yaml\n")
    with pytest.raises(RecipeError, match="inheritance cycle"):
        load_recipe(tmp_path / "a.yaml")


def test_every_bundled_recipe_validates() -> None:
    bundled = list_bundled()
    assert any(path.endswith("ct/quickstart.yaml") for path, _ in bundled)
    for path, description in bundled:
        assert description, f"{path} has no description"
        recipe_path = RECIPES_DIR.parent / path
        layout = load_raw(recipe_path).get("data", {}).get("layout", "demo")
        # a dataset recipe asks for data.root: any existing folder will do, the layout itself is not read here
        overrides = [] if layout in ("demo", "manifest") else [f"data.root={RECIPES_DIR}"]
        load_recipe(recipe_path, overrides)


def test_docs_recipe_reference_is_current() -> None:
    from domainclip.config.reference import render

    docs = (RECIPES_DIR.parent / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert docs == render(), "docs/recipes.md is stale: run python -m domainclip.config.reference > docs/recipes.md"


def test_zeroshot_templates_override_reaches_the_findings(tmp_path: Path) -> None:
    from domainclip.registry import get_domain

    recipe = load_recipe(
        RECIPES_DIR / "ct" / "quickstart.yaml",
        ['evaluate.templates=[["{finding} is present.", "{finding} is absent."]]'],
    )
    findings = get_domain("ct").findings(recipe, [])
    assert findings.templates == [("{finding} is present.", "{finding} is absent.")]
    with pytest.raises(RecipeError, match="evaluate.templates"):
        load_recipe(RECIPES_DIR / "ct" / "quickstart.yaml", ['evaluate.templates=[["only one"]]'])
