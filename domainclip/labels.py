"""Label vectors of a dataset: what soft targets, zero-shot and probes are computed against."""

from __future__ import annotations

from collections.abc import Sized
from dataclasses import dataclass

import numpy as np


@dataclass
class Findings:
    """Finding (or attribute) names and, per record, the silver vector from its texts and the ground truth.

    ``silver`` comes from the report structurer and feeds the soft-label targets; ``truth`` holds the
    dataset's own labels where it has them (NaN elsewhere). Evaluation prefers truth and says which it used.
    """

    names: list[str]
    templates: list[tuple[str, str]]
    prompts: dict[str, list[str]]  # per finding, the phrases its zero-shot prompts use
    silver: np.ndarray  # (N, K) from the report structurer; used for soft labels
    truth: np.ndarray  # (N, K) ground-truth labels where the dataset has them, NaN elsewhere
    # zero-shot negatives: None, the negated prompts; else every vocabulary finding's prompt terms, each finding
    # contrasted with the others (a vocabulary's ``negatives: other_findings``)
    contrast: dict[str, list[str]] | None = None

    @classmethod
    def none(cls, records: Sized) -> Findings:
        """No findings at all, for records that have neither texts nor labels of any (a class-folder set)."""
        empty = np.zeros((len(records), 0), dtype=np.float32)
        return cls([], [], {}, empty, empty.copy())

    def subset(self, indices: list[int]) -> Findings:
        return Findings(
            self.names, self.templates, self.prompts, self.silver[indices], self.truth[indices], self.contrast
        )

    def silver_labels(self) -> np.ndarray:
        """The silver vectors as 0/1 labels (a hedged finding, value >= 0.5, counts as present; NaN stays)."""
        return np.where(np.isnan(self.silver), np.nan, (self.silver >= 0.5).astype(np.float32))

    def labels_for_eval(self) -> np.ndarray:
        """Ground truth where known, silver labels (rounded) where the dataset has none."""
        return np.where(np.isnan(self.truth), self.silver_labels(), self.truth)

    def label_source(self) -> str:
        """``truth`` when every known evaluation label is ground truth, ``silver`` when none is, else ``mixed``."""
        known = ~np.isnan(self.labels_for_eval())
        from_truth = known & ~np.isnan(self.truth)
        if from_truth.sum() == known.sum():
            return "truth"
        return "silver" if not from_truth.any() else "mixed"
