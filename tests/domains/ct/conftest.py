"""Shared CT fixtures: a DICOM series from pydicom's real CT slice, and a tiny demo set."""

from __future__ import annotations

from pathlib import Path

import pytest
from dicom_series import write_ct_series


@pytest.fixture(scope="session")
def ct_series(tmp_path_factory) -> Path:
    return write_ct_series(tmp_path_factory.mktemp("dicom") / "series")


@pytest.fixture(scope="session")
def demo_manifest(tmp_path_factory) -> Path:
    from domainclip.domains.ct.demo import write_demo

    return write_demo(tmp_path_factory.mktemp("demo") / "ct", n=6, seed=3)
