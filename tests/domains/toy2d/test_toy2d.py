"""A fourth domain that lives only in the tests: the core validates, trains, evaluates and serves it by name."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from toy2d.config import Toy2DPreprocessConfig
from toy2d.data import FINDINGS, IMAGE_SIZE, write_toy2d
from toy2d.domain import Toy2DDomain

from domainclip.config import load_recipe
from domainclip.config.schema import recipe_model
from domainclip.data.augment import SpatialAugment
from domainclip.data.manifest import read_manifest
from domainclip.errors import DomainClipError, RecipeError
from domainclip.protocols import Domain
from domainclip.registry import available_domains, get_domain

RECIPE = Path(__file__).resolve().with_name("recipe.yaml")


def _files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _recipe(tmp_path: Path, *overrides: str):
    return load_recipe(
        RECIPE,
        [
            f"data.demo.dir={tmp_path / 'demo'}",
            f"data.cache_dir={tmp_path / 'cache'}",
            f"output.dir={tmp_path / 'run'}",
            *overrides,
        ],
    )


# (a) the generator


def test_generator_is_deterministic(tmp_path: Path) -> None:
    first = _files(write_toy2d(tmp_path / "a", n=24, seed=0).parent)
    again = _files(write_toy2d(tmp_path / "b", n=24, seed=0).parent)
    other = _files(write_toy2d(tmp_path / "c", n=24, seed=1).parent)
    assert first == again
    assert first["manifest.csv"] != other["manifest.csv"]
    assert len(first) == 25  # 24 images and the manifest


def test_generator_writes_what_the_manifest_says(toy_dir: Path) -> None:
    frame = pd.read_csv(toy_dir / "manifest.csv", dtype={"patient_id": str})
    assert list(frame.columns) == ["id", "patient_id", "image", "report", *FINDINGS, "split", "time", "event"]
    assert len(frame) == 24 and frame["id"].is_unique
    assert set(frame["split"]) == {"train", "valid", "test"}
    assert frame.groupby("patient_id")["split"].nunique().max() == 1  # split by patient
    assert frame.groupby("patient_id").size().max() == 2  # some patients have a second study
    assert (frame["time"] >= 0).all() and set(frame["event"]) == {0, 1}
    for split, rows in frame.groupby("split"):  # both classes of every finding in every split
        assert all(set(rows[name]) == {0, 1} for name in FINDINGS), split
    for row in frame.itertuples():
        pixels = np.asarray(Image.open(toy_dir / row.image))
        assert pixels.shape == (IMAGE_SIZE, IMAGE_SIZE) and pixels.dtype == np.uint8
        bright = row.opacity or row.line
        assert (pixels.max() > 170) == bool(bright), row.id  # a blob or a bar is bright; the background never
        assert (pixels.min() < 30) == bool(row.lucency), row.id  # the dark disc
        assert ("No opacity." in row.report or "No evidence of opacity." in row.report) != bool(row.opacity)
    records = read_manifest(toy_dir / "manifest.csv")
    assert [r.id for r in records] == list(frame["id"])
    assert all(r.image.is_file() and r.has_survival and set(r.findings) == set(FINDINGS) for r in records)


def test_generator_entry_point(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = Path(__file__).resolve().with_name("data.py")
    out = tmp_path / "cli"
    result = subprocess.run(
        [sys.executable, str(script), str(out), "--n", "6", "--seed", "2"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == str(out / "manifest.csv")
    assert len(list((out / "images").glob("*.png"))) == 6


# (b) the plug-in


def test_domain_implements_the_protocol(toy2d_registered: str) -> None:
    members = {name for name in vars(Domain) if not name.startswith("_")} | set(Domain.__annotations__)
    assert {"input_shape", "findings", "stage_dataset", "check_fills_cache"} <= members
    domain = get_domain(toy2d_registered)
    assert isinstance(domain, Toy2DDomain) and toy2d_registered in available_domains()
    for name in members:
        assert hasattr(domain, name), name
        if callable(getattr(Domain, name, None)):
            assert callable(getattr(domain, name)), name
    assert domain.name == "toy2d" and domain.stages == ("mae", "align") and domain.check_fills_cache is False
    assert set(domain.layouts()) == {"manifest", "demo"}


def test_recipe_sections_are_the_domains(tmp_path: Path) -> None:
    model = recipe_model("toy2d")
    assert model.model_fields["preprocess"].annotation is Toy2DPreprocessConfig
    recipe = _recipe(tmp_path)
    assert isinstance(recipe.preprocess, Toy2DPreprocessConfig) and recipe.preprocess.size == (32, 32)
    assert get_domain("toy2d").input_shape(recipe.preprocess) == (1, (32, 32))
    with pytest.raises(RecipeError, match="preprocess.spacing"):  # a CT key is an unknown key here
        _recipe(tmp_path, "preprocess.spacing=[1.0,1.0,1.0]")


def test_preprocessor(toy_dir: Path) -> None:
    domain = get_domain("toy2d")
    config = Toy2DPreprocessConfig(size=(32, 24))
    preprocessor = domain.build_preprocessor(config)
    assert preprocessor.config == config.model_dump(mode="json")
    json.dumps(preprocessor.config)  # saved in the model directory
    path = toy_dir / "images" / "toy_0000.png"
    image = preprocessor(path)
    assert image.shape == (1, 32, 24) and image.dtype == torch.float32
    assert torch.equal(preprocessor.checked(path), image)
    rebuilt = domain.build_preprocessor(json.loads(json.dumps(preprocessor.config)))  # what serving does
    assert torch.equal(rebuilt(path), image)
    raw = np.asarray(Image.open(path).resize((24, 32), Image.Resampling.BILINEAR), dtype=np.float32) / 255
    assert torch.allclose(image[0], torch.from_numpy((raw - 0.5) / 0.25))
    assert domain.build_preprocessor({"size": [16, 16], "channels": 3})(path).shape == (3, 16, 16)
    with pytest.raises(RecipeError):
        domain.build_preprocessor({"size": [16, 16], "spacing": [1.0, 1.0]})


def test_images_vocabulary_findings_sampler(toy_dir: Path, tmp_path: Path) -> None:
    domain = get_domain("toy2d")
    images = domain.discover_images(toy_dir)
    assert len(images) == 24 and images == sorted(images)
    assert domain.check_image(images[0]) is None
    records = read_manifest(toy_dir / "manifest.csv")
    recipe = _recipe(tmp_path)
    findings = domain.findings(recipe, records)
    assert findings.names == list(FINDINGS)
    truth = np.array([[r.findings[name] for name in FINDINGS] for r in records], dtype=np.float32)
    assert np.array_equal(findings.truth, truth)
    assert np.array_equal(findings.silver, truth)  # the vocabulary reads every generated report correctly
    sampler = domain.text_sampler(recipe, records, findings)
    assert sampler(3) == (records[3].report, None) and sampler.carries_findings is False
    assert domain.augmentation(recipe) is None
    augment = domain.augmentation(_recipe(tmp_path, "augment.flip=true", "augment.max_shift=2"))
    assert isinstance(augment, SpatialAugment) and augment(torch.zeros(1, 32, 32)).shape == (1, 32, 32)
    assert domain.stage_dataset("mae", records, images, None) is images


def test_demo_layout_writes_once(tmp_path: Path) -> None:
    recipe = _recipe(tmp_path, "data.demo.n=8", "data.demo.seed=4")
    records, problems = get_domain("toy2d").layouts()["demo"](recipe.data)
    assert problems == [] and len(records) == 8
    manifest = tmp_path / "demo" / "manifest.csv"
    stamp = manifest.stat().st_mtime_ns
    again, _ = get_domain("toy2d").layouts()["demo"](recipe.data)
    assert [r.id for r in again] == [r.id for r in records] and manifest.stat().st_mtime_ns == stamp
    default = _recipe(tmp_path, "data.demo.dir=null", "data.demo.n=6")
    records, _ = get_domain("toy2d").layouts()["demo"](default.data)
    assert len(records) == 6 and all(str(tmp_path / "cache") in str(r.image) for r in records)


# (c) end to end


def test_run_end_to_end_and_serve(tmp_path: Path) -> None:
    from domainclip import load_model
    from domainclip.pipeline.run import run_recipe

    recipe = _recipe(tmp_path)
    run_recipe(recipe)
    run = tmp_path / "run"
    metrics = json.loads((run / "metrics.json").read_text())
    for key in ("zeroshot.auc_mean", "retrieval.mean_recall", "wall_seconds"):
        assert isinstance(metrics.get(key), (int, float)) and math.isfinite(metrics[key]), (key, metrics.get(key))
    assert "survival.c_index" in metrics  # time/event in the manifest: survival is evaluated
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["domain"] == "toy2d" and config["input_shape"] == [1, [32, 32]]

    loaded = load_model(run / "model")
    paths = sorted((tmp_path / "demo" / "images").glob("*.png"))[:5]
    image_emb = loaded.encode_image(paths, batch_size=2)
    text_emb = loaded.encode_text(["No opacity. No line. No lucency.", "There is a bright opacity.", "line."])
    assert image_emb.shape == (5, 16) and text_emb.shape == (3, 16)
    assert torch.isfinite(image_emb).all() and torch.isfinite(text_emb).all()
    assert torch.allclose(image_emb.norm(dim=1), torch.ones(5), atol=1e-4)


# (d) bad input


def test_corrupt_png_is_a_problem_line(toy_dir: Path, tmp_path: Path) -> None:
    from domainclip.pipeline.data import load_records

    frame = pd.read_csv(toy_dir / "manifest.csv", dtype=str, keep_default_na=False)
    frame["image"] = [str(toy_dir / p) for p in frame["image"]]
    corrupt = tmp_path / "corrupt.png"
    corrupt.write_bytes(Path(frame.loc[1, "image"]).read_bytes()[:60])  # a PNG cut after its header
    garbage = tmp_path / "garbage.png"
    garbage.write_bytes(b"this is not a png" * 8)
    frame.loc[1, "image"] = str(corrupt)
    frame.loc[3, "image"] = str(garbage)
    frame.loc[5, "image"] = str(tmp_path / "missing.png")
    manifest = tmp_path / "bad.csv"
    frame.to_csv(manifest, index=False)
    recipe = _recipe(tmp_path, "data.layout=manifest", f"data.manifest={manifest}")

    records, problems = load_records(recipe)
    assert len(records) == 21 and len(problems) == 3, problems
    by_row = {row: next(p for p in problems if f"row {row} " in p) for row in (3, 5, 7)}  # header is row 1
    assert "corrupt.png" in by_row[3] and "bad.csv" in by_row[3]
    assert "garbage.png" in by_row[5]
    assert "missing.png" in by_row[7] and "not found" in by_row[7]
    assert get_domain("toy2d").check_image(corrupt) is not None
    with pytest.raises(DomainClipError, match="corrupt.png"):
        get_domain("toy2d").build_preprocessor(recipe.preprocess).checked(corrupt)
