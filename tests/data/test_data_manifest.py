from __future__ import annotations

import logging

import pytest
from tiny_files import write_manifest, write_volume

from domainclip.data.manifest import read_manifest
from domainclip.errors import DataError


def test_rows_become_records(small_study):
    records = read_manifest(small_study)
    assert [r.id for r in records] == ["s0", "s1", "s2", "s3"]
    first = records[0]
    assert first.image == small_study.parent / "img" / "s0.nii.gz" and first.image.is_file()
    assert (first.patient_id, first.split, first.time, first.event) == ("p0", "train", 10.0, 0)
    assert first.findings == {"pleural effusion": 0.0} and records[1].findings == {"pleural effusion": 1.0}
    assert first.source == "manifest.csv:row 2"
    assert records[0].report_id != records[1].report_id  # same patient, different report text


def test_absolute_paths_empty_cells_and_explicit_report_ids(tmp_path):
    image = write_volume(tmp_path / "elsewhere" / "a.nii.gz")
    rows = [
        {
            "id": "a",
            "patient_id": "p",
            "image": str(image),
            "report": "Same text.",
            "report_id": "",
            "cardiomegaly": "",
            "time": "",
            "event": "",
        },
        {
            "id": "b",
            "patient_id": "p",
            "image": str(image),
            "report": "Same text.",
            "report_id": "scan-1",
            "cardiomegaly": "1",
            "time": "3.5",
            "event": "1",
        },
    ]
    a, b = read_manifest(write_manifest(tmp_path / "elsewhere", rows))
    assert a.image == image and a.findings == {} and not a.has_survival
    assert (a.report_id, b.report_id) == ("a", "scan-1")  # an empty report_id cell keeps the row alone
    assert b.findings == {"cardiomegaly": 1.0} and b.has_survival


def test_identical_report_of_one_patient_forms_one_group(tmp_path):
    rows = [
        {"id": f"r{k}", "patient_id": pid, "image": "x.nii.gz", "report": text, "split": "train"}
        for k, (pid, text) in enumerate(
            [("p1", "Renal cyst."), ("p1", "Renal cyst."), ("p2", "Renal cyst."), ("p1", "No findings.")]
        )
    ]
    groups = [r.report_id for r in read_manifest(write_manifest(tmp_path, rows))]
    assert groups[0] == groups[1] and len(set(groups)) == 3


def test_missing_patient_id_warns_loudly_and_uses_the_row_id(tmp_path, caplog):
    rows = [{"id": f"r{k}", "image": "x.nii.gz", "report": "text", "split": "train"} for k in range(3)]
    with caplog.at_level(logging.WARNING), pytest.warns(UserWarning, match="no 'patient_id' column"):
        records = read_manifest(write_manifest(tmp_path, rows))
    assert "no 'patient_id' column" in caplog.text
    assert [r.patient_id for r in records] == ["r0", "r1", "r2"]


def test_missing_split_gives_a_seeded_patient_level_split(tmp_path):
    rows = [{"id": f"r{k}", "patient_id": f"p{k // 3}", "image": "x.nii.gz", "report": "t"} for k in range(60)]
    path = write_manifest(tmp_path, rows)
    records = read_manifest(path, seed=5)
    splits_per_patient = {}
    for r in records:
        splits_per_patient.setdefault(r.patient_id, set()).add(r.split)
    assert all(len(s) == 1 for s in splits_per_patient.values())
    counts = [sum(1 for s in splits_per_patient.values() if s == {name}) for name in ("train", "valid", "test")]
    assert counts == [14, 2, 4]  # 20 patients at 0.7 / 0.1 / 0.2
    assert [r.split for r in read_manifest(path, seed=5)] == [r.split for r in records]
    assert [r.split for r in read_manifest(path, seed=6)] != [r.split for r in records]


def test_every_malformed_cell_is_reported_at_once(tmp_path):
    rows = [
        {
            "id": "a",
            "patient_id": "p",
            "image": "x.nii.gz",
            "report": "t",
            "nodule": "yes",
            "time": "1",
            "event": "1",
            "split": "train",
        },
        {
            "id": "b",
            "patient_id": "p",
            "image": "x.nii.gz",
            "report": "t",
            "nodule": "1",
            "time": "-4",
            "event": "2",
            "split": "holdout",
        },
        {
            "id": "",
            "patient_id": "p",
            "image": "",
            "report": "t",
            "nodule": "0",
            "time": "1",
            "event": "0",
            "split": "test",
        },
    ]
    with pytest.raises(DataError) as info:
        read_manifest(write_manifest(tmp_path, rows))
    assert info.value.problems == [
        "manifest.csv:row 2 (id=a): finding 'nodule' is 'yes'; expected 0, 1 or empty",
        "manifest.csv:row 3 (id=b): time '-4' is not a non-negative number",
        "manifest.csv:row 3 (id=b): event '2'; expected 0 (censored), 1 (event) or empty",
        "manifest.csv:row 3 (id=b): split 'holdout' is not one of ['train', 'valid', 'test']",
        "manifest.csv:row 4 (id=): empty id",
        "manifest.csv:row 4 (id=): empty image path",
    ]
    assert "3 malformed" not in str(info.value) and "6 malformed cell(s)" in str(info.value)


def test_structural_errors(tmp_path):
    with pytest.raises(DataError, match="manifest not found"):
        read_manifest(tmp_path / "none.csv")
    path = write_manifest(tmp_path, [{"id": "a", "img": "x.nii.gz", "report": "t"}])
    with pytest.raises(DataError, match=r"missing required column\(s\) \['image'\]"):
        read_manifest(path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(DataError, match="not a readable CSV"):
        read_manifest(tmp_path / "empty.csv")


def test_time_nan_is_not_survival(tmp_path):
    rows = [{"id": "a", "patient_id": "p", "image": "x", "report": "t", "time": "nan", "event": "1", "split": "train"}]
    with pytest.raises(DataError, match="time 'nan'"):
        read_manifest(write_manifest(tmp_path, rows))


def test_declared_columns_are_texts_labels_and_targets_not_findings(tmp_path) -> None:
    from domainclip.config.schema import ManifestColumnsConfig
    from domainclip.data.manifest import read_manifest

    (tmp_path / "a.tif").write_bytes(b"")
    path = tmp_path / "m.csv"
    path.write_text(
        "id,patient_id,image,caption_1,caption_2,scene,ndvi,source,cloud\n"
        "a,p,a.tif,a harbour,boats in a harbour,harbour,0.2,s2,1\n"
        "b,q,a.tif,a forest,,forest,,s2,0\n"
    )
    columns = ManifestColumnsConfig(
        texts=["caption_1", "caption_2"], label="scene", targets=["ndvi"], ignore=["source"]
    )
    a, b = read_manifest(path, columns=columns)
    assert a.texts == ("a harbour", "boats in a harbour") and b.texts == ("a forest",)  # empty caption skipped
    assert (a.label, a.targets, a.findings) == ("harbour", {"ndvi": 0.2}, {"cloud": 1.0})
    assert b.targets == {}  # an empty target cell is unknown


def test_a_bad_target_cell_and_a_missing_declared_column_are_named(tmp_path) -> None:
    import pytest

    from domainclip.config.schema import ManifestColumnsConfig
    from domainclip.data.manifest import read_manifest
    from domainclip.errors import DataError

    path = tmp_path / "m.csv"
    path.write_text("id,patient_id,image,report,ndvi\na,p,a.tif,text,high\n")
    with pytest.raises(DataError, match=r"m.csv:row 2 \(id=a\): target 'ndvi' is 'high'; expected a number"):
        read_manifest(path, columns=ManifestColumnsConfig(targets=["ndvi"]))
    with pytest.raises(DataError, match=r"missing required column\(s\) \['scene'\]"):
        read_manifest(path, columns=ManifestColumnsConfig(label="scene"))
