"""Bad satellite data: every bad row named at once (missing, truncated, missing band, all nodata, no caption,
a caption entry whose file is missing), a non-zero exit, and nothing in the run folder lost."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import RECIPES
from overrides import tiny_overrides
from typer.testing import CliRunner

from domainclip.cli.main import app
from domainclip.config import load_recipe
from domainclip.errors import DataError
from domainclip.pipeline.run import run_recipe


@pytest.fixture
def bad_manifest(tmp_path: Path, satellite_demo_dir: Path) -> Path:
    import rasterio

    frame = pd.read_csv(satellite_demo_dir / "manifest.csv")
    frame["image"] = [str((satellite_demo_dir / p).resolve()) for p in frame["image"]]
    chips = list(dict.fromkeys(frame["image"]))
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(Path(chips[1]).read_bytes()[:300])
    four_band = tmp_path / "four_band.tif"
    with rasterio.open(chips[2]) as src:
        profile = {**src.profile, "count": 4}
        with rasterio.open(four_band, "w", **profile) as dst:
            dst.write(src.read([1, 2, 3, 4]))
    void = tmp_path / "void.tif"
    with rasterio.open(chips[3]) as src, rasterio.open(void, "w", **src.profile) as dst:
        dst.write(np.zeros((src.count, src.height, src.width), dtype="uint16"))  # 0 is the nodata value
        for k, band in enumerate(src.descriptions, start=1):
            dst.set_band_description(k, band)
    swap = {
        chips[0]: str(tmp_path / "missing.tif"),
        chips[1]: str(truncated),
        chips[2]: str(four_band),
        chips[3]: str(void),
    }
    frame["image"] = frame["image"].replace(swap)
    frame.loc[frame["image"] == chips[4], "caption"] = ""
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    return path


def _args(command: str, manifest: Path, cache: Path, *extra: str) -> list[str]:
    sets = [
        "data.layout=manifest",
        f"data.manifest={manifest}",
        "data.columns.texts=[caption]",
        "data.columns.label=scene",
        "data.columns.targets=[population_density,vegetation_index]",
        f"data.cache_dir={cache}",
        "evaluate.datasets={}",  # the quickstart's EuroSAT-like set is the demo's, not this manifest's
        *extra,
    ]
    return [command, str(RECIPES / "satellite" / "quickstart.yaml"), *[a for s in sets for a in ("--set", s)]]


def test_validate_data_names_every_bad_satellite_row(bad_manifest: Path, cache_dir: Path) -> None:
    result = CliRunner().invoke(app, _args("validate-data", bad_manifest, cache_dir))
    assert result.exit_code == 3, result.output
    out = " ".join(result.output.split())
    assert "image not found" in out and "missing.tif" in out
    assert "truncated.tif" in out
    assert "four_band.tif: no band named" in out and "B05" in out  # the bands the recipe reads, by name
    assert "void.tif: every pixel is nodata" in out
    assert "report is empty" in out or "no text" in out


def test_run_refuses_bad_rows_then_skips_them_when_told(bad_manifest: Path, cache_dir: Path, tmp_path) -> None:
    sets = _args("run", bad_manifest, cache_dir, *tiny_overrides("satellite"))[3::2]
    run = tmp_path / "run"
    with pytest.raises(DataError) as info:
        run_recipe(load_recipe(RECIPES / "satellite" / "quickstart.yaml", [*sets, f"output.dir={run}"]))
    assert len(info.value.problems) == 5 and not run.exists()  # refused before the run folder is touched
    run_recipe(
        load_recipe(RECIPES / "satellite" / "quickstart.yaml", [*sets, f"output.dir={run}", "data.skip_bad_rows=true"])
    )
    skipped = (run / "skipped_rows.txt").read_text().splitlines()
    assert len(skipped) == 5 and json.loads((run / "metrics.json").read_text())["evaluate.n"] > 0


def _with_a_chip_without_georeference(satellite_demo_dir: Path, tmp_path: Path) -> tuple[Path, Path]:
    """The demo manifest with its first chip rewritten with the same bands and pixels but no CRS or transform (what
    a plain picture has), and that chip's path."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    frame = pd.read_csv(satellite_demo_dir / "manifest.csv")
    frame["image"] = [str((satellite_demo_dir / p).resolve()) for p in frame["image"]]
    chip = frame["image"].iloc[0]
    plain = tmp_path / "plain.tif"
    with rasterio.open(chip) as src:
        profile = {k: v for k, v in src.profile.items() if k not in ("crs", "transform")}
        data, names = src.read(), src.descriptions
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(plain, "w", **profile) as dst:
            dst.write(data)
            dst.descriptions = names
    frame["image"] = frame["image"].replace({chip: str(plain)})
    frame.to_csv(tmp_path / "plain.csv", index=False)
    return tmp_path / "plain.csv", plain


def _gsd_warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and "preprocess.gsd" in r.getMessage()]


def test_a_chip_without_georeference_is_a_warning_under_gsd_and_the_run_uses_it(
    satellite_demo_dir: Path, cache_dir: Path, tmp_path: Path, caplog
) -> None:
    import logging

    manifest, plain = _with_a_chip_without_georeference(satellite_demo_dir, tmp_path)
    gsd = "preprocess.gsd=40"  # the demo's 64 x 64 chips at 10 m are 16 x 16 at 40 m, the tiny size
    with caplog.at_level(logging.WARNING):
        result = CliRunner().invoke(app, _args("validate-data", manifest, cache_dir, gsd))
    assert result.exit_code == 0 and "no problems" in result.output, result.output
    said = f"{plain}: not georeferenced, so preprocess.gsd=40 m does not apply; the image keeps its native pixel grid"
    assert len(_gsd_warnings(caplog)) == 1 and _gsd_warnings(caplog)[0].startswith(said)
    caplog.clear()
    sets = _args("run", manifest, cache_dir, *tiny_overrides("satellite"), gsd)[3::2]
    run = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        run_recipe(load_recipe(RECIPES / "satellite" / "quickstart.yaml", [*sets, f"output.dir={run}"]))
    assert len(_gsd_warnings(caplog)) == 1 and str(plain) in _gsd_warnings(caplog)[0]
    assert not (run / "skipped_rows.txt").exists()  # a warning, not a bad row
    assert json.loads((run / "model" / "preprocess.json").read_text())["gsd"] == 40.0  # served as trained
    assert json.loads((run / "metrics.json").read_text())["evaluate.n"] > 0
