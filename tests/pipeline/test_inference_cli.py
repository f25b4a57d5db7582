"""Inference on a released model directory through the CLI: zeroshot, embed, retrieve, evaluate."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import torch
from conftest import RECIPES, TINY
from safetensors import safe_open
from typer.testing import CliRunner

from domainclip.cli.main import app


def invoke(*args: str):
    result = CliRunner().invoke(app, list(args))
    if result.exception and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def test_zeroshot_from_manifest(trained_run: Path, demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "preds.csv"
    result = invoke(
        "zeroshot",
        "--model",
        str(trained_run / "model"),
        "--manifest",
        str(demo_dir / "manifest.csv"),
        "--findings",
        "pleural effusion,cardiomegaly",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    preds = pd.read_csv(out)
    manifest = pd.read_csv(demo_dir / "manifest.csv")
    assert list(preds.columns) == ["id", "pleural effusion", "cardiomegaly"]
    assert list(preds["id"].astype(str)) == list(manifest["id"].astype(str))
    assert preds[["pleural effusion", "cardiomegaly"]].apply(lambda c: c.between(0, 1).all()).all()
    assert "AUC pleural effusion" in result.output  # the demo manifest carries labels


def test_zeroshot_from_a_folder_of_nifti(trained_run: Path, demo_dir: Path, tmp_path: Path) -> None:
    images = sorted(demo_dir.rglob("*.nii.gz"))[:3]
    folder = tmp_path / "scans"
    folder.mkdir()
    for path in images:
        (folder / path.name).symlink_to(path)
    out = tmp_path / "preds.csv"
    result = invoke(
        "zeroshot",
        "--model",
        str(trained_run / "model"),
        "--images",
        str(folder),
        "--findings",
        "ascites",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    assert len(pd.read_csv(out)) == 3


def test_embed_then_retrieve(trained_run: Path, demo_dir: Path, tmp_path: Path) -> None:
    emb = tmp_path / "emb.safetensors"
    result = invoke(
        "embed", "--model", str(trained_run / "model"), "--manifest", str(demo_dir / "manifest.csv"), "--out", str(emb)
    )
    assert result.exit_code == 0, result.output
    with safe_open(str(emb), framework="pt") as fh:
        image = fh.get_tensor("image")
        ids = fh.metadata()["ids"].split("\n")
        assert fh.get_tensor("text").shape == image.shape
    assert image.shape[0] == len(ids) == len(pd.read_csv(demo_dir / "manifest.csv"))
    assert abs(float(image.norm(dim=-1).mean()) - 1.0) < 1e-4
    result = invoke(
        "retrieve", "--model", str(trained_run / "model"), "--index", str(emb), "--query", "ascites", "-k", "3"
    )
    lines = result.output.strip().splitlines()
    assert len(lines) == 3 and all(line.split("\t")[1] in ids for line in lines)


def test_evaluate_merges_into_metrics(trained_run: Path, demo_dir: Path, cache_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "eval"
    result = invoke(
        "evaluate",
        "--model",
        str(trained_run / "model"),
        "--recipe",
        str(RECIPES / "ct" / "quickstart.yaml"),
        "--out",
        str(out),
        *[
            a
            for o in TINY
            + [f"data.demo.dir={demo_dir}", "data.demo.n=20", "data.demo.seed=3", f"data.cache_dir={cache_dir}"]
            for a in ("--set", o)
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert "zeroshot.auc_mean" in metrics and "retrieval.mean_recall" in metrics
    # same model, same data: the same figures as the training run's own evaluation
    trained = json.loads((trained_run / "metrics.json").read_text())
    assert metrics["retrieval.mean_recall"] == trained["retrieval.mean_recall"]


def test_embed_to_parquet_keeps_ids(trained_run: Path, demo_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "emb.parquet"
    result = invoke(
        "embed",
        "--model",
        str(trained_run / "model"),
        "--manifest",
        str(demo_dir / "manifest.csv"),
        "--out",
        str(out),
        "--no-text",
    )
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert list(frame["id"].astype(str)) == list(pd.read_csv(demo_dir / "manifest.csv")["id"].astype(str))
    assert len(frame["image_embedding"][0]) == 16  # the tiny model's embed_dim


def test_embed_rejects_unknown_suffix_and_missing_index(trained_run: Path, demo_dir: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        [
            "embed",
            "--model",
            str(trained_run / "model"),
            "--manifest",
            str(demo_dir / "manifest.csv"),
            "--out",
            str(tmp_path / "emb.txt"),
        ],
    )
    assert "use a .safetensors or .parquet" in str(result.exception)
    result = CliRunner().invoke(
        app,
        [
            "retrieve",
            "--model",
            str(trained_run / "model"),
            "--index",
            str(tmp_path / "none.safetensors"),
            "--query",
            "x",
        ],
    )
    assert "file not found" in str(result.exception)


def test_embed_through_a_recipe_layout_applies_its_reader_hints(
    trained_run: Path, fake_ct_rate: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """CT-RATE keeps slope/intercept in its metadata CSV: embedding through the recipe's layout reads HU, as
    training did; the same files as a plain folder are stored values (shifted by the intercept)."""
    from safetensors.torch import load_file

    from domainclip.config import load_recipe
    from domainclip.data.dataset import image_dataset
    from domainclip.models.model_dir import load_model
    from domainclip.pipeline.data import load_records
    from domainclip.registry import get_domain

    recipe_args = ["--recipe", str(RECIPES / "ct" / "ct_rate_cpu.yaml"), "--split", "test"]
    recipe_args += ["--set", f"data.root={fake_ct_rate}", "--set", f"data.cache_dir={cache_dir}"]
    out = tmp_path / "test.safetensors"
    result = invoke("embed", "--model", str(trained_run / "model"), *recipe_args, "--out", str(out), "--no-text")
    assert result.exit_code == 0, result.output
    with safe_open(str(out), framework="pt") as fh:
        ids = fh.metadata()["ids"].split("\n")
    recipe = load_recipe(RECIPES / "ct" / "ct_rate_cpu.yaml", [f"data.root={fake_ct_rate}"])
    records = [r for r in load_records(recipe, check=False)[0] if r.split == "test"]
    assert ids == [r.id for r in records] and all(r.image_meta for r in records)
    loaded = load_model(trained_run / "model")
    dataset = image_dataset(records, get_domain("ct").build_preprocessor(loaded.preprocess_config), cache_dir)
    expected = loaded.encode_image(torch.stack([dataset[i]["image"] for i in range(len(dataset))]))
    torch.testing.assert_close(load_file(str(out))["image"], expected)
    folder = tmp_path / "folder.safetensors"
    paths = {r.image.parent.parent.parent for r in records}
    assert len(paths) == 1
    result = invoke("embed", "--model", str(trained_run / "model"), "--images", str(paths.pop()), "--out", str(folder))
    assert result.exit_code == 0, result.output
    assert not torch.allclose(load_file(str(folder))["image"], expected, atol=1e-3)  # no hints: not HU


def test_inference_needs_exactly_one_source(trained_run: Path, demo_dir: Path, tmp_path: Path) -> None:
    import pytest

    from domainclip.errors import DataError

    expected = "exactly one of --manifest CSV, --images FOLDER, --features FOLDER or --recipe YAML"
    with pytest.raises(DataError, match=expected):
        invoke("embed", "--model", str(trained_run / "model"), "--out", str(tmp_path / "e.safetensors"))


def test_a_recipe_split_without_records_is_named(trained_run: Path, demo_dir: Path, cache_dir: Path, tmp_path) -> None:
    import pytest

    from domainclip.errors import DataError

    args = ["--recipe", str(RECIPES / "ct" / "quickstart.yaml"), "--split", "holdout"]
    args += ["--set", f"data.demo.dir={demo_dir}", "--set", "data.demo.n=20", "--set", "data.demo.seed=3"]
    with pytest.raises(DataError, match="--split holdout: no records of .*quickstart.yaml are in that split"):
        invoke("embed", "--model", str(trained_run / "model"), *args, "--out", str(tmp_path / "e.safetensors"))


def test_inference_checks_only_the_images(trained_run: Path, demo_dir: Path, tmp_path: Path) -> None:
    """A manifest for embedding needs usable images, not reports: a truncated volume is named, an empty report
    is fine."""
    import pytest

    from domainclip.errors import DataError

    frame = pd.read_csv(demo_dir / "manifest.csv").head(3)
    frame["image"] = [str((demo_dir / p).resolve()) for p in frame["image"]]
    frame.loc[0, "report"] = ""
    manifest = tmp_path / "images_only.csv"
    frame.to_csv(manifest, index=False)
    out = tmp_path / "e.safetensors"
    assert (
        invoke(
            "embed", "--model", str(trained_run / "model"), "--manifest", str(manifest), "--out", str(out), "--no-text"
        ).exit_code
        == 0
    )
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(Path(frame.loc[1, "image"]).read_bytes()[:200])
    frame.loc[1, "image"] = str(truncated)
    frame.to_csv(manifest, index=False)
    with pytest.raises(DataError, match=r"1 unusable image\(s\)[\s\S]*truncated\.nii\.gz"):
        invoke("embed", "--model", str(trained_run / "model"), "--manifest", str(manifest), "--out", str(out))


def test_zeroshot_uses_the_model_directory_prompt_fallback(trained_run: Path, demo_dir: Path, tmp_path: Path) -> None:
    import shutil

    from domainclip.models.model_dir import ZEROSHOT_FALLBACK_FILE
    from domainclip.pipeline.tasks.prompt_fallback import PromptFallback

    model = tmp_path / "model"
    shutil.copytree(trained_run / "model", model)
    (model / ZEROSHOT_FALLBACK_FILE).unlink(missing_ok=True)
    args = ["--manifest", str(demo_dir / "manifest.csv"), "--findings", "pleural effusion,cardiomegaly"]
    invoke("zeroshot", "--model", str(model), *args, "--out", str(tmp_path / "prompts.csv"))
    dim = json.loads((model / "config.json").read_text())["embed_dim"]
    axis = torch.nn.functional.one_hot(torch.tensor([0]), dim).float()
    PromptFallback(["pleural effusion"], axis, -axis).save(model / ZEROSHOT_FALLBACK_FILE)
    result = invoke("zeroshot", "--model", str(model), *args, "--out", str(tmp_path / "fallback.csv"))
    assert result.exit_code == 0, result.output
    assert "pleural effusion: scored by report prototypes" in result.output
    prompts, fallback = pd.read_csv(tmp_path / "prompts.csv"), pd.read_csv(tmp_path / "fallback.csv")
    assert not prompts["pleural effusion"].equals(fallback["pleural effusion"])
    pd.testing.assert_series_equal(prompts["cardiomegaly"], fallback["cardiomegaly"])
