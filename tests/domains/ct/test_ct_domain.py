from __future__ import annotations

import nibabel as nib
import numpy as np
import pytest
from pydicom.data import get_testdata_file

from domainclip.config.schema import DataConfig, DemoConfig
from domainclip.domains import get_domain
from domainclip.domains.ct import CTDomain
from domainclip.domains.ct.config import CTPreprocessConfig as PreprocessConfig
from domainclip.domains.ct.demo import DEMO_VERSION
from domainclip.domains.ct.preprocess import CTPreprocessor
from domainclip.errors import RecipeError


def test_registry_returns_the_ct_plugin():
    domain = get_domain("ct")
    assert isinstance(domain, CTDomain)
    assert (domain.name, domain.stages) == ("ct", ("mae", "align"))
    assert domain.input_shape(PreprocessConfig(size=(64, 64, 48))) == (1, (64, 64, 48))
    with pytest.raises(RecipeError, match="preprocess.size"):
        domain.input_shape(PreprocessConfig())
    assert set(domain.layouts()) == {"manifest", "ct-rate", "demo"}
    assert domain.default_vocabulary().name == "vocabulary.yaml"
    preprocessor = domain.build_preprocessor(PreprocessConfig(spacing=(5, 5, 5), size=(8, 8, 8)))
    assert isinstance(preprocessor, CTPreprocessor) and preprocessor.config["size"] == [8, 8, 8]


def test_demo_layout_generates_into_the_cache_once(tmp_path):
    cfg = DataConfig(layout="demo", demo=DemoConfig(n=4, seed=1), cache_dir=tmp_path)
    records, problems = CTDomain().layouts()["demo"](cfg)
    assert problems == []
    folder = tmp_path / "demo" / f"ct-v{DEMO_VERSION}-n4-s1"  # versioned: an older generator's cache is not reused
    assert (folder / "manifest.csv").is_file()
    assert {r.patient_id for r in records} == {f"DEMO{i:04d}" for i in range(4)}
    assert all(r.image.is_file() and r.image.parent == folder / "images" for r in records)
    assert {r.split for r in records} == {"train", "valid", "test"}
    assert CTDomain().layouts()["demo"](cfg) == (records, [])


def test_manifest_layout_needs_a_manifest():
    with pytest.raises(RecipeError, match="data.manifest"):
        CTDomain().layouts()["manifest"](DataConfig(layout="manifest"))


def test_check_image_names_each_kind_of_bad_file(tmp_path, ct_series):
    domain = CTDomain()
    good = np.zeros((4, 4, 4), np.float32)
    nib.save(nib.Nifti1Image(good, np.eye(4)), tmp_path / "good.nii.gz")
    assert domain.check_image(tmp_path / "good.nii.gz") is None
    assert domain.check_image(ct_series) is None
    good[1, 2, 3] = np.nan
    nib.save(nib.Nifti1Image(good, np.eye(4)), tmp_path / "nan.nii.gz")
    assert domain.check_image(tmp_path / "nan.nii.gz") == f"{tmp_path / 'nan.nii.gz'}: image has 1 NaN voxel(s)"
    assert "cannot decode DICOM pixel data" in domain.check_image(get_testdata_file("MR_truncated.dcm"))
    assert "not a 3D volume" in domain.check_image(get_testdata_file("CT_small.dcm"))
