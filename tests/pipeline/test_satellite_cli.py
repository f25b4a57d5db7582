"""Satellite inference through the CLI: multi-class zero-shot on class folders, embeddings with each image's CRS and
footprint (GeoParquet, safetensors metadata), plain pictures without a georeference, retrieval on those indexes.

One tiny RGB model serves every test: trained on PNG / JPEG pictures (no georeference) made from the demo chips,
then run on EuroSAT-like class folders of RGB GeoTIFFs that keep the chips' UTM georeference.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio
from conftest import RECIPES
from overrides import tiny_overrides
from PIL import Image
from rasterio.transform import from_origin
from rasterio.warp import transform_bounds
from safetensors import safe_open
from typer.testing import CliRunner

from domainclip.cli.main import app
from domainclip.errors import DataError
from domainclip.pipeline.zeroshot_classes import label_matches

CLASSES = [
    "annual crop",
    "forest",
    "herbaceous vegetation",
    "highway",
    "industrial area",
    "pasture",
    "permanent crop",
    "residential area",
    "river",
    "sea or lake",
]
FOLDER_CLASS = dict(
    zip(
        [
            "AnnualCrop",
            "Forest",
            "HerbaceousVegetation",
            "Highway",
            "Industrial",
            "Pasture",
            "PermanentCrop",
            "Residential",
            "River",
            "SeaLake",
        ],
        CLASSES,
    )
)
RGB_OF_13 = [3, 2, 1]  # B04, B03, B02 of a 13-band EuroSAT-MS file (0-based)


def invoke(*args: str):
    result = CliRunner().invoke(app, [str(a) for a in args])
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def _to_rgb8(pixels: np.ndarray) -> np.ndarray:
    return np.clip(pixels / 16.0, 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def pictures(tmp_path_factory, satellite_demo_dir: Path) -> Path:
    """The demo's chips as plain RGB pictures (PNG and JPEG, no georeference), one manifest row per caption."""
    out = tmp_path_factory.mktemp("pictures")
    frame = pd.read_csv(satellite_demo_dir / "manifest.csv")
    for k, chip in enumerate(dict.fromkeys(frame["image"])):
        with rasterio.open(satellite_demo_dir / chip) as src:
            bands = list(src.descriptions)
            rgb = _to_rgb8(src.read([bands.index(b) + 1 for b in ("B04", "B03", "B02")]))
        name = f"{Path(chip).stem}.{'png' if k % 2 else 'jpg'}"
        Image.fromarray(np.moveaxis(rgb, 0, -1)).save(out / name)
        frame.loc[frame["image"] == chip, "image"] = name
    frame[["id", "image", "caption", "scene", "split"]].to_csv(out / "manifest.csv", index=False)
    return out


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, satellite_demo_dir: Path) -> Path:
    """The demo's EuroSAT-like class folders as RGB GeoTIFFs with the chips' own CRS and transform."""
    out = tmp_path_factory.mktemp("scenes")
    for path in sorted((satellite_demo_dir / "eurosat").rglob("*.tif")):
        with rasterio.open(path) as src:
            profile = {**src.profile, "count": 3, "dtype": "uint8", "nodata": None}
            rgb = _to_rgb8(src.read([b + 1 for b in RGB_OF_13]))
        target = out / path.parent.name / path.name
        target.parent.mkdir(exist_ok=True)
        with rasterio.open(target, "w", **profile) as dst:
            dst.write(rgb)
    return out


@pytest.fixture(scope="module")
def run(tmp_path_factory, pictures: Path) -> Path:
    """A one-step RGB satellite run on the pictures; evaluation keeps only zero-shot (the rest is slow)."""
    from domainclip.config import load_recipe
    from domainclip.pipeline.run import run_recipe

    folder = tmp_path_factory.mktemp("satellite-run") / "run"
    overrides = [
        *tiny_overrides("satellite"),
        "data.layout=manifest",
        f"data.manifest={pictures / 'manifest.csv'}",
        "data.columns.texts=[caption]",
        "data.columns.label=scene",
        f"data.cache_dir={tmp_path_factory.mktemp('cache')}",
        "preprocess.bands=[red,green,blue]",
        "model.image.channel_groups=[[red,green,blue]]",
        "evaluate.datasets={}",
        "evaluate.linear_probe=false",
        "evaluate.retrieval=false",
        "evaluate.regression=false",
        "evaluate.bootstrap=0",
        f"output.dir={folder}",
    ]
    run_recipe(load_recipe(RECIPES / "satellite" / "quickstart.yaml", overrides))
    return folder


def _printed(output: str, what: str) -> float:
    return float(re.search(rf"^{what}: ([0-9.]+)", output, re.MULTILINE).group(1))


# multi-class zero-shot


def test_zeroshot_classes_on_class_folders(run: Path, scenes: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    result = invoke(
        "zeroshot", "--model", run / "model", "--folder", scenes, "--classes", ",".join(CLASSES), "--out", out
    )
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(out)
    assert list(preds.columns) == ["id", *CLASSES, "predicted"]
    assert len(preds) == len(list(scenes.rglob("*.tif")))
    probs = preds[CLASSES].to_numpy()
    assert np.allclose(probs.sum(axis=1), 1.0, atol=1e-5) and (probs >= 0).all()
    assert list(preds["predicted"]) == [CLASSES[k] for k in probs.argmax(axis=1)]
    truth = [FOLDER_CLASS[i.split("/")[0]] for i in preds["id"]]
    top1 = float(np.mean(preds["predicted"] == truth))
    assert _printed(result.output, "top-1 accuracy") == pytest.approx(top1, abs=5e-5)
    assert "balanced accuracy:" in result.output
    assert re.search(r"^recall sea or lake: [0-9.]+ \(n=3\)", result.output, re.MULTILINE)
    assert "'Industrial' is scored as 'industrial area'" in result.output  # matched by inclusion, and said so
    assert "a satellite image of {finding}." in result.output  # the recipe's evaluate.class_templates


def test_zeroshot_classes_reproduce_the_runs_evaluation(run: Path, pictures: Path, tmp_path: Path) -> None:
    """The recipe's own test split and the classes evaluation competed over give the run's zeroshot.top1."""
    scenes = sorted(pd.read_csv(pictures / "manifest.csv")["scene"].unique())
    metrics = json.loads((run / "metrics.json").read_text())
    args = ["--recipe", run / "recipe.yaml", "--split", "test", "--classes", ",".join(scenes)]
    result = invoke("zeroshot", "--model", run / "model", *args, "--out", tmp_path / "p.csv")
    assert result.exit_code == 0, result.output
    assert _printed(result.output, "top-1 accuracy") == pytest.approx(metrics["zeroshot.top1"], abs=5e-5)
    assert _printed(result.output, "balanced accuracy") == pytest.approx(
        metrics["zeroshot.balanced_accuracy"], abs=5e-5
    )


def test_zeroshot_classes_from_a_manifest_label_column(run: Path, pictures: Path, tmp_path: Path) -> None:
    frame = pd.read_csv(pictures / "manifest.csv").drop_duplicates("id").head(12)
    frame = frame.assign(patient_id=frame["id"], report=frame["caption"], label=frame["scene"])
    manifest = tmp_path / "m.csv"
    frame[["id", "patient_id", "image", "report", "label"]].assign(image=[pictures / p for p in frame["image"]]).to_csv(
        manifest, index=False
    )
    out = tmp_path / "p.csv"
    classes = ",".join(sorted(frame["scene"].unique()))
    result = invoke("zeroshot", "--model", run / "model", "--manifest", manifest, "--classes", classes, "--out", out)
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(out)
    top1 = float(np.mean(preds["predicted"].to_numpy() == frame["scene"].to_numpy()))
    assert _printed(result.output, "top-1 accuracy") == pytest.approx(top1, abs=5e-5)


def test_a_folder_matching_no_class_is_named_and_left_out(run: Path, scenes: Path, tmp_path: Path) -> None:
    classes = [c for c in CLASSES if c != "river"]
    out = tmp_path / "p.csv"
    result = invoke(
        "zeroshot", "--model", run / "model", "--folder", scenes, "--classes", ",".join(classes), "--out", out
    )
    assert result.exit_code == 0, result.output
    assert "'River' matches none of --classes: its 3 image(s) are scored but left out" in result.output
    assert len(pd.read_csv(out)) == 30 and "top-1 accuracy: " in result.output and "(n=27)" in result.output
    with pytest.raises(DataError, match="no image's folder or label matches any of --classes 'cloud', 'snow'"):
        invoke("zeroshot", "--model", run / "model", "--folder", scenes, "--classes", "cloud,snow", "--out", out)


def test_findings_or_classes_exactly_one(run: Path, scenes: Path, tmp_path: Path) -> None:
    base = ["zeroshot", "--model", run / "model", "--folder", scenes, "--out", tmp_path / "p.csv"]
    for extra in ([], ["--findings", "water", "--classes", "forest,river"]):
        with pytest.raises(DataError, match="give exactly one of --findings .* or --classes"):
            invoke(*base, *extra)
    with pytest.raises(DataError, match="--classes: give at least two class names"):
        invoke(*base, "--classes", "forest")
    assert not (tmp_path / "p.csv").exists()


def test_class_names_match_folders_by_their_words() -> None:
    matches = label_matches(["SeaLake", "AnnualCrop", "Industrial", "Crop", "sea lake", "Snow"], CLASSES)
    assert matches == {"SeaLake": 9, "AnnualCrop": 0, "Industrial": 4, "sea lake": 9}  # "Crop" is two classes
    with pytest.raises(DataError, match="'sea lake' and 'sea or lake' name the same class"):
        label_matches([], ["sea lake", "sea or lake"])


# embeddings with their georeference


def _embed(run: Path, images: Path, out: Path, *extra: str):
    result = invoke("embed", "--model", run / "model", "--images", images, "--out", out, *extra)
    assert result.exit_code == 0, result.output
    return result


def test_embed_writes_geoparquet_that_matches_rasterio(run: Path, scenes: Path, tmp_path: Path) -> None:
    geopandas = pytest.importorskip("geopandas")
    out = tmp_path / "index.parquet"
    result = _embed(run, scenes, out)
    assert "30 of 30 images are georeferenced" in result.output
    frame = geopandas.read_parquet(out)  # fails on plain Parquet: the file carries GeoParquet metadata
    assert len(frame) == 30 and len(frame["image_embedding"].iloc[0]) == 16
    for row in frame.itertuples():
        with rasterio.open(scenes / f"{row.id}.tif") as src:
            assert frame.crs == src.crs.to_wkt() and row.crs == src.crs.to_string()
            assert row.geometry.bounds == pytest.approx(tuple(src.bounds), abs=1e-6)
            lonlat = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
        assert (row.lon_min, row.lat_min, row.lon_max, row.lat_max) == pytest.approx(lonlat, abs=1e-7)


def test_several_crs_put_the_geometry_in_wgs84(run: Path, scenes: Path, tmp_path: Path) -> None:
    geopandas = pytest.importorskip("geopandas")
    folder = tmp_path / "mixed"
    folder.mkdir()
    sources = sorted(scenes.rglob("*.tif"))[:3]
    for path in sources:
        (folder / path.name).symlink_to(path)
    with rasterio.open(sources[0]) as src:
        profile = {**src.profile, "crs": "EPSG:32633", "transform": from_origin(500000.0, 5200000.0, 10.0, 10.0)}
        with rasterio.open(folder / "zone33.tif", "w", **profile) as dst:
            dst.write(src.read())
    out = tmp_path / "mixed.parquet"
    _embed(run, folder, out)
    frame = geopandas.read_parquet(out).set_index("id")
    assert frame.crs == "EPSG:4326"
    assert sorted(set(frame["crs"])) == ["EPSG:32632", "EPSG:32633"]  # each native CRS is kept beside it
    for name in frame.index:
        with rasterio.open(folder / f"{name}.tif") as src:
            lonlat = transform_bounds(src.crs, "EPSG:4326", *src.bounds)
            native = frame.loc[name, "footprint_wkt"]
            assert native.startswith(f"POLYGON (({src.bounds.left!r} {src.bounds.top!r}")
        assert frame.loc[name].geometry.bounds == pytest.approx(lonlat, abs=1e-7)


def test_embed_of_plain_pictures_has_no_georeference(run: Path, pictures: Path, tmp_path: Path) -> None:
    folder = tmp_path / "plain"
    folder.mkdir()
    for path in [*sorted(pictures.glob("*.png"))[:2], *sorted(pictures.glob("*.jpg"))[:2]]:
        (folder / path.name).symlink_to(path)
    result = _embed(run, folder, tmp_path / "plain.parquet")
    assert "0 of 4 images are georeferenced" in result.output
    frame = pd.read_parquet(tmp_path / "plain.parquet")
    assert frame["crs"].isna().all() and frame["footprint_wkt"].isna().all() and frame["lon_min"].isna().all()
    _embed(run, folder, tmp_path / "plain.safetensors")
    with safe_open(str(tmp_path / "plain.safetensors"), framework="pt") as fh:
        assert json.loads(fh.metadata()["georeference"]) == [None] * 4
        assert fh.get_tensor("image").shape == (4, 16)


def test_without_geopandas_the_footprints_are_wkt(
    run: Path, scenes: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "geopandas", None)  # import geopandas now raises ImportError
    out = tmp_path / "plain.parquet"
    result = _embed(run, scenes / "River", out)
    assert "geopandas is not installed: wrote plain Parquet" in result.output
    import pyarrow.parquet as pq

    assert b"geo" not in (pq.read_schema(out).metadata or {})
    frame = pd.read_parquet(out)
    with rasterio.open(scenes / "River" / "River_1.tif") as src:
        row = frame.set_index("id").loc["River_1"]
        assert row["crs"] == src.crs.to_string() and row["footprint_wkt"].startswith("POLYGON ((")


# retrieval on a satellite index


def test_retrieve_on_parquet_and_safetensors_indexes(run: Path, scenes: Path, tmp_path: Path) -> None:
    listings = []
    for name in ("index.parquet", "index.safetensors"):
        _embed(run, scenes, tmp_path / name)
        result = invoke("retrieve", "--model", run / "model", "--index", tmp_path / name, "--query", "a river", "-k", 4)
        assert result.exit_code == 0, result.output
        lines = [line.split("\t") for line in result.output.strip().splitlines()]
        assert [line[0] for line in lines] == ["1", "2", "3", "4"]
        assert all(line[1].split("/")[0] in FOLDER_CLASS for line in lines)
        scores = [float(line[2]) for line in lines]
        assert scores == sorted(scores, reverse=True)
        assert all(re.fullmatch(r"lon/lat (-?[0-9.]+,){3}-?[0-9.]+", line[3]) for line in lines)
        listings.append(lines)
    assert listings[0] == listings[1]  # the same index in either file format
