"""Bad data and bad run folders: every problem reported at once, non-zero exit, nothing lost."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import RECIPES, TINY, tiny_quickstart
from safetensors.torch import load_file
from typer.testing import CliRunner

from domainclip.cli.main import app
from domainclip.config import load_recipe
from domainclip.errors import CheckpointError, DataError, DomainClipError
from domainclip.pipeline.run import run_recipe


@pytest.fixture
def bad_manifest(tmp_path: Path, demo_dir: Path) -> Path:
    """The demo manifest with a missing file, a truncated image, an empty report and a duplicate id."""
    frame = pd.read_csv(demo_dir / "manifest.csv")
    frame["image"] = [str((demo_dir / p).resolve()) for p in frame["image"]]
    truncated = tmp_path / "truncated.nii.gz"
    truncated.write_bytes(Path(frame.loc[1, "image"]).read_bytes()[:200])
    frame.loc[0, "image"] = str(tmp_path / "missing.nii.gz")
    frame.loc[1, "image"] = str(truncated)
    frame.loc[2, "report"] = ""
    frame.loc[4, "id"] = frame.loc[3, "id"]
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


def recipe_for(manifest: Path, out: Path, cache: Path, *extra: str):
    return load_recipe(
        RECIPES / "ct" / "quickstart.yaml",
        TINY
        + ["data.layout=manifest", f"data.manifest={manifest}", f"data.cache_dir={cache}", f"output.dir={out}", *extra],
    )


def test_validate_data_lists_every_bad_row(bad_manifest: Path, cache_dir: Path, tmp_path: Path) -> None:
    args = [
        "validate-data",
        str(RECIPES / "ct" / "quickstart.yaml"),
        "--set",
        "data.layout=manifest",
        "--set",
        f"data.manifest={bad_manifest}",
        "--set",
        f"data.cache_dir={cache_dir}",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 3
    out = result.output
    assert "row 2" in out and "not found" in out  # header is row 1
    assert "truncated.nii.gz" in out
    assert "report is empty" in out
    assert "duplicate" in out.lower()


def test_run_refuses_bad_data_then_skips_when_told(bad_manifest: Path, cache_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError) as info:
        run_recipe(recipe_for(bad_manifest, tmp_path / "run", cache_dir))
    assert len(info.value.problems) >= 4
    run_recipe(
        recipe_for(bad_manifest, tmp_path / "run2", cache_dir, "data.skip_bad_rows=true", "evaluate.survival=false")
    )
    skipped = (tmp_path / "run2" / "skipped_rows.txt").read_text().splitlines()
    assert len(skipped) >= 4 and any("missing.nii.gz" in line for line in skipped)


def test_existing_run_is_never_overwritten(trained_run: Path, tmp_path: Path, demo_dir: Path, cache_dir: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    recipe = tiny_quickstart(demo_dir, cache_dir, copy)
    with pytest.raises(DomainClipError, match="already holds a run; pass --resume"):
        run_recipe(recipe)
    assert before == {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}


def test_resume_of_a_finished_run_keeps_its_weights(
    trained_run: Path, tmp_path: Path, demo_dir: Path, cache_dir: Path
) -> None:
    copy = tmp_path / "run"
    shutil.copytree(trained_run, copy)
    weights = load_file(copy / "model" / "model.safetensors")
    recipe = tiny_quickstart(demo_dir, cache_dir, copy)
    run_recipe(recipe, resume=True)
    resumed = load_file(copy / "model" / "model.safetensors")
    assert resumed.keys() == weights.keys()
    assert all(torch.equal(resumed[k], weights[k]) for k in weights)
    assert (copy / "recipe.previous.yaml").is_file()


def test_resume_without_checkpoint_and_unwritable_output(tmp_path: Path, demo_dir: Path, cache_dir: Path) -> None:
    recipe = load_recipe(
        RECIPES / "ct" / "quickstart.yaml",
        TINY + [f"data.demo.dir={demo_dir}", f"data.cache_dir={cache_dir}", f"output.dir={tmp_path / 'fresh'}"],
    )
    with pytest.raises(CheckpointError, match="no checkpoint to resume"):
        run_recipe(recipe, resume=True)
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    recipe = load_recipe(
        RECIPES / "ct" / "quickstart.yaml",
        TINY + [f"data.demo.dir={demo_dir}", f"data.cache_dir={cache_dir}", f"output.dir={blocker / 'run'}"],
    )
    with pytest.raises(DomainClipError, match="not writable"):
        run_recipe(recipe)
    assert blocker.read_text() == "not a folder"


def test_a_run_that_failed_on_bad_data_can_be_run_again_once_fixed(
    bad_manifest: Path, cache_dir: Path, tmp_path: Path
) -> None:
    """The data is checked before the run folder is prepared: the failed first run leaves nothing behind."""
    out = tmp_path / "run"
    with pytest.raises(DataError):
        run_recipe(recipe_for(bad_manifest, out, cache_dir))
    assert not (out / "recipe.yaml").exists() and not (out / "checkpoints").exists()
    frame = pd.read_csv(bad_manifest, keep_default_na=False)
    frame.iloc[5:].to_csv(bad_manifest, index=False)  # the fix: drop the bad rows
    run_recipe(recipe_for(bad_manifest, out, cache_dir, "evaluate.survival=false"))  # the same command now works
    assert (out / "metrics.json").is_file()


def test_ct_rate_volumes_without_csv_rows_follow_skip_bad_rows(tmp_path: Path, cache_dir: Path) -> None:
    from make_fake_ct_rate import make_fake_ct_rate

    fake = make_fake_ct_rate(tmp_path / "ct-rate")
    reports = fake.root / "dataset" / "radiology_text_reports" / "train_reports.csv"
    table = pd.read_csv(reports)
    table[table["VolumeName"] != "train_3_a_1.nii.gz"].to_csv(reports, index=False)
    tiny = [o for o in TINY if not o.startswith("stages.mae.")]  # the recipe's CNN tower has no MAE stage
    base = tiny + [f"data.root={fake.root}", f"data.cache_dir={cache_dir}"]
    base += ["stages.align.batch_size=2", "evaluate.survival=false", "data.num_workers=0"]
    with pytest.raises(DataError, match="train_3_a_1.nii.gz: no row in radiology_text_reports"):
        run_recipe(load_recipe(RECIPES / "ct" / "ct_rate_cpu.yaml", [*base, f"output.dir={tmp_path / 'a'}"]))
    recipe = load_recipe(
        RECIPES / "ct" / "ct_rate_cpu.yaml", [*base, f"output.dir={tmp_path / 'b'}", "data.skip_bad_rows=true"]
    )
    run_recipe(recipe)
    skipped = (tmp_path / "b" / "skipped_rows.txt").read_text()
    assert "train_3_a_1.nii.gz: no row in radiology_text_reports/train_reports.csv" in skipped
