"""From a recipe to validated records, finding vectors and the cached image dataset."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from domainclip.config.schema import Recipe
from domainclip.data.records import Record
from domainclip.domains import Domain, get_domain
from domainclip.errors import DataError, RecipeError

if TYPE_CHECKING:
    from domainclip.reports.vocabulary import Vocabulary

log = logging.getLogger(__name__)


def load_records(recipe: Recipe, check: bool = True, fill_cache: bool = False) -> tuple[list[Record], list[str]]:
    """Records of the recipe's layout and the problems found in them (empty when ``check`` is False).

    Returns only the valid records; every problem names its file/row and reason. With ``fill_cache`` the
    image check decodes each image once for both the check and the preprocessing cache (``run``), and skips
    images the cache already holds.
    """
    domain = get_domain(recipe.domain)
    layouts = domain.layouts()
    if recipe.data.layout not in layouts:
        raise RecipeError(
            f"data.layout: unknown layout {recipe.data.layout!r} for domain {recipe.domain!r}; "
            f"expected one of {sorted(layouts)}"
        )
    records = layouts[recipe.data.layout](recipe.data)
    if not check:
        return records, []
    from domainclip.data.validate import find_problems

    image_check = None
    if fill_cache:
        from domainclip.pipeline.embedding import image_dataset

        image_check = image_dataset(records, domain.build_preprocessor(recipe.preprocess), recipe.data.cache_dir).check
    found = find_problems(records, domain, image_check=image_check)
    bad = {position for position, _ in found}
    return [r for i, r in enumerate(records) if i not in bad], [line for _, line in found]


def checked_records(recipe: Recipe, run_dir: Path | None) -> list[Record]:
    """Records for a run: refuse bad data unless ``data.skip_bad_rows``, then list skipped rows in the run folder."""
    records, problems = load_records(recipe, check=True, fill_cache=True)
    if problems and not recipe.data.skip_bad_rows:
        raise DataError(
            f"{len(problems)} bad row(s) in the data of this recipe; fix them, or set data.skip_bad_rows=true "
            "to skip them",
            problems,
        )
    if problems:
        log.warning("skipping %d bad row(s)", len(problems))
        if run_dir is not None:
            (run_dir / "skipped_rows.txt").write_text("\n".join(problems) + "\n", encoding="utf-8")
    if not records:
        raise DataError("no usable records left after validation")
    return records


def split(records: list[Record], name: str) -> list[Record]:
    return [r for r in records if r.split == name]


@dataclass
class Findings:
    """Finding names and, per record, the silver vector from its report and the ground truth when known."""

    names: list[str]
    templates: list[tuple[str, str]]
    prompts: dict[str, list[str]]  # per finding, the phrases its zero-shot prompts use
    silver: np.ndarray  # (N, K) from the report structurer; used for soft labels
    truth: np.ndarray  # (N, K) ground-truth labels where the dataset has them, NaN elsewhere

    def subset(self, indices: list[int]) -> Findings:
        return Findings(self.names, self.templates, self.prompts, self.silver[indices], self.truth[indices])

    def labels_for_eval(self) -> np.ndarray:
        """Ground truth where known, silver labels (rounded) where the dataset has none."""
        fallback = np.where(np.isnan(self.silver), np.nan, (self.silver >= 0.5).astype(np.float32))
        return np.where(np.isnan(self.truth), fallback, self.truth)


def vocabulary_path(recipe: Recipe, domain: Domain) -> Path:
    return recipe.data.vocabulary or domain.default_vocabulary()


def recipe_vocabulary(recipe: Recipe) -> tuple[Vocabulary, list[int]]:
    """The recipe's findings vocabulary and the columns of ``data.findings`` in it (all, in order, if unset).

    Reports are always read with the whole vocabulary and the columns picked afterwards, so a finding's value
    does not depend on which others the recipe keeps.
    """
    from domainclip.reports.vocabulary import Vocabulary

    path = vocabulary_path(recipe, get_domain(recipe.domain))
    vocab = Vocabulary.load(path)
    names = list(vocab.names)
    if recipe.data.findings:
        unknown = sorted(set(recipe.data.findings) - set(names))
        if unknown:
            raise RecipeError(f"data.findings: {unknown} not in the vocabulary {path}")
    return vocab, [names.index(n) for n in (recipe.data.findings or names)]


def build_findings(recipe: Recipe, records: list[Record]) -> Findings:
    from domainclip.reports.structurer import ReportStructurer

    vocab, keep = recipe_vocabulary(recipe)
    structurer = ReportStructurer(vocab)
    silver, _ = structurer.structure_many((r.id, r.report) for r in records)
    names = list(vocab.names)
    truth = np.full((len(records), len(names)), np.nan, dtype=np.float32)
    for i, record in enumerate(records):
        for j, name in enumerate(names):
            value = record.findings.get(name)
            if value is not None:
                truth[i, j] = value
    return Findings(
        names=[names[k] for k in keep],
        templates=[tuple(t) for t in (recipe.evaluate.templates or vocab.templates)],
        prompts={vocab.findings[k].name: vocab.findings[k].zeroshot_terms for k in keep},
        silver=silver[:, keep].astype(np.float32),
        truth=truth[:, keep],
    )
