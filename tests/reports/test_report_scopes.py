"""Negation and uncertainty scopes on hand-written sentences."""

from __future__ import annotations

import math

import numpy as np
import pytest

from domainclip.reports import ReportStructurer, Vocabulary
from domainclip.reports.extract import load_vocabulary

P, U, N, M = "present", "uncertain", "negated", "unmentioned"


@pytest.fixture(scope="module")
def structurer() -> ReportStructurer:
    return ReportStructurer(load_vocabulary("ct"))


def statuses(structurer: ReportStructurer, text: str) -> dict[str, str]:
    return {row.finding: row.status for row in structurer.structure(text, "r").audit}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # one cue negates a whole coordinated list
        ("No pleural effusion or cardiomegaly.", {"pleural effusion": N, "cardiomegaly": N}),
        (
            "No pleural effusion, ascites, or splenomegaly.",
            {"pleural effusion": N, "ascites": N, "splenomegaly": N},
        ),
        # negation does not leak into the next sentence or backwards
        ("Ascites present. No renal mass.", {"ascites": P, "renal mass": N}),
        ("Cardiomegaly, no pleural effusion.", {"cardiomegaly": P, "pleural effusion": N}),
        # pre-negation phrases
        ("The kidneys enhance without evidence of a solid renal mass.", {"renal mass": N}),
        ("No evidence of splenomegaly.", {"splenomegaly": N}),
        ("Negative for pleural effusion.", {"pleural effusion": N}),
        ("The liver is free of focal hepatic lesions.", {"liver lesion": N}),
        # post-negation phrases
        ("An aortic aneurysm is not seen.", {"aortic aneurysm": N}),
        ("A focal liver lesion is not identified.", {"liver lesion": N}),
        ("Free fluid is absent.", {"ascites": N}),
        ("The previously seen pleural effusion has resolved.", {"pleural effusion": N}),
        ("Cardiomegaly was ruled out.", {"cardiomegaly": N}),
        ("Pleural effusion: none.", {"pleural effusion": N}),
        # cue inside a paraphrase mention
        ("The heart is not enlarged.", {"cardiomegaly": N}),
        ("The abdominal aorta is not aneurysmal.", {"aortic aneurysm": N}),
        # uncertainty
        ("Possible small amount of ascites.", {"ascites": U}),
        ("Pelvic fluid that may represent ascites.", {"ascites": U}),
        ("A renal mass cannot be excluded.", {"renal mass": U}),
        ("Cardiomegaly cannot be ruled out.", {"cardiomegaly": U}),
        ("Questionable liver lesion.", {"liver lesion": U}),
        ("Indeterminate lesion, suspicious for renal cell carcinoma.", {"renal mass": U}),
        ("Dilated aorta, likely an early aortic aneurysm.", {"aortic aneurysm": U}),
        # a cue scopes only to the next cue: each finding keeps its own cue
        (
            "Questionable small pleural effusion, no cardiomegaly.",
            {"pleural effusion": U, "cardiomegaly": N},
        ),
        ("No pleural effusion, possible ascites.", {"pleural effusion": N, "ascites": U}),
        # clause terminators end a scope
        ("No renal mass but an aortic aneurysm is present.", {"renal mass": N, "aortic aneurysm": P}),
        ("No pleural effusion; cardiomegaly.", {"pleural effusion": N, "cardiomegaly": P}),
        (
            "Ascites is not identified, however splenomegaly is present.",
            {"ascites": N, "splenomegaly": P},
        ),
        # pseudo-negation and negated hedges
        ("No change in the left pleural effusion.", {"pleural effusion": P}),
        ("Not suspicious for renal mass.", {"renal mass": N}),
        # inside both a negation and an uncertainty scope: negation wins
        ("No pleural effusion is suspected.", {"pleural effusion": N}),
        # words inside other words are not cues or mentions
        ("Noncalcified abdominal aortic aneurysm.", {"aortic aneurysm": P}),
        ("Cannot comment; cardiomegaly is noted.", {"cardiomegaly": P}),
        ("The heart is normal in size.", {"cardiomegaly": M}),
    ],
)
def test_sentence_scopes(structurer: ReportStructurer, text: str, expected: dict[str, str]) -> None:
    got = statuses(structurer, text)
    assert {k: got[k] for k in expected} == expected
    untouched = set(got) - set(expected)
    assert all(got[k] == M for k in untouched), {k: got[k] for k in untouched if got[k] != M}


def test_indication_and_technique_sections_are_skipped(structurer: ReportStructurer) -> None:
    report = (
        "CLINICAL INFORMATION: Abdominal distension, evaluate for ascites.\n"
        "TECHNIQUE: CT to assess for renal mass.\n"
        "FINDINGS: Small left pleural effusion.\nIMPRESSION: Pleural effusion."
    )
    got = statuses(structurer, report)
    assert got["ascites"] == M and got["renal mass"] == M and got["pleural effusion"] == P
    one_line = "INDICATION: cardiomegaly? FINDINGS: Ascites. IMPRESSION: No cardiomegaly."
    got = statuses(structurer, one_line)
    assert got["cardiomegaly"] == N and got["ascites"] == P


def test_line_labels_are_read_not_cut(structurer: ReportStructurer) -> None:
    got = statuses(structurer, "History: cough.\nPleural effusion: small on the right.\nCardiomegaly: absent.")
    assert got["pleural effusion"] == P and got["cardiomegaly"] == N


def test_report_takes_the_strongest_mention(structurer: ReportStructurer) -> None:
    report = "Possible pleural effusion. No ascites.\nIMPRESSION: Pleural effusion. Questionable ascites."
    result = structurer.structure(report, "r7")
    values = result.values()
    assert values["pleural effusion"] == 1.0 and values["ascites"] == 0.5
    row = next(r for r in result.audit if r.finding == "pleural effusion")
    assert (row.report_id, row.sentence, row.status) == ("r7", "Pleural effusion.", P)
    row = next(r for r in result.audit if r.finding == "ascites")
    assert (row.sentence, row.cue) == ("Questionable ascites.", "Questionable")


def test_values_follow_parameters() -> None:
    vocab = load_vocabulary("ct")
    report = "Possible ascites. No cardiomegaly. Splenomegaly."
    default = ReportStructurer(vocab).structure(report, "a").vector
    assert default.dtype == np.float32 and default.shape == (7,)
    assert default.tolist() == [0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.5]  # vocabulary order
    custom = ReportStructurer(vocab, uncertain_value=0.25, unmentioned_value=float("nan")).structure(report, "a").vector
    assert custom[6] == 0.25 and custom[4] == 1.0 and custom[3] == 0.0
    assert all(math.isnan(custom[i]) for i in (0, 1, 2, 5))


def test_structure_many_stacks_in_input_order() -> None:
    structurer = ReportStructurer(load_vocabulary("ct"))
    vectors, rows = structurer.structure_many([("a", "Cardiomegaly."), ("b", "No cardiomegaly."), ("c", "")])
    assert vectors.shape == (3, 7) and vectors.dtype == np.float32
    assert vectors[:, 3].tolist() == [1.0, 0.0, 0.0]  # cardiomegaly
    assert [r.report_id for r in rows] == ["a"] * 7 + ["b"] * 7 + ["c"] * 7
    empty, no_rows = structurer.structure_many([])
    assert empty.shape == (0, 7) and no_rows == []


def test_literal_term_inside_another_findings_term_is_not_a_mention() -> None:
    vocab = Vocabulary.from_dict(
        {
            "findings": [
                {"name": "arterial wall calcification", "synonyms": ["artery wall calcification"]},
                {"name": "coronary artery wall calcification"},
            ]
        }
    )
    got = {
        r.finding: r.status for r in ReportStructurer(vocab).structure("Coronary artery wall calcification.", "r").audit
    }
    assert got == {"arterial wall calcification": M, "coronary artery wall calcification": P}
    got = {r.finding: r.status for r in ReportStructurer(vocab).structure("Artery wall calcification.", "r").audit}
    assert got["arterial wall calcification"] == P


def test_hyphen_prefix_blocks_a_literal_match() -> None:
    vocab = Vocabulary.from_dict({"findings": [{"name": "calcified plaque"}, {"name": "pericardial effusion"}]})
    got = {
        r.finding: r.status
        for r in ReportStructurer(vocab)
        .structure("Non-calcified plaque. Pericardial effusion-thickening was not observed.", "r")
        .audit
    }
    assert got == {"calcified plaque": M, "pericardial effusion": N}


def test_ct_rate_vocabulary_on_ct_rate_style_sentences() -> None:
    structurer = ReportStructurer(load_vocabulary("ct-rate"))
    report = (
        "Findings: Calcific atheromatous plaques were observed in the aorta and coronary arteries. "
        "Mediastinal lymph nodes in pathological size were not detected. Sliding hiatal hernia is observed. "
        "Millimetric nonspecific nodules were observed in both lungs. No pleural or pericardial effusion. "
        "Ground-glass opacities in the right upper lobe. No consolidation or bronchiectasis."
    )
    got = statuses(structurer, report)
    assert got["Arterial wall calcification"] == P and got["Coronary artery wall calcification"] == P
    assert got["Lymphadenopathy"] == N and got["Hiatal hernia"] == P and got["Lung nodule"] == P
    assert got["Pleural effusion"] == N and got["Pericardial effusion"] == N
    assert got["Lung opacity"] == P and got["Consolidation"] == N and got["Bronchiectasis"] == N
    assert got["Emphysema"] == M


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # a present mention alone, without the measurements around it
        (
            "Infrarenal abdominal aortic aneurysm measuring 5.6 cm in maximal diameter.",
            [("Abdominal aortic aneurysm.", {"aortic aneurysm": 1.0})],
        ),
        # the deciding cue comes with the mention, before or after it
        ("No abdominal aortic aneurysm.", [("No abdominal aortic aneurysm.", {"aortic aneurysm": 0.0})]),
        ("Pleural effusion is not seen.", [("Pleural effusion is not seen.", {"pleural effusion": 0.0})]),
        ("Possible ascites.", [("Possible ascites.", {"ascites": 0.5})]),
        # a span that covers several mentions states all of them
        (
            "Cardiomegaly, no pleural effusion or ascites.",
            [
                ("Cardiomegaly.", {"cardiomegaly": 1.0}),
                ("No pleural effusion.", {"pleural effusion": 0.0}),
                ("No pleural effusion or ascites.", {"pleural effusion": 0.0, "ascites": 0.0}),
            ],
        ),
        ("The portal veins are patent.", []),
    ],
)
def test_statements_are_the_shortest_spans_stating_findings(
    structurer: ReportStructurer, text: str, expected: list[tuple[str, dict[str, float]]]
) -> None:
    names = structurer.names
    got = [(s.text, {names[k]: v for k, v in s.values.items()}) for s in structurer.statements(text)]
    assert got == expected
