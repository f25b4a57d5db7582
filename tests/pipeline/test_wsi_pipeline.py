"""The WSI chain through the CLI on a tiny trained model: raw-slide inference as trained, TRIDENT feature extraction
(resumable), heatmaps, a local pretrained tile encoder, and bad slides named before anything runs.

One tiny quickstart run (tests/conf/wsi.yaml) on the session's WSI demo serves the inference tests.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import pandas as pd
import pytest
import timm
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
