from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np
import pydicom
import pytest
from dicom_series import SERIES_SLICES, SERIES_STEP_MM, write_ct_series
from monai.data import PydicomReader
from pydicom.data import get_testdata_file

from domainclip.domains.ct.readers import read_ct
from domainclip.errors import DataError

CT_SMALL_SPACING = 0.661468


def canonical(array: np.ndarray, affine: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    image = nib.as_closest_canonical(nib.Nifti1Image(np.asarray(array, dtype=np.float32), affine))
    return np.asarray(image.dataobj), image.affine


def test_dicom_series_shape_spacing_and_hu(ct_series):
    volume = read_ct(ct_series)
    assert volume.array.shape == (128, 128, SERIES_SLICES)
    assert volume.array.dtype == np.float32
    np.testing.assert_allclose(volume.spacing, (CT_SMALL_SPACING, CT_SMALL_SPACING, SERIES_STEP_MM), rtol=1e-5)
    # CT_small stores intercept -1024: air reads near -1000 HU, nothing beyond the CT range
    assert -1100 <= volume.array.min() <= -800
    assert 500 <= volume.array.max() <= 3100


def test_dicom_series_is_ordered_by_position_not_instance_number(ct_series):
    volume = read_ct(ct_series)
    np.testing.assert_array_equal(volume.array[0, 0, :], -1024 + np.arange(SERIES_SLICES))
    # slice k lies k steps along +z (patient superior) from the first slice
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    np.testing.assert_allclose(
        volume.affine[:3, 3],
        [-template.ImagePositionPatient[0], -template.ImagePositionPatient[1], template.ImagePositionPatient[2]],
        atol=1e-4,
    )
    np.testing.assert_allclose(volume.affine[:3, 2], [0, 0, SERIES_STEP_MM], atol=1e-6)


def test_dicom_series_matches_monai_pydicom_reader_in_world_space(ct_series):
    """MONAI stacks by InstanceNumber (reversed here); in world space both must agree voxel for voxel."""
    ours = read_ct(ct_series)
    reader = PydicomReader()
    monai_array, meta = reader.get_data(reader.read(str(ct_series)))
    ours_canonical, ours_affine = canonical(ours.array, ours.affine)
    monai_canonical, monai_affine = canonical(monai_array, np.asarray(meta["affine"]))
    np.testing.assert_allclose(ours_affine, monai_affine, atol=1e-4)
    np.testing.assert_array_equal(ours_canonical, monai_canonical)


def test_enhanced_multiframe_ct():
    volume = read_ct(Path(get_testdata_file("eCT_Supplemental.dcm")))
    assert volume.array.shape == (512, 512, 2)
    np.testing.assert_allclose(volume.spacing, (0.388672, 0.388672, 10.0), rtol=1e-5)
    assert -1100 <= volume.array.min() <= -900 and 0 < volume.array.max() < 3100
    # frames are stored out of position order (-149 mm is frame 2); slices follow the normal (0, 0, -1) in LPS
    np.testing.assert_allclose(volume.affine[2, 3], -149.0)
    np.testing.assert_allclose(volume.affine[:3, 2], [0, 0, -10.0])


def test_truncated_dicom_is_a_clear_data_error():
    with pytest.raises(DataError, match=r"MR_truncated\.dcm: cannot decode DICOM pixel data"):
        read_ct(Path(get_testdata_file("MR_truncated.dcm")))


def test_single_slice_and_non_ct_dicom_are_refused(tmp_path):
    with pytest.raises(DataError, match=r"CT_small\.dcm: not a 3D volume \(shape \(128, 128, 1\)\)"):
        read_ct(Path(get_testdata_file("CT_small.dcm")))
    with pytest.raises(DataError, match="modality is 'MR'"):
        read_ct(Path(get_testdata_file("MR_small.dcm")))


def test_folder_with_two_series_is_refused(tmp_path):
    folder = write_ct_series(tmp_path / "mixed", n=3)
    write_ct_series(tmp_path / "other", n=3)
    for f in (tmp_path / "other").iterdir():
        shutil.copy(f, folder / f"other_{f.name}")
    with pytest.raises(DataError, match="mixes 2 DICOM series"):
        read_ct(folder)


def test_series_with_missing_slice_is_refused(tmp_path):
    folder = write_ct_series(tmp_path / "gap", n=5)
    files = sorted(folder.iterdir(), key=lambda p: pydicom.dcmread(p).ImagePositionPatient[2])
    files[2].unlink()
    with pytest.raises(DataError, match="slice spacing is not uniform"):
        read_ct(folder)


def test_nifti_applies_header_scaling_and_keeps_affine(tmp_path):
    hu = np.random.default_rng(0).integers(-1000, 1500, size=(6, 5, 4)).astype(np.float32)
    affine = np.array([[-0.8, 0, 0, 10], [0, -0.8, 0, 20], [0, 0, 2.0, -30], [0, 0, 0, 1]])
    image = nib.Nifti1Image((hu + 1024).astype(np.uint16), affine)
    image.header.set_slope_inter(1.0, -1024.0)
    nib.save(image, tmp_path / "scaled.nii.gz")
    volume = read_ct(tmp_path / "scaled.nii.gz")
    np.testing.assert_array_equal(volume.array, hu)
    np.testing.assert_allclose(volume.affine, affine)
    np.testing.assert_allclose(volume.spacing, (0.8, 0.8, 2.0))


def test_nifti_singleton_time_axis_is_squeezed_and_2d_is_refused(tmp_path):
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 3, 1), np.int16), np.eye(4)), tmp_path / "t1.nii")
    assert read_ct(tmp_path / "t1.nii").array.shape == (4, 4, 3)
    nib.save(nib.Nifti1Image(np.zeros((4, 4), np.int16), np.eye(4)), tmp_path / "flat.nii.gz")
    with pytest.raises(DataError, match=r"flat\.nii\.gz: not a 3D volume"):
        read_ct(tmp_path / "flat.nii.gz")


def test_truncated_nifti_is_a_data_error(tmp_path):
    data = np.random.default_rng(1).integers(-1000, 1000, size=(16, 16, 16)).astype(np.int16)
    nib.save(nib.Nifti1Image(data, np.eye(4)), tmp_path / "full.nii.gz")
    payload = (tmp_path / "full.nii.gz").read_bytes()
    (tmp_path / "cut.nii.gz").write_bytes(payload[: len(payload) // 2])
    with pytest.raises(DataError, match=r"cut\.nii\.gz: unreadable image"):
        read_ct(tmp_path / "cut.nii.gz")


def test_external_rescale_and_geometry_hints(tmp_path):
    """CT-RATE style: stored values + a wrong header, with slope/intercept/geometry from a CSV."""
    hu = np.full((8, 8, 6), -1000.0, np.float32)
    hu += 5.0 * (np.indices(hu.shape).sum(axis=0) % 5)  # air varies; one constant at the minimum is a fill
    hu[2:6, 2:6, :] = 40.0
    nib.save(nib.Nifti1Image((hu + 1024).astype(np.uint16), np.eye(4)), tmp_path / "stored.nii.gz")
    meta = {
        "rescale_slope": 1.0,
        "rescale_intercept": -1024.0,
        "spacing": [0.7, 0.7, 1.5],
        "orientation_lps": [1, 0, 0, 0, 1, 0],
        "origin_lps": [-5.0, -6.0, -7.0],
    }
    volume = read_ct(tmp_path / "stored.nii.gz", meta)
    np.testing.assert_array_equal(volume.array, hu)
    expected = np.diag([-0.7, -0.7, 1.5, 1.0])
    expected[:3, 3] = [5.0, 6.0, -7.0]
    np.testing.assert_allclose(volume.affine, expected)
    # the same hints on a file already in HU (CT-RATE's fix_metadata.py output) must not shift it again
    nib.save(nib.Nifti1Image(hu.astype(np.int16), expected), tmp_path / "fixed.nii.gz")
    np.testing.assert_array_equal(read_ct(tmp_path / "fixed.nii.gz", meta).array, hu)
    # spacing alone rescales the header's axes and keeps their directions
    flipped = np.diag([-1.0, 1.0, 1.0, 1.0])
    nib.save(nib.Nifti1Image(hu.astype(np.int16), flipped), tmp_path / "dirs.nii.gz")
    only_spacing = read_ct(tmp_path / "dirs.nii.gz", {"spacing": [0.5, 0.6, 3.0]})
    np.testing.assert_allclose(np.diag(only_spacing.affine)[:3], [-0.5, 0.6, 3.0])


def test_stored_values_with_a_fill_in_the_air_band_are_still_rescaled(tmp_path):
    """Stored values whose fill outside the reconstruction circle is -1024 (HU -2048 after the intercept): the
    fill alone sits in HU's air band, and must not make the file look as if it already held HU."""
    rng = np.random.default_rng(0)
    hu = rng.normal(-1000.0, 8.0, (16, 16, 8)).astype(np.float32)  # air
    hu[4:12, 4:12, :] = rng.normal(-850.0, 20.0, (8, 8, 8))  # lung
    hu[7:9, 7:9, :] = 40.0
    stored = np.round(hu + 1024).astype(np.int16)
    stored[:3, :3, :] = -1024  # the fill, as stored
    nib.save(nib.Nifti1Image(stored, np.eye(4)), tmp_path / "filled.nii.gz")
    volume = read_ct(tmp_path / "filled.nii.gz", {"rescale_slope": 1.0, "rescale_intercept": -1024.0})
    np.testing.assert_allclose(volume.array[8, 8], 40.0)
    assert float(np.median(volume.array[4:12, 4:12])) < -800.0


def test_unknown_and_missing_files(tmp_path):
    with pytest.raises(DataError, match="image not found"):
        read_ct(tmp_path / "nope.nii.gz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="unknown image format"):
        read_ct(tmp_path / "notes.txt")
    (tmp_path / "fake.nii.gz").write_bytes(gzip.compress(b"not a nifti header" * 30))
    with pytest.raises(DataError, match=r"fake\.nii\.gz: unreadable image"):
        read_ct(tmp_path / "fake.nii.gz")


def test_non_image_dicom_files_in_a_series_folder_are_ignored(tmp_path):
    folder = write_ct_series(tmp_path / "with_extra", n=3)
    extra = pydicom.dcmread(next(folder.iterdir()))
    del extra.PixelData  # e.g. a structured report or DICOMDIR-like object next to the images
    extra.save_as(folder / "zz_no_pixels.dcm")
    assert read_ct(folder).array.shape == (128, 128, 3)
    for f in list(folder.iterdir()):
        if f.name != "zz_no_pixels.dcm":
            f.unlink()
    with pytest.raises(DataError, match="no images"):
        read_ct(folder)
