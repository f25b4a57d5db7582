"""Fake data for the toy2d test domain: tiny grayscale PNG "radiographs" with short reports (torchgeo style).

Each image is ``IMAGE_SIZE`` x ``IMAGE_SIZE`` uint8 on a smooth background of about 90 with noise, showing any of
three findings, each visible and stated (or negated) in the report:

- ``opacity``: a bright Gaussian blob (peak about 220) in one quadrant or the centre;
- ``line``: a bright horizontal bar (230), 2 pixels thick;
- ``lucency``: a dark disc (10).

Within every split the first record has no finding and the second has all three, so every split with two
records holds both classes of every finding (finite AUCs on a dataset of 24). Patients (about one in four
has a second study) are split train/valid/test about 60/20/20 by record count, never across splits.
Survival (months) is Weibull proportional hazards in the findings, with uniform censoring.

Run ``python tests/domains/toy2d/data.py OUT [--n 24] [--seed 0]`` to write a set by hand.
"""

from __future__ import annotations

import argparse
import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image

FINDINGS = ("opacity", "line", "lucency")
IMAGE_SIZE = 48
SPLIT_FRACTIONS = {"train": 0.6, "valid": 0.2, "test": 0.2}
# The first combinations of every split: none, all, then each alone and each pair.
COMBINATIONS = ((0, 0, 0), (1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0), (1, 0, 1), (0, 1, 1))
LOG_HAZARD = {"opacity": 1.0, "line": 0.6, "lucency": 0.3}
WEIBULL_SHAPE, WEIBULL_SCALE = 1.2, 24.0
CENSOR_MIN, CENSOR_MAX = 4.0, 24.0
COLUMNS = ("id", "patient_id", "image", "report", *FINDINGS, "split", "time", "event")

_POSITIVE = {
    "opacity": ("There is a bright opacity in the {where}.", "Focal opacity in the {where}."),
    "line": ("A horizontal line crosses the {where}.", "Horizontal bar in the {where}."),
    "lucency": ("There is a dark spot in the {where}.", "Lucent area in the {where}."),
}
_NEGATIVE = {
    "opacity": ("No opacity.", "No evidence of opacity."),
    "line": ("No horizontal line.", "No line."),
    "lucency": ("No lucency.", "No dark spot is seen."),
}


def _where(row: float, col: float) -> str:
    """The region of the image a pixel position lies in, as a report names it."""
    centre = IMAGE_SIZE / 2
    if abs(row - centre) < IMAGE_SIZE / 8 and abs(col - centre) < IMAGE_SIZE / 8:
        return "centre"
    return f"{'upper' if row < centre else 'lower'} {'left' if col < centre else 'right'} zone"


def _assign_splits(patients: list[int], rng: np.random.Generator) -> dict[int, str]:
    """Patient -> split, filling each split towards its share of the records (every split gets one)."""
    counts: dict[int, int] = {}
    for patient in patients:
        counts[patient] = counts.get(patient, 0) + 1
    n = len(patients)
    targets = {name: max(1, round(fraction * n)) for name, fraction in SPLIT_FRACTIONS.items() if name != "train"}
    targets["train"] = n - sum(targets.values())
    filled = dict.fromkeys(targets, 0)
    order = list(counts)
    rng.shuffle(order)
    splits = {}
    for patient in order:
        name = max(targets, key=lambda s: (targets[s] - filled[s], s == "train"))
        splits[patient] = name
        filled[name] += counts[patient]
    return splits


def _image(flags: dict[str, int], rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
    """One image showing ``flags`` and its report sentences."""
    size = IMAGE_SIZE
    rows, cols = np.mgrid[0:size, 0:size].astype(np.float32)
    tilt = rng.uniform(-10, 10, size=2)
    image = 90.0 + tilt[0] * (rows / size - 0.5) + tilt[1] * (cols / size - 0.5) + rng.normal(0, 4, (size, size))
    sentences = []
    blob = (-100.0, -100.0)  # the opacity's centre: the lucency keeps away so it never hides it
    if flags["opacity"]:
        r, c = blob = tuple(rng.uniform(10, size - 10, size=2))
        radius = rng.uniform(3.5, 5.5)
        image += 130.0 * np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * radius**2))
        sentences.append(str(rng.choice(_POSITIVE["opacity"])).format(where=_where(r, c)))
    else:
        sentences.append(str(rng.choice(_NEGATIVE["opacity"])))
    if flags["line"]:
        r = int(rng.integers(6, size - 8))
        start = int(rng.integers(4, size // 3))
        length = int(rng.integers(size // 2, size - start - 2))
        image[r : r + 2, start : start + length] = 230.0
        sentences.append(str(rng.choice(_POSITIVE["line"])).format(where=_where(r, start + length / 2)))
    else:
        sentences.append(str(rng.choice(_NEGATIVE["line"])))
    if flags["lucency"]:
        r, c = rng.uniform(8, size - 8, size=2)
        while (r - blob[0]) ** 2 + (c - blob[1]) ** 2 < 14.0**2:
            r, c = rng.uniform(8, size - 8, size=2)
        radius = rng.uniform(2.5, 4.0)
        image[(rows - r) ** 2 + (cols - c) ** 2 <= radius**2] = 10.0
        sentences.append(str(rng.choice(_POSITIVE["lucency"])).format(where=_where(r, c)))
    else:
        sentences.append(str(rng.choice(_NEGATIVE["lucency"])))
    order = rng.permutation(len(sentences))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8), [sentences[i] for i in order]


def _survival(flags: dict[str, int], rng: np.random.Generator) -> tuple[float, int]:
    eta = sum(LOG_HAZARD[name] * flags[name] for name in FINDINGS)
    event_time = WEIBULL_SCALE * (-math.log(rng.uniform(1e-6, 1.0)) * math.exp(-eta)) ** (1 / WEIBULL_SHAPE)
    censor = rng.uniform(CENSOR_MIN, CENSOR_MAX)
    return round(min(event_time, censor), 2), int(event_time <= censor)


def write_toy2d(out: Path, n: int, seed: int) -> Path:
    """Write ``n`` toy studies under ``out`` (``images/*.png`` + ``manifest.csv``); return the manifest path.

    Deterministic in ``(n, seed)``; the manifest is written last, so its presence marks a complete set.
    """
    if n < 3:
        raise ValueError(f"n={n}: toy2d needs at least 3 studies (one per split)")
    rng = np.random.default_rng(seed)
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    patients: list[int] = []
    for i in range(n):
        second_study = i > 0 and patients.count(patients[-1]) == 1 and rng.random() < 0.25
        patients.append(patients[-1] if second_study else (patients[-1] + 1 if patients else 0))
    splits = _assign_splits(patients, rng)
    seen = dict.fromkeys(SPLIT_FRACTIONS, 0)
    rows = []
    for i, patient in enumerate(patients):
        split = splits[patient]
        k = seen[split]
        seen[split] += 1
        combination = COMBINATIONS[k] if k < len(COMBINATIONS) else tuple(int(v) for v in rng.random(3) < 0.5)
        flags = dict(zip(FINDINGS, combination))
        pixels, sentences = _image(flags, rng)
        image = Path("images") / f"toy_{i:04d}.png"
        Image.fromarray(pixels).save(out / image, optimize=False)
        time, event = _survival(flags, rng)
        rows.append(
            {
                "id": f"toy_{i:04d}",
                "patient_id": f"P{patient:04d}",
                "image": image.as_posix(),
                "report": " ".join(sentences),
                **flags,
                "split": split,
                "time": time,
                "event": event,
            }
        )
    manifest = out / "manifest.csv"
    with manifest.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--n", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(write_toy2d(args.out, args.n, args.seed))


if __name__ == "__main__":
    main()
