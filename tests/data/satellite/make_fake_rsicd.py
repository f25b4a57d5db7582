"""Tiny fake satellite datasets in the formats users have, for one-step runs of every satellite recipe.

* :func:`make_fake_rsicd`: the Karpathy caption format of RSICD / RSITMD (``dataset_rsicd.json`` and the images in
  ``RSICD_images/`` beside it): five captions per image, ``train`` / ``val`` / ``test`` splits. ``bands="rgb"``
  writes RGB JPEGs as RSICD ships them; ``bands="sentinel2"`` writes 12-band uint16 GeoTIFFs with Sentinel-2 L2A
  band descriptions (someone's own Sentinel-2 caption data in the same layout).
* :func:`make_fake_eurosat_ms`: EuroSAT-MS class folders ``<Class>/<Class>_<n>.tif``, 64 x 64, 13 bands uint16, no
  band descriptions, in the order the dataset stores them (B8A last, ``data_cards/eurosat_ms.md``).

Each image is drawn from its scene's colour (RGB) or spectrum (Sentinel-2) plus noise, and its captions name
the scene, so a model can learn something and the evaluation has real signal to score. Run it directly to write
both trees: ``python make_fake_rsicd.py OUT``.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

L1C_BANDS = ("B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12")
L2A_BANDS = tuple(b for b in L1C_BANDS if b != "B10")

# scene -> (RGB colour, a rough surface reflectance per L1C band scaled by 10000, captions naming it)
SCENES: dict[str, tuple[tuple[int, int, int], tuple[int, ...], tuple[str, ...]]] = {
    "forest": (
        (40, 90, 40),
        (300, 250, 450, 300, 900, 2200, 2700, 3000, 3100, 3000, 20, 1500, 700),
        (
            "many green trees form a dense forest .",
            "a forest with a small road through it .",
            "dark green trees cover the whole area .",
            "it is a piece of forest .",
            "the woods are thick and green .",
        ),
    ),
    "sea": (
        (30, 70, 140),
        (1200, 900, 700, 400, 300, 250, 220, 200, 180, 150, 10, 80, 50),
        (
            "the sea is blue with waves .",
            "a large area of sea water .",
            "blue ocean covers the picture .",
            "the sea is calm and dark blue .",
            "there is only sea water here .",
        ),
    ),
    "desert": (
        (200, 170, 120),
        (1800, 2000, 2600, 3200, 3500, 3700, 3800, 3900, 4000, 3500, 40, 4500, 4000),
        (
            "a desert with yellow sand dunes .",
            "the desert is bare and dry .",
            "sand dunes stretch across the desert .",
            "it is a yellow desert with no plants .",
            "many dunes are in the desert .",
        ),
    ),
    "buildings": (
        (130, 130, 135),
        (1300, 1200, 1300, 1400, 1600, 1800, 1900, 2000, 2100, 1800, 30, 2500, 2200),
        (
            "many buildings are near a road .",
            "a dense residential area with houses .",
            "gray buildings and some roads .",
            "houses are arranged in rows .",
            "many buildings and some green trees .",
        ),
    ),
}
EUROSAT_CLASSES = {"Forest": "forest", "SeaLake": "sea", "Industrial": "buildings", "HerbaceousVegetation": "forest"}


@dataclass(frozen=True)
class FakeRSICD:
    root: Path
    caption_file: Path
    images: dict[str, str]  # file name -> split ("train" / "val" / "test")
    bands: tuple[str, ...]


def _rgb(rng: np.random.Generator, scene: str, size: int) -> np.ndarray:
    colour = np.array(SCENES[scene][0], dtype=np.float32)
    pixels = colour + rng.normal(0, 18, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _spectrum(rng: np.random.Generator, scene: str, bands: tuple[str, ...], size: int) -> np.ndarray:
    spectrum = np.array([SCENES[scene][1][L1C_BANDS.index(b)] for b in bands], dtype=np.float32)
    pixels = spectrum[:, None, None] * rng.uniform(0.8, 1.2, (len(bands), size, size))
    return np.clip(pixels, 1, 10000).astype(np.uint16)


def _write_geotiff(path: Path, pixels: np.ndarray, descriptions: tuple[str, ...] | None) -> None:
    import rasterio

    count, height, width = pixels.shape
    profile = {"driver": "GTiff", "count": count, "height": height, "width": width, "dtype": "uint16"}
    transform = rasterio.Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4600000.0)  # 10 m pixels in UTM 33N
    with rasterio.open(path, "w", crs="EPSG:32633", transform=transform, **profile) as dst:
        dst.write(pixels)
        for k, name in enumerate(descriptions or (), start=1):
            dst.set_band_description(k, name)


def _entry(imgid: int, name: str, split: str, captions: tuple[str, ...]) -> dict:
    sentences = [
        {"raw": c, "tokens": c.rstrip(" .").split(), "imgid": imgid, "sentid": 5 * imgid + k}
        for k, c in enumerate(captions)
    ]
    return {
        "filename": name,
        "imgid": imgid,
        "split": split,
        "sentences": sentences,
        "sentids": [s["sentid"] for s in sentences],
    }


def make_fake_rsicd(
    root: Path, per_split: tuple[int, int, int] = (12, 4, 4), bands: str = "rgb", size: int = 32, seed: int = 0
) -> FakeRSICD:
    """Write a Karpathy-format caption set under ``root``; ``per_split`` images in train, val, test (scenes in turn)."""
    if bands not in ("rgb", "sentinel2"):
        raise ValueError(f"bands must be 'rgb' or 'sentinel2', not {bands!r}")
    from PIL import Image

    rng = np.random.default_rng(seed)
    folder = Path(root) / "RSICD_images"
    folder.mkdir(parents=True, exist_ok=True)
    scenes = list(SCENES)
    entries, images = [], {}
    splits = [s for s, n in zip(("train", "val", "test"), per_split) for _ in range(n)]
    for imgid, split in enumerate(splits):
        scene = scenes[imgid % len(scenes)]
        if bands == "rgb":
            name = f"{scene}_{imgid + 1}.jpg"
            Image.fromarray(_rgb(rng, scene, size)).save(folder / name, quality=90)
        else:
            name = f"{scene}_{imgid + 1}.tif"
            _write_geotiff(folder / name, _spectrum(rng, scene, L2A_BANDS, size), L2A_BANDS)
        entries.append(_entry(imgid, name, split, SCENES[scene][2]))
        images[name] = split
    caption_file = Path(root) / "dataset_rsicd.json"
    caption_file.write_text(json.dumps({"images": entries, "dataset": "rsicd"}), encoding="utf-8")
    return FakeRSICD(Path(root), caption_file, images, ("red", "green", "blue") if bands == "rgb" else L2A_BANDS)


def make_fake_eurosat_ms(root: Path, per_class: int = 5, seed: int = 0) -> Path:
    """Write EuroSAT-MS class folders under ``root``: 64 x 64, 13 bands uint16 in EuroSAT-MS's order, no
    descriptions."""
    from domainclip.domains.satellite.layouts import EUROSAT_MS_BANDS

    rng = np.random.default_rng(seed + 1)
    for folder, scene in EUROSAT_CLASSES.items():
        (Path(root) / folder).mkdir(parents=True, exist_ok=True)
        for n in range(1, per_class + 1):
            _write_geotiff(Path(root) / folder / f"{folder}_{n}.tif", _spectrum(rng, scene, EUROSAT_MS_BANDS, 64), None)
    return Path(root)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    print(make_fake_rsicd(out / "rsicd").root, make_fake_rsicd(out / "rsicd-s2", bands="sentinel2").root)
    print(make_fake_eurosat_ms(out / "EuroSAT_MS"))
