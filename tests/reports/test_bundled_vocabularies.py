"""The pathology and satellite vocabularies load, name their findings once, and read their kind of text."""

from __future__ import annotations

import pytest

from domainclip.reports import ReportStructurer
from domainclip.reports.extract import BUNDLED_VOCABULARIES, load_vocabulary


@pytest.mark.parametrize("name", sorted(BUNDLED_VOCABULARIES))
def test_every_bundled_vocabulary_loads_with_unique_terms(name: str) -> None:
    vocab = load_vocabulary(name)
    terms = [t for f in vocab.findings for t in {t.lower() for t in (f.name, *f.synonyms)}]
    assert len(terms) == len(set(terms)), f"{name}: a term names two findings"


def values(name: str, text: str) -> dict[str, float]:
    return ReportStructurer(load_vocabulary(name), unmentioned_value=float("nan")).structure(text, "r").values()


def test_pathology_report_wording() -> None:
    read = values(
        "pathology",
        "DIAGNOSIS: Invasive ductal carcinoma, grade 3. Negative for lymphovascular invasion. "
        "Perineural invasion is present. Metastatic carcinoma in 2 of 14 lymph nodes.",
    )
    assert read["breast ductal carcinoma"] == 1.0 and read["high grade"] == 1.0
    assert read["lymphovascular invasion"] == 0.0 and read["perineural invasion"] == 1.0
    assert read["lymph node metastasis"] == 1.0


def test_satellite_caption_wording() -> None:
    read = values("satellite", "Many buildings and some green trees are around a playground near a river.")
    assert read["buildings"] == read["trees"] == read["stadium"] == read["river"] == 1.0
    assert read["desert"] != read["desert"]  # never mentioned: NaN
