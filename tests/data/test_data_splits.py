from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from domainclip.data.splits import (
    assign_splits,
    carve_validation,
    patients_in_several_splits,
    split_patients,
)
from domainclip.records import Record


def records_of(patients: list[str]) -> list[Record]:
    return [Record(id=f"{p}-{k}", patient_id=p, image=Path("x"), texts="r") for k, p in enumerate(patients)]


@pytest.mark.parametrize("n,expected", [(20, [14, 2, 4]), (100, [70, 10, 20]), (4, [2, 1, 1]), (2, [1, 0, 1])])
def test_counts_follow_fractions_without_empty_splits(n, expected):
    assignment = split_patients([f"p{i}" for i in range(n)], seed=0)
    assert [list(assignment.values()).count(s) for s in ("train", "valid", "test")] == expected


def test_split_is_seeded_and_independent_of_order():
    patients = [f"p{i}" for i in range(50)]
    a = split_patients(patients, seed=3)
    assert a == split_patients(list(reversed(patients)) + patients[:5], seed=3)  # order and repeats ignored
    assert a != split_patients(patients, seed=4)


def test_assign_splits_keeps_patients_together():
    records = assign_splits(records_of([f"p{i % 7}" for i in range(40)]), seed=1)
    assert patients_in_several_splits(records) == {}
    assert {r.split for r in records} == {"train", "valid", "test"}


def test_carve_validation_moves_only_train_patients():
    records = [
        dataclasses.replace(r, split="test" if r.patient_id.startswith("t") else "train")
        for r in records_of([f"p{i}" for i in range(20)] + ["t1", "t2"])
    ]
    carved = carve_validation(records, fraction=0.1, seed=0)
    assert [r.split for r in carved if r.patient_id.startswith("t")] == ["test", "test"]
    assert sum(r.split == "valid" for r in carved) == 2 and sum(r.split == "train" for r in carved) == 18


def test_patients_in_several_splits_names_them():
    records = records_of(["a", "a", "b"])
    records[1] = dataclasses.replace(records[1], split="test")
    assert patients_in_several_splits(records) == {"a": ["test", "train"]}


def test_bad_fractions():
    with pytest.raises(ValueError, match="fractions"):
        split_patients(["a"], fractions=(0.5, -0.5, 1.0))
    with pytest.raises(ValueError, match="2 fractions for 3"):
        split_patients(["a"], fractions=(0.5, 0.5))
