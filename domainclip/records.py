"""The one sample description every layout produces and every stage consumes."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch


@dataclass(frozen=True)
class Record:
    """One image with its texts and whatever labels the dataset has.

    ``texts`` holds one report (CT, pathology) or several captions (satellite); the domain's text
    sampler decides which one an alignment step sees. ``findings`` holds ground-truth 0/1 labels
    of the vocabulary's findings or attributes when the dataset has them (1.0 present, 0.0
    absent; a missing key is unknown), and the report structurer supplies silver labels
    otherwise. ``label`` is a class (scene, subtype) for multi-class tasks and ``targets``
    numeric values for regression. ``report_id`` groups images that share one report (several
    reconstructions of one scan): the contrastive losses treat them as positives of each other.
    ``image_meta`` holds reader hints that a dataset keeps outside the image file (an intensity
    rescaling or a pixel size in its metadata CSV); the domain's preprocessor receives them with
    the path.
    """

    id: str
    patient_id: str
    image: Path
    texts: tuple[str, ...] = ()
    split: str = "train"
    findings: dict[str, float] = field(default_factory=dict)
    label: str | None = None
    targets: dict[str, float] = field(default_factory=dict)
    time: float | None = None
    event: int | None = None
    report_id: str | None = None
    source: str = ""  # "file:row" for error messages
    image_meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.texts, str):  # a lone report passed as a string is one text, not its characters
            object.__setattr__(self, "texts", (self.texts,))
        else:
            object.__setattr__(self, "texts", tuple(self.texts))

    @property
    def report(self) -> str:
        """All texts of the record as one (its report, when it has one)."""
        return " ".join(self.texts)

    @property
    def has_survival(self) -> bool:
        return self.time is not None and self.event is not None and not math.isnan(self.time)


def group_ids(records: Sequence[Record]) -> torch.Tensor:
    """Integer ids equal for records that share one report (several reconstructions of one scan)."""
    keys = [r.report_id or f"record:{r.id}" for r in records]
    lookup = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return torch.tensor([lookup[k] for k in keys], dtype=torch.long)


def split_indices(records: Sequence[Record], split: str) -> list[int]:
    return [i for i, r in enumerate(records) if r.split == split]
