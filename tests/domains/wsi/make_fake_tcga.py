"""A tiny TCGA-layout folder (GDC slide folders, TCGA-Reports, TCGA-CDR clinical table, labels, mpp overrides) for
the layout and recipe tests, written with the package's slide writer from the drawn blob of ``drawn_slides``.

Run as a script to look at one: ``python tests/domains/wsi/make_fake_tcga.py OUT``.
"""

from __future__ import annotations

import csv
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from drawn_slides import draw

from domainclip.domains.wsi.slide_writer import write_slide

REPORTS = {
    "LUAD": "Final diagnosis: lung adenocarcinoma, acinar pattern. Tumor necrosis is present. No mucin is identified.",
    "LUSC": "Final diagnosis: squamous cell carcinoma of the lung. Necrosis is not identified. Extracellular mucin is "
    "present.",
}


@dataclass(frozen=True)
class FakeTCGA:
    root: Path
    slides: dict[str, Path]
    """slide id -> file."""


def _rows(path: Path, header: list[str], rows: list[list[object]], delimiter: str = ",") -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, delimiter=delimiter)
        writer.writerow(header)
        writer.writerows(rows)


def make_fake_tcga(root: Path, patients: int = 8) -> FakeTCGA:
    """``patients`` patients alternating LUAD / LUSC, one slide each, the first patient with a second slide (DX2);
    the last slide is a TIFF without resolution whose mpp only ``mpp.csv`` gives."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    slides: dict[str, Path] = {}
    reports, clinical, labels = [], [], []
    for i in range(patients):
        barcode = f"TCGA-AB-{1000 + i}"
        kind = "LUAD" if i % 2 == 0 else "LUSC"
        for copy in range(1, 3 if i == 0 else 2):
            sid = f"{barcode}-01Z-00-DX{copy}"
            slide_uuid = str(uuid.UUID(int=100 * i + copy))
            last = i == patients - 1
            mpp = 0.5 if i % 3 else 0.25
            folder = root / slide_uuid
            folder.mkdir(exist_ok=True)
            path = folder / f"{sid}.{slide_uuid}.{'tiff' if last else 'svs'}"
            write_slide(path, draw(mpp), mpp=None if last else mpp, fmt="tiff" if last else "svs")
            slides[sid] = path
            labels.append([sid, int(kind == "LUAD"), int(kind == "LUSC")])
        reports.append([f"{barcode}.{uuid.UUID(int=10_000 + i)}", REPORTS[kind]])
        clinical.append([barcode, kind, i % 2, 300 + 100 * i])
    _rows(root / "TCGA_Reports.csv", ["patient_filename", "text"], reports)
    _rows(root / "clinical.tsv", ["bcr_patient_barcode", "type", "OS", "OS.time"], clinical, delimiter="\t")
    _rows(root / "labels.csv", ["slide_id", "necrosis", "mucin"], labels)
    last = list(slides)[-1]
    _rows(root / "mpp.csv", ["slide_id", "mpp"], [[last, 0.5]])
    return FakeTCGA(root, slides)


if __name__ == "__main__":
    print(make_fake_tcga(Path(sys.argv[1])).root)
