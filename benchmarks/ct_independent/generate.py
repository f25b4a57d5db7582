"""Independent synthetic chest-CT benchmark in the CT-RATE layout.

Written from general radiology knowledge, without reading domainclip's own demo generator, vocabularies or
report structurer, so that a model tuned on the project's data has not been fitted to this one (README.md beside
this file). The set is FROZEN: figures measured on it must not be tuned against.

Usage: python benchmarks/ct_independent/generate.py --out DIR [--scans 250] [--seed 0] [--workers 2]

Coordinates are in a patient frame in mm, RAS+: x towards the patient's right, y anterior, z superior, with
z = 0 at the top of the right hemidiaphragm, x = 0 on the midline and y = 0 at the centre of the thoracic cavity.
Each scan is rendered once, noise-free, on the grid of its thin soft-kernel reconstruction; every reconstruction
is derived from that rendering by slab averaging / in-plane resampling, a kernel and its own noise, so the
reconstructions of a scan share the anatomy exactly but are separate volumes.
"""

from __future__ import annotations

import argparse
import gzip
import math
import multiprocessing as mp
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from statistics import NormalDist

import nibabel as nib
import numpy as np
import pandas as pd
from scipy import ndimage

F32 = np.float32

LABEL_COLUMNS = (
    "Medical material",
    "Arterial wall calcification",
    "Cardiomegaly",
    "Pericardial effusion",
    "Coronary artery wall calcification",
    "Hiatal hernia",
    "Lymphadenopathy",
    "Emphysema",
    "Atelectasis",
    "Lung nodule",
    "Lung opacity",
    "Pulmonary fibrotic sequela",
    "Pleural effusion",
    "Mosaic attenuation pattern",
    "Peribronchial thickening",
    "Consolidation",
    "Bronchiectasis",
    "Interlobular septal thickening",
)
FINDING_COLUMNS = {
    "arterial_calcification": "Arterial wall calcification",
    "cardiomegaly": "Cardiomegaly",
    "pericardial_effusion": "Pericardial effusion",
    "coronary_calcification": "Coronary artery wall calcification",
    "emphysema": "Emphysema",
    "lung_nodule": "Lung nodule",
    "pleural_effusion": "Pleural effusion",
    "consolidation": "Consolidation",
}
REPORT_COLUMNS = ("VolumeName", "ClinicalInformation_EN", "Technique_EN", "Findings_EN", "Impressions_EN")
METADATA_COLUMNS = (
    "VolumeName",
    "Manufacturer",
    "ManufacturerModelName",
    "StudyDate",
    "PatientSex",
    "PatientAge",
    "ReconstructionDiameter",
    "ConvolutionKernel",
    "SliceThickness",
    "Rows",
    "Columns",
    "NumberofSlices",
    "XYSpacing",
    "ZSpacing",
    "RescaleIntercept",
    "RescaleSlope",
    "RescaleType",
)
VALID_FRACTION = 0.2
FOLLOW_UP_FRACTION = 0.25
HU_MIN, HU_MAX = -1024.0, 3071.0

# Attenuation values (HU) of a non-contrast chest CT.
AIR, FAT, MUSCLE, BLOOD, MYOCARDIUM, FLUID, LIVER, SPLEEN = -1000.0, -100.0, 48.0, 40.0, 46.0, 12.0, 58.0, 47.0


# --------------------------------------------------------------------------------------------------------------
# Geometry primitives
# --------------------------------------------------------------------------------------------------------------


def smoothstep(t: np.ndarray | float) -> np.ndarray | float:
    """Cubic 0..1 ramp; used for every anatomical transition so that no profile has a kink."""
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


def soft(d: np.ndarray, width: float) -> np.ndarray:
    """Inside fraction from a signed distance (mm, negative inside): a linear partial-volume ramp of `width`."""
    r = d * (-1.0 / width)
    r += 0.5
    np.maximum(r, 0.0, out=r)
    return np.minimum(r, 1.0, out=r)


def ellipse_sdf(coords: tuple[np.ndarray, ...], radii: tuple[np.ndarray | float, ...]) -> np.ndarray:
    """Approximate signed distance to an axis-aligned ellipse / ellipsoid (broadcasting inputs).

    First-order estimate (value over gradient norm): exact on the boundary, which is all a partial-volume ramp
    needs, and an order of magnitude cheaper than the exact distance.
    """
    q = g = rmax = None
    for c, r in zip(coords, radii):
        u = c / r
        w = u / r
        q = u * u if q is None else q + u * u
        g = w * w if g is None else g + w * w
        rmax = r if rmax is None else np.maximum(rmax, r)
    rho = np.sqrt(q)
    grad = np.maximum(np.sqrt(g) / np.maximum(rho, 1e-6), 1.0 / rmax)
    return (rho - 1.0) / grad


def orthonormal_frame(axis: np.ndarray) -> np.ndarray:
    """Rows (axis, anterior-most perpendicular, their cross product): the local frame of the heart."""
    e0 = axis / np.linalg.norm(axis)
    ant = np.array([0.0, 1.0, 0.0]) - e0[1] * e0
    e1 = ant / np.linalg.norm(ant)
    return np.stack([e0, e1, np.cross(e0, e1)])


@dataclass(frozen=True)
class Grid:
    """Voxel centres of a volume in the patient frame (mm), each axis ascending (RAS voxel order)."""

    xs: np.ndarray
    ys: np.ndarray
    zs: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.xs.size, self.ys.size, self.zs.size)

    @property
    def spacing(self) -> tuple[float, float, float]:
        return (float(self.xs[1] - self.xs[0]), float(self.ys[1] - self.ys[0]), float(self.zs[1] - self.zs[0]))

    def box(self, lo: np.ndarray, hi: np.ndarray) -> tuple[slice, slice, slice] | None:
        """Index box of the voxels inside [lo, hi] (mm); None when it is empty, so callers can skip the work."""
        out = []
        for axis, a, b in zip((self.xs, self.ys, self.zs), lo, hi):
            i0, i1 = int(np.searchsorted(axis, a)), int(np.searchsorted(axis, b, side="right"))
            if i1 <= i0:
                return None
            out.append(slice(i0, i1))
        return tuple(out)

    def axes(self, sl: tuple[slice, slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Broadcastable coordinate arrays (nx,1,1), (1,ny,1), (1,1,nz) of a box: 3D fields cost one pass."""
        sl = sl or (slice(None),) * 3
        return (self.xs[sl[0]][:, None, None], self.ys[sl[1]][None, :, None], self.zs[sl[2]][None, None, :])


class Canvas:
    """The HU volume being painted plus the fraction of each voxel still free for lung parenchyma."""

    def __init__(self, grid: Grid) -> None:
        self.grid = grid
        self.vol = np.full(grid.shape, AIR, F32)
        self.lung: np.ndarray | None = None
        self.edge = float(max(grid.spacing[:2]))

    def paint(self, sl: tuple[slice, ...], m: np.ndarray, value: np.ndarray | float, occupy: bool = False) -> None:
        """Blend `value` in with fraction `m`; `occupy` removes the painted fraction from the lung space."""
        sub = self.vol[sl]
        sub += m * (value - sub)
        if occupy and self.lung is not None:
            self.lung[sl] *= 1.0 - m

    def capsule(
        self, p0: np.ndarray, p1: np.ndarray, r: float, value: float, occupy: bool = True, lung_only: bool = False
    ) -> None:
        """A tube segment with rounded ends, computed only inside its bounding box."""
        pad = r + 2 * self.edge
        sl = self.grid.box(np.minimum(p0, p1) - pad, np.maximum(p0, p1) + pad)
        if sl is None:
            return
        X, Y, Z = self.grid.axes(sl)
        v = p1 - p0
        t = np.clip(((X - p0[0]) * v[0] + (Y - p0[1]) * v[1] + (Z - p0[2]) * v[2]) / max(float(v @ v), 1e-6), 0, 1)
        d = np.sqrt((X - p0[0] - t * v[0]) ** 2 + (Y - p0[1] - t * v[1]) ** 2 + (Z - p0[2] - t * v[2]) ** 2) - r
        m = soft(d, self.edge)
        if lung_only and self.lung is not None:
            m *= self.lung[sl]
        self.paint(sl, m, value, occupy)

    def tube(
        self, points: np.ndarray, radii: np.ndarray, value: float, occupy: bool = True, lung_only: bool = False
    ) -> None:
        for i in range(len(points) - 1):
            self.capsule(points[i], points[i + 1], 0.5 * float(radii[i] + radii[i + 1]), value, occupy, lung_only)

    def ellipsoid(
        self,
        center: np.ndarray,
        radii: np.ndarray,
        value: float,
        frame: np.ndarray | None = None,
        occupy: bool = True,
        within: np.ndarray | None = None,
        edge: float | None = None,
    ) -> None:
        """A (rotated) ellipsoid; `frame` rows are its axes; `within` (a full-grid fraction) restricts it."""
        frame = np.eye(3) if frame is None else frame
        half = np.sqrt(((frame * radii[:, None]) ** 2).sum(axis=0)) + 2 * self.edge
        sl = self.grid.box(center - half, center + half)
        if sl is None:
            return
        X, Y, Z = self.grid.axes(sl)
        dx, dy, dz = X - center[0], Y - center[1], Z - center[2]
        local = tuple(frame[i, 0] * dx + frame[i, 1] * dy + frame[i, 2] * dz for i in range(3))
        m = soft(ellipse_sdf(local, tuple(radii)), edge or self.edge)
        if within is not None:
            m = m * within[sl]
        self.paint(sl, m, value, occupy)

    def sphere(self, center: np.ndarray, r: float, value: float, edge: float) -> None:
        sl = self.grid.box(center - r - 2 * edge, center + r + 2 * edge)
        if sl is None:
            return
        X, Y, Z = self.grid.axes(sl)
        d = np.sqrt((X - center[0]) ** 2 + (Y - center[1]) ** 2 + (Z - center[2]) ** 2) - r
        self.paint(sl, soft(d, edge), value)


def interp_axis(arr: np.ndarray, start: float, step: float, coords: np.ndarray, axis: int) -> np.ndarray:
    """Linear interpolation of a regularly sampled array along one axis (two gathers, no matrix)."""
    n = arr.shape[axis]
    f = np.clip((coords - start) / step, 0.0, n - 1.000001)
    i0 = np.floor(f).astype(np.intp)
    shape = [1] * arr.ndim
    shape[axis] = -1
    w = (f - i0).astype(F32).reshape(shape)
    a0 = np.take(arr, i0, axis=axis)
    return a0 + w * (np.take(arr, i0 + 1, axis=axis) - a0)


def resample_weights(
    src: np.ndarray, dst: np.ndarray, src_step: float, dst_step: float, box: bool
) -> tuple[np.ndarray, np.ndarray]:
    """Sparse taps (index, weight) mapping one voxel axis onto another.

    `box` averages the source slices overlapping each destination slab (a thicker reconstruction); otherwise a
    triangle kernel as wide as the coarser spacing (linear interpolation that also anti-aliases when coarsening).
    """
    if box:
        lo = np.maximum(dst[:, None] - dst_step / 2, src[None, :] - src_step / 2)
        hi = np.minimum(dst[:, None] + dst_step / 2, src[None, :] + src_step / 2)
        w = np.clip(hi - lo, 0.0, None)
    else:
        width = max(src_step, dst_step)
        w = np.clip(1.0 - np.abs(dst[:, None] - src[None, :]) / width, 0.0, None)
    w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-9)
    k = int((w > 1e-6).sum(axis=1).max())
    idx = np.argsort(-w, axis=1)[:, :k]
    return idx, np.take_along_axis(w, idx, axis=1).astype(F32)


def apply_weights(arr: np.ndarray, idx: np.ndarray, w: np.ndarray, axis: int) -> np.ndarray:
    shape = [1] * arr.ndim
    shape[axis] = -1
    out = None
    for k in range(idx.shape[1]):
        term = np.take(arr, idx[:, k], axis=axis) * w[:, k].reshape(shape)
        out = term if out is None else out + term
    return out


# --------------------------------------------------------------------------------------------------------------
# Patients, anatomy and what is drawn
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patient:
    split: str
    number: int
    seed: tuple[int, int]
    sex: str
    age: int
    smoker: bool
    scale: float
    adiposity: float
    n_scans: int

    def rng(self, *tag: int) -> np.random.Generator:
        """An independent stream per purpose, so a change in one part never reshuffles another."""
        return np.random.default_rng([*self.seed, *tag])


@dataclass(frozen=True)
class Anatomy:
    """Patient-frame landmarks (mm). Every scan of a patient uses the same instance."""

    s: float
    female: bool
    ac: float
    bc_ant: float
    bc_post: float
    wall_lat: float
    wall_ant: float
    back_gap: float
    fat_lat: float
    fat_ant: float
    fat_post: float
    lung_h: float
    dome_l: float
    dome_drop: float
    recess: float
    carina_z: float
    rib_pitch: float
    rib_top: float
    rib_drop: float
    rv: float
    yv: float
    vert_phase: float
    lung_hu: float
    bone_hu: float
    epi_fat: float
    heart_radii: np.ndarray
    heart_axis: np.ndarray
    aorta: np.ndarray
    aorta_r: np.ndarray
    aorta_parts: tuple[str, ...]
    hila: np.ndarray
    trachea_y: float
    breast: tuple[float, float, float] | None
    field_origin: np.ndarray
    field_step: float

    def cavity_axes(self, z: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Thoracic cavity semi-axes at height z: it narrows towards the thoracic inlet."""
        t = smoothstep((z - (self.lung_h - 70 * self.s)) / (110 * self.s))
        cone = smoothstep((z - 0.1 * self.lung_h) / self.lung_h)
        return (
            self.ac * (1 - 0.26 * cone) * (1 - 0.2 * t),
            self.bc_ant * (1 - 0.08 * cone) * (1 - 0.25 * t),
            self.bc_post * (1 - 0.08 * t),
        )

    def cavity_sdf(self, X: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> np.ndarray:
        ac, bca, bcp = self.cavity_axes(Z)
        return ellipse_sdf((X, Y), (ac, np.where(Y > 0, bca, bcp)))

    def dome_z(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        """Height of the diaphragm: two domes, the left lower, falling into deep posterior-lateral recesses."""
        heights = []
        for side, top in ((1.0, 0.0), (-1.0, self.dome_l)):
            u = (X - side * 0.42 * self.ac) / (0.55 * self.ac)
            v = (Y - 0.1 * self.bc_ant) / self.bc_post
            v = np.where(v < 0, 1.5 * v, v)
            heights.append(top - self.dome_drop * (u * u + v * v))
        w = 1.0 / (1.0 + np.exp(-X / (8.0 * self.s)))
        return np.maximum(w * heights[0] + (1 - w) * heights[1], self.recess)

    def apex_z(self, X: np.ndarray, Y: np.ndarray) -> np.ndarray:
        u = (np.abs(X) - 0.42 * self.ac) / (0.55 * self.ac)
        v = (Y + 0.2 * self.bc_post) / self.bc_post
        return self.lung_h - 40 * self.s * u * u - 30 * self.s * v * v

    def fissure(self, X: np.ndarray, Y: np.ndarray, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Signed distances (mm, positive above) to the oblique and the horizontal fissure."""
        left = X < 0
        z_post = self.carina_z + np.where(left, 18.0, 6.0) * self.s
        z_ant = -8.0 * self.s
        dy = self.bc_ant + self.bc_post
        z_line = z_post + (Y + self.bc_post) * (z_ant - z_post) / dy
        oblique = (Z - z_line) * dy / np.sqrt(dy * dy + (z_ant - z_post) ** 2)
        return oblique, Z - (self.carina_z - 38.0 * self.s)

    def lobe(self, p: np.ndarray) -> str:
        oblique, horizontal = (float(np.asarray(v)) for v in self.fissure(p[0], p[1], p[2]))
        if p[0] > 0:
            return "RLL" if oblique < 0 else ("RML" if horizontal < 0 else "RUL")
        return "LLL" if oblique < 0 else "LUL"

    def segment(self, p: np.ndarray, lobe: str) -> str:
        """A plausible segment name for a point, from its lobe and position (for the report text)."""
        x, y, z = (float(v) for v in p)
        lateral = abs(x) > 0.6 * self.ac
        if lobe in ("RLL", "LLL"):
            if z > self.carina_z - 30 * self.s:
                return "superior segment"
            if y < -0.45 * self.bc_post:
                return "posterior basal segment"
            if lateral:
                return "lateral basal segment"
            if y > 0:
                return "anterior basal segment"
            return "medial basal segment" if lobe == "RLL" else "anteromedial basal segment"
        if lobe == "RUL":
            if z > self.carina_z + 45 * self.s:
                return "apical segment"
            return "posterior segment" if y < -0.1 * self.bc_post else "anterior segment"
        if lobe == "RML":
            return "lateral segment" if lateral else "medial segment"
        if z > self.carina_z + 40 * self.s:
            return "apicoposterior segment"
        if z > self.carina_z - 38 * self.s:
            return "anterior segment"
        return "superior lingular segment" if z > self.carina_z - 65 * self.s else "inferior lingular segment"


def sample_patient(split: str, number: int, seed: tuple[int, int], n_scans: int) -> Patient:
    rng = np.random.default_rng([*seed, 0])
    sex = "M" if rng.random() < 0.55 else "F"
    age = int(np.clip(rng.normal(58, 14), 21, 90))
    smoker = bool(rng.random() < (0.45 if sex == "M" else 0.25))
    scale = float(np.clip(rng.normal(1.0, 0.06), 0.86, 1.16)) * (0.94 if sex == "F" else 1.0)
    adiposity = float(rng.beta(2.0, 2.6))
    return Patient(split, number, seed, sex, age, smoker, scale, adiposity, n_scans)


def build_anatomy(p: Patient) -> Anatomy:
    rng = p.rng(1)
    s = p.scale
    female = p.sex == "F"
    ac = 134 * s * rng.uniform(0.93, 1.07)
    bc_ant = 72 * s * rng.uniform(0.9, 1.08)
    bc_post = 82 * s * rng.uniform(0.93, 1.07)
    lung_h = 228 * s * rng.uniform(0.93, 1.07)
    carina_z = 0.6 * lung_h
    rv = 17 * s
    yv = -bc_post + 0.5 * rv
    heart_radii = np.array([64, 49, 45]) * s * rng.uniform(0.93, 1.07)
    heart_axis = np.array([-0.62, 0.42, -0.62]) + rng.normal(0, 0.05, 3)
    ty = yv + rv + 28 * s
    aorta, aorta_r, parts = _aorta_path(s, carina_z, yv, ty, p.age, rng)
    hila = np.array([[48 * s, ty + 17 * s, carina_z - 25 * s], [-50 * s, ty + 12 * s, carina_z - 15 * s]])
    breast = None
    if female:
        breast = (0.55 * rng.uniform(0.9, 1.1), (34 + 30 * p.adiposity) * s, carina_z - 75 * s)
    field_origin = np.array([-ac - 12, -bc_post - 12, -82 * s - 12])
    return Anatomy(
        s=s,
        female=female,
        ac=ac,
        bc_ant=bc_ant,
        bc_post=bc_post,
        wall_lat=8 + 9 * s,
        wall_ant=8 + (9 if female else 14) * s,
        back_gap=58 * s,
        fat_lat=4 + 32 * p.adiposity,
        fat_ant=5 + 26 * p.adiposity + (6 if female else 0),
        fat_post=5 + 24 * p.adiposity,
        lung_h=lung_h,
        dome_l=-rng.uniform(12, 24) * s,
        dome_drop=rng.uniform(40, 55) * s,
        recess=-rng.uniform(62, 80) * s,
        carina_z=carina_z,
        rib_pitch=lung_h * 0.105 * rng.uniform(0.95, 1.05),
        rib_top=lung_h + 8 * s,
        rib_drop=rng.uniform(110, 140) * s,
        rv=rv,
        yv=yv,
        vert_phase=rng.uniform(0, 24),
        lung_hu=rng.uniform(-880, -840) - 0.4 * max(p.age - 50, 0),
        bone_hu=rng.uniform(230, 300) - 1.6 * max(p.age - 40, 0),
        epi_fat=(2.5 + 5 * p.adiposity) * s,
        heart_radii=heart_radii,
        heart_axis=heart_axis,
        aorta=aorta,
        aorta_r=aorta_r,
        aorta_parts=parts,
        hila=hila,
        trachea_y=ty,
        breast=breast,
        field_origin=field_origin,
        field_step=3.0,
    )


def _aorta_path(
    s: float, car: float, yv: float, ty: float, age: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Centre line of the thoracic aorta: root, ascending, an arch bowing left of the trachea, descending.

    Positions are relative to the vertebral body (yv) and the trachea (ty), so the vessels keep their relations
    whatever the chest's depth."""
    widen = 1.0 + 0.006 * max(age - 45, 0)
    asc_top = np.array([12 * s, ty + 47 * s, car + 8 * s])
    desc_top = np.array([-30 * s, yv + 17 * s, car + 8 * s])
    mid, half = (asc_top + desc_top) / 2, (desc_top - asc_top) / 2
    chord = half[:2] / np.linalg.norm(half[:2])
    bow = np.array([-chord[1], chord[0], 0.0])
    trachea = np.array([2 * s, ty])
    if (trachea - mid[:2]) @ bow[:2] > 0:
        bow = -bow
    height = rng.uniform(20, 30) * s
    arch = [
        mid + math.cos(t) * half + math.sin(t) * (height * np.array([0, 0, 1.0]) + 18 * s * bow)
        for t in np.linspace(math.pi, 0, 9)
    ]
    pts = [
        np.array([-2 * s, ty + 57 * s, car - 55 * s]),
        *arch,
        np.array([-30 * s, yv + 18 * s, -5 * s]),
        np.array([-14 * s, yv + 32 * s, -150 * s]),
    ]
    radii = [16, *np.linspace(15.5, 12.5, 9), 12, 10.5]
    parts = ("ascending aorta", *["aortic arch"] * 8, "descending aorta", "descending aorta")
    return np.array(pts), np.array(radii) * s * widen, parts


@dataclass
class Plan:
    """What a scan shows, decided before rendering (positions that need the lung mask are chosen while drawing)."""

    flags: dict[str, bool]
    heart_factor: float = 1.0
    pericardial_mm: float = 0.0
    effusion: dict[str, tuple[float, float]] = field(default_factory=dict)
    emphysema: tuple[str, str, float] | None = None
    nodule_diams: list[float] = field(default_factory=list)
    nodule_centers: list[np.ndarray | None] = field(default_factory=list)
    consolidation_lobes: list[str] = field(default_factory=list)
    coronary_lesions: int = 0
    aortic_plaques: int = 0


@dataclass
class Truth:
    """What was drawn, with the measurements the report quotes."""

    flags: dict[str, bool]
    ctr: float = 0.0
    pericardial_mm: float = 0.0
    effusion_mm: dict[str, float] = field(default_factory=dict)
    emphysema: tuple[str, str] | None = None
    nodules: list[dict] = field(default_factory=list)
    consolidation: list[dict] = field(default_factory=list)
    coronary: list[str] = field(default_factory=list)
    coronary_burden: str = ""
    aortic: list[str] = field(default_factory=list)
    aortic_burden: str = ""

    def labels(self) -> dict[str, int]:
        out = dict.fromkeys(LABEL_COLUMNS, 0)
        for key, col in FINDING_COLUMNS.items():
            out[col] = int(self.flags[key])
        return out


def finding_probabilities(p: Patient, hf: bool, pneumonia: bool) -> dict[str, float]:
    """Marginal 15-40 % prevalences with realistic couplings: age, smoking and a heart-failure latent."""
    age, male = p.age - 60, p.sex == "M"
    return {
        "arterial_calcification": sigmoid(-0.75 + 0.09 * age),
        "coronary_calcification": sigmoid(-1.45 + 0.08 * age + 0.5 * male + 0.5 * p.smoker),
        "cardiomegaly": sigmoid(-2.1 + 2.9 * hf + 0.02 * age),
        "pericardial_effusion": sigmoid(-2.0 + 1.9 * hf),
        "pleural_effusion": sigmoid(-2.1 + 2.4 * hf + 1.0 * pneumonia),
        "emphysema": sigmoid(-2.0 + 2.0 * p.smoker + 0.035 * age),
        "lung_nodule": sigmoid(-1.05 + 0.7 * p.smoker + 0.02 * age),
        "consolidation": 0.88 if pneumonia else 0.03,
    }


PERSISTENCE = {
    "arterial_calcification": 1.0,
    "coronary_calcification": 1.0,
    "emphysema": 1.0,
    "lung_nodule": 0.9,
    "cardiomegaly": 0.85,
    "pericardial_effusion": 0.5,
    "pleural_effusion": 0.5,
    "consolidation": 0.3,
}


def plan_scan(p: Patient, scan: int, prev: Plan | None) -> Plan:
    rng = p.rng(10, scan)
    hf = rng.random() < sigmoid(-1.9 + 0.06 * (p.age - 60))
    pneumonia = rng.random() < 0.19
    probs = finding_probabilities(p, hf, pneumonia)
    flags = {}
    for key, prob in probs.items():
        if prev is None:
            flags[key] = bool(rng.random() < prob)
        elif prev.flags[key]:
            flags[key] = bool(rng.random() < PERSISTENCE[key])
        else:
            flags[key] = bool(rng.random() < 0.5 * prob)
    plan = Plan(flags=flags)
    if flags["cardiomegaly"]:
        plan.heart_factor = prev.heart_factor if prev and prev.flags["cardiomegaly"] else rng.uniform(1.2, 1.4)
    if flags["pericardial_effusion"]:
        plan.pericardial_mm = rng.uniform(8, 24)
    if flags["pleural_effusion"]:
        sides = rng.choice(["both", "right", "left"], p=[0.4, 0.35, 0.25])
        for side in ("right", "left") if sides == "both" else (str(sides),):
            grade = rng.choice(3, p=[0.45, 0.4, 0.15])
            depth = (rng.uniform(16, 26), rng.uniform(28, 48), rng.uniform(52, 75))[grade]
            plan.effusion[side] = (depth, depth * rng.uniform(2.4, 3.2))
    if flags["emphysema"]:
        if prev and prev.emphysema:
            plan.emphysema = prev.emphysema
        else:
            pattern = str(rng.choice(["centrilobular", "paraseptal", "panlobular"], p=[0.6, 0.2, 0.2]))
            severity = str(rng.choice(["mild", "moderate", "severe"], p=[0.4, 0.4, 0.2]))
            frac = {
                "mild": rng.uniform(0.15, 0.2),
                "moderate": rng.uniform(0.23, 0.32),
                "severe": rng.uniform(0.36, 0.48),
            }[severity]
            plan.emphysema = (pattern, severity, frac)
    if flags["lung_nodule"]:
        if prev and prev.flags["lung_nodule"]:
            plan.nodule_diams = [min(d + rng.uniform(0, 1.5), 20.0) for d in prev.nodule_diams]
            plan.nodule_centers = list(prev.nodule_centers)
        else:
            n = int(rng.choice([1, 2, 3], p=[0.6, 0.25, 0.15]))
            plan.nodule_diams = [float(np.clip(6 * math.exp(rng.exponential(0.45)), 6, 20)) for _ in range(n)]
            plan.nodule_centers = [None] * n
    if flags["consolidation"]:
        lobes = ["RLL", "LLL", "RUL", "LUL", "RML"]
        n = 1 if rng.random() < 0.75 else 2
        plan.consolidation_lobes = [
            str(x) for x in rng.choice(lobes, n, replace=False, p=[0.3, 0.25, 0.17, 0.15, 0.13])
        ]
    if flags["coronary_calcification"]:
        base = prev.coronary_lesions if prev and prev.coronary_lesions else 0
        plan.coronary_lesions = max(base, int(rng.choice([2, 5, 10], p=[0.4, 0.4, 0.2]) + rng.integers(0, 3)))
    if flags["arterial_calcification"]:
        base = prev.aortic_plaques if prev and prev.aortic_plaques else 0
        plan.aortic_plaques = max(base, int(rng.choice([4, 9, 18], p=[0.4, 0.4, 0.2]) + rng.integers(0, 4)))
    return plan


# --------------------------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeartGeometry:
    """`shape` maps the unit sphere onto the heart (centre + shape @ u); frame/radii are its principal axes."""

    center: np.ndarray
    shape: np.ndarray
    frame: np.ndarray
    radii: np.ndarray
    la: tuple[np.ndarray, np.ndarray]
    ra: tuple[np.ndarray, np.ndarray]
    ctr: float


def heart_geometry(an: Anatomy, factor: float) -> HeartGeometry:
    """Place the heart behind the anterior chest wall on the diaphragm.

    An enlarged heart is the normal one stretched in world axes, mostly from right to left, a little
    posteriorly and hardly upwards, as a dilated heart widens the cardiac silhouette rather than rising into
    the hila.
    """
    f = factor
    base = orthonormal_frame(an.heart_axis).T @ np.diag(an.heart_radii)
    shape = np.diag([f, 1 + 0.35 * (f - 1), 1 + 0.12 * (f - 1)]) @ base
    u, sig, _ = np.linalg.svd(shape)
    half, half0 = np.linalg.norm(shape, axis=1), np.linalg.norm(base, axis=1)
    cx = -0.17 * an.ac - 0.6 * (half[0] - half0[0])
    y_front = an.bc_ant * math.sqrt(max(1 - (cx / an.ac) ** 2, 0.1)) - 6 * an.s
    center = np.array([cx, y_front - 0.8 * half[1], -8 * an.s + half[2]])
    scale = math.sqrt(f)
    la = (center + np.array([5 * an.s, -0.75 * half[1], 0.45 * half[2]]), np.array([30, 20, 22]) * an.s * scale)
    ra = (center + np.array([0.72 * half[0], -0.1 * half[1], 0.1 * half[2]]), np.array([24, 26, 30]) * an.s * scale)
    right = max(center[0] + half[0], ra[0][0] + ra[1][0])
    left = center[0] - half[0]
    return HeartGeometry(center, shape, u.T, sig, la, ra, float((right - left) / (2 * an.ac)))


def patient_fields(p: Patient, an: Anatomy) -> dict[str, np.ndarray]:
    """Smooth random fields on a fixed patient-frame grid (3 mm): vessels, emphysema and texture look the same
    in every scan of the patient, wherever the scan's grid falls."""
    rng = p.rng(2)
    size = np.ceil((np.array([2 * an.ac, an.bc_ant + an.bc_post, an.lung_h + 82 * an.s]) + 24) / an.field_step)
    shape = tuple(int(v) + 1 for v in size)
    out = {}
    for name, sigma in (("v1", 1.6), ("v2", 1.6), ("emph", 0.9), ("tex", 2.2)):
        f = ndimage.gaussian_filter(rng.standard_normal(shape, dtype=F32), sigma)
        out[name] = (f - f.mean()) / f.std()
    return out


def upsample_fields(
    fields: dict[str, np.ndarray], an: Anatomy, grid: Grid, sl: tuple[slice, ...]
) -> dict[str, np.ndarray]:
    X, Y, Z = grid.axes(sl)
    out = {}
    for name, f in fields.items():
        g = interp_axis(f, an.field_origin[0], an.field_step, X.ravel(), 0)
        g = interp_axis(g, an.field_origin[1], an.field_step, Y.ravel(), 1)
        out[name] = interp_axis(g, an.field_origin[2], an.field_step, Z.ravel(), 2)
    return out


def draw_table(cv: Canvas, an: Anatomy, y_back: float) -> None:
    """The curved carbon-fibre table under the patient: two thin dense skins around a foam core."""
    X, Y, _ = cv.grid.axes()
    y_top = y_back - 6.0 - 0.0007 * X[:, :, 0] ** 2
    width = soft(np.abs(X[:, :, 0]) - 200.0, cv.edge)
    for offset, thick, value in ((0.0, 2.5, 250.0), (-2.5, 16.0, -450.0), (-18.5, 2.5, 250.0)):
        d = np.abs(Y[:, :, 0] - (y_top + offset - thick / 2)) - thick / 2
        m = (soft(d, cv.edge) * width)[:, :, None]
        cv.paint((slice(None),) * 3, m, value)


def body_profile(an: Anatomy, Z: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Lateral semi-axis and anterior skin line of the trunk at height z, and the (flat) back."""
    ac, bca, _ = an.cavity_axes(Z)
    a = (ac + an.wall_lat + an.fat_lat + 6) * (1 + 0.03 * smoothstep(-Z / (80 * an.s)))
    y_ant = bca + an.wall_ant + an.fat_ant
    y_back = -(an.bc_post + an.back_gap + an.fat_post)
    return a, y_ant, y_back


def draw_body_wall(cv: Canvas, an: Anatomy) -> None:
    """Skin outline with subcutaneous fat over muscle; breasts (fat with glandular tissue) in women."""
    X, Y, Z = cv.grid.axes()
    a, y_ant, y_back = body_profile(an, Z)
    b = (y_ant - y_back) / 2 * 1.12
    d_body = np.maximum(ellipse_sdf((X, Y - (y_ant - b)), (a, b)), y_back - Y)
    full = (slice(None),) * 3
    inside = soft(d_body, cv.edge)
    cv.paint(full, inside, MUSCLE)
    fat_t = (
        an.fat_lat
        + (an.fat_ant - an.fat_lat) * np.clip(Y / 120, 0, 1)
        + (an.fat_post - an.fat_lat) * np.clip(-Y / 150, 0, 1)
    )
    inner = soft(d_body + fat_t, cv.edge)
    cv.paint(full, inside - inner, FAT)
    if an.breast is not None:
        xf, depth, zc = an.breast
        a_z, y_ant_z, y_back_z = body_profile(an, np.float32(zc))
        b_z = (y_ant_z - y_back_z) / 2 * 1.12
        outside_muscle = 1.0 - inner
        for side in (1.0, -1.0):
            x = side * xf * a_z
            y_skin = y_ant_z - b_z + b_z * math.sqrt(1 - (x / a_z) ** 2)
            c = np.array([x, y_skin - 0.5 * depth, zc])
            cv.ellipsoid(c, np.array([90 * an.s, depth, 65 * an.s]), FAT, occupy=False, within=outside_muscle)
            cv.ellipsoid(
                c + np.array([0, 0.1 * depth, 0]),
                np.array([45 * an.s, 0.45 * depth, 34 * an.s]),
                -20.0,
                occupy=False,
                within=outside_muscle,
                edge=12.0,
            )


def draw_ribcage(cv: Canvas, an: Anatomy, d_cav: np.ndarray) -> None:
    """Ribs as bands sloping down towards the front around the cavity, cartilage anteriorly; sternum, scapulae.

    Computed only on the thin shell of voxels just outside the cavity (a tenth of the volume).
    """
    sel = np.nonzero((d_cav > -1.0) & (d_cav < 17.0))
    g = cv.grid
    x, y, z, d = g.xs[sel[0]], g.ys[sel[1]], g.zs[sel[2]], d_cav[sel]
    flat = np.ravel_multi_index(sel, d_cav.shape)
    vol = cv.vol.reshape(-1)

    def put(m: np.ndarray, value: float) -> None:
        v = vol[flat]
        v += m * (value - v)
        vol[flat] = v

    phi = np.arctan2(np.abs(x), -y)
    shell = soft(np.abs(d - 4.0) - 3.0, cv.edge)
    ph = (an.rib_top - (z + an.rib_drop * (0.6 * phi / math.pi + 0.2 * (1 - np.cos(phi))))) / an.rib_pitch
    k = np.rint(ph)
    band = soft(np.abs(ph - k) * an.rib_pitch - 4.0, 1.5)
    kk = np.clip(k, 0, 11).astype(np.intp)
    bone_end = np.array([0.8] * 7 + [0.72, 0.66, 0.6, 0.45, 0.35])[kk] * math.pi
    cart_end = np.array([0.95] * 7 + [0.86, 0.8, 0.74, 0.45, 0.35])[kk] * math.pi
    rib = shell * band * ((k >= 0) & (k <= 11)) * soft(0.1 * math.pi - phi, 0.04)
    put(rib * soft(phi - bone_end, 0.03), an.bone_hu + 480)
    put(rib * soft(phi - cart_end, 0.03) * (1 - soft(phi - bone_end, 0.03)), 110.0)
    scap = (
        soft(np.abs(d - 13) - 2.0, cv.edge)
        * soft(0.2 * math.pi - phi, 0.03)
        * soft(phi - 0.5 * math.pi, 0.03)
        * soft(np.abs(z - (an.lung_h - 70 * an.s)) - 75 * an.s, 4.0)
    )
    put(scap, an.bone_hu + 200)
    _draw_sternum(cv, an)
    for side in (1.0, -1.0):
        p0 = np.array([side * 16 * an.s, an.bc_ant * 0.75 + 10 * an.s, an.lung_h - 18 * an.s])
        p1 = np.array([side * 0.7 * an.ac, an.bc_ant * 0.45, an.lung_h + 8 * an.s])
        cv.capsule(p0, p1, 7 * an.s, an.bone_hu + 250, occupy=False)


def _draw_sternum(cv: Canvas, an: Anatomy) -> None:
    lo = np.array([-40.0, an.bc_ant * 0.6, 0.0])
    hi = np.array([40.0, an.bc_ant + 40.0, an.lung_h])
    sl = cv.grid.box(lo, hi)
    if sl is None:
        return
    X, Y, Z = cv.grid.axes(sl)
    d = an.cavity_sdf(X, Y, Z)
    width = 14 * an.s + 10 * an.s * smoothstep((Z - (an.carina_z + 5 * an.s)) / (25 * an.s))
    m = (
        soft(np.abs(d - 6.0) - 5.5, cv.edge)
        * soft(np.abs(X) - width, cv.edge)
        * soft(5 * an.s - Z, 3.0)
        * soft(Z - (an.lung_h - 22 * an.s), 3.0)
    )
    cv.paint(sl, m, an.bone_hu + 80)


def draw_abdomen(cv: Canvas, an: Anatomy, cav: np.ndarray, zd: np.ndarray) -> None:
    """Below the domes: diaphragm, liver on the right, stomach (air over fluid) and spleen on the left."""
    X, Y, Z = cv.grid.axes()
    full = (slice(None),) * 3
    below = soft(Z - zd, cv.edge)
    cv.paint(full, cav * soft(np.abs(Z - zd + 3.0) - 3.0, cv.edge), MUSCLE - 8)
    x_edge = -15 * an.s - 45 * an.s * np.clip(Y / an.bc_ant, 0, 1)
    cv.paint(full, cav * below * soft(x_edge - X + 4.0, 3.0), LIVER)
    s = an.s
    under = cav * below
    stomach = np.array([-0.5 * an.ac, 0.25 * an.bc_ant, an.dome_l - 42 * s])
    radii = np.array([0.3 * an.ac, 0.35 * an.bc_ant, 45 * s])
    cv.ellipsoid(stomach, radii, MUSCLE - 10, occupy=False, within=under)
    level = stomach[2] + 0.35 * radii[2]
    cv.ellipsoid(stomach, radii - 4.0, FLUID, occupy=False, within=under * soft(Z - level, cv.edge))
    cv.ellipsoid(stomach, radii - 4.0, AIR, occupy=False, within=under * soft(level - Z, cv.edge))
    spleen = np.array([-0.72 * an.ac, -0.5 * an.bc_post, an.dome_l - 48 * s])
    cv.ellipsoid(spleen, np.array([0.2 * an.ac, 0.38 * an.bc_post, 50 * s]), SPLEEN, occupy=False, within=under)


def draw_spine(cv: Canvas, an: Anatomy) -> None:
    """Vertebral bodies (cortex, cancellous bone, discs), canal with cord, posterior arch and processes."""
    s, rv, yv = an.s, an.rv, an.yv
    sl = cv.grid.box(np.array([-60 * s, yv - rv - 70 * s, -1e4]), np.array([60 * s, yv + rv + 12 * s, 1e4]))
    X, Y, Z = cv.grid.axes(sl)
    X2, Y2 = X[:, :, :1], Y[:, :, :1]
    pitch = an.rib_pitch
    phase = (Z - an.vert_phase) / pitch
    frac = np.abs(phase - np.rint(phase))
    disc = soft(frac * pitch - 2.8, 1.5)
    arch_z = soft(np.abs(frac - 0.5) * pitch - 0.36 * pitch, 2.0)
    block = soft(np.sqrt(X2**2 + (Y2 - yv - 2) ** 2) - rv - 7 * s, cv.edge)
    cv.paint(sl, block * np.ones_like(Z), MUSCLE - 5, occupy=True)
    body = soft(ellipse_sdf((X2, Y2 - yv), (1.15 * rv, rv)), cv.edge)
    core = soft(ellipse_sdf((X2, Y2 - yv), (1.15 * rv - 2.2, rv - 2.2)), cv.edge)
    cv.paint(sl, body * (1 - disc), an.bone_hu + 650)
    cv.paint(sl, core * (1 - disc), an.bone_hu)
    cv.paint(sl, body * disc, 85.0)
    yc = yv - rv - 9 * s
    ring = np.sqrt(X2**2 + (Y2 - yc) ** 2)
    posterior = soft(np.abs(ring - 10.5 * s) - 3.0 * s, cv.edge) * soft(Y2 - yc - 6 * s, cv.edge)
    spinous = soft(np.abs(X2) - 3.0 * s, cv.edge) * soft(np.abs(Y2 - (yc - 23 * s)) - 15 * s, cv.edge)
    transverse = (
        soft(np.abs(Y2 - yc - 2 * s) - 4 * s, cv.edge)
        * soft(np.abs(X2) - 32 * s, cv.edge)
        * soft(9 * s - np.abs(X2), cv.edge)
    )
    elements = np.clip(posterior + spinous + transverse, 0, 1)
    cv.paint(sl, elements * arch_z, an.bone_hu + 420)
    cv.paint(sl, soft(ring - 8.0 * s, cv.edge) * np.ones_like(Z), 25.0)


def draw_heart(cv: Canvas, an: Anatomy, heart: HeartGeometry, pericardial_mm: float, cav: np.ndarray) -> None:
    """Pericardial fluid (if any) outside the epicardial fat, then the atria and the ventricular mass; all kept
    inside the thoracic cavity, so the right ventricle can lie against the anterior chest wall."""
    if pericardial_mm > 0:
        t = pericardial_mm
        center = heart.center + np.array([0.0, -0.2 * t, -0.35 * t])
        cv.ellipsoid(center, heart.radii + an.epi_fat + t, FLUID + 4, heart.frame, within=cav)
    cv.ellipsoid(heart.center, heart.radii + an.epi_fat, FAT + 5, heart.frame, within=cav)
    for c, r in (heart.la, heart.ra):
        cv.ellipsoid(c, r, BLOOD, within=cav)
    cv.ellipsoid(heart.center, heart.radii, MYOCARDIUM, heart.frame, within=cav)
    inner = heart.center + heart.shape @ np.array([0.08, 0.0, 0.0])
    cv.ellipsoid(inner, heart.radii * 0.72, BLOOD - 3, heart.frame, occupy=False, edge=6.0)


def draw_mediastinum(cv: Canvas, an: Anatomy, z_hi: float) -> None:
    """Great vessels, airways, oesophagus and thyroid as tubes; airway lumens after all their walls."""
    s, car, ty = an.s, an.carina_z, an.trachea_y
    cv.tube(an.aorta, an.aorta_r, BLOOD)
    arch = an.aorta[1:10]
    top = z_hi + 40
    for i, end, r in ((2, (14, 34), 6), (4, (-9, 20), 4), (5, (-24, 8), 5)):
        cv.capsule(arch[i], np.array([end[0] * s, ty + end[1] * s, top]), r * s, BLOOD)
    pa_root, bif = np.array([-18 * s, ty + 70 * s, car - 60 * s]), np.array([-15 * s, ty + 30 * s, car - 22 * s])
    cv.capsule(pa_root, bif, 13 * s, BLOOD)
    cv.capsule(bif, an.hila[0], 10 * s, BLOOD)
    cv.capsule(bif, an.hila[1], 10 * s, BLOOD)
    svc = np.array(
        [[42 * s, ty + 37 * s, top], [38 * s, ty + 40 * s, car + 45 * s], [36 * s, ty + 44 * s, car - 55 * s]]
    )
    cv.tube(svc, np.array([7, 10, 10]) * s, BLOOD)
    cv.capsule(np.array([-45 * s, ty + 57 * s, car + 55 * s]), svc[1], 5 * s, BLOOD)
    cv.capsule(np.array([25 * s, an.yv + 57 * s, -200.0]), np.array([28 * s, an.yv + 65 * s, -2 * s]), 12 * s, BLOOD)
    eso = np.array(
        [
            [-8 * s, an.yv + an.rv + 8 * s, top],
            [-10 * s, an.yv + an.rv + 8 * s, -10 * s],
            [-0.45 * an.ac, 0.1 * an.bc_ant, an.dome_l - 30 * s],
        ]
    )
    cv.tube(eso, np.array([8, 8, 7]) * s, MUSCLE - 10)
    airways = airway_tree(an, top)
    for p0, p1, r in airways:
        cv.capsule(p0, p1, r + 1.8 * s, MUSCLE - 5)
    for p0, p1, r in airways:
        cv.capsule(p0, p1, r, AIR)
    for side in (1.0, -1.0):
        c = np.array([side * 17 * s, an.trachea_y + 4 * s, an.lung_h + 25 * s])
        cv.ellipsoid(c, np.array([9, 11, 22]) * s, 95.0)


def airway_tree(an: Anatomy, top: float) -> list[tuple[np.ndarray, np.ndarray, float]]:
    s, car, ty = an.s, an.carina_z, an.trachea_y
    carina = np.array([2 * s, ty, car])
    rmb, lmb = np.array([24 * s, ty - 5 * s, car - 18 * s]), np.array([-38 * s, ty - 8 * s, car - 28 * s])
    segs = [
        (np.array([2 * s, ty + 2 * s, top]), carina, 10 * s),
        (carina, rmb, 7 * s),
        (carina, lmb, 6 * s),
        (rmb, np.array([52 * s, ty - 2 * s, car - 8 * s]), 4.5 * s),
        (rmb, np.array([44 * s, ty - 10 * s, car - 60 * s]), 5 * s),
        (lmb, np.array([-56 * s, ty + 6 * s, car - 16 * s]), 4.5 * s),
        (lmb, np.array([-54 * s, ty - 14 * s, car - 70 * s]), 4.5 * s),
    ]
    return segs


def vessel_tree(an: Anatomy, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """Pulmonary arteries and veins: three generations from each hilum towards random points of that lung."""
    segs = []
    for hilum, side in zip(an.hila, (1.0, -1.0)):
        for _ in range(7):
            target = np.array(
                [
                    side * rng.uniform(0.35, 0.85) * an.ac,
                    rng.uniform(-0.8, 0.7) * an.bc_post,
                    rng.uniform(an.recess * 0.5, an.lung_h * 0.85),
                ]
            )
            _branch(segs, hilum, target, 6.0 * an.s, 0.45, 4, rng)
    return segs


def _branch(
    segs: list, start: np.ndarray, target: np.ndarray, r: float, frac: float, depth: int, rng: np.random.Generator
) -> None:
    end = start + (target - start) * frac
    segs.append((start, end, r))
    if depth <= 1:
        return
    reach = target - end
    for _ in range(2):
        jitter = rng.normal(0, 0.35 * np.linalg.norm(reach), 3)
        _branch(segs, end, end + reach + jitter, r * 0.7, 0.5, depth - 1, rng)


def draw_lungs(
    cv: Canvas,
    an: Anatomy,
    sl: tuple[slice, ...],
    f: dict[str, np.ndarray],
    d_cav: np.ndarray,
    emphysema: tuple[str, str, float] | None,
) -> None:
    """Parenchyma with a gravity gradient, texture, emphysema holes, then fine vessels."""
    X, Y, Z = cv.grid.axes(sl)
    lung = cv.lung[sl]
    base = an.lung_hu + 55.0 / (1.0 + np.exp(Y / 35.0)) + 12.0 * f["tex"]
    if emphysema is not None:
        base += emphysema_holes(an, X, Y, Z, f, d_cav[sl], emphysema) * (-988.0 - base)
    cv.paint(sl, lung, base)
    dist = np.minimum(*(np.sqrt((X - h[0]) ** 2 + (Y - h[1]) ** 2 + (Z - h[2]) ** 2) for h in an.hila))
    strength = 0.1 + 0.6 * np.exp(-dist / (80.0 * an.s))
    vessels = np.exp(-(f["v1"] ** 2 + f["v2"] ** 2) / (2 * 0.2**2)) * strength
    cv.paint(sl, lung * vessels, BLOOD)


def emphysema_holes(
    an: Anatomy,
    X: np.ndarray,
    Y: np.ndarray,
    Z: np.ndarray,
    f: dict[str, np.ndarray],
    d_cav: np.ndarray,
    emph: tuple[str, str, float],
) -> np.ndarray:
    """Fraction of low-attenuation lung: centrilobular (upper zones), paraseptal (subpleural) or panlobular
    (lower zones, confluent). The threshold sets the affected fraction of the weighted zone."""
    pattern, _, frac = emph
    zrel = (Z - an.carina_z) / (0.5 * an.lung_h)
    if pattern == "centrilobular":
        g, zone = f["emph"], 0.3 + 0.7 * smoothstep(zrel + 1.2)
    elif pattern == "paraseptal":
        g, zone = f["emph"], (0.4 + 0.6 * smoothstep(zrel + 1.2)) * soft(-d_cav - 16.0, 6.0)
        frac = min(0.7, frac * 2.5)
    else:
        g, zone = 0.6 * f["emph"] + 0.8 * f["tex"], 0.3 + 0.7 * smoothstep(0.8 - zrel)
    thr = NormalDist().inv_cdf(1 - frac) - 0.3
    return np.clip((g - thr - 2.0 * (1 - zone)) / 0.35, 0, 1)


def draw_effusions(
    cv: Canvas,
    an: Anatomy,
    sl: tuple[slice, ...],
    d_cav: np.ndarray,
    effusion: dict[str, tuple[float, float]],
    rng: np.random.Generator,
) -> dict[str, float]:
    """Dependent pleural fluid in the posterior costophrenic recess, thinning superiorly, with a lateral rim."""
    X, Y, Z = cv.grid.axes(sl)
    out = {}
    ac, _, bcp = an.cavity_axes(Z)
    y_floor = -bcp * np.sqrt(np.clip(1 - (X / ac) ** 2, 0, 1))
    for side, (depth, height) in effusion.items():
        z0 = an.recess
        prof = depth * np.clip(1 - (Z - z0) / height, 0, 1) ** 0.7
        fluid = np.maximum(soft(Y - y_floor - prof, cv.edge), soft(-d_cav[sl] - 0.3 * prof, cv.edge) * (prof > 1))
        side_m = soft(-X if side == "right" else X, cv.edge)
        m = fluid * side_m * cv.lung[sl]
        cv.paint(sl, m, FLUID + rng.uniform(-6, 6), occupy=True)
        out[side] = round(float(depth))
    return out


def lung_candidates(cv: Canvas, threshold: float = 0.98) -> np.ndarray:
    """Patient-frame points (subsampled voxels) that are fully aerated lung: where a lesion may be centred."""
    sub = cv.lung[::2, ::2, ::2]
    idx = np.argwhere(sub > threshold) * 2
    g = cv.grid
    return np.stack([g.xs[idx[:, 0]], g.ys[idx[:, 1]], g.zs[idx[:, 2]]], axis=1) if len(idx) else np.zeros((0, 3))


def lung_value(cv: Canvas, p: np.ndarray) -> float:
    g = cv.grid
    i = [int(np.clip(np.searchsorted(a, v), 0, a.size - 1)) for a, v in zip((g.xs, g.ys, g.zs), p)]
    return float(cv.lung[i[0], i[1], i[2]])


def draw_consolidation(
    cv: Canvas, an: Anatomy, sl: tuple[slice, ...], f: dict[str, np.ndarray], lobes: list[str], rng: np.random.Generator
) -> list[dict]:
    """Lobulated dense patches confined by the fissures of their lobe, sometimes with air bronchograms."""
    cands = lung_candidates(cv)
    out = []
    if len(cands) == 0:
        return out
    lobe_of = np.array([an.lobe(p) for p in cands[:: max(1, len(cands) // 4000)]])
    pool = cands[:: max(1, len(cands) // 4000)]
    X, Y, Z = cv.grid.axes(sl)
    oblique, horizontal = an.fissure(X, Y, Z)
    for lobe in lobes:
        here = pool[lobe_of == lobe]
        if len(here) == 0:
            continue
        c = here[rng.integers(len(here))]
        radii = rng.uniform([22, 18, 22], [42, 34, 45]) * an.s
        d = ellipse_sdf((X - c[0], Y - c[1], Z - c[2]), tuple(radii)) + 9.0 * f["tex"]
        m = soft(d, 3.0) * _lobe_mask(lobe, X, oblique, horizontal) * cv.lung[sl]
        value = 28.0 + 10.0 * f["tex"]
        bronchogram = bool(rng.random() < 0.6)
        if bronchogram:
            air = np.clip(np.exp(-(f["v1"] ** 2 + f["v2"] ** 2) / (2 * 0.22**2)) * 1.6 - 0.3, 0, 1)
            value = value + air * (-900.0 - value) * soft(d + 6.0, 3.0)
        cv.paint(sl, m, value, occupy=True)
        out.append(
            {
                "lobe": lobe,
                "segment": an.segment(c, lobe),
                "size": tuple(int(2 * r) for r in radii[:2]),
                "bronchogram": bronchogram,
            }
        )
    return out


def _lobe_mask(lobe: str, X: np.ndarray, oblique: np.ndarray, horizontal: np.ndarray) -> np.ndarray:
    side = soft(-X, 2.0) if lobe[0] == "R" else soft(X, 2.0)
    if lobe.endswith("LL"):
        return side * soft(oblique, 2.0)
    upper = soft(-oblique, 2.0)
    if lobe == "RML":
        return side * upper * soft(horizontal, 2.0)
    if lobe == "RUL":
        return side * upper * soft(-horizontal, 2.0)
    return side * upper


def draw_nodules(cv: Canvas, an: Anatomy, plan: Plan, rng: np.random.Generator) -> list[dict]:
    """Solid, slightly lobulated nodules centred in aerated lung, clear of the hila and of each other."""
    cands = lung_candidates(cv)
    out: list[dict] = []
    placed: list[np.ndarray] = []
    directions = _sphere_directions()
    for i, diam in enumerate(plan.nodule_diams):
        r = diam / 2
        c = plan.nodule_centers[i]
        ok = c is not None and _fits(cv, c, r, directions)
        for _ in range(200):
            if ok or len(cands) == 0:
                break
            c = cands[rng.integers(len(cands))]
            clear = min(np.linalg.norm(c - h) for h in an.hila) > 45 and all(np.linalg.norm(c - q) > 30 for q in placed)
            ok = clear and _fits(cv, c, r, directions)
        if not ok:
            continue
        plan.nodule_centers[i] = c
        _paint_nodule(cv, c, r, rng)
        placed.append(c)
        lobe = an.lobe(c)
        subpleural = float(np.asarray(an.cavity_sdf(c[0], c[1], c[2]))) > -r - 8
        out.append(
            {"diameter": diam, "lobe": lobe, "segment": an.segment(c, lobe), "subpleural": subpleural, "z": float(c[2])}
        )
    return out


def _sphere_directions() -> np.ndarray:
    d = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1) if (i, j, k) != (0, 0, 0)])
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _fits(cv: Canvas, c: np.ndarray, r: float, directions: np.ndarray) -> bool:
    return lung_value(cv, c) > 0.9 and all(lung_value(cv, c + (r + 3) * d) > 0.6 for d in directions)


def _paint_nodule(cv: Canvas, c: np.ndarray, r: float, rng: np.random.Generator) -> None:
    pad = 1.3 * r + 2 * cv.edge
    sl = cv.grid.box(c - pad, c + pad)
    X, Y, Z = cv.grid.axes(sl)
    dx, dy, dz = X - c[0], Y - c[1], Z - c[2]
    rho = np.sqrt(dx * dx + dy * dy + dz * dz) + 1e-6
    ph = rng.uniform(0, 2 * math.pi, 3)
    lob = 0.1 * np.sin(3 * dx / rho + ph[0]) * np.cos(2 * dy / rho + ph[1]) + 0.06 * np.sin(4 * dz / rho + ph[2])
    m = soft(rho - r * (1 + lob), 0.8 * cv.edge)
    cv.paint(sl, m, rng.uniform(25, 50), occupy=True)


def draw_calcifications(
    cv: Canvas,
    an: Anatomy,
    heart: HeartGeometry,
    plan: Plan,
    rng_c: np.random.Generator,
    rng_a: np.random.Generator,
    truth: Truth,
) -> None:
    """Coronary plaques along the AV and interventricular grooves; aortic wall plaques along the aorta.

    The lesion sequence comes from a per-patient stream, so a follow-up shows the same plaques (plus new ones).
    """
    edge = 0.8 * min(cv.grid.spacing[:2])
    paths = coronary_paths(heart)
    names = list(paths)
    hit = set()
    for _ in range(plan.coronary_lesions):
        artery = names[int(rng_c.choice(3, p=[0.5, 0.3, 0.2]))]
        path = paths[artery]
        pos = rng_c.beta(1.3, 2.4) * (len(path) - 2)
        n, r, hu = int(rng_c.integers(1, 5)), rng_c.uniform(1.8, 3.0), rng_c.uniform(550, 1100)
        i = int(pos)
        tangent = (path[i + 1] - path[i]) / max(np.linalg.norm(path[i + 1] - path[i]), 1e-6)
        start = path[i] + (pos - i) * (path[i + 1] - path[i])
        for k in range(n):
            cv.sphere(start + k * 2.4 * tangent, r, hu, edge)
        hit.add(artery)
    truth.coronary = [a for a in names if a in hit]
    truth.coronary_burden = _burden(plan.coronary_lesions, 3, 7)
    parts = set()
    seg_w = np.array([0.6 if p == "ascending aorta" else 1.0 for p in an.aorta_parts])
    seg_w *= np.linalg.norm(np.diff(an.aorta, axis=0), axis=1)
    seg_w /= seg_w.sum()
    for _ in range(plan.aortic_plaques):
        i = int(rng_a.choice(len(seg_w), p=seg_w))
        t, r, hu = rng_a.random(), rng_a.uniform(1.8, 3.0), rng_a.uniform(450, 1100)
        axis = an.aorta[i + 1] - an.aorta[i]
        axis = axis / np.linalg.norm(axis)
        perp = np.cross(axis, rng_a.normal(size=3))
        perp /= np.linalg.norm(perp)
        radius = an.aorta_r[i] + t * (an.aorta_r[i + 1] - an.aorta_r[i])
        center = an.aorta[i] + t * (an.aorta[i + 1] - an.aorta[i]) + (radius - 0.5) * perp
        along = np.cross(axis, perp)
        for k in range(int(rng_a.integers(1, 4))):
            cv.sphere(center + (k - 1) * 2.5 * along, r, hu, edge)
        if center[2] > cv.grid.zs[0] and center[2] < cv.grid.zs[-1]:
            parts.add(an.aorta_parts[i])
    truth.aortic = [p for p in ("ascending aorta", "aortic arch", "descending aorta") if p in parts]
    truth.aortic_burden = _burden(plan.aortic_plaques, 6, 13)


def _burden(n: int, moderate: int, severe: int) -> str:
    return "severe" if n >= severe else ("moderate" if n >= moderate else "mild")


def coronary_paths(heart: HeartGeometry) -> dict[str, np.ndarray]:
    """Points 2.5 mm outside the heart surface along the right and left AV groove and the anterior IV groove.

    Parametrised on the normal heart's own axes (long axis, anterior, transverse), mapped through `shape`.
    """

    def surface(w: float, t: float) -> np.ndarray:
        r = math.sqrt(max(1 - w * w, 0))
        v = heart.shape @ np.array([w, r * math.cos(t), r * math.sin(t)])
        return heart.center + v * (1 + 2.5 / np.linalg.norm(v))

    return {
        "LAD": np.array([surface(w, -0.15 * math.pi) for w in np.linspace(-0.4, 0.85, 24)]),
        "RCA": np.array([surface(-0.4, t) for t in np.linspace(0.1 * math.pi, 0.95 * math.pi, 24)]),
        "LCx": np.array([surface(-0.4, t) for t in np.linspace(-0.25 * math.pi, -0.9 * math.pi, 20)]),
    }


def render_scan(
    p: Patient, an: Anatomy, fields: dict[str, np.ndarray], spec: ScanSpec, plan: Plan, scan: int
) -> tuple[np.ndarray, Truth]:
    """Paint one scan on its master grid, noise-free; returns HU and what was drawn."""
    rng = p.rng(20, scan)
    grid = spec.master_grid()
    cv = Canvas(grid)
    X, Y, Z = grid.axes()
    draw_table(cv, an, body_profile(an, Z)[2])
    draw_body_wall(cv, an)
    d_cav = an.cavity_sdf(X, Y, Z)
    draw_ribcage(cv, an, d_cav)
    cav = soft(d_cav, cv.edge)
    neck = smoothstep((Z - (an.lung_h - 20 * an.s)) / (30 * an.s))
    cv.paint((slice(None),) * 3, cav, FAT + 10 + (MUSCLE - FAT - 20) * neck)
    zd = an.dome_z(X[:, :, :1], Y[:, :, :1])
    draw_abdomen(cv, an, cav, zd)
    mediastinum = soft(
        np.abs(X + 3 * an.s) - (11 + 8 * np.exp(-(((Z - an.carina_z - 20 * an.s) / 35) ** 2))) * an.s, cv.edge
    )
    cv.lung = cav * soft(zd - Z, cv.edge) * soft(Z - an.apex_z(X[:, :, :1], Y[:, :, :1]), cv.edge) * (1 - mediastinum)
    draw_spine(cv, an)
    heart = heart_geometry(an, plan.heart_factor)
    draw_heart(cv, an, heart, plan.pericardial_mm, cav)
    draw_mediastinum(cv, an, float(grid.zs[-1]))
    lung_box = grid.box(
        np.array([-an.ac - 4, -an.bc_post - 4, an.recess - 4]), np.array([an.ac + 4, an.bc_ant + 4, an.lung_h + 4])
    )
    f = upsample_fields(fields, an, grid, lung_box)
    draw_lungs(cv, an, lung_box, f, d_cav, plan.emphysema)
    for p0, p1, r in vessel_tree(an, p.rng(3)):
        cv.capsule(p0, p1, r, BLOOD, occupy=False, lung_only=True)
    truth = Truth(flags=dict(plan.flags), ctr=heart.ctr, pericardial_mm=round(plan.pericardial_mm))
    truth.effusion_mm = draw_effusions(cv, an, lung_box, d_cav, plan.effusion, rng)
    truth.consolidation = draw_consolidation(cv, an, lung_box, f, plan.consolidation_lobes, rng)
    truth.nodules = draw_nodules(cv, an, plan, rng)
    if plan.emphysema:
        truth.emphysema = plan.emphysema[:2]
    draw_calcifications(cv, an, heart, plan, p.rng(30), p.rng(31), truth)
    _reconcile(truth)
    vol = ndimage.gaussian_filter(cv.vol, sigma=(0.45, 0.45, 0.35), truncate=3.0)
    return vol, truth


def _reconcile(truth: Truth) -> None:
    """Labels follow what was actually drawn (a lesion that found no room, plaques outside the scan range)."""
    truth.flags["lung_nodule"] = bool(truth.nodules)
    truth.flags["consolidation"] = bool(truth.consolidation)
    truth.flags["pleural_effusion"] = bool(truth.effusion_mm)
    truth.flags["coronary_calcification"] = bool(truth.coronary)
    truth.flags["arterial_calcification"] = bool(truth.aortic)
    truth.flags["pericardial_effusion"] = truth.pericardial_mm > 0
    truth.flags["emphysema"] = truth.emphysema is not None


# --------------------------------------------------------------------------------------------------------------
# Scans, reconstructions and storage
# --------------------------------------------------------------------------------------------------------------

SCANNERS = (
    ("SIEMENS", "SOMATOM Definition Edge", "Br40f", "Bl64f"),
    ("SIEMENS", "SOMATOM go.Up", "Br40", "Bl57"),
    ("PHILIPS", "Ingenuity CT", "B", "YA"),
    ("PHILIPS", "Brilliance 64", "C", "L"),
    ("GE MEDICAL SYSTEMS", "Revolution EVO", "STANDARD", "LUNG"),
    ("TOSHIBA", "Aquilion PRIME", "FC08", "FC52"),
)
# (slope, intercept, probability): what the DICOM headers of real scanners write; HU = stored * slope + intercept.
RESCALES = (
    (1.0, -1024.0, 0.62),
    (1.0, -1000.0, 0.08),
    (1.0, -8192.0, 0.08),
    (1.0, 0.0, 0.1),
    (0.5, -1024.0, 0.06),
    (2.0, -1024.0, 0.06),
)
PADDING = ((None, 0.5), (-3024.0, 0.25), (-2048.0, 0.15), (-1024.0, 0.1))


@dataclass(frozen=True)
class Recon:
    number: int
    kernel: str
    kernel_name: str
    n: int
    dxy: float
    dz: float
    flips: tuple[bool, bool, bool]


@dataclass(frozen=True)
class ScanSpec:
    letter: str
    z_lo: float
    nz: int
    dz: float
    n: int
    dxy: float
    center: tuple[float, float]
    origin: tuple[float, float, float]
    manufacturer: str
    model: str
    slope: float
    intercept: float
    padding: float | None
    noise: float
    recons: tuple[Recon, ...]
    date: str

    def master_grid(self) -> Grid:
        half = (self.n - 1) / 2
        xs = (np.arange(self.n) - half) * self.dxy + self.center[0]
        ys = (np.arange(self.n) - half) * self.dxy + self.center[1]
        zs = self.z_lo + (np.arange(self.nz) + 0.5) * self.dz
        return Grid(xs.astype(F32), ys.astype(F32), zs.astype(F32))


def plan_geometry(p: Patient, an: Anatomy, scan: int) -> ScanSpec:
    """Field of view, matrix, slices and reconstructions of one scan, as a scanner console would set them."""
    rng = p.rng(40, scan)
    a, _, _ = body_profile(an, np.float32(0.0))
    fov = float(np.clip(2 * a + rng.uniform(40, 110), 340, 500))
    dxy = round(float(rng.uniform(max(fov / 256, 1.2), min(fov / 160, 2.5))), 3)
    n = int(np.clip(round(fov / dxy), 160, 256))
    z_lo = an.recess - rng.uniform(15, 40) * an.s
    length = an.lung_h + rng.uniform(15, 40) * an.s - z_lo
    allowed = [v for v in (2.0, 2.5, 3.0) if length / v <= 140] or [
        next(v for v in (3.5, 4.0, 5.0) if length / v <= 140)
    ]
    dz = float(rng.choice(allowed))
    nz = round(length / dz)
    manufacturer, model, soft_k, sharp_k = SCANNERS[int(rng.integers(len(SCANNERS)))]
    slope, intercept = _choice(rng, RESCALES)
    padding = _choice(rng, PADDING)[0]
    n_recon = int(rng.choice([1, 2, 3], p=[0.3, 0.45, 0.25]))
    recons = [(("soft", soft_k), dxy, dz, n)]
    options = ["thick", "sharp", "coarse"]
    rng.shuffle(options)
    for kind in options[: n_recon - 1]:
        recons.append(_derived_recon(kind, soft_k, sharp_k, fov, dxy, dz, nz, n, rng))
    order = rng.permutation(len(recons))
    out = []
    for number, i in enumerate(order, start=1):
        (kernel, name), rdxy, rdz, rn = recons[i]
        flips = _flips(rng)
        out.append(Recon(number, kernel, name, rn, rdxy, rdz, flips))
    noise = float(np.clip(rng.uniform(10, 17) * (a / 175.0) ** 1.5, 8, 26))
    center = (rng.uniform(-12, 12), rng.uniform(-30, -5) * an.s)
    origin = (rng.uniform(-15, 15), rng.uniform(-200, -120), rng.uniform(-450, -150))
    dates = p.rng(41)
    day = date(2019, 1, 1) + timedelta(days=int(dates.integers(0, 900)))
    for _ in range(scan):
        day += timedelta(days=int(dates.integers(45, 420)))
    return ScanSpec(
        chr(ord("a") + scan),
        z_lo,
        nz,
        dz,
        n,
        dxy,
        center,
        origin,
        manufacturer,
        model,
        slope,
        intercept,
        padding,
        noise,
        tuple(out),
        day.strftime("%Y%m%d"),
    )


def _choice(rng: np.random.Generator, table: tuple) -> tuple:
    probs = np.array([row[-1] for row in table])
    return table[int(rng.choice(len(table), p=probs / probs.sum()))][:-1]


def _flips(rng: np.random.Generator) -> tuple[bool, bool, bool]:
    """Half the volumes are stored mirrored (LPS, LAS, RPS or LPI voxel order) with a consistent affine."""
    if rng.random() < 0.5:
        return (False, False, False)
    return ((True, True, False), (True, False, False), (False, True, False), (True, True, True))[
        int(rng.choice(4, p=[0.4, 0.3, 0.2, 0.1]))
    ]


def _derived_recon(
    kind: str, soft_k: str, sharp_k: str, fov: float, dxy: float, dz: float, nz: int, n: int, rng: np.random.Generator
) -> tuple[tuple[str, str], float, float, int]:
    length = nz * dz
    if kind == "thick":
        thick = [v for v in (5.0, 4.0, 3.0) if v > dz and length / v >= 60]
        if thick:
            return ("soft", soft_k), dxy, thick[0], n
        kind = "sharp"
    coarse_dxy = round(min(fov / 160, 2.5, dxy * rng.uniform(1.15, 1.45)), 3)
    if coarse_dxy < dxy * 1.1:
        coarse_dxy = round(max(fov / 256, dxy / rng.uniform(1.15, 1.45)), 3)
    coarse_n = int(np.clip(round(fov / coarse_dxy), 160, 256))
    if kind == "sharp":
        if rng.random() < 0.5:
            return ("sharp", sharp_k), dxy, dz, n
        return ("sharp", sharp_k), coarse_dxy, dz, coarse_n
    return ("soft", soft_k), coarse_dxy, dz, coarse_n


def reconstruct(master: np.ndarray, spec: ScanSpec, recon: Recon, rng: np.random.Generator) -> np.ndarray:
    """Derive one reconstruction: resample (slab average in z), kernel, noise, FOV circle, scanner HU range."""
    grid = spec.master_grid()
    vol = master
    if recon.dz != spec.dz:
        nz = int(np.floor(spec.nz * spec.dz / recon.dz))
        dst = spec.z_lo + (np.arange(nz) + 0.5) * recon.dz
        vol = apply_weights(vol, *resample_weights(grid.zs, dst, spec.dz, recon.dz, box=True), axis=2)
    if recon.n != spec.n or recon.dxy != spec.dxy:
        for axis, src in ((0, grid.xs), (1, grid.ys)):
            c = float(src.mean())
            dst = (np.arange(recon.n) - (recon.n - 1) / 2) * recon.dxy + c
            vol = apply_weights(vol, *resample_weights(src, dst, spec.dxy, recon.dxy, box=False), axis=axis)
    vol = np.array(vol, dtype=F32, copy=True)
    if recon.kernel == "sharp":
        vol += 0.9 * (vol - ndimage.gaussian_filter(vol, sigma=(1.0, 1.0, 0.0), truncate=3.0))
    sd = spec.noise * math.sqrt(spec.dz / recon.dz) * (2.3 if recon.kernel == "sharp" else 1.0)
    noise = ndimage.gaussian_filter(
        rng.standard_normal(vol.shape, dtype=F32),
        sigma=(0.45, 0.45, 0.0) if recon.kernel == "sharp" else (0.7, 0.7, 0.0),
    )
    noise *= sd / float(noise[::3, ::3, ::3].std())
    vol += noise
    np.clip(vol, HU_MIN, HU_MAX, out=vol)
    if spec.padding is not None:
        r = (np.arange(recon.n) - (recon.n - 1) / 2) * recon.dxy
        outside = (r[:, None] ** 2 + r[None, :] ** 2) > (recon.n * recon.dxy / 2) ** 2
        vol[outside] = spec.padding
    return vol


def to_nifti(hu: np.ndarray, spec: ScanSpec, recon: Recon) -> bytes:
    """Stored int16 values (HU = stored * slope + intercept, slope/intercept only in the metadata CSV), voxel
    order flipped per `recon.flips` with an affine that says so. Gzip with mtime 0 keeps files byte-identical."""
    stored = np.rint((hu - spec.intercept) / spec.slope)
    if stored.min() < -32768 or stored.max() > 32767:
        raise ValueError("stored values do not fit int16")
    stored = stored.astype(np.int16)
    n, nz = hu.shape[0], hu.shape[2]
    half = (n - 1) / 2
    starts = [
        spec.center[0] - half * recon.dxy + spec.origin[0],
        spec.center[1] - half * recon.dxy + spec.origin[1],
        spec.z_lo + recon.dz / 2 + spec.origin[2],
    ]
    sizes = (n, n, nz)
    steps = (recon.dxy, recon.dxy, recon.dz)
    affine = np.eye(4)
    for axis, flip in enumerate(recon.flips):
        if flip:
            stored = np.flip(stored, axis=axis)
            affine[axis, axis] = -steps[axis]
            affine[axis, 3] = starts[axis] + (sizes[axis] - 1) * steps[axis]
        else:
            affine[axis, axis] = steps[axis]
            affine[axis, 3] = starts[axis]
    img = nib.Nifti1Image(np.ascontiguousarray(stored), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    return gzip.compress(img.to_bytes(), compresslevel=1, mtime=0)


# --------------------------------------------------------------------------------------------------------------
# Reports
# --------------------------------------------------------------------------------------------------------------

LOBE_NAMES = {
    "RUL": "right upper lobe",
    "RML": "right middle lobe",
    "RLL": "right lower lobe",
    "LUL": "left upper lobe",
    "LLL": "left lower lobe",
}
ARTERY_NAMES = {"LAD": "left anterior descending artery", "LCx": "circumflex artery", "RCA": "right coronary artery"}
INDICATIONS = (
    "Not given.",
    "Not given.",
    "Not given.",
    "Cough.",
    "Shortness of breath.",
    "Chest pain.",
    "Dyspnea.",
    "Fever and cough, rule out pneumonia.",
    "Rule out pneumonia.",
    "COVID-19 pneumonia?",
    "Known lung cancer, follow-up.",
    "Known COPD, increasing dyspnea.",
    "Evaluation of pulmonary nodule.",
    "Pleural effusion?",
    "Heart failure.",
    "Preoperative evaluation.",
    "Weight loss, rule out malignancy.",
    "Hemoptysis.",
    "Smoker, screening for lung cancer.",
    "Chronic cough for two months.",
    "Elevated D-dimer.",
    "Emphysema?",
    "Cardiomegaly on chest radiograph.",
    "Follow-up of nodule seen on previous radiograph.",
    "Fatigue and leg swelling.",
    "Sputum and fever for 5 days.",
)
TECHNIQUES = (
    (
        "Non-contrast thorax CT examination was performed. Axial images with {t} mm slice thickness were obtained and "
        "coronal and sagittal reformatted images were evaluated."
    ),
    (
        "Multislice thorax CT examination was performed without intravenous contrast material in the axial plane with "
        "{t} mm sections."
    ),
    (
        "Helical CT of the chest was performed without intravenous contrast from the thoracic inlet to the upper "
        "abdomen. Multiplanar reformats were reviewed."
    ),
    "CT chest without contrast. {t} mm axial images with coronal and sagittal reconstructions.",
    "Unenhanced thoracic CT, {t} mm axial slices, mediastinal and lung windows.",
    "Not given.",
)


class ReportWriter:
    """Findings and impression text in two voices: translated Turkish hospital reports (as in CT-RATE) and US
    structured reports. Present findings are always stated (sometimes hedged); absent ones are denied,
    covered by a normal statement that names nothing, or left out."""

    def __init__(self, truth: Truth, prev: Truth | None, patient: Patient, rng: np.random.Generator) -> None:
        self.t, self.prev, self.p, self.rng = truth, prev, patient, rng
        self.us = bool(rng.random() < 0.4)

    def pick(self, options: tuple[str, ...] | list[str]) -> str:
        return options[int(self.rng.integers(len(options)))]

    def chance(self, p: float) -> bool:
        return bool(self.rng.random() < p)

    def has(self, key: str) -> bool:
        return self.t.flags[key]

    def hedge(self) -> bool:
        return self.chance(0.1)

    # ---- single findings --------------------------------------------------------------------------------
    def cardiomegaly(self) -> str | None:
        if self.has("cardiomegaly"):
            ctr = f"{self.t.ctr:.2f}"
            if self.hedge():
                return self.pick(
                    (
                        "Heart size is at the upper limit of normal; mild cardiomegaly cannot be excluded.",
                        "Possible mild cardiomegaly.",
                    )
                )
            if self.us:
                return self.pick(
                    (
                        "Cardiomegaly.",
                        "The heart is enlarged.",
                        f"Cardiomegaly (cardiothoracic ratio {ctr}).",
                        "Moderate cardiomegaly.",
                    )
                )
            return self.pick(
                (
                    "Cardiomegaly is observed.",
                    "The heart size has increased.",
                    f"Heart dimensions are increased, cardiothoracic ratio is approximately {ctr}.",
                    "Cardiomegaly was detected.",
                )
            )
        if self.chance(0.25):
            return None
        if self.us:
            return self.pick(("Heart size is normal.", "Normal heart size.", "No cardiomegaly."))
        return self.pick(
            (
                "Heart contour and size are normal.",
                "Heart size is within normal limits.",
                "No cardiomegaly was detected.",
            )
        )

    def pericardial(self) -> str | None:
        mm = self.t.pericardial_mm
        if self.has("pericardial_effusion"):
            amount = "small" if mm < 12 else ("moderate" if mm < 19 else "large")
            if self.hedge():
                return self.pick(
                    (
                        f"Pericardial effusion cannot be excluded, with fluid up to {mm} mm.",
                        "Possible small pericardial effusion.",
                    )
                )
            if self.us:
                return self.pick(
                    (
                        f"{amount.capitalize()} pericardial effusion.",
                        f"{amount.capitalize()} pericardial effusion measuring up to {mm} mm.",
                        f"There is a {amount} pericardial effusion.",
                    )
                )
            return self.pick(
                (
                    f"Pericardial effusion with a thickness of {mm} mm was observed.",
                    f"Pericardial effusion reaching {mm} mm in its thickest part is observed.",
                    f"Pericardial effusion of {amount} amount was detected.",
                )
            )
        if self.chance(0.3):
            return None
        if self.us:
            return self.pick(("No pericardial effusion.", "The pericardium is unremarkable."))
        return self.pick(
            (
                "Pericardial effusion-thickening was not observed.",
                "No pericardial effusion was detected.",
                "Pericardium is natural.",
            )
        )

    def coronary(self) -> str | None:
        if self.has("coronary_calcification"):
            names = [ARTERY_NAMES[a] if not self.us or self.chance(0.5) else a for a in self.t.coronary]
            arteries = _join(names)
            burden = self.t.coronary_burden
            if self.hedge():
                return "Punctate hyperdense foci along the coronary arteries, likely calcified plaques."
            if self.us:
                return self.pick(
                    (
                        f"{burden.capitalize()} coronary artery calcifications.",
                        f"Coronary artery calcifications involving the {arteries}.",
                        f"{burden.capitalize()} calcified coronary atherosclerosis ({arteries}).",
                    )
                )
            return self.pick(
                (
                    "Calcific atheroma plaques are observed in the coronary arteries.",
                    f"Calcified atheroma plaques are observed in the {arteries}.",
                    f"Coronary artery wall calcifications were seen in the {arteries}.",
                    "Atherosclerotic calcifications are present in the coronary arteries.",
                )
            )
        if self.chance(0.55):
            return None
        if self.us:
            return self.pick(("No coronary artery calcification.", "No coronary calcifications are seen."))
        return self.pick(
            ("No calcified plaque was observed in the coronary arteries.", "Coronary arteries show no calcification.")
        )

    def aortic(self) -> str | None:
        if self.has("arterial_calcification"):
            where = _join(self.t.aortic)
            burden = self.t.aortic_burden
            if self.hedge():
                return f"Probable calcified atheroma in the wall of the {where}."
            if self.us:
                return self.pick(
                    (
                        f"{burden.capitalize()} atherosclerotic calcification of the {where}.",
                        "Atherosclerotic calcification of the thoracic aorta.",
                        f"Calcified plaque along the {where}.",
                    )
                )
            return self.pick(
                (
                    f"Atherosclerotic calcified plaques are observed in the {where}.",
                    "Calcific atheroma plaques were observed in the thoracic aorta wall.",
                    f"Atherosclerotic changes with calcified plaques in the {where}.",
                    f"{burden.capitalize()} calcified atherosclerotic plaques are present in the aortic wall.",
                )
            )
        if self.chance(0.45):
            return None
        if self.us:
            return self.pick(
                ("No aortic atherosclerotic calcification.", "The thoracic aorta is without calcification.")
            )
        return self.pick(
            (
                "No atheromatous plaque was observed in the thoracic aorta.",
                "No calcification was detected in the aortic wall.",
            )
        )

    def emphysema(self) -> str | None:
        if self.has("emphysema"):
            pattern, severity = self.t.emphysema
            zone = {"centrilobular": "upper lobes", "paraseptal": "subpleural areas", "panlobular": "lower lobes"}[
                pattern
            ]
            if self.hedge():
                return self.pick(
                    (
                        f"Findings that may be compatible with {severity} emphysema in the {zone}.",
                        f"Areas of low attenuation in the {zone}, likely {pattern} emphysema.",
                    )
                )
            if self.us:
                return self.pick(
                    (
                        f"{severity.capitalize()} {pattern} emphysema, predominantly in the {zone}.",
                        f"{severity.capitalize()} {pattern} emphysema.",
                        f"Emphysema, {severity}, {pattern} type.",
                    )
                )
            return self.pick(
                (
                    (
                        f"{severity.capitalize()} {pattern} emphysematous changes are observed in both lungs, "
                        f"more prominent in the {zone}."
                    ),
                    f"{pattern.capitalize()} emphysema areas are observed in both lungs.",
                    f"Emphysematous areas with low attenuation were observed in the {zone} of both lungs.",
                    f"There is {severity} emphysema in both lungs.",
                )
            )
        if self.chance(0.45):
            return None
        if self.us:
            return self.pick(("No emphysema.", "No emphysematous changes."))
        return self.pick(("No emphysematous change was observed.", "No emphysematous area was detected in the lungs."))

    def nodules(self) -> str | None:
        nods = self.t.nodules
        if self.has("lung_nodule"):
            big = max(nods, key=lambda n: n["diameter"])
            d, loc = round(big["diameter"]), f"{big['segment']} of the {LOBE_NAMES[big['lobe']]}"
            pleural = " subpleural" if big["subpleural"] and self.chance(0.6) else ""
            if self.hedge():
                return self.pick(
                    (
                        (f"A {d} mm nodular density in the {LOBE_NAMES[big['lobe']]}; a nodule cannot be excluded."),
                        f"Possible{pleural} {d} mm nodule in the {loc}.",
                    )
                )
            if len(nods) > 1:
                sides = {n["lobe"][0] for n in nods}
                where = "both lungs" if len(sides) == 2 else ("the right lung" if "R" in sides else "the left lung")
                if self.us:
                    return self.pick(
                        (
                            f"Multiple pulmonary nodules, the largest measuring {d} mm in the {loc}.",
                            f"{len(nods)} solid nodules in {where}, largest {d} mm ({LOBE_NAMES[big['lobe']]}).",
                        )
                    )
                return self.pick(
                    (
                        f"Nodules were observed in {where}, the largest measuring {d} mm in the {loc}.",
                        (
                            f"{len(nods)} solid nodules were detected in {where}; the largest is {d} mm in "
                            f"diameter in the {LOBE_NAMES[big['lobe']]}."
                        ),
                    )
                )
            if self.us:
                image = int(self.rng.integers(40, 160))
                return self.pick(
                    (
                        f"{d} mm solid{pleural} nodule in the {loc} (series 3, image {image}).",
                        f"There is a {d} mm{pleural} pulmonary nodule in the {LOBE_NAMES[big['lobe']]}.",
                        f"{d / 10:.1f} cm solid nodule, {LOBE_NAMES[big['lobe']]}.",
                    )
                )
            return self.pick(
                (
                    f"A{pleural} nodule of {d} mm was observed in the {loc}.",
                    f"A solid nodule with a diameter of {d} mm is observed in the {LOBE_NAMES[big['lobe']]}.",
                    f"{d}x{max(d - 1, 5)} mm{pleural} nodule in the {loc}.",
                )
            )
        if self.chance(0.35):
            return None
        if self.us:
            return self.pick(("No suspicious pulmonary nodules.", "No pulmonary nodules or masses."))
        return self.pick(
            (
                "No nodule was detected in both lungs.",
                "No nodular lesion was observed in the lung parenchyma.",
                "No mass or nodular lesion was observed in both lungs.",
            )
        )

    def consolidation(self) -> str | None:
        if self.has("consolidation"):
            parts = []
            for c in self.t.consolidation:
                lobe = LOBE_NAMES[c["lobe"]]
                a, b = c["size"]
                bron = " with air bronchograms" if c["bronchogram"] else ""
                if self.hedge():
                    parts.append(f"Increased density in the {lobe}; pneumonic consolidation cannot be excluded.")
                elif self.us:
                    parts.append(
                        self.pick(
                            (
                                f"Consolidation in the {lobe}{bron}.",
                                (
                                    f"Patchy consolidation in the {c['segment']} of the {lobe}{bron}, "
                                    "compatible with pneumonia in the appropriate clinical setting."
                                ),
                                f"Airspace consolidation in the {lobe} measuring approximately {a} x {b} mm.",
                            )
                        )
                    )
                else:
                    parts.append(
                        self.pick(
                            (
                                f"Consolidation area{bron} was observed in the {lobe}.",
                                (
                                    f"A consolidation area of approximately {a}x{b} mm was observed in the "
                                    f"{c['segment']} of the {lobe}."
                                ),
                                f"Pneumonic consolidation{bron} is observed in the {lobe}.",
                            )
                        )
                    )
            return " ".join(parts)
        if self.chance(0.35):
            return None
        if self.us:
            return self.pick(("No focal consolidation.", "No airspace consolidation."))
        return self.pick(
            (
                "No consolidation was observed in both lungs.",
                "No infiltrative or consolidative lesion was detected in the lung parenchyma.",
            )
        )

    def effusion(self) -> str | None:
        eff = self.t.effusion_mm
        if self.has("pleural_effusion"):

            def amount(mm: float) -> str:
                return "small" if mm < 27 else ("moderate" if mm < 50 else "large")

            if len(eff) == 2:
                r, left = eff["right"], eff["left"]
                more = "right" if r >= left else "left"
                if self.us:
                    return self.pick(
                        (
                            (
                                f"Bilateral pleural effusions, {more} greater than "
                                f"{'left' if more == 'right' else 'right'}."
                            ),
                            f"{amount(max(r, left)).capitalize()} bilateral pleural effusions.",
                        )
                    )
                return self.pick(
                    (
                        (
                            f"Bilateral pleural effusion was observed, reaching {r} mm on the right and {left} mm "
                            "on the left."
                        ),
                        f"Pleural effusion is present on both sides, more on the {more}.",
                    )
                )
            side, mm = next(iter(eff.items()))
            if self.hedge():
                return f"Minimal {side} pleural effusion cannot be excluded in the posterior costophrenic sinus."
            if self.us:
                return self.pick(
                    (
                        f"{amount(mm).capitalize()} {side} pleural effusion.",
                        f"There is a {amount(mm)} {side} pleural effusion measuring {mm} mm in depth.",
                    )
                )
            return self.pick(
                (
                    f"Pleural effusion reaching a thickness of {mm} mm was observed on the {side}.",
                    f"{side.capitalize()} pleural effusion with a thickness of {mm} mm.",
                    f"{amount(mm).capitalize()} amount of pleural effusion is observed in the {side} hemithorax.",
                )
            )
        if self.chance(0.25):
            return None
        if self.us:
            return self.pick(("No pleural effusion or pneumothorax.", "No pleural effusion."))
        return self.pick(
            (
                "No pleural effusion or thickening was detected.",
                "Pleural effusion was not observed.",
                "No effusion was detected in the pleural spaces.",
            )
        )

    # ---- assembly ---------------------------------------------------------------------------------------
    def findings(self) -> str:
        return self._us_findings() if self.us else self._tr_findings()

    def _tr_findings(self) -> str:
        lung_normal = not any(self.has(k) for k in ("emphysema", "consolidation", "lung_nodule", "pleural_effusion"))
        heart_ok = not any(self.has(k) for k in ("cardiomegaly", "pericardial_effusion"))
        out = [
            self.pick(
                (
                    "Trachea and both main bronchi are in the midline and their lumens are open.",
                    "Trachea and both main bronchi are open.",
                    "The trachea is in the midline, both main bronchi are patent.",
                )
            )
        ]
        out.append(
            self.pick(
                (
                    "Calibration of the thoracic main vascular structures is normal.",
                    "Thoracic aorta diameter is within normal limits.",
                    "Mediastinal main vascular structures are of natural calibration.",
                )
            )
        )
        if heart_ok and self.chance(0.3):
            out.append("Heart contour and size are normal, pericardial effusion-thickening was not observed.")
        else:
            out += [self.cardiomegaly(), self.pericardial()]
        out += [self.aortic(), self.coronary()]
        if self.chance(0.6):
            out.append(
                self.pick(
                    (
                        (
                            "No lymph node was detected in the mediastinum and hilar regions in pathological size "
                            "and appearance."
                        ),
                        "No mediastinal or hilar lymphadenopathy was detected.",
                    )
                )
            )
        if self.chance(0.5):
            out.append(
                "Thoracic esophagus calibration was normal and no significant pathological wall thickening was "
                "detected."
            )
        prefix = "When examined in the lung parenchyma window; " if self.chance(0.5) else ""
        if lung_normal and self.chance(0.4):
            lung = [
                self.pick(
                    (
                        (
                            "Aeration of both lungs is normal and no nodular or infiltrative lesion was detected in "
                            "the lung parenchyma. No pleural effusion was observed."
                        ),
                        "Both lungs are well aerated, parenchyma is natural, pleural spaces are clear.",
                    )
                )
            ]
        else:
            lung = [self.emphysema(), self.nodules(), self.consolidation()]
            if not self.has("emphysema") and not self.has("consolidation") and self.chance(0.4):
                lung.insert(0, "Aeration of both lungs is normal.")
            lung.append(self.effusion())
        lung = [s for s in lung if s]
        if lung and prefix:
            lung[0] = prefix + lung[0][0].lower() + lung[0][1:]
        out += lung
        out += self._comparison()
        if self.chance(0.6):
            out.append(
                self.pick(
                    (
                        "Upper abdominal organs included in the sections are normal.",
                        (
                            "No space-occupying lesion was detected in the liver that entered the cross-sectional "
                            "area. Bilateral adrenal glands were normal."
                        ),
                        "Upper abdominal sections are unremarkable.",
                    )
                )
            )
        if self.chance(0.6):
            out.append(
                self.pick(
                    (
                        "No lytic-destructive lesion was detected in the bone structures within the sections.",
                        "Bone structures in the examination area are natural.",
                    )
                )
            )
        return " ".join(s for s in out if s)

    def _us_findings(self) -> str:
        lungs = [s for s in (self.emphysema(), self.nodules(), self.consolidation()) if s]
        if not lungs or not any(self.has(k) for k in ("emphysema", "lung_nodule", "consolidation")):
            lungs.insert(0, self.pick(("The central airways are patent.", "Airways are patent.")))
        heart = [s for s in (self.cardiomegaly(), self.pericardial(), self.coronary()) if s] or ["Unremarkable."]
        vessels = [s for s in (self.aortic(),) if s]
        vessels.append(
            self.pick(
                (
                    "Normal caliber thoracic aorta and main pulmonary artery.",
                    "No mediastinal, hilar, or axillary lymphadenopathy.",
                )
            )
        )
        pleura = self.effusion() or "No pneumothorax."
        sections = []
        if self.chance(0.3):
            sections.append("LINES/TUBES: None.")
        sections += [
            f"LUNGS AND AIRWAYS: {' '.join(lungs)}",
            f"PLEURA: {pleura}",
            f"HEART: {' '.join(heart)}",
            f"MEDIASTINUM AND VESSELS: {' '.join(vessels)}",
        ]
        sections += self._comparison()
        sections.append(
            "UPPER ABDOMEN: "
            + self.pick(
                ("Visualized upper abdomen is unremarkable.", "No acute abnormality in the imaged upper abdomen.")
            )
        )
        sections.append(
            "BONES AND SOFT TISSUES: " + self.pick(("No acute osseous abnormality.", "No suspicious osseous lesion."))
        )
        return " ".join(sections)

    def _comparison(self) -> list[str]:
        """Follow-up scans sometimes compare with the previous study; a resolved finding is stated as resolved."""
        if self.prev is None or not self.chance(0.6):
            return []
        out = ["Compared with the previous examination:" if self.us else "Compared to the previous examination;"]
        if self.has("lung_nodule") and self.prev.flags["lung_nodule"]:
            out.append(
                "the pulmonary nodule is stable in size."
                if self.chance(0.5)
                else "the known nodule shows no significant change."
            )
        for key, text in (
            ("pleural_effusion", "pleural effusion"),
            ("consolidation", "consolidation"),
            ("pericardial_effusion", "pericardial effusion"),
        ):
            if self.prev.flags[key] and not self.has(key):
                out.append(f"the previously described {text} has resolved.")
            elif self.has(key) and not self.prev.flags[key]:
                out.append(f"the {text} is new.")
        if len(out) == 1:
            out.append("no significant interval change.")
        return [" ".join(out)]

    def impression(self) -> str:
        items = []
        t = self.t
        if self.has("consolidation"):
            lobes = _join([LOBE_NAMES[c["lobe"]] for c in t.consolidation])
            items.append(
                self.pick(
                    (
                        f"Consolidation in the {lobes}, consistent with pneumonia.",
                        f"Pneumonic consolidation in the {lobes}.",
                    )
                )
            )
        if self.has("pleural_effusion"):
            side = "Bilateral" if len(t.effusion_mm) == 2 else next(iter(t.effusion_mm)).capitalize()
            items.append(f"{side} pleural effusion.")
        if self.has("cardiomegaly"):
            items.append(self.pick(("Cardiomegaly.", "Enlarged heart.")))
        if self.has("pericardial_effusion"):
            items.append("Pericardial effusion.")
        if self.has("lung_nodule"):
            d = round(max(n["diameter"] for n in t.nodules))
            lobe = LOBE_NAMES[max(t.nodules, key=lambda n: n["diameter"])["lobe"]]
            extra = "; follow-up recommended according to Fleischner criteria" if self.us and d < 15 else ""
            items.append(
                self.pick(
                    (
                        f"{d} mm nodule in the {lobe}{extra}.",
                        "Pulmonary nodule(s)." if len(t.nodules) > 1 else f"Nodule in the {lobe}.",
                    )
                )
            )
        if self.has("emphysema"):
            items.append(
                f"{t.emphysema[1].capitalize()} {t.emphysema[0]} emphysema."
                if self.chance(0.6)
                else "Emphysematous changes in both lungs."
            )
        minor = []
        if self.has("arterial_calcification"):
            minor.append(self.pick(("Atherosclerotic changes in the thoracic aorta.", "Aortic atherosclerosis.")))
        if self.has("coronary_calcification"):
            minor.append(self.pick(("Coronary artery calcifications.", "Coronary atherosclerosis.")))
        items += [m for m in minor if not items or self.chance(0.7)]
        if minor and not items:
            items = minor
        if not any(self.has(k) for k in FINDING_COLUMNS):
            return (
                self.pick(("No acute cardiopulmonary abnormality.", "Unremarkable CT of the chest."))
                if self.us
                else self.pick(
                    (
                        "No significant pathology was detected in the thorax CT examination.",
                        "Thorax CT findings are within normal limits.",
                    )
                )
            )
        if self.us:
            return " ".join(f"{i}. {s}" for i, s in enumerate(items, start=1))
        return " ".join(items)

    def clinical(self) -> str:
        text = self.pick(INDICATIONS)
        if self.prev is not None and self.chance(0.5):
            text = "Follow-up. " + ("" if text == "Not given." else text)
        if text != "Not given." and self.chance(0.2):
            text = f"{self.p.age}-year-old {'male' if self.p.sex == 'M' else 'female'}. {text}"
        return text.strip()


def _join(items: list[str]) -> str:
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


# --------------------------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------------------------


def plan_patients(n_scans: int, seed: int) -> list[Patient]:
    """Patients with one or two scans until `n_scans`; about 20 % of the patients are held out as `valid`."""
    rng = np.random.default_rng([seed, 0])
    counts: list[int] = []
    while sum(counts) < n_scans:
        room = n_scans - sum(counts)
        counts.append(2 if room >= 2 and rng.random() < FOLLOW_UP_FRACTION else 1)
    n_valid = max(1, round(VALID_FRACTION * len(counts))) if len(counts) >= 2 else 0
    valid = set(rng.permutation(len(counts))[:n_valid].tolist())
    patients, numbers = [], {"train": 0, "valid": 0}
    for i, k in enumerate(counts):
        split = "valid" if i in valid else "train"
        numbers[split] += 1
        patients.append(sample_patient(split, numbers[split], (seed, 1000 + i), k))
    return patients


def generate_patient(args: tuple[Patient, str]) -> list[dict]:
    """Render every scan of one patient and write all its reconstructions; returns one row per volume."""
    p, out = args
    an = build_anatomy(p)
    fields = patient_fields(p, an)
    rows, prev_plan, prev_truth = [], None, None
    for scan in range(p.n_scans):
        plan = plan_scan(p, scan, prev_plan)
        spec = plan_geometry(p, an, scan)
        master, truth = render_scan(p, an, fields, spec, plan, scan)
        writer = ReportWriter(truth, prev_truth, p, p.rng(50, scan))
        texts = {
            "ClinicalInformation_EN": writer.clinical(),
            "Technique_EN": writer.pick(TECHNIQUES).format(t=f"{min(r.dz for r in spec.recons):g}"),
            "Findings_EN": writer.findings(),
            "Impressions_EN": writer.impression(),
        }
        for recon in spec.recons:
            name = f"{p.split}_{p.number}_{spec.letter}_{recon.number}"
            hu = reconstruct(master, spec, recon, p.rng(60, scan, recon.number))
            data = to_nifti(hu, spec, recon)
            path = Path(out) / "dataset" / p.split / f"{p.split}_{p.number}" / f"{p.split}_{p.number}_{spec.letter}"
            path.mkdir(parents=True, exist_ok=True)
            (path / f"{name}.nii.gz").write_bytes(data)
            rows.append(
                {
                    "split": p.split,
                    "patient": p.number,
                    "scan": spec.letter,
                    "recon": recon.number,
                    "bytes": len(data),
                    "VolumeName": f"{name}.nii.gz",
                    **texts,
                    "meta": _metadata(p, spec, recon, hu.shape),
                    "labels": truth.labels(),
                }
            )
        prev_plan, prev_truth = plan, truth
    return rows


def _metadata(p: Patient, spec: ScanSpec, recon: Recon, shape: tuple[int, ...]) -> dict:
    age = p.age + (spec.letter != "a")
    return {
        "Manufacturer": spec.manufacturer,
        "ManufacturerModelName": spec.model,
        "StudyDate": spec.date,
        "PatientSex": p.sex,
        "PatientAge": f"{age:03d}Y",
        "ReconstructionDiameter": round(recon.n * recon.dxy, 1),
        "ConvolutionKernel": recon.kernel_name,
        "SliceThickness": recon.dz,
        "Rows": shape[1],
        "Columns": shape[0],
        "NumberofSlices": shape[2],
        "XYSpacing": f"[{recon.dxy!r}, {recon.dxy!r}]",
        "ZSpacing": recon.dz,
        "RescaleIntercept": spec.intercept,
        "RescaleSlope": spec.slope,
        "RescaleType": "HU",
    }


def write_tables(rows: list[dict], out: Path) -> None:
    rows = sorted(rows, key=lambda r: (r["split"], r["patient"], r["scan"], r["recon"]))
    for split, report_name, label_name in (("train", "train", "train"), ("valid", "validation", "valid")):
        part = [r for r in rows if r["split"] == split]
        names = [r["VolumeName"] for r in part]
        (out / "radiology_text_reports").mkdir(parents=True, exist_ok=True)
        (out / "metadata").mkdir(parents=True, exist_ok=True)
        (out / "multi_abnormality_labels").mkdir(parents=True, exist_ok=True)
        pd.DataFrame([{c: r[c] for c in REPORT_COLUMNS} for r in part], columns=list(REPORT_COLUMNS)).to_csv(
            out / "radiology_text_reports" / f"{report_name}_reports.csv", index=False
        )
        pd.DataFrame(
            [{"VolumeName": n, **r["meta"]} for n, r in zip(names, part)], columns=list(METADATA_COLUMNS)
        ).to_csv(out / "metadata" / f"{report_name}_metadata.csv", index=False)
        pd.DataFrame(
            [{"VolumeName": n, **r["labels"]} for n, r in zip(names, part)], columns=["VolumeName", *LABEL_COLUMNS]
        ).to_csv(out / "multi_abnormality_labels" / f"{label_name}_predicted_labels.csv", index=False)


def summarize(rows: list[dict], seconds: float) -> str:
    lines = []
    for split in ("train", "valid"):
        part = [r for r in rows if r["split"] == split]
        scans = {(r["patient"], r["scan"]) for r in part}
        lines.append(f"{split}: {len({r['patient'] for r in part})} patients, {len(scans)} scans, {len(part)} volumes")
    first = {}
    for r in rows:
        first.setdefault((r["split"], r["patient"], r["scan"]), r)
    lines.append(f"{'finding':38s} {'scans':>7s} {'volumes':>8s}")
    for col in FINDING_COLUMNS.values():
        per_scan = np.mean([r["labels"][col] for r in first.values()])
        per_vol = np.mean([r["labels"][col] for r in rows])
        lines.append(f"{col:38s} {per_scan:7.1%} {per_vol:8.1%}")
    size = sum(r["bytes"] for r in rows)
    lines.append(f"written {size / 2**30:.2f} GiB of volumes in {seconds:.0f} s")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (must be empty or absent)")
    parser.add_argument("--scans", type=int, default=250, help="number of scans (default 250, about 500 volumes)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="processes (default 2)")
    args = parser.parse_args(argv)
    if args.scans < 2:
        parser.error(f"--scans must be at least 2 (one train and one valid patient), got {args.scans}")
    if args.seed < 0:
        parser.error(f"--seed must be a non-negative integer, got {args.seed}")
    if args.workers < 1:
        parser.error(f"--workers must be at least 1, got {args.workers}")
    if args.out.exists() and (not args.out.is_dir() or any(args.out.iterdir())):
        parser.error(f"--out {args.out} exists and is not an empty folder; choose a new one")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    args.out.mkdir(parents=True, exist_ok=True)
    patients = plan_patients(args.scans, args.seed)
    jobs = [(p, str(args.out)) for p in sorted(patients, key=lambda p: -p.n_scans)]
    rows: list[dict] = []
    if args.workers == 1:
        for job in jobs:
            rows += generate_patient(job)
    else:
        with mp.get_context("spawn").Pool(args.workers) as pool:
            for part in pool.imap_unordered(generate_patient, jobs):
                rows += part
    write_tables(rows, args.out)
    print(summarize(rows, time.perf_counter() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
