"""Synthetic H&E-like tissue for the WSI demo: one subtype's morphology plus region-level findings.

Why painted as stains: the picture is built as haematoxylin, eosin and red-cell concentration maps and turned
into RGB once by Beer-Lambert (``rgb = 255 * exp(-sum_k c_k * v_k)``, the model colour deconvolution assumes), so
overlapping structures blend as they do under the microscope, and a per-slide jitter of the stain vectors and
strengths gives the stain variation between labs that a real cohort has.

Why one render scale: the tissue is drawn at :data:`RENDER_MPP` (the scale the quickstart reads it at) and
resampled to the scan's mpp, so a 0.25 and a 0.5 um/px scan of a case differ only by resampling, as two scans of
one glass slide do; tiling at an exact mpp must then give the same tiles from both.

What each subtype looks like (TCGA project codes):

* LUAD: glands, rings of columnar cells with basal nuclei around pale lumens, in pink stroma.
* LUSC: solid nests of large cells with eosinophilic cytoplasm and big nuclei, with keratin pearls (concentric
  bright-pink whorls).
* MESO: fascicles of spindle cells (elongated nuclei aligned with a slowly turning direction) with slit-like
  tubules.

Each drawn finding is a region of its own look, disjoint from the others: necrosis (pale pink amorphous with
nuclear debris), mucin (pale blue-grey pools), lymphocytic infiltrate (dense small dark round nuclei),
haemorrhage (packed red cells), calcification (dark purple cracked fragments).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import cv2
import numpy as np

RENDER_MPP = 1.0  # um per pixel of the painted canvas
SUBTYPE_NAMES: dict[str, str] = {
    "LUAD": "lung adenocarcinoma",
    "LUSC": "lung squamous cell carcinoma",
    "MESO": "mesothelioma",
}
DRAWN_FINDINGS: tuple[str, ...] = ("necrosis", "mucin", "lymphocytic infiltrate", "haemorrhage", "calcification")

# Optical density per unit concentration in (R, G, B): haematoxylin, eosin, haemoglobin of red cells.
_STAIN_VECTORS = np.array([[0.56, 0.72, 0.41], [0.22, 0.80, 0.56], [0.05, 0.75, 0.66]], dtype=np.float32)
_H, _E, _R = 0, 1, 2


@dataclass(frozen=True)
class PaintedTissue:
    """An RGB image at the requested mpp with the masks of what was drawn, at the same size."""

    rgb: np.ndarray  # (H, W, 3) uint8
    tissue: np.ndarray  # (H, W) bool
    regions: dict[str, np.ndarray]  # finding name -> (H, W) bool, only for drawn findings
    mpp: float


class _Canvas:
    """Stain concentrations (3, h, w) and a nuclear-stain map, painted at RENDER_MPP."""

    def __init__(self, rng: np.random.Generator, height: int, width: int) -> None:
        self.rng = rng
        self.shape = (height, width)
        self.conc = np.zeros((3, height, width), dtype=np.float32)
        self.nuclei = np.zeros((height, width), dtype=np.float32)

    def noise(self, cell_um: float) -> np.ndarray:
        """Smooth noise, about unit variance, varying over ``cell_um``."""
        h, w = self.shape
        cell = max(cell_um / RENDER_MPP, 1.0)
        coarse = self.rng.standard_normal((int(h / cell) + 3, int(w / cell) + 3)).astype(np.float32)
        return cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)

    def points(self, where: np.ndarray, spacing_um: float, jitter: float = 0.4) -> tuple[np.ndarray, np.ndarray]:
        """Rows and columns of a jittered grid (cell ``spacing_um``) that fall inside ``where``."""
        h, w = self.shape
        step = spacing_um / RENDER_MPP
        ys, xs = np.meshgrid(np.arange(step / 2, h, step), np.arange(step / 2, w, step), indexing="ij")
        ys = ys.ravel() + self.rng.uniform(-jitter, jitter, ys.size) * step
        xs = xs.ravel() + self.rng.uniform(-jitter, jitter, xs.size) * step
        ys, xs = np.clip(ys, 0, h - 1).astype(np.intp), np.clip(xs, 0, w - 1).astype(np.intp)
        keep = where[ys, xs]
        return ys[keep], xs[keep]

    def stamp(self, ys: np.ndarray, xs: np.ndarray, kernel: np.ndarray, strength: tuple[float, float]) -> None:
        """Nuclei: ``kernel`` centred on every point, each with its own strength, kept as the darker of overlaps."""
        if ys.size == 0:
            return
        impulses = np.zeros(self.shape, dtype=np.float32)
        impulses[ys, xs] = self.rng.uniform(*strength, ys.size)
        np.maximum(self.nuclei, cv2.filter2D(impulses, -1, kernel, borderType=cv2.BORDER_CONSTANT), out=self.nuclei)

    def fill(self, where: np.ndarray, h: float | np.ndarray, e: float | np.ndarray, r: float | np.ndarray = 0.0):
        """Set all three concentrations inside ``where`` (maps are indexed by the same mask)."""
        for channel, value in ((_H, h), (_E, e), (_R, r)):
            self.conc[channel][where] = value[where] if isinstance(value, np.ndarray) else value


def _disc(radius_um: float, pallor: float = 0.0) -> np.ndarray:
    """A soft-edged disc kernel; ``pallor`` lightens its centre (red cells are biconcave)."""
    r = radius_um / RENDER_MPP
    half = int(np.ceil(r)) + 1
    yy, xx = np.mgrid[-half : half + 1, -half : half + 1]
    d = np.hypot(yy, xx)
    disc = np.clip(r + 0.5 - d, 0.0, 1.0)
    return (disc * (1.0 - pallor * np.clip(1.0 - d / (0.5 * r), 0.0, 1.0))).astype(np.float32)


def _spindle(length_um: float, width_um: float, angle_deg: float) -> np.ndarray:
    """An elongated nucleus kernel along ``angle_deg``."""
    half = int(np.ceil(length_um / RENDER_MPP / 2)) + 1
    kernel = np.zeros((2 * half + 1, 2 * half + 1), dtype=np.uint8)
    axes = (max(1, round(length_um / 2 / RENDER_MPP)), max(1, round(width_um / 2 / RENDER_MPP)))
    cv2.ellipse(kernel, (half, half), axes, angle_deg, 0, 360, 255, -1, lineType=cv2.LINE_AA)
    return kernel.astype(np.float32) / 255.0


def _tissue_mask(c: _Canvas) -> np.ndarray:
    """One or two irregular pieces, sometimes with a hole, with a white margin around them."""
    h, w = c.shape
    rng = c.rng
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    wobble = 0.22 * c.noise(250.0) + 0.07 * c.noise(60.0)
    two = rng.random() < 0.35
    centres = [(0.5, 0.3), (0.5, 0.72)] if two else [(0.5, 0.5)]
    tissue = np.zeros((h, w), dtype=bool)
    for fy, fx in centres:
        cy, cx = h * (fy + rng.uniform(-0.05, 0.05)), w * (fx + rng.uniform(-0.05, 0.05))
        ry, rx = h * rng.uniform(0.34, 0.42), w * (rng.uniform(0.19, 0.23) if two else rng.uniform(0.36, 0.44))
        tissue |= ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 + wobble < 1.0
    if rng.random() < 0.3:
        cy, cx = h * rng.uniform(0.4, 0.6), w * (centres[0][1] + rng.uniform(-0.05, 0.05))
        r = min(h, w) * rng.uniform(0.05, 0.1)
        tissue &= ((yy - cy) ** 2 + (xx - cx) ** 2) / r**2 + 2.0 * wobble >= 1.0
    margin = 0.03
    inside = (yy > h * margin) & (yy < h * (1 - margin)) & (xx > w * margin) & (xx < w * (1 - margin))
    return tissue & inside


def _paint_stroma(c: _Canvas, tissue: np.ndarray) -> None:
    """Eosin-pink collagen with fibres along one direction and sparse elongated fibroblast nuclei."""
    angle = float(c.rng.uniform(0, 180))
    fibre_kernel = _spindle(40.0, 2.0, angle)
    fibres = cv2.filter2D(c.rng.standard_normal(c.shape).astype(np.float32), -1, fibre_kernel / fibre_kernel.sum())
    fibres /= fibres.std() + 1e-6
    c.fill(tissue, h=0.04, e=0.5 + 0.12 * fibres + 0.06 * c.noise(80.0))
    ys, xs = c.points(tissue, 30.0, jitter=0.5)
    c.stamp(ys, xs, _spindle(10.0, 3.0, angle), (0.6, 0.9))


def _paint_glands(c: _Canvas, tumour: np.ndarray) -> None:
    """LUAD: round to oval glands, a ring of columnar cells with basal nuclei around a pale lumen."""
    rng = c.rng
    ring = np.zeros(c.shape, dtype=np.uint8)
    lumen = np.zeros(c.shape, dtype=np.uint8)
    nuclei_y, nuclei_x = [], []
    cys, cxs = c.points(tumour, 70.0, jitter=0.15)
    for cy, cx in zip(cys.tolist(), cxs.tolist()):
        a = rng.uniform(10.0, 20.0) / RENDER_MPP
        b = a * rng.uniform(0.6, 1.0)
        angle = rng.uniform(0, 180)
        wall = rng.uniform(9.0, 12.0) / RENDER_MPP
        cv2.ellipse(ring, (cx, cy), (round(a + wall), round(b + wall)), angle, 0, 360, 1, -1)
        cv2.ellipse(lumen, (cx, cy), (round(a), round(b)), angle, 0, 360, 1, -1)
        ra, rb = a + 0.6 * wall, b + 0.6 * wall
        count = max(6, int(2 * np.pi * np.sqrt((ra**2 + rb**2) / 2) / (7.0 / RENDER_MPP)))
        phi = np.linspace(0, 2 * np.pi, count, endpoint=False) + rng.uniform(0, 2 * np.pi)
        theta = np.deg2rad(angle)
        nuclei_x.append(cx + ra * np.cos(phi) * np.cos(theta) - rb * np.sin(phi) * np.sin(theta))
        nuclei_y.append(cy + ra * np.cos(phi) * np.sin(theta) + rb * np.sin(phi) * np.cos(theta))
    epithelium, lumen_mask = (ring > 0) & (lumen == 0), lumen > 0
    c.fill(epithelium, h=0.22, e=0.38)
    c.fill(lumen_mask, h=0.02, e=0.05)
    c.nuclei[lumen_mask | epithelium] = 0.0
    if nuclei_y:
        h, w = c.shape
        ys = np.clip(np.concatenate(nuclei_y), 0, h - 1).astype(np.intp)
        xs = np.clip(np.concatenate(nuclei_x), 0, w - 1).astype(np.intp)
        c.stamp(ys, xs, _disc(3.0), (0.8, 1.0))


def _paint_nests(c: _Canvas, tumour: np.ndarray) -> None:
    """LUSC: solid nests of big eosinophilic cells with large nuclei, and keratin pearls."""
    rng = c.rng
    nests = tumour & (c.noise(90.0) > -0.5)
    c.fill(nests, h=0.1, e=0.72 + 0.08 * c.noise(8.0))
    c.nuclei[nests] = 0.0
    ys, xs = c.points(nests, 13.0, jitter=0.3)
    c.stamp(ys, xs, _disc(4.2), (0.75, 1.0))
    area_px = int(nests.sum())
    cys, cxs = c.points(nests, 200.0, jitter=0.4)
    h, w = c.shape
    for cy, cx in zip(cys.tolist()[: max(1, area_px // 20000)], cxs.tolist()):
        r = rng.uniform(22.0, 45.0) / RENDER_MPP
        y0, y1, x0, x1 = max(0, int(cy - r)), min(h, int(cy + r) + 1), max(0, int(cx - r)), min(w, int(cx + r) + 1)
        yy, xx = np.mgrid[y0:y1, x0:x1]
        d = np.hypot(yy - cy, xx - cx)
        pearl = d < r
        whorl = 0.95 + 0.35 * np.cos(2 * np.pi * d / (6.0 / RENDER_MPP))
        window = (slice(y0, y1), slice(x0, x1))
        c.conc[_E][window][pearl] = whorl[pearl]
        c.conc[_H][window][pearl] = 0.02
        c.nuclei[window][pearl] = 0.0


def _paint_spindles(c: _Canvas, tumour: np.ndarray) -> None:
    """MESO: fascicles of spindle cells aligned with a slowly turning direction, and slit-like tubules."""
    rng = c.rng
    c.fill(tumour, h=0.14, e=0.45 + 0.06 * c.noise(20.0))
    c.nuclei[tumour] = 0.0
    bins = 8
    direction = ((c.noise(300.0) * 0.6 + rng.uniform(0, 1)) % 1.0 * bins).astype(np.int64) % bins
    ys, xs = c.points(tumour, 11.0, jitter=0.35)
    for k in range(bins):
        pick = direction[ys, xs] == k
        c.stamp(ys[pick], xs[pick], _spindle(15.0, 4.0, 180.0 * k / bins), (0.7, 1.0))
    lumen = np.zeros(c.shape, dtype=np.uint8)
    lining_y, lining_x = [], []
    cys, cxs = c.points(tumour, 140.0, jitter=0.4)
    for cy, cx in zip(cys.tolist(), cxs.tolist()):
        a, b = rng.uniform(18.0, 35.0) / RENDER_MPP, rng.uniform(3.0, 6.0) / RENDER_MPP
        angle = 180.0 * direction[cy, cx] / bins
        cv2.ellipse(lumen, (cx, cy), (round(a), round(b)), angle, 0, 360, 1, -1)
        phi = np.linspace(0, 2 * np.pi, max(6, int(2 * a / (6.0 / RENDER_MPP))), endpoint=False)
        theta = np.deg2rad(angle)
        ra, rb = a + 3.0 / RENDER_MPP, b + 3.0 / RENDER_MPP
        lining_x.append(cx + ra * np.cos(phi) * np.cos(theta) - rb * np.sin(phi) * np.sin(theta))
        lining_y.append(cy + ra * np.cos(phi) * np.sin(theta) + rb * np.sin(phi) * np.cos(theta))
    slit = (lumen > 0) & tumour
    c.fill(slit, h=0.02, e=0.05)
    c.nuclei[slit] = 0.0
    if lining_y:
        h, w = c.shape
        ys = np.clip(np.concatenate(lining_y), 0, h - 1).astype(np.intp)
        xs = np.clip(np.concatenate(lining_x), 0, w - 1).astype(np.intp)
        c.stamp(ys, xs, _disc(2.8), (0.8, 1.0))


_SUBTYPE_PAINTERS = {"LUAD": _paint_glands, "LUSC": _paint_nests, "MESO": _paint_spindles}

# Per finding: how many foci, their radius range (um), and whether they cluster around one centre.
_FOCI: dict[str, tuple[tuple[int, int], tuple[float, float], bool]] = {
    "necrosis": ((1, 2), (100.0, 180.0), False),
    "mucin": ((1, 3), (80.0, 150.0), False),
    "lymphocytic infiltrate": ((2, 4), (60.0, 120.0), False),
    "haemorrhage": ((1, 2), (80.0, 150.0), False),
    "calcification": ((5, 10), (15.0, 35.0), True),
}


def _blob(c: _Canvas, cy: float, cx: float, radius_px: float, roughness: float) -> np.ndarray:
    """A full-size mask of one irregular blob around (cy, cx)."""
    h, w = c.shape
    reach = 1.6 * radius_px
    y0, y1 = max(0, int(cy - reach)), min(h, int(cy + reach) + 1)
    x0, x1 = max(0, int(cx - reach)), min(w, int(cx + reach) + 1)
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    stretch = c.rng.uniform(0.6, 1.0)
    theta = c.rng.uniform(0, np.pi)
    u = ((xx - cx) * np.cos(theta) + (yy - cy) * np.sin(theta)) / radius_px
    v = (-(xx - cx) * np.sin(theta) + (yy - cy) * np.cos(theta)) / (radius_px * stretch)
    cell = max(2, int(radius_px / 3))
    coarse = c.rng.standard_normal(((y1 - y0) // cell + 3, (x1 - x0) // cell + 3)).astype(np.float32)
    wobble = cv2.resize(coarse, (x1 - x0, y1 - y0), interpolation=cv2.INTER_CUBIC)
    mask = np.zeros(c.shape, dtype=bool)
    mask[y0:y1, x0:x1] = u**2 + v**2 + roughness * wobble < 1.0
    return mask


def _finding_region(c: _Canvas, name: str, available: np.ndarray) -> np.ndarray:
    """Where ``name`` goes: its foci, centred well inside the tissue still free of other findings."""
    (low, high), (r_min, r_max), clustered = _FOCI[name]
    distance = cv2.distanceTransform(available.astype(np.uint8), cv2.DIST_L2, 5)
    region = np.zeros(c.shape, dtype=bool)
    if clustered:
        anchor = _centre(c, distance, 90.0 / RENDER_MPP)
    for _ in range(int(c.rng.integers(low, high + 1))):
        radius = c.rng.uniform(r_min, r_max) / RENDER_MPP
        if clustered:
            cy, cx = anchor + c.rng.uniform(-90.0, 90.0, 2) / RENDER_MPP
            roughness = 0.6
        else:
            cy, cx = _centre(c, distance, 0.7 * radius)
            roughness = 0.3
        region |= _blob(c, cy, cx, radius, roughness)
    return region & available


def _centre(c: _Canvas, distance: np.ndarray, clearance_px: float) -> np.ndarray:
    """A random point at least ``clearance_px`` inside the free tissue (the deepest point if none is)."""
    candidates = np.flatnonzero(distance.ravel() >= clearance_px)
    flat = candidates[c.rng.integers(candidates.size)] if candidates.size else int(distance.argmax())
    return np.array(np.unravel_index(flat, distance.shape), dtype=np.float64)


def _paint_finding(c: _Canvas, name: str, region: np.ndarray) -> None:
    c.nuclei[region] = 0.0
    if name == "necrosis":
        c.fill(region, h=0.06 + 0.03 * c.noise(15.0), e=0.3 + 0.1 * c.noise(12.0))
        ys, xs = c.points(region, 7.0, jitter=0.5)
        c.stamp(ys, xs, _disc(1.2), (0.5, 1.0))
    elif name == "mucin":
        wisps = c.noise(25.0) * 0.5 + c.noise(6.0) * 0.5
        c.fill(region, h=0.28 + 0.07 * wisps, e=0.02 + 0.01 * wisps)
        ys, xs = c.points(region, 45.0, jitter=0.5)
        c.stamp(ys, xs, _disc(3.0), (0.5, 0.8))
    elif name == "lymphocytic infiltrate":
        c.fill(region, h=0.35, e=0.22)
        ys, xs = c.points(region, 6.0, jitter=0.3)
        c.stamp(ys, xs, _disc(2.5), (1.25, 1.5))
    elif name == "haemorrhage":
        c.fill(region, h=0.0, e=0.22, r=0.75)
        cells = np.zeros(c.shape, dtype=np.float32)
        ys, xs = c.points(region, 7.0, jitter=0.25)
        cells[ys, xs] = 1.0
        cells = cv2.filter2D(cells, -1, _disc(3.4, pallor=0.5), borderType=cv2.BORDER_CONSTANT)
        c.conc[_R][region] += 0.7 * np.clip(cells[region], 0.0, 1.0)
    elif name == "calcification":
        cracks = np.abs(c.noise(10.0)) < 0.12
        c.fill(region, h=np.where(cracks, 0.7, 1.55) + 0.15 * c.noise(5.0), e=0.35)


def paint_tissue(
    rng: np.random.Generator,
    subtype: str,
    findings: Mapping[str, bool],
    width_um: float,
    height_um: float,
    mpp: float,
) -> PaintedTissue:
    """H&E-like tissue of ``subtype`` with the ``findings`` that are true, at ``mpp`` um/px, and its masks.

    ``findings`` maps names of :data:`DRAWN_FINDINGS` to presence (missing names are absent).
    """
    if subtype not in SUBTYPE_NAMES:
        raise ValueError(f"paint_tissue: subtype {subtype!r} is not one of {sorted(SUBTYPE_NAMES)}")
    unknown = sorted(set(findings) - set(DRAWN_FINDINGS))
    if unknown:
        raise ValueError(f"paint_tissue: unknown findings {unknown}; drawn findings are {list(DRAWN_FINDINGS)}")
    if not (mpp > 0 and width_um >= 100 * RENDER_MPP and height_um >= 100 * RENDER_MPP):
        raise ValueError(f"paint_tissue: need mpp > 0 and sides >= 100 um, got {width_um} x {height_um} um at {mpp}")
    c = _Canvas(rng, round(height_um / RENDER_MPP), round(width_um / RENDER_MPP))
    c.conc[_E] = 0.03
    tissue = _tissue_mask(c)
    _paint_stroma(c, tissue)
    tumour = tissue & (c.noise(220.0) > -0.35)
    _SUBTYPE_PAINTERS[subtype](c, tumour)
    available = tissue.copy()
    regions: dict[str, np.ndarray] = {}
    for name in DRAWN_FINDINGS:
        if findings.get(name, False):
            regions[name] = _finding_region(c, name, available)
            available &= ~regions[name]
            _paint_finding(c, name, regions[name])
    rgb = _to_rgb(c, tissue)
    size = (round(width_um / mpp), round(height_um / mpp))
    upsampling = mpp < RENDER_MPP
    rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_LINEAR if upsampling else cv2.INTER_AREA)

    def resized(mask: np.ndarray) -> np.ndarray:
        return cv2.resize(mask.astype(np.uint8), size, interpolation=cv2.INTER_NEAREST).astype(bool)

    return PaintedTissue(rgb, resized(tissue), {k: resized(v) for k, v in regions.items()}, float(mpp))


def _to_rgb(c: _Canvas, tissue: np.ndarray) -> np.ndarray:
    """Beer-Lambert with this slide's stain vectors and strengths, plus fine grain."""
    rng = c.rng
    vectors = _STAIN_VECTORS * rng.uniform(0.92, 1.08, _STAIN_VECTORS.shape).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    strength = rng.uniform(0.85, 1.15, 3).astype(np.float32)
    c.conc[_H] += 1.05 * c.nuclei
    c.conc[_E] += 0.1 * c.nuclei
    grain = rng.standard_normal(c.shape, dtype=np.float32) * np.where(tissue, 0.04, 0.01).astype(np.float32)
    c.conc[_H] += grain
    c.conc[_E] += grain
    np.clip(c.conc, 0.0, None, out=c.conc)
    density = np.einsum("kc,khw->hwc", vectors * strength[:, None], c.conc, optimize=True)
    return np.clip(255.0 * np.exp(-density), 0, 255).astype(np.uint8)


def draw_tissue(
    rng: np.random.Generator,
    subtype: str,
    findings: Mapping[str, bool],
    width_um: float,
    height_um: float,
    mpp: float,
) -> np.ndarray:
    """The (H, W, 3) uint8 image of :func:`paint_tissue` (H = height_um / mpp, W = width_um / mpp)."""
    return paint_tissue(rng, subtype, findings, width_um, height_um, mpp).rgb


__all__ = ["DRAWN_FINDINGS", "RENDER_MPP", "SUBTYPE_NAMES", "PaintedTissue", "draw_tissue", "paint_tissue"]
