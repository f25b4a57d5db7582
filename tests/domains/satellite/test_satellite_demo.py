"""The satellite demo: real GeoTIFFs (CRS, transform, band descriptions, nodata), captions, truth, indicators."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import rasterio

from domainclip.domains.satellite.demo import ATTRIBUTES, L2A_BANDS, SCENES, write_demo
from domainclip.domains.satellite.readers import read_raster


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sat") / "demo"
    write_demo(out, n=40, seed=1, eurosat_per_class=2)
    return out


def test_chips_are_georeferenced_12_band_l2a_with_nodata_borders(demo: Path) -> None:
    chips = sorted((demo / "chips").glob("*.tif"))
    assert len(chips) == 40
    with rasterio.open(chips[0]) as src:
        assert src.count == 12 and src.descriptions == L2A_BANDS and src.dtypes[0] == "uint16"
        assert src.crs.to_epsg() == 32632 and src.transform.a == 10.0 and src.nodata == 0
    bordered = [p for p in chips if not read_raster(p).valid.all()]
    assert 0 < len(bordered) < len(chips)  # some chips, not all


def test_the_eurosat_like_set_is_13_band_without_descriptions(demo: Path) -> None:
    folders = sorted(p.name for p in (demo / "eurosat").iterdir())
    assert folders == sorted(SCENES)
    path = demo / "eurosat" / "SeaLake" / "SeaLake_1.tif"
    with rasterio.open(path) as src:
        assert src.count == 13 and not any(src.descriptions)
    raster = read_raster(path, ["B03", "B08", "B11"])  # by the documented L1C order
    green, nir, swir = raster.pixels
    water = nir < np.percentile(nir, 25)  # the darkest infrared quarter: open water even beside a shore
    assert green[water].mean() > nir[water].mean() > swir[water].mean()  # reflects green, absorbs infrared


def test_manifest_rows_are_captions_with_truth_and_indicators(demo: Path) -> None:
    table = pd.read_csv(demo / "manifest.csv")
    per_chip = table.groupby("id")
    assert per_chip.size().eq(5).all() and table["caption"].str.len().gt(10).all()
    assert set(ATTRIBUTES) <= set(table.columns) and {"population_density", "vegetation_index"} <= set(table.columns)
    first = per_chip.first()
    assert set(first["split"]) == {"train", "valid", "test"}
    assert first.groupby("scene")["split"].apply(lambda s: s.eq("test").any()).all()  # every scene is tested
    residential = first[first["scene"] == "residential area"]
    assert residential["buildings"].eq(1).all()
    assert (
        first.loc[first["buildings"] == 1, "population_density"].mean()
        > first.loc[first["buildings"] == 0, "population_density"].mean()
    )


def test_vegetation_shows_the_red_edge(demo: Path) -> None:
    table = pd.read_csv(demo / "manifest.csv").groupby("id").first()
    forest = table.index[table["scene"] == "forest"][0]
    raster = read_raster(demo / "chips" / f"{forest}.tif", ["B04", "B08"])
    red, nir = (raster.pixels[k][raster.valid].mean() for k in range(2))
    assert nir > 3 * red
    assert table.loc[forest, "vegetation_index"] > table["vegetation_index"].median()
