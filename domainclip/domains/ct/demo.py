"""Synthetic torso CTs with known findings, reports and survival: the offline demo data set.

Each study is a phantom in Hounsfield units on a 96 x 80 x 96 grid of 4 mm voxels
(384 x 320 x 384 mm, RAS+): air, subcutaneous fat, muscle wall, visceral fat, lungs,
heart, aorta, spine, liver, spleen, kidneys and bowel, with patient variability (body
size, position) and scanner noise. Findings are drawn independently (prevalence
``FINDING_PREVALENCE``), each at the scale of an organ or a large mass, so that it survives
resampling to the quickstart's 6 mm voxels and lies in few of its ViT's 96 mm patches:
renal mass (6.8-8.4 cm, exophytic, enhancing at 75-95 HU), liver lesion (2-3 hypodense
necrotic masses of 4.4-6.4 cm), splenomegaly (spleen scaled by 1.5-1.7), aortic aneurysm
(infrarenal, 5-7 cm, fusiform), ascites (fluid replacing the intraperitoneal fat in front of
the kidneys), pleural effusion (dependent fluid in the posterior pleural space) and
cardiomegaly (heart scaled by 1.3-1.4).

Why this set: an earlier set with small findings (renal cyst 2.5-3.5 cm, kidney stone
1-1.4 cm, coronary calcification, a single 3-4.5 cm liver lesion) was not learnable by the
quickstart's ViT from ~250 training studies even *supervised* (held-out AUC 0.40-0.60 with
``benchmarks/ct_supervised_ceiling.py`` at commit 2cae2df, demo version 1), so no zero-shot
figure on it could say anything about the method. Bowel loops are painted only into fat: over the liver they looked like
hypodense liver lesions.

About 15 % of studies have a second reconstruction (sharper kernel: more noise) of the
same scan; both rows share the report, ``report_id``, findings and survival.
Half of the volumes are stored LPS (array flipped on x and y, affine with negative
x/y axes) so that orientation handling is exercised; every affine is exact.

Survival (months) follows a Weibull proportional-hazards model with censoring::

    eta   = sum_f SURVIVAL_LOG_HAZARD[f] * finding_f
    T     = WEIBULL_SCALE * (-log U * exp(-eta)) ** (1 / WEIBULL_SHAPE),   U ~ Uniform(0, 1)
    C     ~ Uniform(CENSOR_MIN, CENSOR_MAX)
    time  = min(T, C),  event = 1 if T <= C else 0

so S(t | x) = exp(-(t / WEIBULL_SCALE) ** WEIBULL_SHAPE * exp(eta)).

Study ``i`` depends only on ``(seed, i)``: the first ``n`` studies of a larger set are the
same files. Reports come from :func:`domainclip.domains.ct.demo_reports.make_report`.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
from scipy.ndimage import gaussian_filter

from domainclip.data.splits import split_patients
from domainclip.domains.ct.demo_reports import DEMO_FINDINGS, make_report
from domainclip.errors import DataError
from domainclip.progress import track

# Bumped whenever the generator's output changes: it names the default demo folder, so a cache
# written by an older version is never mistaken for the current data.
DEMO_VERSION = 2
FINDING_PREVALENCE = 0.3
SECOND_RECONSTRUCTION_RATE = 0.15
SURVIVAL_LOG_HAZARD: dict[str, float] = {
    "renal mass": 1.2,
    "liver lesion": 0.9,
    "ascites": 0.8,
    "pleural effusion": 0.6,
    "cardiomegaly": 0.5,
    "aortic aneurysm": 0.4,
    "splenomegaly": 0.0,
}
WEIBULL_SHAPE = 1.2
WEIBULL_SCALE = 60.0  # months
CENSOR_MIN, CENSOR_MAX = 12.0, 120.0
GRID_SHAPE = (96, 80, 96)
VOXEL_MM = 4.0
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


class _Canvas:
    """An HU grid in RAS mm (voxel centres symmetric about 0) painted with ellipsoids inside bounding boxes."""

    def __init__(self, shape: tuple[int, int, int], voxel: float, fill: float) -> None:
        self.voxel = voxel
        self.axes = [(np.arange(n) - (n - 1) / 2.0) * voxel for n in shape]
        self.hu = np.full(shape, fill, dtype=np.float32)

    def ellipsoid(self, center, radii, z_range: tuple[float, float] | None = None):
        """(index box, boolean mask within it) of an axis-aligned ellipsoid, optionally cut to a z slab."""
        box, coords = [], []
        for axis, c, r in zip(self.axes, center, radii):
            lo, hi = np.searchsorted(axis, c - r), np.searchsorted(axis, c + r, side="right")
            box.append(slice(int(lo), int(hi)))
            coords.append((axis[lo:hi] - c) / r)
        x, y, z = np.ix_(*coords)
        mask = x**2 + y**2 + z**2 <= 1.0
        if z_range is not None:
            zs = self.axes[2][box[2]]
            mask = mask & ((zs >= z_range[0]) & (zs <= z_range[1]))[None, None, :]
        return tuple(box), mask

    def paint(self, center, radii, value: float, z_range: tuple[float, float] | None = None) -> None:
        box, mask = self.ellipsoid(center, radii, z_range)
        self.hu[box][mask] = value

    def paint_where(self, center, radii, value: float, keep) -> None:
        """Paint the part of an ellipsoid where ``keep(x, y, z, current_hu)`` holds (broadcast coordinates)."""
        box, mask = self.ellipsoid(center, radii)
        x, y, z = np.ix_(*(axis[b] for axis, b in zip(self.axes, box)))
        region = self.hu[box]
        region[mask & keep(x, y, z, region)] = value


@dataclass
class DemoStudy:
    patient_id: str
    findings: dict[str, bool]
    report: str
    time: float
    event: int
    volumes: list[np.ndarray] = field(default_factory=list)  # HU, RAS-ordered


def _draw_findings(rng: np.random.Generator) -> dict[str, bool]:
    return {name: bool(rng.random() < FINDING_PREVALENCE) for name in DEMO_FINDINGS}


def _draw_survival(findings: dict[str, bool], rng: np.random.Generator) -> tuple[float, int]:
    eta = sum(SURVIVAL_LOG_HAZARD[f] for f, present in findings.items() if present)
    event_time = WEIBULL_SCALE * (-np.log(rng.random()) * np.exp(-eta)) ** (1.0 / WEIBULL_SHAPE)
    censor_time = rng.uniform(CENSOR_MIN, CENSOR_MAX)
    return round(float(min(event_time, censor_time)), 2), int(event_time <= censor_time)


def _posterior_lung(level: float):
    """Selector of lung voxels (still air-filled) behind ``level`` (RAS y: smaller is posterior)."""
    return lambda x, y, z, hu: (y < level) & (hu < -500)


def _phantom(findings: dict[str, bool], rng: np.random.Generator) -> np.ndarray:
    """Noise-free HU phantom (RAS-ordered) of one patient with ``findings``.

    Anatomy and each finding draw from their own child generators, so a patient with and
    without a given finding differ only where that finding is.
    """
    anatomy, *finding_rngs = rng.spawn(1 + len(DEMO_FINDINGS))
    draw = dict(zip(DEMO_FINDINGS, finding_rngs))
    c = _Canvas(GRID_SHAPE, VOXEL_MM, fill=-1000.0)
    s = anatomy.uniform(0.9, 1.1)  # body size
    dx, dy = anatomy.uniform(-10, 10, size=2)
    zd = anatomy.uniform(-15, 15)  # diaphragm height
    big = 1e4  # "infinite" z radius: elliptic cylinders
    ax, ay = 165 * s, 115 * s
    c.paint((dx, dy, 0), (ax, ay, big), -100.0)  # subcutaneous fat
    c.paint((dx, dy, 0), (ax - 12, ay - 12, big), 50.0)  # muscle wall
    c.paint((dx, dy, 0), (ax - 25, ay - 25, big), -85.0, z_range=(-1e3, zd))  # visceral fat
    c.paint((dx, dy, 0), (ax - 25, ay - 25, big), 25.0, z_range=(zd, 1e3))  # mediastinum / chest soft tissue

    lungs = {side: ((dx + side * 75 * s, dy - 5, zd + 90), (58 * s, 80 * s, 100.0)) for side in (+1, -1)}
    for center, radii in lungs.values():
        c.paint(center, radii, -850.0, z_range=(zd - 5, 1e3))
    if findings["pleural effusion"]:
        r = draw["pleural effusion"]
        sides = [side for side in (+1, -1) if r.random() < 0.6] or [int(r.choice([1, -1]))]
        for side in sides:
            (lx, ly, lz), (rx, ry, rz) = lungs[side]
            level = ly - ry + r.uniform(30, 50)  # fluid fills the posterior (dependent) pleural space
            c.paint_where((lx, ly, lz), (rx, ry, rz), 15.0, _posterior_lung(level))

    heart_scale = anatomy.uniform(0.95, 1.05)
    if findings["cardiomegaly"]:
        heart_scale *= draw["cardiomegaly"].uniform(1.3, 1.4)
    heart_c = np.array([dx - 20, dy + 30, zd + 50])
    heart_r = np.array([55.0, 45.0, 48.0]) * s * heart_scale
    c.paint(heart_c, heart_r, 45.0)
    c.paint((dx - 12, dy - 55 * s, 0), (12, 12, big), 45.0, z_range=(-150, zd + 120))  # aorta
    if findings["aortic aneurysm"]:  # fusiform infrarenal dilatation, bulging anteriorly
        r = draw["aortic aneurysm"]
        radius = r.uniform(25, 35)
        top = zd - r.uniform(110, 130)
        c.paint((dx - 12, dy - 55 * s + radius - 12, top - 50), (radius, radius, 50.0), 45.0)
    c.paint((dx, dy - 92 * s, 0), (19, 19, big), 800.0)  # vertebral cortex
    c.paint((dx, dy - 92 * s, 0), (13, 13, big), 300.0)  # cancellous bone

    liver_c = np.array([dx + 70 * s, dy + 10, zd - 45])
    liver_r = np.array([80 * s, 75 * s, 60.0])
    c.paint(liver_c, liver_r, 60.0)
    if findings["liver lesion"]:
        r = draw["liver lesion"]
        for _ in range(int(r.integers(2, 4))):  # hypodense (necrotic) masses
            offset = r.uniform(-0.4, 0.4, size=3) * liver_r
            c.paint(liver_c + offset, (r.uniform(22, 32),) * 3, float(r.uniform(-10, 10)))
    spleen_scale = draw["splenomegaly"].uniform(1.5, 1.7) if findings["splenomegaly"] else 1.0
    spleen_r = np.array([30 * s, 45 * s, 45.0]) * spleen_scale
    c.paint_where(
        (dx - 85 * s, dy - 30, zd + 5 - spleen_r[2]),
        spleen_r,
        50.0,  # dome under the diaphragm
        lambda x, y, z, hu: ((x - dx) / (ax - 25)) ** 2 + ((y - dy) / (ay - 25)) ** 2 <= 1.0,
    )  # in the cavity

    kidneys = {side: np.array([dx + side * 65 * s, dy - 55 * s, zd - 120]) for side in (+1, -1)}
    kidney_r = np.array([28.0, 25.0, 50.0]) * s
    for center in kidneys.values():
        c.paint(center, kidney_r, 35.0)
    for _ in range(int(anatomy.integers(5, 10))):  # bowel loops (anterior abdomen), some with gas
        center = (dx + anatomy.uniform(-90, 90), dy + anatomy.uniform(0, 60), zd + anatomy.uniform(-170, -70))
        radius = anatomy.uniform(12, 25)
        wall = float(anatomy.uniform(10, 30))
        # only into fat: a loop painted over the liver would look like a hypodense liver lesion
        c.paint_where(center, (radius, radius, radius * anatomy.uniform(0.7, 1.3)), wall, lambda x, y, z, hu: hu < -50)
        if anatomy.random() < 0.5:
            c.paint_where(center, (radius * 0.4,) * 3, -1000.0, lambda x, y, z, hu, wall=wall: hu == wall)
    if findings["renal mass"]:
        r = draw["renal mass"]
        side = int(r.choice([1, -1]))
        center = kidneys[side] + [side * 22 * s, 0.0, r.uniform(-15, 15)]  # exophytic, bulging laterally
        c.paint(center, (r.uniform(34, 42),) * 3, float(r.uniform(75, 95)))  # enhancing solid mass
    if findings["ascites"]:  # fluid replaces the intraperitoneal fat in front of the kidneys
        r = draw["ascites"]
        extent = r.uniform(0.7, 0.95)
        c.paint_where(
            (dx, dy, zd - 120),
            ((ax - 25) * extent, (ay - 25) * extent, 130.0),
            float(r.uniform(0, 15)),
            lambda x, y, z, hu: (hu == -85.0) & (y > dy - 25 * s),
        )
    return c.hu


def _reconstruct(phantom: np.ndarray, noise_hu: float, rng: np.random.Generator) -> np.ndarray:
    """Partial-volume blur plus scanner noise, as int16 HU."""
    image = gaussian_filter(phantom, sigma=0.6) + rng.normal(0.0, noise_hu, size=phantom.shape).astype(np.float32)
    return np.clip(np.rint(image), -1024, 3071).astype(np.int16)


def make_study(seed: int, index: int) -> DemoStudy:
    """Study ``index`` of the demo set ``seed``: findings, report, survival and 1-2 reconstructions."""
    rng = np.random.default_rng([seed, index])
    findings = _draw_findings(rng)
    time, event = _draw_survival(findings, rng)
    report = make_report(findings, np.random.default_rng([seed, index, 1]))
    phantom = _phantom(findings, np.random.default_rng([seed, index, 2]))
    noise = [12.0, 30.0] if rng.random() < SECOND_RECONSTRUCTION_RATE else [12.0]
    volumes = [
        _reconstruct(phantom, sigma, np.random.default_rng([seed, index, 3, k])) for k, sigma in enumerate(noise)
    ]
    return DemoStudy(f"DEMO{index:04d}", findings, report, time, event, volumes)


def _ras_affine(shape: tuple[int, ...], voxel: float) -> np.ndarray:
    affine = np.diag([voxel, voxel, voxel, 1.0])
    affine[:3, 3] = -(np.asarray(shape[:3]) - 1) / 2.0 * voxel
    return affine


def write_nifti(volume_ras: np.ndarray, path: Path, store_lps: bool) -> None:
    """Write an RAS-ordered volume; with ``store_lps`` flip x/y in the array and the affine (same world)."""
    affine = _ras_affine(volume_ras.shape, VOXEL_MM)
    array = volume_ras
    if store_lps:
        n = np.asarray(volume_ras.shape)
        flip = np.diag([-1.0, -1.0, 1.0, 1.0])
        flip[:2, 3] = n[:2] - 1  # index i' = n - 1 - i
        affine = affine @ flip
        array = volume_ras[::-1, ::-1, :]
    image = nib.Nifti1Image(np.ascontiguousarray(array), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=1)
    image.set_sform(affine, code=1)
    nib.save(image, str(path))


def write_demo(out: Path, n: int, seed: int = 0) -> Path:
    """Write ``n`` demo studies under ``out`` (``images/*.nii.gz`` + ``manifest.csv``); return the manifest path."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    studies = [make_study(seed, i) for i in range(n)]
    splits = split_patients([st.patient_id for st in studies], SPLIT_FRACTIONS, seed)
    rows = []
    for i, study in enumerate(track(studies, "writing CT demo studies")):
        report_id = f"{study.patient_id}-S1"
        for k, volume in enumerate(study.volumes, start=1):
            volume_id = f"{report_id}-R{k}"
            image = Path("images") / f"{volume_id}.nii.gz"
            write_nifti(volume, out / image, store_lps=bool(np.random.default_rng([seed, i, 4, k]).random() < 0.5))
            rows.append(
                {
                    "id": volume_id,
                    "patient_id": study.patient_id,
                    "image": image.as_posix(),
                    "report": study.report,
                    "report_id": report_id,
                    **{f: int(v) for f, v in study.findings.items()},
                    "time": study.time,
                    "event": study.event,
                    "split": splits[study.patient_id],
                }
            )
    manifest = out / "manifest.csv"
    pd.DataFrame(rows).to_csv(manifest, index=False)
    return manifest


def ensure_demo(out: Path, n: int, seed: int) -> Path:
    """The manifest of demo data in ``out``, generating it first if missing.

    Generation goes to a temporary sibling folder renamed into place, so concurrent
    processes (several ranks) never see half-written data.
    """
    out = Path(out)
    manifest = out / "manifest.csv"
    if manifest.exists():
        return manifest
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        write_demo(staging, n, seed)
        try:
            os.rename(staging, out)
        except OSError as exc:
            if not manifest.exists():  # not a lost race with another process: out holds something else
                raise DataError(
                    f"data.demo.dir {out}: exists without manifest.csv; empty it or choose another folder"
                ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return manifest
