"""The satellite layouts. ``rsicd``: RSICD / RSITMD / UCM-captions in the Karpathy caption format.

``data.root`` holds one ``dataset_*.json``::

    {"images": [{"filename": "airport_1.jpg", "imgid": 0, "split": "train|val|test",
                 "sentences": [{"raw": "many planes are parked ...", "tokens": [...], "imgid": 0, "sentid": 0}, ...],
                 "sentids": [...]}, ...]}

and the images in a folder beside it (RSICD: ``RSICD_images/``, RSITMD: ``images/``), found by file name. Each image
is one record whose texts are its captions in the file's order (RSICD repeats some to fill five; the retrieval
protocol counts them as given). ``val`` is the validation split. An image has no patient, so it is its own group.

``eurosat``: class folders of captionless images (:func:`eurosat_records`), for zero-shot scene classification and
probes. ``manifest``: the generic CSV, one row per caption (:func:`merge_caption_rows`).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

from domainclip.errors import DataError
from domainclip.records import Record

SPLITS = {"train": "train", "val": "valid", "test": "test"}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".tif", ".tiff"}


def caption_file(root: Path) -> Path:
    """The one ``dataset_*.json`` in ``root``; none or several is an error naming what was found."""
    found = sorted(root.glob("dataset_*.json"))
    if len(found) != 1:
        what = ", ".join(p.name for p in found) or "none"
        raise DataError(f"{root}: expected one caption file dataset_*.json (Karpathy format), found {what}")
    return found[0]


def _image_index(root: Path) -> tuple[dict[str, Path], list[str]]:
    """Every image file under ``root`` by file name, and a problem line per name found in two places."""
    paths: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file():
            paths.setdefault(path.name, []).append(path)
    problems = [
        f"{name}: {len(found)} files with this name ({', '.join(str(p.relative_to(root)) for p in found[:3])}); "
        "the caption file names images by file name only"
        for name, found in paths.items()
        if len(found) > 1
    ]
    return {name: found[0] for name, found in paths.items() if len(found) == 1}, problems


def _captions(entry: dict[str, Any]) -> list[str]:
    sentences = entry.get("sentences") or []
    return [str(s["raw"]).strip() for s in sentences if isinstance(s, dict) and str(s.get("raw") or "").strip()]


def rsicd_records(root: Path) -> tuple[list[Record], list[str]]:
    """Records of every image the caption file lists, and one problem line per bad entry (missing file, unknown
    split, no caption, a file name listed twice), so that ``data.skip_bad_rows`` can skip them."""
    path = caption_file(Path(root))
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["images"]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a Karpathy caption file (needs an 'images' list; {type(exc).__name__})") from None
    images, problems = _image_index(Path(root))
    listed = Counter(str(e.get("filename", "")) for e in entries if isinstance(e, dict))
    records: list[Record] = []
    for k, entry in enumerate(entries):
        where = f"{path.name}: images[{k}]"
        if not isinstance(entry, dict) or not entry.get("filename"):
            problems.append(f"{where}: no 'filename'")
            continue
        name = str(entry["filename"])
        where = f"{where} ({name})"
        if listed[name] > 1:
            problems.append(f"{where}: listed {listed[name]} times")
            continue
        split = SPLITS.get(str(entry.get("split", "")))
        if split is None:
            problems.append(f"{where}: split {entry.get('split')!r} is not one of {sorted(SPLITS)}")
            continue
        captions = _captions(entry)
        if not captions:
            problems.append(f"{where}: no caption ('sentences' has no 'raw' text)")
            continue
        if name not in images:
            problems.append(f"{where}: image file not found under {root}")
            continue
        stem = Path(name).stem
        records.append(
            Record(id=stem, patient_id=stem, image=images[name], texts=tuple(captions), split=split, source=where)
        )
    return records, problems


# EuroSAT-MS stores its 13 bands with B8A last, not in wavelength order as the dataset's paper lists them: found by
# comparing each band's resolution in the files (phelber/EuroSAT#7, accepted by its authors; torchgeo #2458 fixed
# by PR #2480; geo-bench #28). The files carry no band descriptions, so this order travels with each record.
EUROSAT_MS_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B09", "B10", "B11", "B12", "B8A")
# EuroSAT class folders whose split CamelCase is not how people say them ("sea lake").
EUROSAT_CLASS_NAMES = {"SeaLake": "sea or lake"}


def class_name(folder: str, aliases: dict[str, str] | None = None) -> str:
    """A class folder's name as a prompt reads it: an alias when given (``SeaLake`` -> "sea or lake",
    :data:`EUROSAT_CLASS_NAMES`), else its CamelCase split into lower-case words (``AnnualCrop`` -> "annual crop")."""
    if aliases and folder in aliases:
        return aliases[folder]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", folder).replace("_", " ").lower()


def eurosat_records(
    root: Path,
    aliases: dict[str, str] | None = None,
    fractions: tuple[float, float, float] = (0.7, 0.1, 0.2),
    seed: int = 0,
) -> tuple[list[Record], list[str]]:
    """The ``eurosat`` layout: ``root/<ClassName>/<ClassName>_<n>.tif``, captionless (evaluation and probes). Each
    image is its own group, split by ``fractions`` (train, valid, test) with ``seed``; an empty class folder is a
    problem line, a root without class folders an error."""
    from domainclip.data.splits import assign_splits

    folders = sorted(p for p in Path(root).iterdir() if p.is_dir()) if Path(root).is_dir() else []
    if not folders:
        raise DataError(f"{root}: no class folders (expected {root}/<ClassName>/<ClassName>_1.tif)")
    records: list[Record] = []
    problems: list[str] = []
    for folder in folders:
        images = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not images:
            problems.append(f"{folder.name}/: a class folder with no image")
        label = class_name(folder.name, aliases)
        for path in images:
            rid = f"{folder.name}/{path.stem}"
            records.append(Record(id=rid, patient_id=rid, image=path, label=label, source=f"{folder.name}/{path.name}"))
    return assign_splits(records, fractions, seed), problems


def merge_caption_rows(records: list[Record]) -> tuple[list[Record], list[str]]:
    """Rows of a manifest that name the same ``image`` are one image with several captions (the generic satellite
    manifest: one row per caption). The first row gives the id, split, labels and targets; a later row that
    contradicts them (another split, class, attribute value or target) is a problem line naming both rows."""
    first: dict[Path, Record] = {}
    texts: dict[Path, list[str]] = {}
    problems: list[str] = []
    for record in records:
        key = Path(record.image)
        if key not in first:
            first[key], texts[key] = record, list(record.texts)
            continue
        head = first[key]
        clash = [
            what
            for what, mine, theirs in (
                ("split", record.split, head.split),
                ("class", record.label, head.label),
                ("attributes", record.findings, head.findings),
                ("targets", record.targets, head.targets),
            )
            if mine != theirs
        ]
        if clash:
            problems.append(f"{record.source}: same image as {head.source} but another {', '.join(clash)}")
        texts[key].extend(record.texts)
    merged = [replace(head, texts=tuple(texts[key])) for key, head in first.items()]
    return merged, problems
