"""Tile coordinates and features in TRIDENT's h5 form (written and read) and CLAM's (read), in TRIDENT's layout.

What the tools write (read from their sources, mahmoodlab/TRIDENT and mahmoodlab/CLAM):

- TRIDENT patches ``<job>/<mag>x_<ps>px_<ov>px_overlap/patches/<slide>_patches.h5``: dataset ``coords`` int64
  (N, 2) level-0 top-left (x, y) carrying the attributes ``patch_size`` (px at the target magnification),
  ``patch_size_level0``, ``level0_magnification``, ``target_magnification``, ``overlap``, ``name``,
  ``savetodir``, ``level0_width``, ``level0_height``; no file attributes.
- TRIDENT features ``.../features_<encoder>/<slide>.h5``: ``features`` float32 (N, D) with attributes ``name``,
  ``savetodir``, ``encoder``, and ``coords`` again with the patches file's attributes.
- CLAM patches ``<dir>/patches/<slide>.h5``: ``coords`` (int) with ``patch_size`` and ``patch_level`` (the
  pyramid level read), ``downsample``, ``level_dim``, ``downsampled_level_dim``, ``name``, ``save_path``.
- CLAM features ``<feat_dir>/h5_files/<slide>.h5``: ``features`` float32 and ``coords`` int32, no attributes.

Ours are TRIDENT's files (every TRIDENT attribute in its place, so TRIDENT and its slide encoders read them) plus
the issue's attributes on the file itself and a ``complete`` attribute written last. Files are written under a
temporary name and renamed, so a file under its final name is always whole; :func:`features_complete` tells our
finished file from anything else (a foreign or unfinished one) so a resumed extraction knows what to redo.
Magnification is ``10 / mpp`` (0.5 um/px is 20x).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from domainclip.domains.wsi.atomic import atomic_path
from domainclip.domains.wsi.tiling import TileGrid
from domainclip.errors import DataError

FEATURE_ATTRS = (
    "patch_size",
    "patch_size_level0",
    "level0_magnification",
    "target_magnification",
    "overlap",
    "level0_width",
    "level0_height",
    "name",
    "encoder",
)
"""File attributes of every feature file we write (the issue's list)."""

COORDS_ATTRS = tuple(key for key in FEATURE_ATTRS if key != "encoder") + ("savetodir",)
"""What TRIDENT keeps on the ``coords`` dataset."""

COMPLETE = "complete"
"""File attribute written last: present and true only on a file this module finished."""

_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]*$")


def magnification(mpp: float) -> float:
    """Objective magnification of a resolution in microns per pixel (the field's convention: 10 / mpp)."""
    return 10.0 / mpp


def format_magnification(value: float) -> str:
    """TRIDENT's spelling in folder names: ``20`` for 20.0, ``2.5`` for 2.5."""
    return str(round(value)) if abs(value - round(value)) < 1e-9 else f"{value:g}"


@dataclass(frozen=True)
class TridentDirs:
    """TRIDENT's folder layout of one job and one tiling (and one encoder's features)."""

    job_dir: Path
    thumbnails: Path
    contours: Path
    contours_geojson: Path
    tiling: Path
    """``<job>/<mag>x_<ps>px_<ov>px_overlap``: everything that depends on the tiling."""
    patches: Path
    visualization: Path
    features: Path
    """``<tiling>/features_<encoder>``."""

    def patches_file(self, name: str) -> Path:
        return self.patches / f"{name}_patches.h5"

    def features_file(self, name: str) -> Path:
        return self.features / f"{name}.h5"

    def geojson_file(self, name: str) -> Path:
        return self.contours_geojson / f"{name}.geojson"


def trident_dirs(
    job_dir: Path, target_magnification: float, patch_size: int, overlap: int, encoder: str
) -> TridentDirs:
    """The paths of TRIDENT's layout under ``job_dir`` (nothing is created)."""
    if not _SAFE_NAME.match(encoder):
        raise ValueError(f"encoder name {encoder!r} cannot name a folder (letters, digits, '._+-' only)")
    job_dir = Path(job_dir)
    tiling = job_dir / f"{format_magnification(target_magnification)}x_{patch_size}px_{overlap}px_overlap"
    return TridentDirs(
        job_dir=job_dir,
        thumbnails=job_dir / "thumbnails",
        contours=job_dir / "contours",
        contours_geojson=job_dir / "contours_geojson",
        tiling=tiling,
        patches=tiling / "patches",
        visualization=tiling / "visualization",
        features=tiling / f"features_{encoder}",
    )


def grid_attrs(grid: TileGrid, name: str, encoder: str | None = None) -> dict[str, Any]:
    """The attributes of ``grid``'s files (``encoder`` only for feature files)."""
    attrs: dict[str, Any] = {
        "patch_size": int(grid.tile_size),
        "patch_size_level0": int(grid.patch_size_level0),
        "level0_magnification": magnification(grid.mpp_level0),
        "target_magnification": magnification(grid.target_mpp),
        "overlap": int(grid.overlap),
        "level0_width": int(grid.level0_width),
        "level0_height": int(grid.level0_height),
        "name": str(name),
    }
    if encoder is not None:
        attrs["encoder"] = str(encoder)
    return attrs


def _coords_array(coords: np.ndarray) -> np.ndarray:
    array = np.asarray(coords)
    if array.size == 0:
        return np.empty((0, 2), np.int64)
    if array.ndim != 2 or array.shape[1] != 2:
        raise ValueError(f"coords must be (N, 2), got shape {array.shape}")
    return array.astype(np.int64)


def write_coords(path: Path, grid: TileGrid, name: str) -> Path:
    """TRIDENT's patches file for ``grid`` (``coords`` with its attributes), written atomically."""
    import h5py

    path = Path(path)
    attrs = {**grid_attrs(grid, name), "savetodir": str(path.parent.parent)}
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        coords = h5.create_dataset("coords", data=_coords_array(grid.coords))
        coords.attrs.update(attrs)
        h5.attrs.update(attrs)
        h5.attrs[COMPLETE] = True
    return path


def write_features(path: Path, coords: np.ndarray, features: np.ndarray, attrs: Mapping[str, Any]) -> Path:
    """Write a TRIDENT feature file: ``coords`` int64 (N, 2), ``features`` float32 (N, D), the attributes.

    ``attrs`` must hold :data:`FEATURE_ATTRS` (see :func:`grid_attrs`); they go on the file, TRIDENT's subset on
    ``coords`` and ``name`` / ``encoder`` on ``features``. Written to a temporary file, renamed into place,
    ``complete`` set last.
    """
    import h5py

    path = Path(path)
    if missing := [key for key in FEATURE_ATTRS if key not in attrs]:
        raise ValueError(f"{path}: feature attributes missing {missing}")
    coords = _coords_array(coords)
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) != len(coords):
        raise ValueError(f"{path}: features must be (N, D) with N = {len(coords)} coords, got {features.shape}")
    file_attrs = {key: attrs[key] for key in attrs if key != COMPLETE}
    coords_attrs = {key: attrs[key] for key in COORDS_ATTRS if key in attrs}
    coords_attrs.setdefault("savetodir", str(path.parent.parent))
    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("coords", data=coords).attrs.update(coords_attrs)
        feats = h5.create_dataset("features", data=features)
        feats.attrs.update({"name": attrs["name"], "savetodir": str(path.parent), "encoder": attrs["encoder"]})
        h5.attrs.update(file_attrs)
        h5.attrs[COMPLETE] = True
    return path


@dataclass(frozen=True, eq=False)
class FeatureFile:
    """One slide's tile features as read from a TRIDENT, CLAM or domainclip h5 file."""

    path: Path
    coords: np.ndarray
    """(N, 2) int64 level-0 top-left (x, y)."""
    features: np.ndarray
    """(N, D) float32."""
    attrs: dict[str, Any]
    """``coords``' attributes, then ``features``' ``name`` / ``encoder``, then the file's (later ones win)."""
    flavor: Literal["domainclip", "trident", "clam"]

    def __len__(self) -> int:
        return len(self.coords)


def _plain(value: Any) -> Any:
    """An h5 attribute as a plain Python value (str, int, float, bool or list)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _clam_level0_patch_size(attrs: dict[str, Any]) -> None:
    """CLAM keeps the patch size at ``patch_level`` with that level's ``downsample``; add the level-0 size."""
    if "patch_size_level0" in attrs or "patch_size" not in attrs:
        return
    downsample = attrs.get("downsample")
    if isinstance(downsample, list) and downsample:
        downsample = downsample[0]
    if attrs.get("patch_level", 0) == 0 and downsample is None:
        downsample = 1.0
    if isinstance(downsample, int | float):
        attrs["patch_size_level0"] = round(float(attrs["patch_size"]) * float(downsample))


def _dataset(h5: Any, key: str, path: Path) -> Any:
    import h5py

    if key not in h5 or not isinstance(h5[key], h5py.Dataset):
        hint = " (a patches file, not a feature file?)" if key == "features" and "coords" in h5 else ""
        raise DataError(f"{path}: no '{key}' dataset{hint}; found {sorted(h5.keys())}")
    return h5[key]


def read_features(path: Path) -> FeatureFile:
    """Read a feature h5 written by this module, by TRIDENT or by CLAM.

    Bad files (not HDF5, a dataset missing, coords not (N, 2), features not (N, D), N differing) raise
    :class:`DataError` naming the file.
    """
    import h5py

    path = Path(path)
    try:
        h5 = h5py.File(path, "r")
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable h5 feature file ({exc})") from exc
    with h5:
        coords_ds, features_ds = _dataset(h5, "coords", path), _dataset(h5, "features", path)
        coords, features = coords_ds[()], features_ds[()]
        attrs = {key: _plain(value) for key, value in coords_ds.attrs.items()}
        attrs.update({key: _plain(features_ds.attrs[key]) for key in ("name", "encoder") if key in features_ds.attrs})
        file_attrs = {key: _plain(value) for key, value in h5.attrs.items()}
    complete = bool(file_attrs.pop(COMPLETE, False))
    attrs.update(file_attrs)
    if complete:
        flavor = "domainclip"
    elif "patch_size_level0" in attrs or "level0_magnification" in attrs:
        flavor = "trident"
    else:
        flavor = "clam"
        _clam_level0_patch_size(attrs)
    if features.ndim == 1 and features.size == 0:
        features = features.reshape(0, 0)  # TRIDENT's file for a slide without tiles
    if coords.size == 0 and coords.ndim <= 2:
        coords = coords.reshape(0, 2)
    if coords.ndim != 2 or coords.shape[1] != 2:
        raise DataError(f"{path}: 'coords' must be (N, 2) level-0 (x, y), got shape {coords.shape}")
    if features.ndim != 2:
        raise DataError(f"{path}: 'features' must be (N, D), got shape {features.shape}")
    if len(features) != len(coords):
        raise DataError(f"{path}: {len(features)} feature rows but {len(coords)} coords")
    if not np.issubdtype(features.dtype, np.floating):
        raise DataError(f"{path}: 'features' must be floating point, got {features.dtype}")
    if np.issubdtype(coords.dtype, np.floating):
        coords = np.rint(coords)
    return FeatureFile(
        path=path,
        coords=coords.astype(np.int64),
        features=features.astype(np.float32, copy=False),
        attrs=attrs,
        flavor=flavor,
    )


def features_complete(path: Path) -> bool:
    """Whether ``path`` is a feature file this module finished (``complete`` set, datasets consistent).

    False for a missing, unreadable or truncated file and for files of other tools, so a resumed extraction redoes
    exactly the slides whose file is not ours and whole. Never raises.
    """
    import h5py

    try:
        with h5py.File(Path(path), "r") as h5:
            if not bool(h5.attrs.get(COMPLETE, False)) or "coords" not in h5 or "features" not in h5:
                return False
            coords, features = h5["coords"], h5["features"]
            return coords.ndim == 2 and features.ndim == 2 and coords.shape[0] == features.shape[0]
    except (OSError, ValueError, KeyError):
        return False


FEATURE_SUFFIXES = (".h5", ".hdf5")


def is_feature_file(path: Path) -> bool:
    """Whether ``path`` names a feature file (by suffix) rather than a slide."""
    return Path(path).suffix.lower() in FEATURE_SUFFIXES


def find_feature_files(folder: Path) -> list[Path]:
    """The feature files directly in ``folder`` (TRIDENT's ``features_<encoder>/``, CLAM's ``h5_files/``), sorted.

    Not recursive: a TRIDENT job folder also holds ``patches/*_patches.h5`` (coordinates only), which are no bags.
    """
    return sorted(p for p in Path(folder).iterdir() if p.is_file() and is_feature_file(p))


def feature_source(paths: list[Path]) -> dict[str, Any]:
    """What a set of feature files holds: ``{"width": D, "encoder": name or None}``; files that disagree (another
    width, another named encoder) are an error naming the first of them."""
    import h5py

    width, encoder, first = None, None, None
    for path in paths:
        try:
            with h5py.File(Path(path), "r") as h5:
                dataset = _dataset(h5, "features", Path(path))
                shape = dataset.shape
                named = _plain(h5.attrs.get("encoder", dataset.attrs.get("encoder")))  # where read_features finds it
        except OSError as exc:
            raise DataError(f"{path}: not a readable h5 feature file ({exc})") from exc
        if shape == (0,):
            continue  # TRIDENT's file of a slide without tiles: loading it says so
        if len(shape) != 2:
            raise DataError(f"{path}: 'features' must be (N, D), got shape {shape}")
        if width is None:
            width, encoder, first = int(shape[1]), named, path
        elif shape[1] != width or named != encoder:
            raise DataError(
                f"{path}: features {shape[1]} wide of encoder {named!r}, but {first} holds {width} wide ones of "
                f"{encoder!r}: one model trains on one encoder's features"
            )
    if width is None:
        raise DataError("no feature files")
    return {"width": width, "encoder": encoder}
