"""The ``tcga`` layout: GDC slide names, reports matched on the patient barcode, TCGA-CDR survival, problems named."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from make_fake_tcga import FakeTCGA, make_fake_tcga

from domainclip.config.schema import DataConfig
from domainclip.domains.wsi.domain import WSIDomain
from domainclip.domains.wsi.layouts import MPP_META, tcga_records
from domainclip.errors import DataError, RecipeError


@pytest.fixture(scope="module")
def fake(tmp_path_factory) -> FakeTCGA:
    return make_fake_tcga(tmp_path_factory.mktemp("tcga"))


def _copy(fake: FakeTCGA, tmp_path: Path) -> Path:
    return Path(shutil.copytree(fake.root, tmp_path / "tcga"))


def test_records_carry_ids_patients_reports_survival_and_labels(fake: FakeTCGA) -> None:
    records, problems = tcga_records(DataConfig(root=fake.root))
    assert problems == [] and len(records) == 9
    by_id = {r.id: r for r in records}
    first, second = by_id["TCGA-AB-1000-01Z-00-DX1"], by_id["TCGA-AB-1000-01Z-00-DX2"]
    assert first.patient_id == second.patient_id == "TCGA-AB-1000"
    assert first.texts == second.texts and first.report_id == second.report_id, "one report, a positives group"
    assert first.split == second.split, "splits by patient"
    assert (first.label, first.time, first.event) == ("lung adenocarcinoma", 300.0, 0)
    types = {"lung adenocarcinoma": 1.0, "lung squamous cell carcinoma": 0.0}
    assert first.findings == {**types, "necrosis": 1.0, "mucin": 0.0}, "labels.csv and the clinical type's truth"
    assert by_id["TCGA-AB-1007-01Z-00-DX1"].image_meta == {MPP_META: 0.5}, "mpp.csv fills in"
    assert {r.split for r in records} <= {"train", "valid", "test"}


def test_labels_csv_wins_over_the_clinical_type_and_a_patient_without_type_gets_no_type_truth(
    fake: FakeTCGA, tmp_path: Path
) -> None:
    root = _copy(fake, tmp_path)
    labels = (root / "labels.csv").read_text().splitlines()
    labels[0] += ",lung adenocarcinoma"
    labels[1:] = [line + ",0" for line in labels[1:]]
    (root / "labels.csv").write_text("\n".join(labels) + "\n")
    clinical = (root / "clinical.tsv").read_text().splitlines()
    header = clinical[0].split("\t")
    last = clinical[-1].split("\t")
    last[header.index("type")] = ""
    (root / "clinical.tsv").write_text("\n".join([*clinical[:-1], "\t".join(last)]) + "\n")
    records, _ = tcga_records(DataConfig(root=root))
    assert all(r.findings["lung adenocarcinoma"] == 0.0 for r in records), "labels.csv names the column"
    untyped = next(r for r in records if r.patient_id == last[header.index("bcr_patient_barcode")])
    assert untyped.label is None and "lung squamous cell carcinoma" not in untyped.findings


def test_a_slide_without_report_is_a_problem_and_a_report_without_slide_a_warning(
    fake: FakeTCGA, tmp_path: Path, caplog
) -> None:
    root = _copy(fake, tmp_path)
    text = (root / "TCGA_Reports.csv").read_text().splitlines()
    (root / "TCGA_Reports.csv").write_text("\n".join([text[0], *text[2:], "TCGA-ZZ-9999.x,orphan report"]) + "\n")
    records, problems = tcga_records(DataConfig(root=root))
    assert len(problems) == 2 and all("no report for patient TCGA-AB-1000" in p for p in problems)
    assert len(records) == 7
    assert "TCGA-ZZ-9999" in caplog.text


def test_a_negative_or_non_numeric_os_time_names_the_row(fake: FakeTCGA, tmp_path: Path) -> None:
    root = _copy(fake, tmp_path)
    lines = (root / "clinical.tsv").read_text().splitlines()
    lines[2] = lines[2].rsplit("\t", 1)[0] + "\t-5"
    lines[3] = lines[3].rsplit("\t", 1)[0] + "\tsoon"
    (root / "clinical.tsv").write_text("\n".join(lines) + "\n")
    _, problems = tcga_records(DataConfig(root=root))
    assert len(problems) == 2
    assert "clinical.tsv:row 3" in problems[0] or "clinical.tsv:row 3" in problems[1]


def test_the_recipe_can_name_other_survival_columns(fake: FakeTCGA, tmp_path: Path) -> None:
    root = _copy(fake, tmp_path)
    lines = (root / "clinical.tsv").read_text().splitlines()
    lines = [lines[0] + "\tPFI\tPFI.time", *(line + "\t1\t42" for line in lines[1:])]
    (root / "clinical.tsv").write_text("\n".join(lines) + "\n")
    cfg = DataConfig(root=root, columns={"time": "PFI.time", "event": "PFI"})
    records, _ = tcga_records(cfg)
    assert {(r.time, r.event) for r in records} == {(42.0, 1)}


def test_a_clinical_split_column_is_used(fake: FakeTCGA, tmp_path: Path) -> None:
    root = _copy(fake, tmp_path)
    lines = (root / "clinical.tsv").read_text().splitlines()
    lines = [lines[0] + "\tsplit", *(line + ("\ttest" if k == 0 else "\ttrain") for k, line in enumerate(lines[1:]))]
    (root / "clinical.tsv").write_text("\n".join(lines) + "\n")
    records, _ = tcga_records(DataConfig(root=root))
    assert {r.id for r in records if r.split == "test"} == {"TCGA-AB-1000-01Z-00-DX1", "TCGA-AB-1000-01Z-00-DX2"}


def test_missing_root_and_missing_reports_are_clear(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="data.root"):
        tcga_records(DataConfig())
    with pytest.raises(DataError, match="TCGA_Reports.csv: not found"):
        tcga_records(DataConfig(root=tmp_path))


def test_the_check_names_a_slide_without_mpp_and_passes_it_with_the_override(fake: FakeTCGA) -> None:
    domain, cfg = WSIDomain(), {"mpp": 1.0, "tile_size": 32, "tissue": {"mpp": 4.0, "min_area_mm2": 0.005}}
    tiff = fake.slides["TCGA-AB-1007-01Z-00-DX1"]
    reason = domain.check_image(tiff, {}, cfg)
    assert reason is not None and str(tiff) in reason and "mpp.csv" in reason
    assert domain.check_image(tiff, {MPP_META: 0.5}, cfg) is None
