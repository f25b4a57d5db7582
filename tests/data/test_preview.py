"""Report previews: the stretch ignores outliers and draws no-data black, the mid-slices are the volume's
centre planes in radiological orientation, and the size cap keeps the aspect."""

from __future__ import annotations

import numpy as np

from domainclip.data.preview import as_rgb, fit_within, orthogonal_mid_slices, stretch_to_uint8


def test_stretch_uses_percentiles_and_draws_nodata_black() -> None:
    values = np.linspace(0.0, 1.0, 100).reshape(10, 10)
    values[0, 0] = 1000.0  # one hot pixel must not darken the rest
    values[9, 9] = np.nan
    out = stretch_to_uint8(values)
    assert out.dtype == np.uint8 and out[0, 0] == 255 and out[9, 9] == 0
    assert 100 < out[5, 0] < 155, "the middle of the range stays mid-grey"
    rgb = stretch_to_uint8(np.stack([values, 2 * values, values + 5], axis=-1))
    assert np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2]), "per channel"


def test_mid_slices_are_the_centre_planes_side_by_side() -> None:
    volume = np.zeros((20, 30, 10))
    volume[10, 15, 5] = 1.0  # the centre voxel lies on all three mid-planes
    volume[:, 29, 5] = 2.0  # the most anterior row (RAS: +y) of the axial mid-slice
    picture = orthogonal_mid_slices(volume, gap=4)
    assert picture.shape == (30, 20 + 4 + 20 + 4 + 30)  # axial 30x20, coronal 10x20, sagittal 10x30, padded
    axial = picture[:, :20]
    assert (axial[0] == 2.0).all(), "anterior points up in the axial slice"
    assert (picture == 1.0).sum() == 3


def test_fit_within_keeps_the_aspect_and_enlarges_small_chips_without_blur() -> None:
    chip = as_rgb(np.array([[0, 255], [255, 0]], dtype=np.uint8))
    big = fit_within(chip, 64)
    assert big.shape == (64, 64, 3) and set(np.unique(big)) == {0, 255}, "nearest neighbours: no blur"
    assert fit_within(np.zeros((100, 400, 3), np.uint8), 200).shape == (50, 200, 3)
