"""Patient-level train/val/test splits.

Splitting by image would put reconstructions or follow-up scans of one patient on both
sides of the evaluation and inflate every metric, so all splits here assign *patients*,
deterministically from a seed.
"""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

from domainclip.records import Record

SPLITS: tuple[str, str, str] = ("train", "valid", "test")
# Spellings accepted in a manifest's split column, normalised to SPLITS.
SPLIT_ALIASES = {"val": "valid", "validation": "valid"}


def split_patients(
    patient_ids: Iterable[str],
    fractions: Sequence[float] = (0.7, 0.1, 0.2),
    seed: int = 0,
    names: Sequence[str] = SPLITS,
) -> dict[str, str]:
    """Map each distinct patient id to a split name.

    Counts follow ``fractions`` by largest remainder, and every split with a positive
    fraction gets at least one patient when there are enough patients. The result
    depends only on the set of ids and the seed, not on their order.
    """
    if len(fractions) != len(names):
        raise ValueError(f"{len(fractions)} fractions for {len(names)} split names")
    weights = np.asarray(fractions, dtype=np.float64)
    if (weights < 0).any() or weights.sum() <= 0:
        raise ValueError(f"fractions must be non-negative with a positive sum, got {list(fractions)}")
    patients = sorted(set(patient_ids))
    counts = _counts(len(patients), weights / weights.sum())
    order = np.random.default_rng(seed).permutation(len(patients))
    assignment: dict[str, str] = {}
    start = 0
    for name, count in zip(names, counts):
        for index in order[start : start + count]:
            assignment[patients[index]] = name
        start += count
    return assignment


def _counts(n: int, weights: np.ndarray) -> list[int]:
    ideal = weights * n
    counts = np.floor(ideal).astype(int)
    for index in np.argsort(-(ideal - counts), kind="stable")[: n - int(counts.sum())]:
        counts[index] += 1
    if n >= int((weights > 0).sum()):  # no empty split when it can be avoided: borrow from the largest
        for index in np.flatnonzero((weights > 0) & (counts == 0)):
            counts[int(np.argmax(counts))] -= 1
            counts[index] += 1
    return [int(c) for c in counts]


def assign_splits(
    records: Sequence[Record], fractions: Sequence[float] = (0.7, 0.1, 0.2), seed: int = 0
) -> list[Record]:
    """Copies of ``records`` with ``split`` set by patient (see :func:`split_patients`)."""
    assignment = split_patients((r.patient_id for r in records), fractions, seed)
    return [dataclasses.replace(r, split=assignment[r.patient_id]) for r in records]


def carve_validation(records: Sequence[Record], fraction: float = 0.1, seed: int = 0) -> list[Record]:
    """Move a seeded ``fraction`` of the *training* patients to ``val`` (for layouts that ship train/test only)."""
    train_patients = [r.patient_id for r in records if r.split == "train"]
    assignment = split_patients(train_patients, (1.0 - fraction, fraction), seed, names=("train", "valid"))
    return [dataclasses.replace(r, split=assignment[r.patient_id]) if r.split == "train" else r for r in records]


def patients_in_several_splits(records: Iterable[Record]) -> dict[str, list[str]]:
    """Patient id -> sorted split names, for every patient that appears in more than one split."""
    splits: dict[str, set[str]] = defaultdict(set)
    for record in records:
        splits[record.patient_id].add(record.split)
    return {patient: sorted(names) for patient, names in splits.items() if len(names) > 1}
