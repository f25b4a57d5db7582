"""Read a CT image (NIfTI file, DICOM series folder, single or enhanced multi-frame DICOM file) as HU + affine.

Every reader returns the same thing, a :class:`CTVolume`: a float32 array in Hounsfield
units indexed ``(i, j, k)`` and a 4x4 affine mapping ``(i, j, k)`` to RAS+ world
millimetres. Preprocessing then treats NIfTI and DICOM identically.

Decoding is done by the field's libraries (nibabel for NIfTI, pydicom for DICOM pixel
data and its modality LUT for HU). What is written here is only the stacking of DICOM
slices: MONAI's ``PydicomReader`` orders a series by InstanceNumber (not by position
along the slice normal) and gives multi-frame files an identity affine, both of which
silently corrupt geometry, so slices are ordered by their projection on the normal and
the affine follows the DICOM formula (LPS), then flips to RAS.

``image_meta`` carries intensity and geometry that a dataset keeps *outside* its image
files (CT-RATE keeps rescale slope/intercept and spacing in a metadata CSV). Keys, all
optional: ``rescale_slope``, ``rescale_intercept`` (stored value -> HU), ``spacing``
``[x, y, z]`` mm, ``orientation_lps`` (6 direction cosines, DICOM ImageOrientationPatient)
and ``origin_lps`` (3, ImagePositionPatient). They apply to NIfTI files only.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut

from domainclip.errors import DataError

log = logging.getLogger(__name__)

LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])
NIFTI_SUFFIXES = (".nii", ".nii.gz")
AIR_HU = -1000.0
ALREADY_HU_AIR_FRACTION = 0.05  # share of air/lung voxels above which a file is taken to hold HU


@dataclass(frozen=True)
class CTVolume:
    """HU voxels ``(X, Y, Z)`` float32 and the voxel -> RAS+ mm affine."""

    array: np.ndarray
    affine: np.ndarray

    @property
    def spacing(self) -> tuple[float, float, float]:
        """Voxel size (mm) along the array axes."""
        return tuple(float(v) for v in np.linalg.norm(self.affine[:3, :3], axis=0))  # type: ignore[return-value]


def is_nifti(path: Path) -> bool:
    return path.name.lower().endswith(NIFTI_SUFFIXES)


def discover_ct_images(folder: Path) -> list[Path]:
    """Every NIfTI file, and every folder of DICOM files (one series each), under ``folder``, sorted."""
    found: list[Path] = []
    for path in sorted(folder.rglob("*")):
        if (
            path.is_file()
            and is_nifti(path)
            or path.is_dir()
            and any(f.is_file() and pydicom.misc.is_dicom(f) for f in path.iterdir())
        ):
            found.append(path)
    if any(f.is_file() and pydicom.misc.is_dicom(f) for f in folder.iterdir()):
        found.insert(0, folder)  # the folder itself is a series
    return found


def read_ct(path: Path, image_meta: Mapping[str, Any] | None = None) -> CTVolume:
    """Read ``path`` as a 3D CT volume in HU; raise :class:`DataError` naming the file and the reason."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: image not found")
    try:
        if path.is_dir():
            volume = _read_dicom_series(path)
        elif is_nifti(path):
            volume = _read_nifti(path, image_meta or {})
        elif pydicom.misc.is_dicom(path) or path.suffix.lower() == ".dcm":
            volume = _read_dicom_file(path)
        else:
            raise DataError(f"{path}: unknown image format (expected .nii, .nii.gz, a DICOM file or a DICOM folder)")
    except DataError:
        raise
    except Exception as exc:  # any decoder failure on user data is a data problem, named with its file
        raise DataError(f"{path}: unreadable image ({type(exc).__name__}: {exc})") from exc
    _require_3d(volume, path)
    return volume


def _require_3d(volume: CTVolume, path: Path) -> None:
    shape = volume.array.shape
    if volume.array.ndim != 3 or min(shape) < 2:
        raise DataError(f"{path}: not a 3D volume (shape {tuple(shape)}); a CT needs at least 2 voxels on each axis")
    if not np.isfinite(volume.affine).all() or abs(np.linalg.det(volume.affine[:3, :3])) < 1e-9:
        raise DataError(f"{path}: degenerate affine (voxel size or orientation missing)")


# --- NIfTI -------------------------------------------------------------------------------------------------------


def _read_nifti(path: Path, image_meta: Mapping[str, Any]) -> CTVolume:
    image = nib.load(str(path))
    shape = image.shape
    if len(shape) == 4 and shape[3] == 1:  # a 3D volume saved with a singleton time axis
        image = image.slicer[..., 0]
    if len(image.shape) != 3:
        raise DataError(f"{path}: not a 3D volume (shape {tuple(shape)})")
    if "rescale_slope" in image_meta or "rescale_intercept" in image_meta:
        stored = np.asarray(image.dataobj.get_unscaled(), dtype=np.float32)
        array = _rescale_stored_values(
            stored, float(image_meta.get("rescale_slope", 1.0)), float(image_meta.get("rescale_intercept", 0.0)), path
        )
    else:
        array = image.get_fdata(dtype=np.float32)
        _warn_if_ct_rate_without_metadata(array, path)
    affine = _affine_with_meta(np.asarray(image.affine, dtype=np.float64), image_meta)
    return CTVolume(np.ascontiguousarray(array, dtype=np.float32), affine)


_CT_RATE_NAME = re.compile(r"^(?:train|valid)_\d+_[a-z]+_\d+\.nii(?:\.gz)?$")


def _warn_if_ct_rate_without_metadata(array: np.ndarray, path: Path) -> None:
    """A CT-RATE volume read without its metadata CSV (``embed --images``, a manifest) holds stored values, not HU,
    unless CT-RATE's fix script rewrote it: say so rather than embed shifted intensities silently."""
    if not _CT_RATE_NAME.match(path.name):
        return
    air_fraction = _air_fraction(array)
    if air_fraction < ALREADY_HU_AIR_FRACTION:
        log.warning(
            "%s: a CT-RATE volume read without its metadata CSV, and its values do not look like HU (%.1f%% air "
            "voxels): the rescale slope/intercept were not applied; read it through the recipe's ct_rate layout "
            "(--recipe ... --split ...), which reads the slope and intercept from the metadata CSV",
            path,
            100 * air_fraction,
        )


def _rescale_stored_values(stored: np.ndarray, slope: float, intercept: float, path: Path) -> np.ndarray:
    """Apply slope/intercept from outside the file, unless the file already holds HU.

    CT-RATE ships stored values; its ``fix_metadata.py`` script rewrites files in HU.
    Both states exist on users' disks. A chest CT in HU has plenty of air and lung
    (-1000..-850 HU); stored values (here HU + 1024 and up) almost never fall in that band.
    """
    if slope == 1.0 and intercept == 0.0:
        return stored
    air_fraction = _air_fraction(stored)
    if air_fraction >= ALREADY_HU_AIR_FRACTION:
        log.info(
            "%s: %.0f%% of voxels at -1000..-850, values already in HU; not applying slope %s, intercept %s",
            path,
            100 * air_fraction,
            slope,
            intercept,
        )
        return stored
    return stored * np.float32(slope) + np.float32(intercept)


def _air_fraction(values: np.ndarray) -> float:
    """Share of voxels in the air / lung band of HU (-1150..-850), not counting a fill value.

    Why the fill is left out: scanners fill the corners outside the reconstruction circle with one constant
    (-1024, -2048, -3024 HU; as stored values that is -1024, -1000 at slope 2, ...), and such a fill can fall in
    the air band; counted, it made a stored volume look like HU and left it unscaled. The minimum is taken as a
    fill (or a clamp) when at least 1% of the voxels hold exactly it: real air and lung are never one constant.
    """
    sample = values[::4, ::4, ::4]
    if sample.size == 0:
        return 0.0
    lowest = sample.min()
    is_fill = np.count_nonzero(sample == lowest) >= 0.01 * sample.size
    counted = sample[sample > lowest] if is_fill else sample
    return np.count_nonzero(np.abs(counted - AIR_HU) <= 150.0) / max(sample.size, 1)


def _affine_with_meta(affine: np.ndarray, image_meta: Mapping[str, Any]) -> np.ndarray:
    """The header affine, or the geometry a dataset's metadata gives (see module docstring)."""
    spacing = image_meta.get("spacing")
    if spacing is None:
        return affine
    spacing_arr = np.asarray(spacing, dtype=np.float64)
    if "orientation_lps" in image_meta and "origin_lps" in image_meta:
        orientation = np.asarray(image_meta["orientation_lps"], dtype=np.float64)
        row, col = orientation[:3], orientation[3:6]
        lps = _lps_affine(
            row,
            col,
            np.cross(row, col) * spacing_arr[2],
            np.asarray(image_meta["origin_lps"]),
            (spacing_arr[0], spacing_arr[1]),
        )
        return LPS_TO_RAS @ lps
    # only voxel sizes known: keep the header's directions, replace its lengths
    directions = affine[:3, :3] / np.linalg.norm(affine[:3, :3], axis=0)
    fixed = affine.copy()
    fixed[:3, :3] = directions * spacing_arr
    return fixed


def _lps_affine(
    row: np.ndarray, col: np.ndarray, slice_step: np.ndarray, origin: np.ndarray, step_ij: tuple[float, float]
) -> np.ndarray:
    """DICOM affine (patient LPS) for arrays indexed (column i, row j, slice k).

    ``row``/``col`` are ImageOrientationPatient's two cosines; ``step_ij`` the spacing
    along them (PixelSpacing[1], PixelSpacing[0]).
    """
    affine = np.eye(4)
    affine[:3, 0] = row * step_ij[0]
    affine[:3, 1] = col * step_ij[1]
    affine[:3, 2] = slice_step
    affine[:3, 3] = origin
    return affine


# --- DICOM -------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Slice:
    """One 2D DICOM image (a file of a series, or a frame of an enhanced file) in HU."""

    hu: np.ndarray  # (rows, columns)
    orientation: np.ndarray  # (6,) ImageOrientationPatient
    position: np.ndarray  # (3,) ImagePositionPatient, LPS mm
    pixel_spacing: tuple[float, float]  # (between rows, between columns)
    thickness: float | None
    label: str


def _read_dicom_file(path: Path) -> CTVolume:
    ds = pydicom.dcmread(str(path))
    slices = _enhanced_frames(ds, path) if "PerFrameFunctionalGroupsSequence" in ds else [_classic_slice(ds, str(path))]
    _require_ct(ds, path)
    return _stack_slices(slices, path)


def _read_dicom_series(folder: Path) -> CTVolume:
    files = sorted(p for p in folder.iterdir() if p.is_file() and pydicom.misc.is_dicom(p))
    if not files:
        raise DataError(f"{folder}: folder holds no DICOM files (a series folder needs files with the DICM preamble)")
    datasets = [(f, ds) for f in files if "PixelData" in (ds := pydicom.dcmread(str(f)))]  # skip DICOMDIR, SR...
    if not datasets:
        raise DataError(f"{folder}: folder holds DICOM files but no images (no pixel data)")
    series = {str(ds.get("SeriesInstanceUID", "")) for _, ds in datasets}
    if len(series) > 1:
        raise DataError(f"{folder}: folder mixes {len(series)} DICOM series; point the image path at one series folder")
    if len(datasets) == 1 and "PerFrameFunctionalGroupsSequence" in datasets[0][1]:
        return _read_dicom_file(datasets[0][0])
    slices = [_classic_slice(ds, str(f)) for f, ds in datasets]
    for f, ds in datasets:
        _require_ct(ds, f)
    return _stack_slices(slices, folder)


def _require_ct(ds: Dataset, path: Path) -> None:
    modality = ds.get("Modality")
    if modality is not None and modality != "CT":
        raise DataError(f"{path}: modality is {modality!r}, not 'CT' (Hounsfield units are undefined)")


def _classic_slice(ds: Dataset, label: str) -> _Slice:
    for keyword in ("ImageOrientationPatient", "ImagePositionPatient", "PixelSpacing"):
        if keyword not in ds:
            raise DataError(f"{label}: DICOM tag {keyword} missing; cannot place the slice in space")
    try:
        pixels = ds.pixel_array
    except Exception as exc:  # truncated or undecodable pixel data
        raise DataError(f"{label}: cannot decode DICOM pixel data ({exc})") from exc
    hu = np.asarray(apply_modality_lut(pixels, ds), dtype=np.float32)
    return _Slice(
        hu=hu,
        orientation=np.asarray(ds.ImageOrientationPatient, dtype=np.float64),
        position=np.asarray(ds.ImagePositionPatient, dtype=np.float64),
        pixel_spacing=(float(ds.PixelSpacing[0]), float(ds.PixelSpacing[1])),
        thickness=_float_or_none(ds.get("SpacingBetweenSlices", ds.get("SliceThickness"))),
        label=label,
    )


def _enhanced_frames(ds: Dataset, path: Path) -> list[_Slice]:
    """Frames of an enhanced multi-frame image; per-frame functional groups override shared ones."""
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else Dataset()
    try:
        frames = ds.pixel_array
    except Exception as exc:
        raise DataError(f"{path}: cannot decode DICOM pixel data ({exc})") from exc
    if frames.ndim == 2:
        frames = frames[None]
    slices = []
    for index, per_frame in enumerate(ds.PerFrameFunctionalGroupsSequence):

        def group(keyword: str, per_frame: Dataset = per_frame, index: int = index) -> Dataset:
            for source in (per_frame, shared):
                if keyword in source:
                    return source[keyword].value[0]
            raise DataError(f"{path}: frame {index + 1} has no {keyword}; cannot place it in space")

        measures = group("PixelMeasuresSequence")
        try:
            rescale = group("PixelValueTransformationSequence")
        except DataError:
            rescale = ds  # top-level Rescale Slope/Intercept or none
        slices.append(
            _Slice(
                hu=np.asarray(apply_modality_lut(frames[index], rescale), dtype=np.float32),
                orientation=np.asarray(group("PlaneOrientationSequence").ImageOrientationPatient, dtype=np.float64),
                position=np.asarray(group("PlanePositionSequence").ImagePositionPatient, dtype=np.float64),
                pixel_spacing=(float(measures.PixelSpacing[0]), float(measures.PixelSpacing[1])),
                thickness=_float_or_none(measures.get("SpacingBetweenSlices", measures.get("SliceThickness"))),
                label=f"{path.name} frame {index + 1}",
            )
        )
    return slices


def _stack_slices(slices: list[_Slice], source: Path) -> CTVolume:
    """Order slices along the normal, check they form a regular grid, stack and build the RAS affine."""
    first = slices[0]
    for s in slices[1:]:
        if not np.allclose(s.orientation, first.orientation, atol=1e-4):
            raise DataError(f"{source}: {s.label} is oriented differently from {first.label}; not one volume")
        if s.hu.shape != first.hu.shape or not np.allclose(s.pixel_spacing, first.pixel_spacing, rtol=1e-4):
            raise DataError(f"{source}: {s.label} differs in size or pixel spacing from {first.label}")
    row, col = first.orientation[:3], first.orientation[3:]
    normal = np.cross(row, col)
    slices = sorted(slices, key=lambda s: float(s.position @ normal))
    heights = np.array([s.position @ normal for s in slices])
    if len(slices) > 1:
        gaps = np.diff(heights)
        if gaps.min() < 1e-3:
            raise DataError(
                f"{source}: two slices at the same position ({heights[int(np.argmin(gaps))]:.2f} mm); "
                "duplicate files or several series in one folder"
            )
        if gaps.max() - gaps.min() > max(0.01, 0.05 * float(np.median(gaps))):
            raise DataError(
                f"{source}: slice spacing is not uniform ({gaps.min():.2f}..{gaps.max():.2f} mm); missing slices?"
            )
        slice_step = (slices[-1].position - slices[0].position) / (len(slices) - 1)
    else:
        slice_step = normal * (first.thickness or 1.0)
    lps = _lps_affine(row, col, slice_step, slices[0].position, (first.pixel_spacing[1], first.pixel_spacing[0]))
    array = np.stack([s.hu.T for s in slices], axis=-1)  # (columns, rows, slices) = (i, j, k)
    return CTVolume(np.ascontiguousarray(array, dtype=np.float32), LPS_TO_RAS @ lps)


def _float_or_none(value: Any) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def volume_problem(volume: CTVolume, path: Path) -> str | None:
    """Why a decoded volume is unusable (NaN voxels), or None; the decoders reject everything else."""
    nan_voxels = int(np.isnan(volume.array).sum())
    if nan_voxels:
        return f"{path}: image has {nan_voxels} NaN voxel(s)"
    return None
