"""The WSI chain through the CLI on a tiny trained model: raw-slide inference as trained, TRIDENT feature extraction
(resumable), heatmaps, a local pretrained tile encoder, and bad slides named before anything runs.

One tiny quickstart run (tests/conf/wsi.yaml) on the session's WSI demo serves the inference tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import timm
import torch
from conftest import RECIPES
from overrides import tiny_overrides
from safetensors.torch import save_file
from typer.testing import CliRunner

from domainclip.cli.main import app
from domainclip.config import load_recipe
from domainclip.pipeline.run import run_recipe

runner = CliRunner()


def _recipe(name: str, request, cache: Path, out: Path, *extra: str):
    layout = "demo" if name == "quickstart" else "tcga"
    overrides = tiny_overrides("wsi", layout, request.getfixturevalue)
    return load_recipe(
        RECIPES / "wsi" / f"{name}.yaml", [*overrides, f"data.cache_dir={cache}", f"output.dir={out}", *extra]
    )


@pytest.fixture(scope="module")
def trained(request, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("wsi-trained") / "run"
    run_recipe(_recipe("quickstart", request, tmp_path_factory.mktemp("wsi-cache"), run))
    return run


def _slides(demo: Path) -> list[Path]:
    return sorted(p for p in demo.rglob("*") if p.suffix in (".svs", ".tiff"))


def test_the_run_folder_keeps_the_tile_encoder_the_tiling_and_heatmaps(trained: Path) -> None:
    config = json.loads((trained / "model" / "config.json").read_text())
    assert config["image_tower"]["type"] == "abmil" and config["input_shape"] is None
    assert config["tile_encoder"]["type"] == "vit" and config["tile_encoder"]["tiling"]["mpp"] == 2.0
    assert (trained / "model" / "tile_encoder.safetensors").is_file()
    explained = sorted((trained / "plots" / "explained").glob("*.png"))
    assert len(explained) >= 2 and all(p.stat().st_size > 5000 for p in explained)
    metrics = json.loads((trained / "metrics.json").read_text())
    assert "survival.c_index" in metrics and "survival.ceiling_true_findings.c_index" in metrics
    assert "zeroshot.balanced_accuracy" in metrics and metrics["zeroshot.label_source"] == "truth"
    assert 0.0 <= metrics["zeroshot_topk.balanced_accuracy"] <= 1.0, "MI-Zero top-k over the ABMIL tower's tiles"


def test_embed_and_zeroshot_take_raw_slides_and_match_training(
    trained: Path, wsi_demo_dir: Path, tmp_path: Path
) -> None:
    slides = [p for p in _slides(wsi_demo_dir) if p.suffix == ".svs"][:4]
    manifest = tmp_path / "slides.csv"
    pd.DataFrame({"id": [p.name.split(".")[0] for p in slides], "image": slides}).to_csv(manifest, index=False)
    out = tmp_path / "emb.safetensors"
    result = runner.invoke(
        app, ["embed", "--model", str(trained / "model"), "--manifest", str(manifest), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    probs = tmp_path / "zs.csv"
    result = runner.invoke(
        app,
        [
            "zeroshot",
            "--model",
            str(trained / "model"),
            "--manifest",
            str(manifest),
            "--findings",
            "necrosis,mucin",
            "--out",
            str(probs),
        ],
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(probs)
    assert list(table.columns) == ["id", "necrosis", "mucin"] and len(table) == 4
    assert table[["necrosis", "mucin"]].apply(lambda c: c.between(0, 1)).all().all()


def test_extract_features_writes_trident_files_and_resumes(trained: Path, wsi_demo_dir: Path, tmp_path: Path) -> None:
    slides = tmp_path / "slides"
    slides.mkdir()
    for path in [p for p in _slides(wsi_demo_dir) if p.suffix == ".svs"][:3]:
        shutil.copy(path, slides / path.name)
    out = tmp_path / "job"
    args = ["wsi", "extract-features", "--model", str(trained / "model"), "--slides", str(slides), "--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    files = sorted(out.rglob("features_*/*.h5"))
    assert len(files) == 3 and len(list(out.rglob("patches/*_patches.h5"))) == 3
    with h5py.File(files[0]) as h5:
        assert h5["features"].shape[1] == 16 and h5.attrs["target_magnification"] == 5.0
    stamps = [f.stat().st_mtime_ns for f in files]
    files[1].unlink()  # as if the extraction had been killed before this slide
    assert runner.invoke(app, args).exit_code == 0
    assert [f.stat().st_mtime_ns for f in (files[0], files[2])] == [stamps[0], stamps[2]], "complete files kept"
    assert files[1].is_file()


def _embed(model: Path, out: Path, *source: str) -> dict:
    from safetensors.torch import load_file

    result = runner.invoke(app, ["embed", "--model", str(model), *source, "--no-text", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return load_file(out)


def test_features_folder_is_read_instead_of_the_slides(trained: Path, wsi_demo_dir: Path, tmp_path: Path) -> None:
    """``--features``: the files of ``wsi extract-features`` give the embeddings the raw slides give; a file of
    another encoder is refused by name, and a CLAM file (no attributes) of the right width is read."""
    slides = tmp_path / "slides"
    slides.mkdir()
    for path in [p for p in _slides(wsi_demo_dir) if p.suffix == ".svs"][:2]:
        shutil.copy(path, slides / path.name)
    model = trained / "model"
    job = tmp_path / "job"
    extract = ["wsi", "extract-features", "--model", str(model), "--slides", str(slides), "--out", str(job)]
    assert runner.invoke(app, extract).exit_code == 0
    (folder,) = {p.parent for p in job.rglob("features_*/*.h5")}
    from_slides = _embed(model, tmp_path / "a.safetensors", "--images", str(slides))
    from_files = _embed(model, tmp_path / "b.safetensors", "--features", str(folder))
    assert from_files.keys() == from_slides.keys()
    for key, value in from_slides.items():
        if value.is_floating_point():
            assert torch.allclose(value, from_files[key], atol=1e-5), key

    clam = tmp_path / "clam"
    clam.mkdir()
    with h5py.File(next(folder.glob("*.h5"))) as h5:
        features, coords = h5["features"][()], h5["coords"][()]
    with h5py.File(clam / "slide-a.h5", "w") as h5:
        h5["features"], h5["coords"] = features, coords.astype("int32")
    assert _embed(model, tmp_path / "c.safetensors", "--features", str(clam))
    with h5py.File(clam / "slide-b.h5", "w") as h5:
        h5["features"], h5["coords"] = features, coords
        h5["features"].attrs["encoder"] = "uni_v1"
    result = runner.invoke(
        app, ["embed", "--model", str(model), "--features", str(clam), "--out", str(tmp_path / "d.safetensors")]
    )
    assert result.exit_code != 0 and "slide-b.h5" in str(result.exception) and "uni_v1" in str(result.exception)


def _trident_features(root: Path, encoder: str, width: int, seed: int = 0) -> Path:
    """Replace every slide under ``root`` by a TRIDENT feature file of ``encoder`` (as if TRIDENT had run on it)."""
    rng = np.random.default_rng(seed)
    folder = root / "trident" / "20x_256px_0px_overlap" / f"features_{encoder}"
    folder.mkdir(parents=True)
    for slide in _slides(root):
        n = int(rng.integers(5, 40))
        with h5py.File(folder / f"{slide.name.rsplit('.', 1)[0]}.h5", "w") as h5:
            h5["coords"] = rng.integers(0, 4000, size=(n, 2)).astype("int64")
            h5["coords"].attrs.update({"patch_size": 256, "patch_size_level0": 512, "level0_magnification": 40.0})
            h5["features"] = rng.normal(size=(n, width)).astype("float32")
            h5["features"].attrs["encoder"] = encoder
        slide.unlink()
    return folder


def test_alignment_trains_on_trident_features_of_another_encoder(request, fake_tcga: Path, tmp_path: Path) -> None:
    """A tcga root holding TRIDENT's features instead of slides: no MAE, no tile encoder, the slide tower trains on
    the files as they are; the model reads such files (``--features``) and refuses raw slides by saying why."""
    root = Path(shutil.copytree(fake_tcga, tmp_path / "tcga"))
    (root / "mpp.csv").unlink()
    folder = _trident_features(root, "uni_v1", width=24)
    run = tmp_path / "run"
    overrides = tiny_overrides("wsi", "tcga", {"fake_tcga": root}.__getitem__)
    recipe = load_recipe(
        RECIPES / "wsi" / "tcga_cpu.yaml", [*overrides, f"data.cache_dir={tmp_path / 'c'}", f"output.dir={run}"]
    )
    run_recipe(recipe)
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["feature_source"] == {"width": 24, "encoder": "uni_v1"} and "tile_encoder" not in config
    stages = {json.loads(line)["stage"] for line in (run / "logs" / "metrics.jsonl").read_text().splitlines()}
    assert stages == {"align"}, "no tile encoder to pretrain"
    assert "zeroshot.auc_mean" in json.loads((run / "metrics.json").read_text())
    embedded = _embed(run / "model", tmp_path / "e.safetensors", "--features", str(folder))
    assert len(embedded["image"]) == len(list(folder.glob("*.h5")))
    with pytest.raises(Exception, match="has no tile encoder"):
        slides = _slides(fake_tcga)[:1]
        from domainclip.models.model_dir import load_model

        load_model(run / "model").encode_image(slides)


def test_heatmap_command_draws_attention_and_tile_scores(trained: Path, wsi_demo_dir: Path, tmp_path: Path) -> None:
    slide = _slides(wsi_demo_dir)[0]
    png = tmp_path / "map.png"
    args = ["wsi", "heatmap", "--model", str(trained / "model"), "--slide", str(slide), "--out", str(png)]
    result = runner.invoke(app, [*args, "--finding", "necrosis", "--mpp", "0.5"])
    assert result.exit_code == 0, result.output
    from PIL import Image

    with Image.open(png) as image:
        assert image.width > 2 * image.height, "thumbnail, attention and one tile-score panel side by side"


def test_bad_slides_are_all_named_before_anything_runs(request, fake_tcga: Path, tmp_path: Path) -> None:
    root = Path(shutil.copytree(fake_tcga, tmp_path / "tcga"))
    slides = sorted(p for p in root.rglob("*") if p.suffix in (".svs", ".tiff"))
    cut, text = slides[0], slides[1]
    cut.write_bytes(cut.read_bytes()[: cut.stat().st_size // 2])
    text.write_text("not a slide")
    (root / "mpp.csv").write_text("slide_id,mpp\n")  # the TIFF without resolution loses its override
    recipe = RECIPES / "wsi" / "tcga_cpu.yaml"
    overrides = [*tiny_overrides("wsi", "tcga", {"fake_tcga": root}.__getitem__), f"data.cache_dir={tmp_path / 'c'}"]
    result = runner.invoke(app, ["validate-data", str(recipe), *(a for o in overrides for a in ("--set", o))])
    assert result.exit_code != 0
    for path in (cut, text, slides[-1]):
        assert path.name in result.output, path
    assert "mpp.csv" in result.output
    assert not (tmp_path / "c" / "wsi-features").exists(), "nothing was extracted"


def test_a_local_pretrained_timm_tile_encoder_runs_without_mae(request, tmp_path: Path) -> None:
    name = "vit_tiny_patch16_224"
    backbone = timm.create_model(name, pretrained=False, num_classes=0, img_size=(16, 16))
    weights = tmp_path / "vit_tiny.safetensors"
    save_file({k: v.contiguous() for k, v in backbone.state_dict().items()}, weights)
    run = tmp_path / "run"
    recipe = _recipe(
        "tcga_cpu",
        request,
        tmp_path / "cache",
        run,
        f"model.tile.type=timm:{name}",
        f"model.tile.weights={weights}",
        "model.tile.patch_size=[16,16]",
        "stages.mae.steps=0",
    )
    run_recipe(recipe)
    config = json.loads((run / "model" / "config.json").read_text())
    assert config["tile_encoder"]["type"] == f"timm:{name}"
    assert list((tmp_path / "cache" / "wsi-features").rglob(f"features_timm-{name}-*/*.h5"))
    assert (run / "model" / "tile_encoder.safetensors").is_file()


def test_feature_inputs_that_cannot_work_are_named(fake_tcga: Path, tmp_path: Path) -> None:
    """``--features`` on a missing or empty folder, and a run mixing slides with feature files, say what is wrong."""
    from domainclip.errors import DataError
    from domainclip.pipeline.inference import ImageSource
    from domainclip.records import Record
    from domainclip.registry import get_domain

    wsi = get_domain("wsi")
    with pytest.raises(DataError, match="not a folder"):
        ImageSource(features=tmp_path / "missing").records(wsi)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no feature files found"):
        ImageSource(features=tmp_path / "empty").records(wsi)
    slide = _slides(fake_tcga)[0]
    bag = tmp_path / "bag.h5"
    with h5py.File(bag, "w") as h5:
        h5["features"], h5["coords"] = np.zeros((3, 4), "float32"), np.zeros((3, 2), "int64")
    mixed = [Record(id="a", patient_id="a", image=slide), Record(id="b", patient_id="b", image=bag)]
    with pytest.raises(DataError, match="either on slides .* or on feature files") as err:
        wsi.given_features(mixed)
    assert slide.name in str(err.value) and "bag.h5" in str(err.value)
