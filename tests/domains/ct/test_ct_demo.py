from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter

from domainclip.data.manifest import read_manifest
from domainclip.domains.ct import demo
from domainclip.domains.ct.preprocess import CTPreprocessor
from domainclip.domains.ct.readers import read_ct

FIVE_MM = {
    "spacing": [5.0, 5.0, 5.0],
    "size": [64, 64, 64],
    "hu_window": [-1000, 1000],
    "normalize": None,
    "orientation": "RAS",
}


def test_manifest_format_and_grouping(demo_manifest):
    table = pd.read_csv(demo_manifest)
    assert list(table.columns[:5]) == ["id", "patient_id", "image", "report", "report_id"]
    assert set(demo.DEMO_FINDINGS) <= set(table.columns) and {"time", "event", "split"} <= set(table.columns)
    records = read_manifest(demo_manifest)
    assert {r.patient_id for r in records} == {f"DEMO{i:04d}" for i in range(6)}
    assert all(set(r.findings) == set(demo.DEMO_FINDINGS) and r.has_survival and r.report.strip() for r in records)
    by_patient: dict[str, set[str]] = {}
    for r in records:
        by_patient.setdefault(r.patient_id, set()).add(r.split)
    assert all(len(s) == 1 for s in by_patient.values())
    for group in table.groupby("report_id"):  # reconstructions of one scan share report and labels
        rows = group[1]
        assert rows["report"].nunique() == 1 and rows["patient_id"].nunique() == 1


def test_volumes_are_real_nifti_in_hu_with_exact_affines(demo_manifest):
    records = read_manifest(demo_manifest)
    for record in records[:3]:
        volume = read_ct(record.image)
        assert volume.array.shape == demo.GRID_SHAPE
        np.testing.assert_allclose(volume.spacing, (demo.VOXEL_MM,) * 3)
        assert volume.array.min() <= -990 and 700 <= volume.array.max() <= 3071  # air ... bone
    # whichever way a volume is stored (RAS or LPS), the body centre maps to the same world point
    centres = []
    for record in records:
        volume = read_ct(record.image)
        body = np.argwhere(volume.array > -500).mean(0)
        centres.append((volume.affine @ np.append(body, 1.0))[:3])
    assert np.ptp(np.array(centres), axis=0).max() < 30.0  # patients jitter by +-10 mm around the isocentre


def test_same_seed_same_data_and_study_independent_of_n(tmp_path):
    a = demo.make_study(7, 2)
    b = demo.make_study(7, 2)
    assert a.report == b.report and a.findings == b.findings and (a.time, a.event) == (b.time, b.event)
    assert all(np.array_equal(x, y) for x, y in zip(a.volumes, b.volumes))
    assert not np.array_equal(a.volumes[0], demo.make_study(8, 2).volumes[0])


@pytest.mark.parametrize(
    "finding,min_excess_hu,changed_range",
    [
        ("renal mass", 150, (800, 4000)),
        ("liver lesion", 40, (500, 4000)),
        ("pleural effusion", 500, (1000, 20000)),
        ("cardiomegaly", 500, (1000, 20000)),
        ("splenomegaly", 500, (1000, 20000)),
        ("aortic aneurysm", 100, (200, 3000)),
        ("ascites", 60, (5000, 40000)),
    ],
)
def test_each_finding_is_visible_after_resampling_to_5mm(finding, min_excess_hu, changed_range):
    """Same patient with and without one finding, preprocessed to 5 mm / 64^3: a visible difference of organ scale."""
    from domainclip.domains.ct.readers import CTVolume

    preprocessor = CTPreprocessor(FIVE_MM)
    affine = np.diag([demo.VOXEL_MM] * 3 + [1.0])
    base = {f: False for f in demo.DEMO_FINDINGS}
    without = preprocessor.transform_volume(CTVolume(demo._phantom(base, np.random.default_rng(11)), affine))
    with_it = preprocessor.transform_volume(
        CTVolume(demo._phantom({**base, finding: True}, np.random.default_rng(11)), affine)
    )
    difference_hu = (with_it - without).abs() * 2000.0  # window [-1000, 1000] -> [0, 1]
    assert float(difference_hu.max()) >= min_excess_hu
    changed = int((difference_hu > 30).sum())
    assert changed_range[0] <= changed <= changed_range[1]


def test_cardiomegaly_enlarges_the_heart_and_effusion_fills_posterior_lung():
    base = {f: False for f in demo.DEMO_FINDINGS}
    normal = demo._phantom(base, np.random.default_rng(5))
    big_heart = demo._phantom({**base, "cardiomegaly": True}, np.random.default_rng(5))
    effusion = demo._phantom({**base, "pleural effusion": True}, np.random.default_rng(5))

    def lung_of(phantom):
        return (phantom > -900) & (phantom < -700)  # lung is -850 HU, outside air -1000

    lung = lung_of(normal)
    grown = (big_heart != normal) & (big_heart == 45.0)  # heart HU where the normal patient had lung/fat
    assert np.count_nonzero(grown) * demo.VOXEL_MM**3 > 300_000  # > 300 ml more heart (normal ~500 ml)
    assert np.count_nonzero(lung_of(big_heart)) < np.count_nonzero(lung)
    fluid = lung & (effusion > -100)
    assert np.count_nonzero(fluid) * demo.VOXEL_MM**3 > 50_000  # > 50 ml of dependent fluid
    posterior = np.argwhere(fluid)[:, 1].mean() < np.argwhere(lung)[:, 1].mean()  # y is anterior
    assert posterior


def test_survival_log_hazards_are_recovered_by_a_cox_model():
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(3000):
        findings = demo._draw_findings(rng)
        time, event = demo._draw_survival(findings, rng)
        rows.append({**{f: int(v) for f, v in findings.items()}, "time": time, "event": event})
    table = pd.DataFrame(rows)
    assert 0.3 < table["event"].mean() < 0.9  # censoring present, events frequent
    fit = CoxPHFitter().fit(table, duration_col="time", event_col="event")
    for finding, log_hazard in demo.SURVIVAL_LOG_HAZARD.items():
        assert fit.params_[finding] == pytest.approx(log_hazard, abs=0.15), finding


def test_ensure_demo_writes_once(tmp_path):
    manifest = demo.ensure_demo(tmp_path / "d", n=2, seed=0)
    stamp = manifest.stat().st_mtime_ns
    assert demo.ensure_demo(tmp_path / "d", n=2, seed=0) == manifest
    assert manifest.stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left behind
