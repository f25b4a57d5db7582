"""Synthetic Sentinel-2-like demo data: captioned 12-band chips and a EuroSAT-like 13-band class-folder set.

Why synthetic: no dataset downloads (the machines reach PyPI only). What makes it a fair check of the recipe is
that nothing is handed to the model: a scene is a map of land-cover classes (fields, forest, a river, roads,
houses, ...) drawn with noise and texture, each class given a plausible Sentinel-2 reflectance spectrum
(vegetation's red edge and NIR plateau, water's absorption past green, built-up and bare soil rising into the
SWIR, clouds and snow bright); the captions are written by templates from that map, five per chip, with synonyms,
quantities and an occasional negation, as people write RSICD captions. Attribute truth and two region indicators
come from the same map, so they can be scored against what the pixels hold.

Layout under ``out`` (a generic satellite manifest, one row per caption)::

    chips/<id>.tif          12-band uint16 GeoTIFF (Sentinel-2 L2A bands, no B10), band descriptions, UTM CRS,
                            10 m pixels, nodata 0 (a border of nodata on some chips)
    manifest.csv            id, patient_id, image, caption, scene, split, <attribute 0/1>...,
                            population_density, vegetation_index
    eurosat/<Class>/<Class>_<n>.tif   13-band uint16, no band descriptions (EuroSAT-MS's order: B8A last), 64 x 64
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domainclip.domains.satellite.layouts import EUROSAT_CLASS_NAMES, EUROSAT_MS_BANDS
from domainclip.domains.satellite.readers import SENTINEL2_13
from domainclip.progress import track

DEMO_VERSION = 3
SIZE = 64
L2A_BANDS = tuple(b for b in SENTINEL2_13 if b != "B10")

# Reflectance x 10000 per band, in SENTINEL2_13 order (B01 B02 B03 B04 B05 B06 B07 B08 B8A B09 B10 B11 B12).
SPECTRA: dict[str, tuple[int, ...]] = {
    "water": (1100, 950, 800, 450, 320, 260, 230, 200, 180, 90, 10, 80, 50),
    "river": (1150, 1000, 900, 600, 450, 330, 280, 250, 220, 110, 10, 100, 60),  # sediment-laden
    "sea": (1000, 800, 560, 240, 170, 140, 120, 100, 90, 50, 5, 40, 25),
    "forest": (300, 330, 520, 280, 780, 2300, 2900, 3100, 3200, 1000, 15, 1400, 600),
    "meadow": (420, 520, 830, 640, 1250, 2300, 2700, 2900, 3000, 1000, 15, 2100, 1200),
    "crop": (350, 430, 950, 450, 1400, 3000, 3600, 3900, 4000, 1300, 15, 2000, 900),
    "soil": (900, 1100, 1400, 1800, 2000, 2200, 2300, 2400, 2500, 900, 20, 3200, 2700),
    "buildings": (1300, 1450, 1550, 1650, 1750, 1850, 1950, 2050, 2100, 700, 20, 2500, 2200),
    "industrial": (1900, 2150, 2350, 2450, 2550, 2600, 2650, 2700, 2700, 900, 25, 3000, 2600),
    "road": (850, 900, 950, 1000, 1050, 1100, 1150, 1200, 1200, 450, 15, 1450, 1250),
    "beach": (1800, 2200, 2700, 3100, 3300, 3400, 3500, 3600, 3650, 1300, 25, 3900, 3300),
    "cloud": (6000, 6200, 6300, 6400, 6500, 6500, 6600, 6600, 6600, 3000, 400, 5000, 3500),
    "snow": (8000, 8200, 8300, 8000, 7800, 7500, 7300, 7000, 6800, 3000, 50, 600, 400),
}
COVERS = tuple(SPECTRA)

# EuroSAT's ten classes: folder name and the words a caption uses for the scene.
SCENES: dict[str, tuple[str, ...]] = {
    "AnnualCrop": ("annual crop", "farmland with annual crop fields", "cultivated crop fields"),
    "Forest": ("forest", "a dense forest", "woodland"),
    "HerbaceousVegetation": ("herbaceous vegetation", "grassland with herbaceous vegetation and bare soil"),
    "Highway": ("highway", "a highway crossing the fields", "a wide highway"),
    "Industrial": ("industrial area", "an industrial zone with factories", "industrial buildings"),
    "Pasture": ("pasture", "a green pasture", "grassland used as pasture"),
    "PermanentCrop": ("permanent crop", "orchards of permanent crop", "rows of permanent crop on bare soil"),
    "Residential": ("residential area", "a residential area with many houses", "dense residential buildings"),
    "River": ("river", "a river winding through the land", "a river with green banks"),
    "SeaLake": ("sea or lake", "the sea near the coast", "a lake"),
}
SCENE_CLASS = EUROSAT_CLASS_NAMES  # prompt names that differ from the folder's split CamelCase

# Attributes the demo knows the truth of (names of the satellite vocabulary), and the covers that make each.
ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "water": ("water",),
    "river": ("river",),
    "sea": ("sea",),
    "beach": ("beach",),
    "forest": ("forest",),
    "meadow": ("meadow",),
    "farmland": ("crop",),
    "bare land": ("soil",),
    "buildings": ("buildings",),
    "industrial": ("industrial",),
    "road": ("road",),
    "bridge": (),
    "clouds": ("cloud",),
    "snow": ("snow",),
}
# How captions name each attribute; the first is the vocabulary's prompt term, the others synonyms it reads.
PHRASES: dict[str, tuple[str, ...]] = {
    "water": ("water", "a small lake", "a pond", "a body of water"),
    "river": ("a river", "a winding river", "a narrow stream"),
    "sea": ("the sea", "the ocean", "open sea"),
    "beach": ("a beach", "a sandy beach", "a long coastline"),
    "forest": ("forest", "dense woods", "a forest"),
    "meadow": ("meadow", "green meadows", "grassland", "grass"),
    "farmland": ("farmland", "crop fields", "cultivated fields"),
    "bare land": ("bare land", "bare soil", "barren ground"),
    "buildings": ("buildings", "many buildings", "some houses", "a few buildings"),
    "industrial": ("industrial area", "factories", "an industrial zone", "warehouses"),
    "road": ("roads", "a road", "a highway", "a street"),
    "bridge": ("a bridge", "a bridge over the river"),
    "clouds": ("clouds", "some clouds", "a patch of cloud"),
    "snow": ("snow", "a snowfield", "snow-covered ground"),
}
NEGATIONS = {
    "buildings": ("there are no buildings", "no houses can be seen", "without buildings"),
    "road": ("there is no road", "no roads can be seen", "without roads"),
    "river": ("there is no river", "no river runs through it", "without a river"),
    "water": ("there is no lake", "no water can be seen", "without water"),
    "forest": ("there is no forest", "no woods can be seen", "without forest"),
    "farmland": ("there is no farmland", "no crop fields can be seen", "without farmland"),
    "meadow": ("there is no meadow", "no grass can be seen", "without meadow"),
}
CAPTION_TEMPLATES = (
    "a satellite image of {scene} with {things}.",
    "{scene} with {things}.",
    "there are {things} in this area of {scene}.",
    "this is {scene}; {things} can be seen.",
    "an aerial view of {scene}, {things} nearby.",
    "a satellite image of {things}.",
    "an aerial photo with {things}.",
)
MIN_COVER = 0.02  # an attribute is present when its cover fills at least this fraction of the chip


@dataclass(frozen=True)
class Scene:
    """One drawn chip: reflectances (13, H, W), the cover map, the scene class and what is in it."""

    reflectance: np.ndarray
    covers: np.ndarray
    scene: str
    present: dict[str, bool]


def _blobs(rng: np.random.Generator, count: int, radius: tuple[float, float]) -> np.ndarray:
    """A boolean map of ``count`` soft round blobs."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    out = np.zeros((SIZE, SIZE), dtype=bool)
    for _ in range(count):
        cy, cx = rng.uniform(0, SIZE, 2)
        r = rng.uniform(*radius)
        wobble = 1 + 0.25 * np.sin(np.arctan2(yy - cy, xx - cx) * rng.integers(2, 5) + rng.uniform(0, 6))
        out |= (yy - cy) ** 2 + (xx - cx) ** 2 < (r * wobble) ** 2
    return out


def _line(rng: np.random.Generator, width: float, meander: float) -> np.ndarray:
    """A band crossing the chip (a road when straight, a river when it meanders)."""
    yy, xx = np.mgrid[:SIZE, :SIZE].astype(float)
    angle = rng.uniform(0, np.pi)
    offset = rng.uniform(-SIZE / 4, SIZE / 4)
    u = (xx - SIZE / 2) * np.cos(angle) + (yy - SIZE / 2) * np.sin(angle)
    v = -(xx - SIZE / 2) * np.sin(angle) + (yy - SIZE / 2) * np.cos(angle)
    centre = offset + meander * np.sin(u / rng.uniform(6, 12) + rng.uniform(0, 6))
    return np.abs(v - centre) < width / 2


def _fields(rng: np.random.Generator, covers: np.ndarray, choices: tuple[str, ...]) -> None:
    """Rectangular fields of varying crops and bare soil."""
    step = int(rng.integers(10, 20))
    for y in range(0, SIZE, step):
        for x in range(0, SIZE, int(rng.integers(12, 24))):
            covers[y : y + step, x : x + 24] = COVERS.index(choices[int(rng.integers(len(choices)))])


def _draw_scene(rng: np.random.Generator, scene: str) -> tuple[np.ndarray, set[str]]:
    """The cover map of a ``scene`` (indices into COVERS) and the extra things drawn on it."""
    index = COVERS.index
    covers = np.full((SIZE, SIZE), index("meadow"), dtype=np.int64)
    extras: set[str] = set()
    if scene == "AnnualCrop":
        _fields(rng, covers, ("crop", "crop", "soil", "meadow"))
    elif scene == "Forest":
        covers[:] = index("forest")
        covers[_blobs(rng, int(rng.integers(0, 2)), (4, 8))] = index("meadow")
    elif scene == "HerbaceousVegetation":
        covers[_blobs(rng, int(rng.integers(3, 7)), (3, 8))] = index("soil")
        covers[_blobs(rng, int(rng.integers(2, 6)), (2, 4))] = index("forest")
    elif scene == "Highway":
        _fields(rng, covers, ("crop", "meadow", "meadow"))
        covers[_line(rng, rng.uniform(4, 7), 0)] = index("road")
    elif scene == "Industrial":
        covers[:] = index("soil")
        for _ in range(int(rng.integers(3, 6))):
            y, x, h, w = rng.integers(0, SIZE - 8), rng.integers(0, SIZE - 8), rng.integers(8, 22), rng.integers(8, 22)
            covers[y : y + h, x : x + w] = index("industrial")
        covers[_line(rng, 3, 0)] = index("road")
    elif scene == "Pasture":
        covers[_blobs(rng, int(rng.integers(0, 2)), (2, 4))] = index("forest")
    elif scene == "PermanentCrop":
        covers[:] = index("soil")
        period = int(rng.integers(4, 7))
        rows = (np.arange(SIZE) % period) < period // 2
        covers[:, rows] = index("crop") if rng.random() < 0.5 else index("forest")
    elif scene == "Residential":
        covers[:] = index("meadow")
        for y in range(2, SIZE - 4, 8):
            for x in range(2, SIZE - 4, 8):
                if rng.random() < 0.8:
                    covers[y : y + 5, x : x + 5] = index("buildings")
        covers[_line(rng, 2.5, 0)] = index("road")
        covers[_line(rng, 2.5, 0)] = index("road")
    elif scene == "River":
        _fields(rng, covers, ("meadow", "forest", "crop"))
        covers[_line(rng, rng.uniform(4, 8), rng.uniform(3, 8))] = index("river")
    elif scene == "SeaLake":
        covers[:] = index("sea") if rng.random() < 0.6 else index("water")
        if rng.random() < 0.5:
            yy, xx = np.mgrid[:SIZE, :SIZE]
            shore = (xx * rng.uniform(-1, 1) + yy) < rng.uniform(10, 30)
            covers[shore] = index("meadow")
            covers[shore & ((xx * rng.uniform(-1, 1) + yy) > 0)] = index("beach")
    return covers, extras


def _add_extras(rng: np.random.Generator, covers: np.ndarray, scene: str, extras: set[str]) -> None:
    """Things that appear in any scene: a river, a road (a bridge where it crosses the river), houses, a lake, a
    wood, clouds, snow; ``extras`` collects what no cover shows (the bridge)."""
    index = COVERS.index
    if scene not in ("SeaLake", "River") and rng.random() < 0.2:
        covers[_line(rng, rng.uniform(3, 6), rng.uniform(3, 8))] = index("river")
    if scene not in ("SeaLake", "Highway", "Residential", "Industrial") and rng.random() < 0.3:
        road = _line(rng, rng.uniform(2, 4), 0)
        if (covers[road] == index("river")).any():
            extras.add("bridge")
        covers[road] = index("road")
    if scene not in ("SeaLake", "Residential", "Industrial") and rng.random() < 0.2:
        for _ in range(int(rng.integers(2, 6))):
            y, x = rng.integers(0, SIZE - 5, 2)
            covers[y : y + 4, x : x + 4] = index("buildings")
    if scene not in ("SeaLake", "River") and rng.random() < 0.1:
        covers[_blobs(rng, 1, (4, 7))] = index("water")
    if scene not in ("Forest", "SeaLake") and rng.random() < 0.15:
        covers[_blobs(rng, int(rng.integers(1, 3)), (4, 9))] = index("forest")
    if rng.random() < 0.08:
        covers[_blobs(rng, int(rng.integers(1, 3)), (5, 12))] = index("cloud")
    if scene not in ("SeaLake",) and rng.random() < 0.05:
        covers[_blobs(rng, 1, (8, 16))] = index("snow")


def _reflectance(rng: np.random.Generator, covers: np.ndarray) -> np.ndarray:
    """(13, H, W) reflectance x 10000: each cover's spectrum, scaled per chip (illumination), textured per pixel."""
    table = np.array([SPECTRA[c] for c in COVERS], dtype=np.float64)  # (covers, 13)
    per_cover = table * rng.uniform(0.85, 1.15, size=(len(COVERS), 1))
    image = per_cover[covers].transpose(2, 0, 1)
    texture = 1 + 0.08 * rng.standard_normal((1, SIZE, SIZE)) + 0.03 * rng.standard_normal((13, SIZE, SIZE))
    return np.clip(image * texture * rng.uniform(0.9, 1.1), 1, 15000)


def draw(rng: np.random.Generator, scene: str) -> Scene:
    covers, extras = _draw_scene(rng, scene)
    _add_extras(rng, covers, scene, extras)
    fraction = np.bincount(covers.ravel(), minlength=len(COVERS)) / covers.size
    present = {
        name: bool(name in extras or any(fraction[COVERS.index(c)] >= MIN_COVER for c in made_of))
        for name, made_of in ATTRIBUTES.items()
    }
    return Scene(_reflectance(rng, covers), covers, scene, present)


def indicators(scene: Scene, rng: np.random.Generator) -> dict[str, float]:
    """Two region indicators from the cover map (UrbanCLIP-style targets): people per km2 and mean NDVI."""
    fraction = np.bincount(scene.covers.ravel(), minlength=len(COVERS)) / scene.covers.size
    f = dict(zip(COVERS, fraction))
    density = 8000 * f["buildings"] + 1500 * f["industrial"] + 600 * f["road"] + 50 * f["crop"] + 20
    red, nir = scene.reflectance[SENTINEL2_13.index("B04")], scene.reflectance[SENTINEL2_13.index("B08")]
    ndvi = float(((nir - red) / (nir + red)).mean())
    return {"population_density": round(float(density * rng.uniform(0.9, 1.1)), 1), "vegetation_index": round(ndvi, 4)}


def captions(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """``n`` captions: the scene in varied words, the largest thing in it and up to two more, sometimes a negation
    (people describe what dominates a view first)."""
    fraction = np.bincount(scene.covers.ravel(), minlength=len(COVERS)) / scene.covers.size
    area = {a: sum(fraction[COVERS.index(c)] for c in ATTRIBUTES[a]) for a, here in scene.present.items() if here}
    things = sorted(area, key=area.get, reverse=True)
    out = []
    for _ in range(n):
        words = SCENES[scene.scene]
        scene_text = words[int(rng.integers(len(words)))]
        chosen = things[:1] + [t for t in rng.permutation(things[1:]).tolist()][: int(rng.integers(0, 3))]
        phrases = [PHRASES[t][int(rng.integers(len(PHRASES[t])))] for t in chosen] or ["nothing else"]
        listed = phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]
        template = CAPTION_TEMPLATES[int(rng.integers(len(CAPTION_TEMPLATES)))]
        text = template.format(scene=scene_text, things=listed)
        absent = [a for a in NEGATIONS if not scene.present[a]]
        if absent and rng.random() < 0.3:
            said = NEGATIONS[absent[int(rng.integers(len(absent)))]]
            text = f"{text[:-1]}; {said[int(rng.integers(len(said)))]}."
        out.append(text)
    return out


def _write_tif(path: Path, pixels: np.ndarray, bands: tuple[str, ...] | None, rng: np.random.Generator) -> None:
    import rasterio
    from rasterio.transform import from_origin

    east, north = rng.uniform(300_000, 700_000), rng.uniform(4_800_000, 5_400_000)
    profile = {
        "driver": "GTiff",
        "width": SIZE,
        "height": SIZE,
        "count": pixels.shape[0],
        "dtype": "uint16",
        "crs": "EPSG:32632",
        "transform": from_origin(east, north, 10.0, 10.0),
        "nodata": 0,
        "compress": "deflate",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(pixels.astype(np.uint16))
        for k, band in enumerate(bands or ()):
            dst.set_band_description(k + 1, band)


def _with_nodata_border(pixels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A swath edge: the chip's pixels past a slanted line hold no data (0)."""
    yy, xx = np.mgrid[:SIZE, :SIZE]
    edge = xx + rng.uniform(-0.5, 0.5) * yy > SIZE - rng.uniform(6, 20)
    out = pixels.copy()
    out[:, edge] = 0
    return out


def write_demo(out: Path, n: int = 400, seed: int = 0, eurosat_per_class: int = 20) -> Path:
    """Write ``n`` captioned chips and the EuroSAT-like set under ``out``; return the manifest path."""
    out = Path(out)
    rng = np.random.default_rng(seed)
    classes = list(SCENES)
    attributes = list(ATTRIBUTES)
    rows = []
    for i in track(range(n), "writing satellite demo chips"):
        scene = draw(rng, classes[i % len(classes)])
        chip_id = f"chip{i:05d}"
        pixels = np.round(scene.reflectance[[SENTINEL2_13.index(b) for b in L2A_BANDS]])
        if rng.random() < 0.15:
            pixels = _with_nodata_border(pixels, rng)
        _write_tif(out / "chips" / f"{chip_id}.tif", pixels, L2A_BANDS, rng)
        turn = i // len(classes)  # the how-many-th chip of its scene: splits stratified by scene
        split = "test" if turn % 5 == 0 else "valid" if turn % 10 == 1 else "train"
        truth = {a: int(scene.present[a]) for a in attributes}
        targets = indicators(scene, rng)
        for caption in captions(scene, rng):
            rows.append(
                {
                    "id": chip_id,
                    "patient_id": chip_id,
                    "image": f"chips/{chip_id}.tif",
                    "caption": caption,
                    "scene": SCENE_CLASS.get(scene.scene, SCENES[scene.scene][0]),
                    "split": split,
                    **truth,
                    **targets,
                }
            )
    eurosat = [(folder, k) for folder in classes for k in range(eurosat_per_class)]
    for folder, k in track(eurosat, "writing the EuroSAT-like demo set"):
        scene = draw(rng, folder)
        pixels = np.round(scene.reflectance[[SENTINEL2_13.index(b) for b in EUROSAT_MS_BANDS]])
        _write_tif(out / "eurosat" / folder / f"{folder}_{k + 1}.tif", pixels, None, rng)
    manifest = out / "manifest.csv"
    tmp = manifest.with_suffix(".csv.tmp")
    with tmp.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(manifest)  # written last: a manifest present means the demo is complete
    return manifest


def ensure_demo(folder: Path, n: int, seed: int) -> Path:
    manifest = Path(folder) / "manifest.csv"
    return manifest if manifest.exists() else write_demo(folder, n, seed)
