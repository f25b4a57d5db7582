"""From a recipe to validated records and the cached image dataset, through the recipe's domain."""

from __future__ import annotations

import logging
from pathlib import Path

from domainclip.config.schema import Recipe
from domainclip.errors import DataError, RecipeError
from domainclip.labels import Findings
from domainclip.protocols import Domain
from domainclip.records import Record
from domainclip.registry import get_domain

log = logging.getLogger(__name__)


def load_records(
    recipe: Recipe, check: bool = True, fill_cache: bool = False, texts_required: bool = True
) -> tuple[list[Record], list[str]]:
    """Records of the recipe's layout and the problems found in them (only the layout's when ``check`` is False).

    Returns only the valid records; every problem names its file/row and reason. With ``fill_cache``, and when
    the domain's check decodes the image anyway (``Domain.check_fills_cache``), each image is decoded once for
    both the check and the preprocessing cache (``run``), and images the cache already holds are skipped.
    ``texts_required`` False lets a layout without any texts through (``evaluate`` on class folders).
    """
    domain = get_domain(recipe.domain)
    layouts = domain.layouts()
    if recipe.data.layout not in layouts:
        raise RecipeError(
            f"data.layout: unknown layout {recipe.data.layout!r} for domain {recipe.domain!r}; "
            f"expected one of {sorted(layouts)}"
        )
    records, layout_problems = layouts[recipe.data.layout](recipe.data)
    if not check:
        return records, list(layout_problems)
    if texts_required and records and not any(r.texts for r in records):
        raise DataError(
            f"data.layout {recipe.data.layout!r}: none of its {len(records)} records has a text, and training "
            "needs image-text pairs; to score a trained model on them: domainclip evaluate --model RUN/model "
            "--recipe RECIPE"
        )
    from domainclip.data.validate import find_problems

    image_check = None
    if fill_cache and domain.check_fills_cache:
        from domainclip.data.dataset import image_dataset

        image_check = image_dataset(records, domain.build_preprocessor(recipe.preprocess), recipe.data.cache_dir).check
    found = find_problems(
        records, domain, image_check=image_check, preprocess=recipe.preprocess, texts_required=texts_required
    )
    bad = {position for position, _ in found}
    return [r for i, r in enumerate(records) if i not in bad], [*layout_problems, *(line for _, line in found)]


def checked_records(recipe: Recipe, texts_required: bool = True) -> tuple[list[Record], list[str]]:
    """Records for a run and the bad rows skipped under ``data.skip_bad_rows`` (refused without it)."""
    records, problems = load_records(recipe, check=True, fill_cache=True, texts_required=texts_required)
    if problems and not recipe.data.skip_bad_rows:
        raise DataError(
            f"{len(problems)} bad row(s) in the data of this recipe; fix them, or set data.skip_bad_rows=true "
            "to skip them",
            problems,
        )
    if problems:
        log.warning("skipping %d bad row(s)", len(problems))
    if not records:
        raise DataError("no usable records left after validation")
    return records, problems


def write_skipped_rows(run_dir: Path, problems: list[str]) -> None:
    if problems:
        (run_dir / "skipped_rows.txt").write_text("\n".join(problems) + "\n", encoding="utf-8")


def records_findings(recipe: Recipe, records: list[Record]) -> Findings:
    """The domain's findings of ``records`` (structured from their texts, or their ground truth); none for a set
    that has neither (class folders: its tasks are the scene classes)."""
    if any(r.texts or r.findings for r in records):
        return get_domain(recipe.domain).findings(recipe, records)
    return Findings.none(records)


def vocabulary_path(recipe: Recipe, domain: Domain) -> Path:
    return recipe.data.vocabulary or domain.default_vocabulary()


def evaluation_set_records(recipe: Recipe, name: str) -> list[Record]:
    """The records of ``evaluate.datasets.<name>``, read with the recipe's data settings; a bad image is an
    error (``data.skip_bad_rows`` skips it), texts are optional (a class-folder set has none)."""
    from domainclip.data.validate import image_problem_lines

    spec = recipe.evaluate.datasets[name]
    domain = get_domain(recipe.domain)
    layouts = domain.layouts()
    if spec.layout not in layouts:
        raise RecipeError(
            f"evaluate.datasets.{name}.layout: unknown layout {spec.layout!r}; expected one of {sorted(layouts)}"
        )
    cfg = recipe.data.model_copy(update={"layout": spec.layout, "root": spec.root, "manifest": spec.manifest})
    records, problems = layouts[spec.layout](cfg)
    bad = image_problem_lines(records, domain, preprocess=recipe.preprocess)
    problems = [*problems, *bad.values()]
    if problems and not recipe.data.skip_bad_rows:
        raise DataError(f"evaluate.datasets.{name}: {len(problems)} bad row(s)", problems)
    return [r for i, r in enumerate(records) if i not in bad]
