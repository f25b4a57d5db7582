"""The demo report generator, and the structurer's agreement with its ground truth."""

from __future__ import annotations

import numpy as np
import pytest

from domainclip.domains.ct.demo_reports import DEMO_FINDINGS, make_report
from domainclip.reports import ReportStructurer, finding_agreement
from domainclip.reports.extract import load_vocabulary


def _sample(n: int, seed: int, phrasing: str = "standard", hedge_rate: float = 0.1):
    rng = np.random.default_rng(seed)
    truth = rng.random((n, len(DEMO_FINDINGS))) < 0.35
    reports = [
        (
            f"r{i}",
            make_report(
                dict(zip(DEMO_FINDINGS, map(bool, row))),
                rng,
                phrasing=phrasing,
                hedge_rate=hedge_rate,
            ),
        )
        for i, row in enumerate(truth)
    ]
    return truth, reports


@pytest.fixture(scope="module")
def structurer() -> ReportStructurer:
    return ReportStructurer(load_vocabulary("ct"))


def test_make_report_is_deterministic_for_a_given_rng() -> None:
    findings = {"ascites": True, "cardiomegaly": True}
    first = make_report(findings, np.random.default_rng(3))
    assert first == make_report(findings, np.random.default_rng(3))
    assert first != make_report(findings, np.random.default_rng(4))
    assert "FINDINGS:" in first and "IMPRESSION:" in first and first.count(".") >= 6


def test_make_report_rejects_unknown_names_and_phrasings() -> None:
    with pytest.raises(ValueError, match="unknown demo findings \\['renal masses'\\]"):
        make_report({"renal masses": True}, np.random.default_rng(0))
    with pytest.raises(ValueError, match="phrasing must be one of"):
        make_report({}, np.random.default_rng(0), phrasing="casual")


def test_reports_vary_their_wording() -> None:
    _, reports = _sample(60, seed=1)
    sentences = {s for _, text in reports for s in text.split(". ")}
    assert len({text for _, text in reports}) == 60
    assert len(sentences) > 150
    joined = " ".join(text for _, text in reports).lower()
    for phrase in (
        "no ",
        "without evidence of",
        "negative for",
        "splenomegaly",
        "enlarged cardiac silhouette",
    ):
        assert phrase in joined, phrase


def test_agreement_with_ground_truth_per_finding(structurer: ReportStructurer) -> None:
    truth, reports = _sample(300, seed=11)
    vectors, _ = structurer.structure_many(reports)
    table = finding_agreement(truth, vectors, structurer.names).set_index("finding")
    assert list(table.index) == list(DEMO_FINDINGS)
    assert (table["accuracy"] >= 0.95).all(), table
    assert (table["recall"] >= 0.9).all() and (table["precision"] >= 0.9).all(), table


def test_heldout_phrasing_stays_usable(structurer: ReportStructurer) -> None:
    """Wording the vocabulary was not written for: lower, but far above the all-absent baseline."""
    truth, reports = _sample(300, seed=12, phrasing="heldout")
    vectors, _ = structurer.structure_many(reports)
    table = finding_agreement(truth, vectors, structurer.names)
    assert (table["accuracy"] >= 0.85).all(), table
    assert (table["precision"] >= 0.95).all(), table
    assert table["accuracy"].mean() > 1 - table["prevalence"].mean() + 0.15


def test_hedged_findings_become_uncertain_values(structurer: ReportStructurer) -> None:
    truth, reports = _sample(40, seed=5, hedge_rate=1.0)
    vectors, _ = structurer.structure_many(reports)
    assert np.all(vectors[truth] == 0.5), "every present finding was hedged"
    assert np.all(vectors[~truth] == 0.0)
    truth, reports = _sample(40, seed=5, hedge_rate=0.0)
    vectors, _ = structurer.structure_many(reports)
    np.testing.assert_array_equal(vectors, truth.astype(np.float32))


def test_finding_agreement_counts() -> None:
    truth = np.array([[1, 0], [1, 1], [0, 0], [0, 1]])
    predicted = np.array([[1.0, 0.0], [0.5, np.nan], [0.0, 0.0], [1.0, 1.0]])
    table = finding_agreement(truth, predicted, ["a", "b"]).set_index("finding")
    assert table.loc["a", "accuracy"] == 0.75 and table.loc["a", "precision"] == pytest.approx(2 / 3)
    assert table.loc["a", "recall"] == 1.0 and table.loc["a", "uncertain"] == 0.25
    assert table.loc["b", "recall"] == 0.5 and table.loc["b", "precision"] == 1.0
    with pytest.raises(ValueError, match="do not match"):
        finding_agreement(truth, predicted[:, :1], ["a", "b"])
