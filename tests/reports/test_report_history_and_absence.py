"""Change-without-negation, history and absence phrases: sentences written for these rules (not the held-out
set of ``benchmarks/data/report_constructions.csv``, which only measures them)."""

from __future__ import annotations

import pytest

from domainclip.reports import ReportStructurer
from domainclip.reports.extract import load_vocabulary

P, U, N, H, M = "present", "uncertain", "negated", "historical", "unmentioned"


@pytest.fixture(scope="module")
def chest() -> ReportStructurer:
    return ReportStructurer(load_vocabulary("ct-rate"))


@pytest.fixture(scope="module")
def pathology() -> ReportStructurer:
    return ReportStructurer(load_vocabulary("pathology"))


def status(structurer: ReportStructurer, text: str, finding: str) -> str:
    return next(row.status for row in structurer.structure(text, "r").audit if row.finding == finding)


@pytest.mark.parametrize(
    ("text", "finding", "expected"),
    [
        # "no <change>" says the finding is still there
        ("No significant change in the size of the right pleural effusion.", "Pleural effusion", P),
        ("No interval increase in the left lower lobe nodule.", "Lung nodule", P),
        ("No worsening of the bilateral pleural effusions.", "Pleural effusion", P),
        ("No progression of the emphysematous changes.", "Emphysema", P),
        ("Without appreciable change, the 8 mm nodule in the right upper lobe persists.", "Lung nodule", P),
        ("No substantial interval change of the consolidation in the lingula.", "Consolidation", P),
        ("No new pleural effusion.", "Pleural effusion", N),
        # gone now
        ("Previously described pleural effusion is no longer visible.", "Pleural effusion", N),
        ("The previously seen consolidation has cleared.", "Consolidation", N),
        ("Prior pleural effusion has completely resolved.", "Pleural effusion", N),
        ("Emphysema is unlikely.", "Emphysema", N),
        # still there
        ("Stable 5 mm lung nodule.", "Lung nodule", P),
        ("Known emphysema, unchanged.", "Emphysema", P),
        ("Pleural effusion has decreased but persists.", "Pleural effusion", P),
        ("Cardiomegaly, previously noted, is again seen.", "Cardiomegaly", P),
        # history is not a statement about this study
        ("Status post resection of a lung nodule.", "Lung nodule", H),
        ("Patient with a history of pleural effusion.", "Pleural effusion", H),
        ("No history of emphysema.", "Emphysema", N),
    ],
)
def test_chest_change_and_history(chest: ReportStructurer, text: str, finding: str, expected: str) -> None:
    assert status(chest, f"FINDINGS: {text}", finding) == expected


@pytest.mark.parametrize(
    ("text", "finding", "expected"),
    [
        ("Margins are free of carcinoma.", "positive margin", N),
        ("All surgical margins are negative.", "positive margin", N),
        ("Margins uninvolved by tumor.", "positive margin", N),
        ("The closest margin is 0.2 cm (deep); margins negative.", "positive margin", N),
        ("Tumor extends to the inked deep margin.", "positive margin", P),
        ("Margin status: involved.", "positive margin", P),
        ("Lymphovascular invasion: not identified.", "lymphovascular invasion", N),
        ("Lymphovascular invasion: present.", "lymphovascular invasion", P),
        ("No lymphovascular or perineural invasion is identified.", "perineural invasion", N),
        ("Twelve lymph nodes, negative for metastatic carcinoma (0/12).", "lymph node metastasis", N),
        ("Two of fourteen lymph nodes positive for metastatic carcinoma (2/14).", "lymph node metastasis", P),
        ("pT2 pN0.", "lymph node metastasis", N),
    ],
)
def test_pathology_absence_phrases(pathology: ReportStructurer, text: str, finding: str, expected: str) -> None:
    assert status(pathology, f"DIAGNOSIS: {text}", finding) == expected


def test_history_is_valued_unmentioned_and_a_current_statement_wins(chest: ReportStructurer) -> None:
    only_history = chest.structure("FINDINGS: History of pleural effusion.", "a")
    assert only_history.values()["Pleural effusion"] == 0.0
    row = next(r for r in only_history.audit if r.finding == "Pleural effusion")
    assert (row.status, row.cue) == (H, "History of")
    both = chest.structure("FINDINGS: History of pleural effusion. Small pleural effusion today.", "b")
    assert both.values()["Pleural effusion"] == 1.0
    assert not chest.statements("History of pleural effusion.")  # no statement teaches the text tower history


def test_absence_phrase_is_its_own_cue_in_the_audit(pathology: ReportStructurer) -> None:
    row = next(
        r
        for r in pathology.structure("DIAGNOSIS: Margins are free of carcinoma.", "p").audit
        if r.finding == "positive margin"
    )
    assert (row.status, row.cue, row.value) == (N, "Margins are free", 0.0)
