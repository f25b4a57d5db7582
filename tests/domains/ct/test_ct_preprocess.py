from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
import torch

from domainclip.domains.ct.config import CTPreprocessConfig as PreprocessConfig
from domainclip.domains.ct.preprocess import CTPreprocessor
from domainclip.errors import RecipeError

# normalize off: these tests read window-scaled values directly; test_normalisation_* covers it
CONFIG = {
    "spacing": [2.0, 2.0, 2.0],
    "size": [24, 24, 16],
    "hu_window": [-1000, 1000],
    "normalize": None,
    "orientation": "RAS",
}


def cube_volume() -> np.ndarray:
    """Air with a 0 HU block and a 1000 HU marker toward +x (patient right), +y (anterior) and +z."""
    hu = np.full((40, 36, 20), -1000.0, np.float32)
    hu[8:32, 8:28, 4:16] = 0.0
    hu[26:30, 22:26, 12:15] = 1000.0
    return hu


def write(path, array, affine):
    nib.save(nib.Nifti1Image(array.astype(np.int16), affine), path)
    return path


def test_output_contract_and_window_scaling(tmp_path):
    path = write(tmp_path / "cube.nii.gz", cube_volume(), np.diag([1.0, 1.0, 2.0, 1.0]))
    out = CTPreprocessor(CONFIG)(path)
    assert out.shape == (1, 24, 24, 16) and out.dtype == torch.float32
    assert float(out.min()) == 0.0 and float(out.max()) == pytest.approx(1.0)
    # 0 HU sits mid-window; the block's centre survives resampling unblurred
    assert float(out[0, 12, 12, 8]) == pytest.approx(0.5, abs=1e-5)


def test_config_is_json_and_rebuilds_identical_outputs(tmp_path):
    path = write(tmp_path / "cube.nii.gz", cube_volume(), np.diag([1.0, 1.0, 2.0, 1.0]))
    first = CTPreprocessor(PreprocessConfig(**CONFIG))
    config = json.loads(json.dumps(first.config))
    assert config == {
        "spacing": [2.0, 2.0, 2.0],
        "size": [24, 24, 16],
        "hu_window": [-1000.0, 1000.0],
        "normalize": None,
        "orientation": "RAS",
    }
    assert torch.equal(first(path), CTPreprocessor(config)(path))


def test_lps_stored_copy_gives_the_same_tensor(tmp_path):
    """Same world content stored RAS or flipped on x/y (LPS, as DICOM converters write): identical output."""
    hu = cube_volume()
    ras_affine = np.diag([1.0, 1.0, 2.0, 1.0])
    lps_affine = ras_affine @ np.array(
        [[-1, 0, 0, hu.shape[0] - 1], [0, -1, 0, hu.shape[1] - 1], [0, 0, 1, 0], [0, 0, 0, 1]], dtype=float
    )
    ras = CTPreprocessor(CONFIG)(write(tmp_path / "ras.nii.gz", hu, ras_affine))
    lps = CTPreprocessor(CONFIG)(write(tmp_path / "lps.nii.gz", hu[::-1, ::-1, :].copy(), lps_affine))
    torch.testing.assert_close(ras, lps)
    # and the marker ends up toward +x, +y, +z in RAS output
    marker = torch.nonzero(ras[0] > 0.9).float().mean(0)
    assert marker[0] > 12 and marker[1] > 12 and marker[2] > 8


def test_resampling_follows_physical_size(tmp_path):
    """A 24 mm block is 12 voxels at 2 mm whatever the input spacing."""
    hu = np.full((48, 48, 24), -1000.0, np.float32)
    hu[12:36, 12:36, 6:18] = 0.0  # 24 x 24 x 24 mm at 1 x 1 x 2 mm
    out = CTPreprocessor({**CONFIG, "size": None})(write(tmp_path / "b.nii.gz", hu, np.diag([1.0, 1.0, 2.0, 1.0])))
    assert out.shape == (1, 24, 24, 24)
    widths = [(out[0] > 0.25).any(dim=tuple(d for d in range(3) if d != axis)).sum().item() for axis in range(3)]
    assert widths == [12, 12, 12]


def test_crop_and_pad_to_size_with_air(tmp_path):
    path = write(tmp_path / "cube.nii.gz", cube_volume(), np.diag([1.0, 1.0, 2.0, 1.0]))
    out = CTPreprocessor({**CONFIG, "spacing": None, "size": [50, 10, 20]})(path)
    assert out.shape == (1, 50, 10, 20)
    assert float(out[0, :5].max()) == 0.0  # padded rows read as air (window minimum)


def test_normalisation_is_applied_last_and_once(tmp_path):
    """Default (0.2, 0.25): windowed values v become (v - 0.2) / 0.25; padding reads as normalised air."""
    path = write(tmp_path / "cube.nii.gz", cube_volume(), np.diag([1.0, 1.0, 2.0, 1.0]))
    windowed = CTPreprocessor({**CONFIG, "size": [50, 10, 20]})(path)
    default = {k: v for k, v in CONFIG.items() if k != "normalize"}
    normalised = CTPreprocessor({**default, "size": [50, 10, 20]})
    assert normalised.config["normalize"] == [0.2, 0.25]
    out = normalised(path)
    torch.testing.assert_close(out, (windowed - 0.2) / 0.25)
    assert float(out[0, :5].max()) == pytest.approx(-0.8)  # padded air
    assert float(out[0, 25, 5, 10]) == pytest.approx((0.5 - 0.2) / 0.25, abs=1e-5)  # 0 HU block


def test_invalid_configs_are_recipe_errors():
    with pytest.raises(RecipeError, match="normalize"):
        CTPreprocessor({**CONFIG, "normalize": [0.2, 0.0]})
    with pytest.raises(RecipeError, match="hu_window"):
        CTPreprocessor({**CONFIG, "hu_window": [500, -500]})
    with pytest.raises(RecipeError, match="spacings"):
        CTPreprocessor({**CONFIG, "spacings": [1, 1, 1]})
