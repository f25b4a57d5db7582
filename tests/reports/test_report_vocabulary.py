"""Vocabulary YAML: bundled files load, bad files fail with the file and key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from domainclip.errors import RecipeError
from domainclip.reports import ReportStructurer, Vocabulary
from domainclip.reports.extract import BUNDLED_VOCABULARIES, load_vocabulary

DEMO_NAMES = [
    "renal mass",
    "liver lesion",
    "pleural effusion",
    "cardiomegaly",
    "splenomegaly",
    "aortic aneurysm",
    "ascites",
]
CT_RATE_NAMES = [
    "Medical material",
    "Arterial wall calcification",
    "Cardiomegaly",
    "Pericardial effusion",
    "Coronary artery wall calcification",
    "Hiatal hernia",
    "Lymphadenopathy",
    "Emphysema",
    "Atelectasis",
    "Lung nodule",
    "Lung opacity",
    "Pulmonary fibrotic sequela",
    "Pleural effusion",
    "Mosaic attenuation pattern",
    "Peribronchial thickening",
    "Consolidation",
    "Bronchiectasis",
    "Interlobular septal thickening",
]


def _write(tmp_path: Path, content: dict) -> Path:
    path = tmp_path / "vocab.yaml"
    path.write_text(yaml.safe_dump(content), encoding="utf-8")
    return path


def test_bundled_vocabularies_have_the_contract_names_in_order() -> None:
    assert load_vocabulary("ct").names == DEMO_NAMES
    assert load_vocabulary("ct-rate").names == CT_RATE_NAMES
    assert load_vocabulary(BUNDLED_VOCABULARIES["ct"]).names == DEMO_NAMES  # a path works too


def test_templates_default_to_ct_clip_and_prompts_fill_them() -> None:
    vocab = Vocabulary.from_dict({"findings": [{"name": "emphysema", "synonyms": ["emphysematous changes"]}]})
    assert vocab.templates == [("{finding}.", "not {finding}.")]
    assert vocab.prompts("emphysema") == [("emphysema.", "not emphysema.")]
    assert vocab.prompts("emphysema", with_synonyms=True) == [
        ("emphysema.", "not emphysema."),
        ("emphysematous changes.", "not emphysematous changes."),
    ]
    demo = load_vocabulary("ct")
    assert ("there is cardiomegaly.", "there is no cardiomegaly.") in demo.prompts("cardiomegaly")


def test_negatives_default_to_the_prompts_and_captions_contrast_the_other_findings() -> None:
    assert Vocabulary.from_dict({"findings": [{"name": "emphysema"}]}).negatives == "prompts"
    assert load_vocabulary("ct").negatives == "prompts"
    satellite = load_vocabulary("satellite")
    assert satellite.negatives == "other_findings"
    assert satellite.subset(["road", "river"]).negatives == "other_findings"
    with pytest.raises(RecipeError, match="negatives"):
        Vocabulary.from_dict({"findings": [{"name": "x"}], "negatives": "none"})


def test_prompt_terms_replace_the_name_in_prompts_but_not_in_reading() -> None:
    vocab = Vocabulary.from_dict(
        {
            "templates": [["{finding}.", "no {finding}."]],
            "findings": [
                {
                    "name": "pleural effusion",
                    "synonyms": ["hydrothorax"],
                    "prompt_terms": ["pleural effusion", "pleural fluid"],
                },
                {"name": "ascites", "synonyms": ["free fluid"]},
            ],
        }
    )
    assert vocab.prompts("pleural effusion") == [
        ("pleural effusion.", "no pleural effusion."),
        ("pleural fluid.", "no pleural fluid."),
    ]
    assert vocab.finding("ascites").zeroshot_terms == ["ascites"]  # default: the name, not the synonyms
    assert vocab.finding("pleural effusion").terms == ("pleural effusion", "hydrothorax")  # reading
    with pytest.raises(RecipeError, match="terms must not be empty"):
        Vocabulary.from_dict({"findings": [{"name": "ascites", "prompt_terms": [" "]}]})


def test_subset_keeps_the_requested_order() -> None:
    vocab = load_vocabulary("ct").subset(["cardiomegaly", "ascites"])
    assert vocab.names == ["cardiomegaly", "ascites"]
    with pytest.raises(RecipeError, match="no finding named 'renal masss'"):
        load_vocabulary("ct").subset(["renal masss"])


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ({"findings": [{"name": "a"}], "colour": 1}, r"colour \(line \d+\): unknown key"),
        (
            {"findings": [{"name": "a", "synonym": ["b"]}]},
            r"findings\[0\] \('a'\)\.synonym \(line \d+\): unknown key",
        ),
        ({"findings": [{"name": "a"}, {"name": "A"}]}, r"finding name 'A' appears twice"),
        (
            {"findings": [{"name": "a", "paraphrases": ["(unclosed"]}]},
            r"paraphrases \(line \d+\): paraphrase '\(unclosed' is not a valid regular expression",
        ),
        ({"findings": [{"name": "a", "paraphrases": ["x?"]}]}, r"matches the empty string"),
        (
            {"findings": [{"name": "a"}], "templates": [["{finding}.", "no finding."]]},
            r"templates \(line \d+\): pair 0: template 'no finding\.' must contain",
        ),
        (
            {"findings": [{"name": "a"}], "templates": [["{finding} {x}.", "no {finding}."]]},
            r"no other",
        ),
        (
            {"findings": [{"name": "a"}], "templates": [["{finding}.", "no {finding"]]},
            r"pair 0: template 'no \{finding'",
        ),
        ({"findings": [{"name": "a"}], "templates": [["{finding}."]]}, r"templates\[0\]"),
        (
            {"findings": [{"synonyms": ["b"]}]},
            r"findings\[0\]\.name \(line \d+\): required key is missing",
        ),
        ({"findings": []}, r"findings \(line \d+\): "),
        (
            {"findings": [{"name": "a"}], "negation_cues": {"before": ["x"]}},
            r"negation_cues\.before \(line \d+\): unknown key",
        ),
    ],
)
def test_invalid_vocabulary_names_file_and_key(tmp_path: Path, content: dict, expected: str) -> None:
    path = _write(tmp_path, content)
    with pytest.raises(RecipeError, match=expected) as info:
        Vocabulary.load(path)
    assert str(path) in str(info.value)


def test_vocabulary_errors_name_the_line(tmp_path: Path) -> None:
    """A hospital's vocabulary is a long hand-edited file: each problem names the line to fix."""
    path = tmp_path / "vocab.yaml"
    path.write_text(
        "findings:\n"
        "  - name: nodule\n"
        "    synonyms: [lung nodule, granuloma]\n"
        "  - name: scar\n"
        "    synonyms:\n"
        "      - fibrosis\n"
        "      - granuloma\n"
        "    paraphrases: ['(unclosed']\n",
        encoding="utf-8",
    )
    with pytest.raises(RecipeError) as info:
        Vocabulary.load(path)
    assert "findings[1] ('scar').paraphrases (line 8): paraphrase '(unclosed'" in str(info.value)
    path.write_text(path.read_text(encoding="utf-8").replace("'(unclosed'", "'scarring'"), encoding="utf-8")
    with pytest.raises(RecipeError) as info:
        Vocabulary.load(path)
    assert (
        "findings[1] ('scar').synonyms[1] (line 7): term 'granuloma' is listed under both 'nodule' and 'scar'"
        in str(info.value)
    )


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="vocabulary file not found"):
        Vocabulary.load(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("findings: [unclosed\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="not valid YAML"):
        Vocabulary.load(bad)
    listed = tmp_path / "list.yaml"
    listed.write_text("- a\n- b\n", encoding="utf-8")
    with pytest.raises(RecipeError, match="must be a mapping"):
        Vocabulary.load(listed)
    with pytest.raises(RecipeError, match="neither a file nor a bundled vocabulary"):
        load_vocabulary("ct-rat")


def test_yaml_cues_extend_the_defaults(tmp_path: Path) -> None:
    base = {"findings": [{"name": "emphysema"}]}
    text = "Emphysema excluded by the reader."
    assert ReportStructurer(Vocabulary.from_dict(base)).structure(text, "r").vector[0] == 1.0
    extended = Vocabulary.load(_write(tmp_path, {**base, "negation_cues": {"post": ["excluded by the reader"]}}))
    assert ReportStructurer(extended).structure(text, "r").vector[0] == 0.0
    assert "no" in extended.cues.negation_pre  # defaults kept


def test_a_term_under_two_findings_is_refused_naming_both(tmp_path) -> None:
    import pytest

    from domainclip.errors import RecipeError
    from domainclip.reports.vocabulary import Vocabulary

    path = tmp_path / "vocab.yaml"
    path.write_text("findings:\n  - name: a\n    synonyms: [shared term]\n  - name: b\n    synonyms: [Shared Term]\n")
    with pytest.raises(RecipeError, match=r"term 'shared term' is listed under both 'a' and 'b'"):
        Vocabulary.load(path)
