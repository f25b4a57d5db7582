"""The one sample description every layout produces and every stage consumes."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Record:
    """One image-report pair.

    ``findings`` holds ground-truth labels when the dataset has them
    (1.0 present, 0.0 absent, NaN unknown); it is empty otherwise, and the report
    structurer supplies silver labels. ``report_id`` groups images that share one
    report (several reconstructions of one scan): the contrastive losses treat
    them as positives of each other. ``image_meta`` holds reader hints that a dataset
    keeps outside the image file (CT-RATE: rescale slope/intercept and voxel spacing from
    its metadata CSV); the domain's preprocessor receives them with the path.
    """

    id: str
    patient_id: str
    image: Path
    report: str
    split: str = "train"
    findings: dict[str, float] = field(default_factory=dict)
    time: float | None = None
    event: int | None = None
    report_id: str | None = None
    source: str = ""  # "file:row" for error messages
    image_meta: dict[str, Any] = field(default_factory=dict)

    @property
    def has_survival(self) -> bool:
        return self.time is not None and self.event is not None and not math.isnan(self.time)
