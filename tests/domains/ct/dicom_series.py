"""DICOM series built from pydicom's real CT slice (imported by tests and conftest)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
from pydicom.data import get_testdata_file
from pydicom.uid import generate_uid

SERIES_SLICES = 5
SERIES_STEP_MM = 2.5


def write_ct_series(
    folder: Path, n: int = SERIES_SLICES, step: float = SERIES_STEP_MM, series_uid: str | None = None
) -> Path:
    """``n`` copies of pydicom's ``CT_small.dcm`` stacked along its slice normal.

    InstanceNumber runs *against* the position order (as some scanners write it), and
    pixel (row 0, column 0) of the slice at height ``k`` is stored as ``k`` (HU -1024 + k)
    so the stacking order can be checked.
    """
    folder.mkdir(parents=True, exist_ok=True)
    template = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
    normal = np.cross(
        np.asarray(template.ImageOrientationPatient[:3], float), np.asarray(template.ImageOrientationPatient[3:], float)
    )
    uid = series_uid or generate_uid()
    for k in range(n):
        ds = pydicom.dcmread(get_testdata_file("CT_small.dcm"))
        ds.ImagePositionPatient = [
            float(v) for v in np.asarray(template.ImagePositionPatient, float) + normal * step * k
        ]
        ds.InstanceNumber = n - k
        ds.SOPInstanceUID = generate_uid()
        ds.SeriesInstanceUID = uid
        pixels = ds.pixel_array.copy()
        pixels[0, 0] = k
        ds.PixelData = pixels.tobytes()
        ds.save_as(folder / f"slice_{(k * 7) % n:03d}.dcm")  # file names in neither order
    return folder
