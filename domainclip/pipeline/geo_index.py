"""Where each embedded image lies: CRS and footprint columns of an embeddings index, GeoParquet when possible.

The domain says where an image lies (:class:`~domainclip.protocols.GeoreferencedDomain`); this module turns that
into what GIS tools read. Every row of an index of a georeferencing domain gets

* ``crs``: the image's CRS as ``EPSG:<code>`` when pyproj identifies it, else its WKT (null: not georeferenced);
* ``footprint_wkt``: the polygon of the raster's bounds in its own CRS (the four pixel corners through the affine
  transform, so a rotated grid stays exact);
* ``lon_min, lat_min, lon_max, lat_max``: its bounds in EPSG:4326 (edges densified), when pyproj is installed.

A ``.parquet`` index is GeoParquet when geopandas is installed (``pip install 'domainclip[geo]'``): the
``geometry`` column is the footprint. A GeoParquet column has one CRS, so when the images are in several CRSs
(UTM zones of a country) the geometry is every footprint reprojected to EPSG:4326, and ``crs`` / ``footprint_wkt``
keep each native one; one shared CRS stays native (no resampling error in the geometry). A ``.safetensors`` index
holds the same per-image fields as JSON in its header metadata (key ``georeference``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from domainclip.protocols import Domain, Georeference, GeoreferencedDomain
from domainclip.records import Record

LONLAT_COLUMNS = ("lon_min", "lat_min", "lon_max", "lat_max")
METADATA_KEY = "georeference"
WGS84 = "EPSG:4326"
EDGE_POINTS = 21  # points per footprint edge when reprojecting (rasterio's transform_bounds default)
NO_GEOPANDAS = (
    "geopandas is not installed: wrote plain Parquet with the footprints as WKT text "
    "(pip install 'domainclip[geo]' for GeoParquet that QGIS and geopandas open as a map layer)"
)


def image_georeferences(domain: Domain, records: Sequence[Record]) -> list[Georeference | None] | None:
    """Each record's georeference (None where it has none); None when the domain has no georeference hook."""
    if not isinstance(domain, GeoreferencedDomain):
        return None
    return [domain.image_georeference(r.image, r.image_meta) for r in records]


def corners(geo: Georeference) -> list[tuple[float, float]]:
    """The raster's outer pixel corners (top-left, top-right, bottom-right, bottom-left) in its CRS."""
    a, b, c, d, e, f = geo.transform
    return [
        (a * x + b * y + c, d * x + e * y + f)
        for x, y in ((0, 0), (geo.width, 0), (geo.width, geo.height), (0, geo.height))
    ]


def footprint_wkt(geo: Georeference) -> str:
    """The footprint as a closed WKT polygon, coordinates written exactly (``repr`` round-trips a float)."""
    pts = corners(geo)
    ring = [*pts, pts[0]]
    return "POLYGON ((" + ", ".join(f"{x!r} {y!r}" for x, y in ring) + "))"


def _edge_ring(geo: Georeference) -> tuple[list[float], list[float]]:
    """The footprint's boundary with ``EDGE_POINTS`` per edge: a straight edge in one CRS bends in another."""
    pts = corners(geo)
    xs: list[float] = []
    ys: list[float] = []
    for (x0, y0), (x1, y1) in zip(pts, pts[1:] + pts[:1]):
        for k in range(EDGE_POINTS - 1):
            t = k / (EDGE_POINTS - 1)
            xs.append(x0 + t * (x1 - x0))
            ys.append(y0 + t * (y1 - y0))
    return xs, ys


def _pyproj():
    try:
        import pyproj
    except ImportError:
        return None
    return pyproj


@lru_cache(maxsize=64)
def crs_name(wkt: str) -> str:
    """``EPSG:<code>`` when pyproj identifies the CRS exactly, else the WKT itself."""
    pyproj = _pyproj()
    if pyproj is None:
        return wkt
    authority = pyproj.CRS.from_wkt(wkt).to_authority(min_confidence=100)
    return f"{authority[0]}:{authority[1]}" if authority else wkt


@lru_cache(maxsize=64)
def _to_wgs84(wkt: str):
    pyproj = _pyproj()
    return pyproj.Transformer.from_crs(pyproj.CRS.from_wkt(wkt), WGS84, always_xy=True)


def lonlat_ring(geo: Georeference) -> tuple[list[float], list[float]]:
    """The densified footprint boundary in EPSG:4326 longitude / latitude (needs pyproj)."""
    return _to_wgs84(geo.crs).transform(*_edge_ring(geo))


def lonlat_bounds(geo: Georeference) -> tuple[float, float, float, float] | None:
    """(lon_min, lat_min, lon_max, lat_max) of the footprint, or None without pyproj."""
    if _pyproj() is None:
        return None
    lon, lat = lonlat_ring(geo)
    return min(lon), min(lat), max(lon), max(lat)


def georeference_columns(georefs: Sequence[Georeference | None]) -> dict[str, list[Any]]:
    """The index's per-image columns (module docstring); the lon/lat bounds only when pyproj is installed."""
    columns: dict[str, list[Any]] = {
        "crs": [crs_name(g.crs) if g else None for g in georefs],
        "footprint_wkt": [footprint_wkt(g) if g else None for g in georefs],
    }
    if _pyproj() is not None:
        bounds = [lonlat_bounds(g) if g else (None,) * 4 for g in georefs]
        for k, name in enumerate(LONLAT_COLUMNS):
            columns[name] = [b[k] for b in bounds]
    return columns


def _geometry(georefs: Sequence[Georeference | None]) -> tuple[list[Any], str | None]:
    """Shapely footprints and their one CRS: native when the images share one, else EPSG:4326."""
    from shapely.geometry import Polygon

    names = {crs_name(g.crs): g.crs for g in georefs if g}
    if len(names) <= 1:
        return [Polygon(corners(g)) if g else None for g in georefs], next(iter(names.values()), None)
    return [Polygon(list(zip(*lonlat_ring(g)))) if g else None for g in georefs], WGS84


def write_parquet(frame: pd.DataFrame, georefs: Sequence[Georeference | None], out: Path) -> str | None:
    """Write ``frame`` with the georeference columns to ``out``: GeoParquet when geopandas is installed. Returns a
    note for the user when it had to write plain Parquet."""
    frame = frame.assign(**georeference_columns(georefs))
    try:
        import geopandas
    except ImportError:
        frame.to_parquet(out)
        return NO_GEOPANDAS
    geometry, crs = _geometry(georefs)
    geopandas.GeoDataFrame(frame, geometry=geometry, crs=crs).to_parquet(out)
    return None


def metadata_entry(georefs: Sequence[Georeference | None]) -> str:
    """The per-image georeference fields as one JSON list (a ``.safetensors`` header holds only strings)."""
    columns = georeference_columns(georefs)
    rows = [{name: values[i] for name, values in columns.items()} for i in range(len(georefs))]
    return json.dumps([row if row["crs"] is not None else None for row in rows])


def places(rows: Sequence[dict[str, Any] | None]) -> list[str]:
    """A short "where" per image for retrieval listings: lon/lat bounds when known, else the CRS, else ``-``."""
    out = []
    for row in rows:
        if row and all(row.get(c) is not None for c in LONLAT_COLUMNS):
            out.append("lon/lat " + ",".join(f"{row[c]:.5f}" for c in LONLAT_COLUMNS))
        else:
            out.append(row["crs"] if row and row.get("crs") else "-")
    return out


def index_rows(frame: pd.DataFrame) -> list[dict[str, Any]] | None:
    """The georeference fields of a Parquet index's rows, or None when it has none (a CT index)."""
    if "crs" not in frame.columns:
        return None
    wanted = [c for c in ("crs", *LONLAT_COLUMNS) if c in frame.columns]
    return [
        {c: (None if pd.isna(v) else v) for c, v in zip(wanted, values)}
        for values in frame[wanted].itertuples(index=False)
    ]
