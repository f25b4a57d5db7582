"""Synthetic TCGA-like pathology demo: H&E-like slides, reports, a clinical table, in the ``tcga`` layout.

Why synthetic: no slides, reports or survival tables can be downloaded here, and none ship in any package. What
makes it a fair check of the recipe is that nothing is handed to the model: the subtype and the findings are only
in the pixels (:mod:`domainclip.domains.wsi.demo_tissue`) and in free text
(:mod:`domainclip.domains.wsi.demo_reports`); ``labels.csv`` holds the drawn truth for evaluation only.

Layout under ``out`` (the ``tcga`` layout, as users have it from the GDC, TCGA-Reports and TCGA-CDR)::

    <uuid>/<slide barcode>.<uuid>.svs    Aperio SVS (most slides), or .tiff (generic tiled TIFF, some)
    TCGA_Reports.csv                      patient_filename,text   (patient_filename = <patient barcode>.<uuid>)
    clinical.tsv                          bcr_patient_barcode, type, OS, OS.time, PFI, PFI.time (days)
    labels.csv                            slide_id + 0/1 per drawn finding (ground truth, evaluation only)
    mpp.csv                               slide_id,mpp for the TIFF slides written without a resolution
    demo_complete.json                    written last: the folder is complete

About ``PATIENTS_PER_SLIDE`` of the slides come from distinct patients; the others are a patient's second slide
(``DX2``), with the same subtype, findings and report. Slides are scanned at 0.5 um/px (AppMag 20) or, a share
``HIGH_MAG_SHARE``, at 0.25 um/px (AppMag 40).

Survival (days) follows a Weibull proportional-hazards model on the subtype and the drawn findings, with uniform
censoring::

    eta  = SURVIVAL_LOG_HAZARD[type] + sum_f SURVIVAL_LOG_HAZARD[f] * finding_f
    T    = OS_SCALE_DAYS * (-log U * exp(-eta)) ** (1 / WEIBULL_SHAPE),   U ~ Uniform(0, 1)
    C    ~ Uniform(*CENSOR_DAYS);  OS.time = min(T, C),  OS = [T <= C]

and progression likewise with ``PFI_SCALE_DAYS`` (PFI counts the earlier of progression and death).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from domainclip.domains.wsi.demo_reports import ReportFacts, draw_facts, make_report
from domainclip.domains.wsi.demo_tissue import DRAWN_FINDINGS, SUBTYPE_NAMES, draw_tissue
from domainclip.errors import DataError
from domainclip.progress import track

# Bumped whenever the generator's output changes: it names the default demo folder, so a cache
# written by an older version is never mistaken for the current data.
DEMO_VERSION = 1
DEMO_MARKER = "demo_complete.json"
PATIENTS_PER_SLIDE = 0.8
TIFF_SHARE = 0.25  # generic tiled TIFF instead of SVS
NO_MPP_SHARE_OF_TIFF = 0.34  # TIFF written without a resolution, mpp given in mpp.csv
HIGH_MAG_SHARE = 0.25
MAGNIFICATION_OF_MPP: dict[float, int] = {0.5: 20, 0.25: 40}
SLIDE_WIDTH_UM = (900.0, 1300.0)
SLIDE_HEIGHT_UM = (700.0, 1000.0)
TISSUE_SOURCE_SITES = ("D1", "D2", "D3", "D4")
FINDING_PREVALENCE: dict[str, dict[str, float]] = {  # mildly tied to the subtype, as in real cohorts
    "necrosis": {"LUAD": 0.3, "LUSC": 0.45, "MESO": 0.35},
    "mucin": {"LUAD": 0.45, "LUSC": 0.25, "MESO": 0.3},
    "lymphocytic infiltrate": {"LUAD": 0.35, "LUSC": 0.35, "MESO": 0.35},
    "haemorrhage": {"LUAD": 0.35, "LUSC": 0.35, "MESO": 0.35},
    "calcification": {"LUAD": 0.35, "LUSC": 0.3, "MESO": 0.35},
}
SURVIVAL_LOG_HAZARD: dict[str, float] = {
    "LUAD": 0.0,
    "LUSC": 0.25,
    "MESO": 1.0,
    "necrosis": 0.8,
    "lymphocytic infiltrate": -0.7,
    "haemorrhage": 0.2,
    "mucin": 0.3,
    "calcification": 0.0,
}
WEIBULL_SHAPE = 1.3
OS_SCALE_DAYS = 1400.0
PFI_SCALE_DAYS = 800.0
CENSOR_DAYS = (200.0, 3650.0)

SlideWriter = Callable[..., Path]


@dataclass(frozen=True)
class DemoSlide:
    """One slide file: its TCGA barcode and GDC uuid, format and scan resolution, size and drawing seed."""

    slide_id: str
    uuid: str
    fmt: str  # "svs" or "tiff"
    mpp: float
    mpp_in_file: bool
    width_um: float
    height_um: float
    seed: tuple[int, ...]

    @property
    def relative_path(self) -> Path:
        extension = "svs" if self.fmt == "svs" else "tiff"
        return Path(self.uuid) / f"{self.slide_id}.{self.uuid}.{extension}"


@dataclass(frozen=True)
class DemoPatient:
    """One patient: subtype, drawn findings, the report written from them, survival, and 1-2 slides."""

    barcode: str
    subtype: str
    findings: dict[str, bool]
    facts: ReportFacts
    report: str
    report_uuid: str
    os_time: int
    os_event: int
    pfi_time: int
    pfi_event: int
    slides: tuple[DemoSlide, ...]


def _uuid(rng: np.random.Generator) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _draw_findings(rng: np.random.Generator, subtype: str) -> dict[str, bool]:
    return {name: bool(rng.random() < FINDING_PREVALENCE[name][subtype]) for name in DRAWN_FINDINGS}


def _weibull_days(rng: np.random.Generator, scale: float, eta: float) -> float:
    return scale * (-np.log(rng.random()) * np.exp(-eta)) ** (1.0 / WEIBULL_SHAPE)


def draw_survival(rng: np.random.Generator, subtype: str, findings: Mapping[str, bool]) -> tuple[int, int, int, int]:
    """(OS.time, OS, PFI.time, PFI) in whole days from the module's hazard model."""
    eta = SURVIVAL_LOG_HAZARD[subtype] + sum(SURVIVAL_LOG_HAZARD[f] for f, here in findings.items() if here)
    death = _weibull_days(rng, OS_SCALE_DAYS, eta)
    progression = min(_weibull_days(rng, PFI_SCALE_DAYS, eta), death)
    censor = rng.uniform(*CENSOR_DAYS)
    os_time, pfi_time = max(1, round(min(death, censor))), max(1, round(min(progression, censor)))
    return os_time, int(death <= censor), pfi_time, int(progression <= censor)


def demo_patients(n: int, seed: int) -> list[DemoPatient]:
    """The plan of an ``n``-slide demo: patients with their reports, survival and slides (nothing drawn yet)."""
    if n < 1:
        raise ValueError(f"demo_patients: n must be >= 1, got {n}")
    plan = np.random.default_rng([seed, 0])
    n_patients = min(n, max(1, round(PATIENTS_PER_SLIDE * n)))
    second = set(plan.choice(n_patients, n - n_patients, replace=False).tolist())
    subtypes = [list(SUBTYPE_NAMES)[k % len(SUBTYPE_NAMES)] for k in plan.permutation(n_patients)]
    order = plan.permutation(n)
    n_tiff = round(TIFF_SHARE * n)
    tiff = set(order[:n_tiff].tolist())
    no_mpp = set(order[: max(1, round(NO_MPP_SHARE_OF_TIFF * n_tiff))].tolist()) if n_tiff else set()
    high_mag = set(plan.permutation(n)[: round(HIGH_MAG_SHARE * n)].tolist())
    patients, slide_index = [], 0
    for i, subtype in enumerate(subtypes):
        rng = np.random.default_rng([seed, 1, i])
        barcode = f"TCGA-{TISSUE_SOURCE_SITES[int(rng.integers(len(TISSUE_SOURCE_SITES)))]}-{i + 1:04d}"
        findings = _draw_findings(rng, subtype)
        facts = draw_facts(rng, subtype, findings)
        report = make_report(rng, facts)
        survival = draw_survival(rng, subtype, findings)
        slides = []
        for k in range(1, 3 if i in second else 2):
            j = slide_index
            slide_index += 1
            slides.append(
                DemoSlide(
                    slide_id=f"{barcode}-01Z-00-DX{k}",
                    uuid=_uuid(rng),
                    fmt="tiff" if j in tiff else "svs",
                    mpp=0.25 if j in high_mag else 0.5,
                    mpp_in_file=j not in no_mpp,
                    width_um=round(float(rng.uniform(*SLIDE_WIDTH_UM)), 1),
                    height_um=round(float(rng.uniform(*SLIDE_HEIGHT_UM)), 1),
                    seed=(seed, 2, i, k),
                )
            )
        patients.append(DemoPatient(barcode, subtype, findings, facts, report, _uuid(rng), *survival, tuple(slides)))
    return patients


def _write_csv(path: Path, header: list[str], rows: Iterable[list[object]], delimiter: str = ",") -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)


def write_tables(out: Path, patients: list[DemoPatient]) -> None:
    """``TCGA_Reports.csv``, ``clinical.tsv``, ``labels.csv`` and ``mpp.csv`` of the ``tcga`` layout."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _write_csv(
        out / "TCGA_Reports.csv",
        ["patient_filename", "text"],
        ([f"{p.barcode}.{p.report_uuid}", p.report] for p in patients),
    )
    _write_csv(
        out / "clinical.tsv",
        ["bcr_patient_barcode", "type", "OS", "OS.time", "PFI", "PFI.time"],
        ([p.barcode, p.subtype, p.os_event, p.os_time, p.pfi_event, p.pfi_time] for p in patients),
        delimiter="\t",
    )
    slides = [(p, s) for p in patients for s in p.slides]
    _write_csv(
        out / "labels.csv",
        ["slide_id", *DRAWN_FINDINGS],
        ([s.slide_id, *(int(p.findings[f]) for f in DRAWN_FINDINGS)] for p, s in slides),
    )
    _write_csv(out / "mpp.csv", ["slide_id", "mpp"], ([s.slide_id, s.mpp] for _, s in slides if not s.mpp_in_file))


def write_slides(out: Path, patients: list[DemoPatient], writer: SlideWriter | None = None) -> list[Path]:
    """Draw and write every slide; ``writer`` defaults to :func:`domainclip.domains.wsi.slide_writer.write_slide`."""
    if writer is None:
        from domainclip.domains.wsi.slide_writer import write_slide as writer
    written = []
    slides = [(patient, slide) for patient in patients for slide in patient.slides]
    for patient, slide in track(slides, "writing WSI demo slides"):
        path = Path(out) / slide.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        rgb = draw_tissue(
            np.random.default_rng(slide.seed),
            patient.subtype,
            patient.findings,
            slide.width_um,
            slide.height_um,
            slide.mpp,
        )
        written.append(
            writer(
                path,
                rgb,
                mpp=slide.mpp if slide.mpp_in_file else None,
                fmt=slide.fmt,
                magnification=MAGNIFICATION_OF_MPP[slide.mpp] if slide.fmt == "svs" else None,
            )
        )
    return written


def write_demo(out: Path, n: int, seed: int, *, writer: SlideWriter | None = None) -> Path:
    """Write an ``n``-slide demo in the ``tcga`` layout under ``out`` (the marker last); return ``out``."""
    out = Path(out)
    patients = demo_patients(n, seed)
    write_slides(out, patients, writer)
    write_tables(out, patients)
    marker = {"generator": "domainclip wsi demo", "version": DEMO_VERSION, "n": n, "seed": seed}
    (out / DEMO_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    return out


def ensure_demo(folder: Path, n: int, seed: int, *, writer: SlideWriter | None = None) -> Path:
    """The demo folder, written first if it has no marker.

    Generation goes to a temporary sibling renamed into place, so concurrent processes (several ranks) never see
    half-written data; a folder with a marker from another ``n`` / ``seed`` is an error, not silently reused.
    """
    folder = Path(folder)
    marker = folder / DEMO_MARKER
    if not marker.exists():
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=folder.parent))
        try:
            write_demo(staging, n, seed, writer=writer)
            try:
                os.rename(staging, folder)
            except OSError as exc:
                if not marker.exists():  # not a lost race with another process: the folder holds something else
                    raise DataError(
                        f"data.demo.dir {folder}: exists without {DEMO_MARKER}; empty it or choose another folder"
                    ) from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    written = json.loads(marker.read_text(encoding="utf-8"))
    if (written.get("n"), written.get("seed"), written.get("version")) != (n, seed, DEMO_VERSION):
        raise DataError(
            f"data.demo.dir {folder}: holds demo v{written.get('version')} with n={written.get('n')}, "
            f"seed={written.get('seed')}, not v{DEMO_VERSION} with n={n}, seed={seed}; choose another folder"
        )
    return folder


__all__ = [
    "DEMO_MARKER",
    "DEMO_VERSION",
    "DemoPatient",
    "DemoSlide",
    "demo_patients",
    "draw_survival",
    "ensure_demo",
    "write_demo",
    "write_slides",
    "write_tables",
]
