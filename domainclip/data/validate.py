"""Check records before a run and report every problem at once.

Each problem is one line ``"<file>:row <n> (id=<id>): <reason>"`` so a user fixes all bad
rows in one pass. Checked: missing image, image the domain cannot use (unreadable,
truncated, corrupt: :meth:`Domain.check_image`, with the record's reader hints), empty or boilerplate-only
report ("See attached.": :mod:`domainclip.data.text_quality`),
duplicate id, and a patient in several splits. ``validate-data`` prints the list;
``run`` refuses to start with it unless ``data.skip_bad_rows`` is set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from domainclip.data.splits import patients_in_several_splits
from domainclip.data.text_quality import unusable_reason
from domainclip.progress import track
from domainclip.protocols import Domain
from domainclip.records import Record


def problem_line(record: Record, reason: str) -> str:
    return f"{record.source or 'record'} (id={record.id}): {reason}"


def validate_records(
    records: Sequence[Record], domain: Domain, max_workers: int | None = None, preprocess: Any = None
) -> list[str]:
    """All problems of ``records``, in record order (several per record when several apply)."""
    return [line for _, line in find_problems(records, domain, max_workers, preprocess=preprocess)]


def find_problems(
    records: Sequence[Record],
    domain: Domain,
    max_workers: int | None = None,
    image_check: Callable[[int], str | None] | None = None,
    preprocess: Any = None,
    texts_required: bool = True,
) -> list[tuple[int, str]]:
    """(position in ``records``, problem line) for every problem, so callers can drop exactly the bad rows.

    With ``texts_required`` False a set in which no record has a text (class folders to evaluate on) is checked
    for everything but its texts; a set with texts keeps the text rule, since a record without one would be
    left out of retrieval silently.

    Images are opened with ``max_workers`` threads (decompression releases the GIL);
    each distinct path is checked once, by ``image_check(position)`` when given (e.g.
    ``CachedDataset.check``, which caches what it decodes), else ``domain.check_image(path, image_meta,
    preprocess)`` (``preprocess``: the recipe's or model's preprocessing section, e.g. the bands it needs).
    """
    image_reasons = _check_images(records, domain, max_workers, image_check, preprocess)
    first_row: dict[str, Record] = {}
    crossing = patients_in_several_splits(records)
    check_texts = texts_required or any(r.texts for r in records)
    problems: list[tuple[int, str]] = []
    for position, record in enumerate(records):
        reasons = []
        if (reason := image_reasons.get(Path(record.image))) is not None:
            reasons.append(reason)
        if check_texts and (reason := unusable_reason(record.report)) is not None:
            reasons.append(reason)
        if record.id in first_row:
            reasons.append(f"duplicate id (first at {first_row[record.id].source})")
        else:
            first_row[record.id] = record
        if record.patient_id in crossing:
            splits = ", ".join(crossing[record.patient_id])
            reasons.append(f"patient {record.patient_id} appears in splits {splits}; a patient must stay in one split")
        problems.extend((position, problem_line(record, reason)) for reason in reasons)
    return problems


def image_problems(
    records: Sequence[Record], domain: Domain, max_workers: int | None = None, preprocess: Any = None
) -> list[str]:
    """Problem lines of the records whose image is missing or unusable, and nothing else: what inference on
    images alone needs (no text, split or id rules)."""
    return list(image_problem_lines(records, domain, max_workers, preprocess).values())


def image_problem_lines(
    records: Sequence[Record], domain: Domain, max_workers: int | None = None, preprocess: Any = None
) -> dict[int, str]:
    """:func:`image_problems` by position in ``records``."""
    reasons = _check_images(records, domain, max_workers, None, preprocess)
    return {
        i: problem_line(record, reason)
        for i, record in enumerate(records)
        if (reason := reasons.get(Path(record.image))) is not None
    }


def _check_images(
    records: Sequence[Record],
    domain: Domain,
    max_workers: int | None,
    image_check: Callable[[int], str | None] | None,
    preprocess: Any = None,
) -> dict[Path, str | None]:
    first: dict[Path, int] = {}
    for position, record in enumerate(records):
        first.setdefault(Path(record.image), position)
    missing = {p: f"image not found: {p}" for p in first if not p.exists()}
    present = [p for p in first if p not in missing]

    def check(path: Path) -> str | None:
        if image_check is not None:
            return image_check(first[path])
        return domain.check_image(path, records[first[path]].image_meta or None, preprocess)

    workers = max_workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        description = "checking images" if image_check is None else "checking and caching images"
        results = list(track(pool.map(check, present), description, total=len(present)))  # to its end line
        reasons = dict(zip(present, results, strict=True))
    return {**reasons, **missing}
