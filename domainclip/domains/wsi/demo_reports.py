"""Free-text surgical pathology reports for the WSI demo, written from known facts.

A report is what a pathologist might have signed out for the case: specimen, an optional clinical history, a
gross description, a microscopic description, the final diagnosis and, in some reports, a synoptic checklist and
a comment. Phrasing varies on purpose (synonyms, paraphrases, checklist lines, pre- and post-negation, hedges) so
that the pathology vocabulary is read against wording it was not written from, as TCGA's OCR'd reports are.

What a report states (the policy :meth:`ReportFacts.stated` encodes, and the structurer should read back):

* the subtype, always, in the diagnosis line (one of several synonyms or paraphrases of the vocabulary name);
* each drawn finding present in the tissue is stated plainly; an absent one is negated or left out (left out
  reads as absent, as pathologists do not list every normal feature);
* a finding in ``uncertain`` is only hedged ("cannot exclude focal necrosis"), whatever the tissue shows: the
  report does not tell, so its label is unknown (the structurer's uncertain value);
* findings no image shows (lymphovascular / perineural invasion, margin, nodes, grade) are stated present,
  negated or not mentioned at random, so the text is realistic;
* the clinical history may name anything ("rule out mesothelioma", "necrotic mass on CT"): it is an ignored
  section and states nothing about the case.

The output is a deterministic function of the facts and the state of ``rng``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from domainclip.domains.wsi.demo_tissue import DRAWN_FINDINGS, SUBTYPE_NAMES

REPORT_ONLY_FINDINGS: tuple[str, ...] = (
    "lymphovascular invasion",
    "perineural invasion",
    "positive margin",
    "lymph node metastasis",
)
HIGH_GRADE = "high grade"
# Per report-only finding: prevalence and how often a report mentions it at all.
_REPORT_ONLY_RATES: dict[str, tuple[float, float]] = {
    "lymphovascular invasion": (0.35, 0.85),
    "perineural invasion": (0.2, 0.7),
    "positive margin": (0.12, 0.8),
    "lymph node metastasis": (0.3, 0.8),
}
_GRADE_WEIGHTS = (0.2, 0.45, 0.35)  # grade 1, 2, 3 (3 is "high grade")
UNCERTAIN_RATE = 0.15  # share of reports that hedge on one drawn finding

_Phrase = Callable[[np.random.Generator], str]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _say(rng: np.random.Generator, bank: Sequence[_Phrase]) -> str:
    return bank[int(rng.integers(len(bank)))](rng)


def _side(rng: np.random.Generator) -> str:
    return _pick(rng, ("right", "left"))


def _cm(rng: np.random.Generator, low: float, high: float) -> str:
    return f"{rng.uniform(low, high):.1f}"


@dataclass(frozen=True)
class ReportFacts:
    """What one patient's report is written from.

    ``findings``: the drawn findings (:data:`DRAWN_FINDINGS`) the tissue shows; ``uncertain``: the drawn findings
    the report only hedges on; ``grade``: 1-3 (3 is high grade; mesothelioma uses two tiers, 1 low and 3 high);
    ``report_only``: the findings no image shows, True / False / None (not mentioned).
    """

    subtype: str
    findings: Mapping[str, bool]
    grade: int
    report_only: Mapping[str, bool | None] = field(default_factory=dict)
    uncertain: frozenset[str] = frozenset()

    def stated(self, uncertain_value: float = 0.5) -> dict[str, float]:
        """Per finding the report touches, the value it states: 1 present, 0 absent or unmentioned, hedged
        ``uncertain_value``. Vocabulary findings not listed are unmentioned."""
        values = {name: 1.0 if code == self.subtype else 0.0 for code, name in SUBTYPE_NAMES.items()}
        for name in DRAWN_FINDINGS:
            values[name] = uncertain_value if name in self.uncertain else float(bool(self.findings.get(name)))
        values[HIGH_GRADE] = float(self.grade == 3)
        values.update({name: float(bool(self.report_only.get(name))) for name in REPORT_ONLY_FINDINGS})
        return values


def draw_facts(rng: np.random.Generator, subtype: str, findings: Mapping[str, bool]) -> ReportFacts:
    """Grade, report-only findings and hedges for a case whose tissue shows ``findings``."""
    if subtype not in SUBTYPE_NAMES:
        raise ValueError(f"draw_facts: subtype {subtype!r} is not one of {sorted(SUBTYPE_NAMES)}")
    if subtype == "MESO":
        grade = 3 if rng.random() < 0.4 else 1
    else:
        grade = int(rng.choice([1, 2, 3], p=_GRADE_WEIGHTS))
    report_only: dict[str, bool | None] = {}
    for name, (prevalence, mentioned) in _REPORT_ONLY_RATES.items():
        present = bool(rng.random() < prevalence)
        report_only[name] = present if rng.random() < mentioned else None
    uncertain = frozenset({_pick(rng, DRAWN_FINDINGS)}) if rng.random() < UNCERTAIN_RATE else frozenset()
    truth = {name: bool(findings.get(name, False)) for name in DRAWN_FINDINGS}
    return ReportFacts(subtype, truth, grade, report_only, uncertain)


# ----- drawn findings: plain, negated and hedged sentences -------------------------------------------------------

_PRESENT: dict[str, list[_Phrase]] = {
    "necrosis": [
        lambda r: "Areas of tumor necrosis are present.",
        lambda r: f"There is geographic necrosis involving approximately {int(r.integers(2, 7)) * 5}% of the tumor.",
        lambda r: "Foci of coagulative necrosis with nuclear debris are seen.",
        lambda r: "Necrotic debris fills several areas of the tumour.",
    ],
    "mucin": [
        lambda r: "Extracellular mucin pools are present.",
        lambda r: "The tumor produces mucin, with pools of mucin dissecting the stroma.",
        lambda r: "Abundant extracellular mucin is seen.",
        lambda r: "Mucinous features are focally present.",
    ],
    "lymphocytic infiltrate": [
        lambda r: "A dense lymphocytic infiltrate is present at the tumor edge.",
        lambda r: "Numerous tumor-infiltrating lymphocytes are present.",
        lambda r: "Prominent peritumoral lymphoid aggregates are seen.",
        lambda r: "There is a brisk lymphocytic response.",
    ],
    "haemorrhage": [
        lambda r: "Areas of recent haemorrhage are present.",
        lambda r: "There is hemorrhage within the tumor.",
        lambda r: "Extravasated red blood cells fill parts of the tumor.",
        lambda r: "Hemorrhagic foci are seen.",
    ],
    "calcification": [
        lambda r: "Dystrophic calcification is present.",
        lambda r: "Scattered calcifications are seen within the tumor.",
        lambda r: "Foci of calcification are noted.",
        lambda r: "Calcified fragments lie within the stroma.",
    ],
}
_NEGATED: dict[str, list[_Phrase]] = {
    "necrosis": [
        lambda r: "No tumor necrosis is identified.",
        lambda r: "Necrosis is not identified.",
        lambda r: "There is no evidence of necrosis.",
        lambda r: "Negative for tumour necrosis.",
    ],
    "mucin": [
        lambda r: "No extracellular mucin is identified.",
        lambda r: "Mucin production is not identified.",
        lambda r: "Negative for mucin.",
        lambda r: "No mucinous component is present.",
    ],
    "lymphocytic infiltrate": [
        lambda r: "No significant lymphocytic infiltrate.",
        lambda r: "Tumor-infiltrating lymphocytes are not identified.",
        lambda r: "There is no lymphoid infiltrate.",
    ],
    "haemorrhage": [
        lambda r: "No hemorrhage is identified.",
        lambda r: "There is no evidence of haemorrhage.",
        lambda r: "Negative for hemorrhage.",
    ],
    "calcification": [
        lambda r: "No calcifications are seen.",
        lambda r: "Calcification is not identified.",
        lambda r: "There is no evidence of calcification.",
    ],
}
_HEDGED: dict[str, list[_Phrase]] = {
    "necrosis": [
        lambda r: "Cannot exclude focal necrosis.",
        lambda r: "Focal necrosis cannot be excluded.",
        lambda r: "Possible small focus of necrosis.",
    ],
    "mucin": [
        lambda r: "Cannot exclude focal extracellular mucin.",
        lambda r: "Possible mucin production.",
    ],
    "lymphocytic infiltrate": [
        lambda r: "Possible focal lymphocytic infiltrate at the tumor edge.",
        lambda r: "A lymphocytic infiltrate cannot be excluded on this section.",
    ],
    "haemorrhage": [
        lambda r: "Possible focal haemorrhage.",
        lambda r: "Cannot exclude focal hemorrhage.",
    ],
    "calcification": [
        lambda r: "Possible dystrophic calcification.",
        lambda r: "Focal calcification cannot be excluded.",
    ],
}
# Checklist lines for the drawn findings a synoptic report lists: (label, present, absent, hedged).
_SYNOPTIC_DRAWN: dict[str, tuple[str, str, str, str]] = {
    "necrosis": ("Tumor necrosis", "present", "not identified", "indeterminate"),
}

# ----- subtype: morphology, diagnosis line, specimen --------------------------------------------------------------

_MORPHOLOGY: dict[str, tuple[str, ...]] = {
    "LUAD": (
        "The tumor is composed of malignant glands lined by columnar cells with enlarged basal nuclei.",
        "Round to oval glands with central lumens infiltrate a fibrous stroma.",
        "Acinar growth predominates, with crowded back-to-back glands.",
    ),
    "LUSC": (
        "The tumor grows in solid sheets and nests of polygonal cells with abundant eosinophilic cytoplasm.",
        "Nests of large atypical squamous cells show keratin pearls and intercellular bridges.",
        "Keratinizing squamous nests with large vesicular nuclei infiltrate the stroma.",
    ),
    "MESO": (
        "The tumor consists of atypical spindle cells in interlacing fascicles with admixed tubulopapillary areas.",
        "Spindle cells with elongated nuclei form fascicles, and slit-like tubules lined by cuboidal cells are seen.",
        "A biphasic neoplasm of spindle cell fascicles and small tubules lined by mesothelial cells.",
    ),
}
_DIFFERENTIATION = {1: "well differentiated", 2: "moderately differentiated", 3: "poorly differentiated"}
_DIAGNOSIS: dict[str, list[Callable[[np.random.Generator, str, str], str]]] = {
    "LUAD": [
        lambda r, site, diff: f"{site}: Invasive adenocarcinoma, acinar predominant, {diff}.",
        lambda r, site, diff: f"Adenocarcinoma of the lung, acinar predominant, {diff}.",
        lambda r, site, diff: f"Invasive pulmonary adenocarcinoma, {diff}.",
        lambda r, site, diff: f"Non-small cell carcinoma, adenocarcinoma type, {diff}.",
        lambda r, site, diff: f"Primary lung adenocarcinoma, {diff}.",
    ],
    "LUSC": [
        lambda r, site, diff: f"{site}: Squamous cell carcinoma, keratinizing, {diff}.",
        lambda r, site, diff: f"Squamous cell carcinoma of the lung, {diff}.",
        lambda r, site, diff: f"Pulmonary squamous cell carcinoma, keratinizing, {diff}.",
        lambda r, site, diff: f"Non-small cell carcinoma, squamous type, {diff}.",
    ],
    "MESO": [
        lambda r, site, diff: f"{site}: Malignant mesothelioma, biphasic type.",
        lambda r, site, diff: "Diffuse malignant mesothelioma, biphasic (epithelioid and sarcomatoid).",
        lambda r, site, diff: "Malignant pleural mesothelioma, biphasic type.",
        lambda r, site, diff: "Biphasic mesothelioma with tubulopapillary and spindle cell components.",
    ],
}
_IMMUNOPROFILE = {
    "LUAD": "Immunostains: the tumor cells are positive for TTF-1 and napsin A and negative for p40.",
    "LUSC": "Immunostains: the tumor cells are positive for p40 and CK5/6 and negative for TTF-1.",
    "MESO": "Immunostains: the tumor cells are positive for calretinin, WT1 and D2-40 and negative for TTF-1 and CEA.",
}
_CLINICAL_HISTORY = (
    "Lung mass in a former smoker.",
    "Pleural thickening with effusion; rule out mesothelioma.",
    "Lung nodule on CT, evaluate for carcinoma.",
    "Necrotic lung mass on CT.",
    "Hemoptysis and weight loss.",
    "Mass on chest imaging, biopsy suspicious for malignancy.",
)


def _site(rng: np.random.Generator, subtype: str) -> str:
    """The specimen, also the site prefix of some diagnosis lines ("Lung, right upper lobe, lobectomy")."""
    side = _side(rng)
    if subtype == "MESO":
        procedure = _pick(rng, ("pleurectomy and decortication", "extrapleural pneumonectomy", "pleural biopsies"))
        return f"Pleura, {side}, {procedure}"
    procedure = _pick(rng, ("lobectomy", "lobectomy", "wedge resection", "pneumonectomy"))
    if procedure == "pneumonectomy":
        return f"Lung, {side}, pneumonectomy"
    lobe = _pick(rng, ("upper", "middle", "lower") if side == "right" else ("upper", "lower"))
    return f"Lung, {side} {lobe} lobe, {procedure}"


def _gross(rng: np.random.Generator, subtype: str) -> str:
    if subtype == "MESO":
        return (
            f"Received in formalin are multiple fragments of pleura aggregating to {_cm(rng, 6, 15)} x "
            f"{_cm(rng, 4, 10)} x {_cm(rng, 1, 4)} cm, with a firm tan-white rind up to {_cm(rng, 0.5, 2.5)} cm thick. "
            f"Representative sections are submitted in cassettes A1-A{int(rng.integers(6, 16))}."
        )
    return (
        f"Received in formalin is a {int(rng.integers(60, 400))} g lung resection specimen. "
        f"A {_cm(rng, 1.2, 6.5)} x {_cm(rng, 1.0, 4.5)} cm firm tan-white mass lies {_cm(rng, 0.5, 4.0)} cm "
        f"from the bronchial stump. Representative sections are submitted in cassettes A1-A{int(rng.integers(6, 16))}."
    )


# ----- report-only findings ---------------------------------------------------------------------------------------

_REPORT_ONLY_SENTENCES: dict[str, dict[bool, tuple[str, ...]]] = {
    "lymphovascular invasion": {
        True: (
            "Lymphovascular invasion is present.",
            "Angiolymphatic invasion is identified.",
            "Tumor emboli are seen within lymphatic spaces.",
        ),
        False: ("No lymphovascular invasion is identified.", "Negative for angiolymphatic invasion."),
    },
    "perineural invasion": {
        True: ("Perineural invasion is present.", "Invasion of small nerves is identified."),
        False: ("No perineural invasion is seen.", "Perineural invasion is not identified."),
    },
    "positive margin": {
        True: (
            "The bronchial margin is involved by carcinoma.",
            "Tumor is present at the inked parenchymal margin.",
            "Tumor extends to the inked resection margin.",
        ),
        False: (
            "All surgical margins are free of tumor.",
            "The resection margins are negative for tumor.",
            "Margins are widely clear.",
            "The bronchial and vascular margins are free of carcinoma.",
        ),
    },
}
_SYNOPTIC_REPORT_ONLY: dict[str, tuple[str, str, str]] = {
    "lymphovascular invasion": ("Lymphovascular invasion", "present", "not identified"),
    "perineural invasion": ("Perineural invasion", "present", "not identified"),
    "positive margin": ("Margins", "involved by tumor", "uninvolved by tumor"),
}


def _nodes_sentence(rng: np.random.Generator, subtype: str, positive: bool, checklist: bool) -> tuple[str, int]:
    """A lymph-node statement and the pN category it implies."""
    examined = int(rng.integers(5, 21))
    involved = int(rng.integers(1, min(examined, 5) + 1))
    tumour = "mesothelioma" if subtype == "MESO" else "carcinoma"
    if checklist:
        text = (
            f"Regional lymph nodes: {involved}/{examined} positive"
            if positive
            else f"Regional lymph nodes: negative for tumor (0/{examined})"
        )
        return text + ".", int(positive)
    if positive:
        return f"Metastatic {tumour} in {involved} of {examined} lymph nodes ({involved}/{examined}).", 1
    return f"{examined} lymph nodes, negative for metastatic {tumour} (0/{examined}).", 0


def _grade_line(subtype: str, grade: int) -> str:
    if subtype == "MESO":
        return f"Nuclear grade: {'high' if grade == 3 else 'low'}."
    return f"Histologic grade: G{grade}, {_DIFFERENTIATION[grade]}."


def _drawn_sentence(rng: np.random.Generator, name: str, facts: ReportFacts) -> str | None:
    """One sentence about a drawn finding, or None when the pathologist leaves it out."""
    if name in facts.uncertain:
        return _say(rng, _HEDGED[name])
    if facts.findings[name]:
        return _say(rng, _PRESENT[name])
    return _say(rng, _NEGATED[name]) if rng.random() < 0.55 else None


def make_report(rng: np.random.Generator, facts: ReportFacts) -> str:
    """A surgical pathology report for ``facts`` (see the module docstring for what it states)."""
    subtype = facts.subtype
    site = _site(rng, subtype)
    checklist = bool(rng.random() < 0.5)
    lines = [_pick(rng, ("SURGICAL PATHOLOGY REPORT", "Surgical Pathology Final Report", "PATHOLOGY"))]
    lines.append(f"Specimen: {site}.")
    if rng.random() < 0.7:
        lines.append(f"Clinical history: {_pick(rng, _CLINICAL_HISTORY)}")
    lines.append(f"Gross description: {_gross(rng, subtype)}")

    micro = [_pick(rng, _MORPHOLOGY[subtype])]
    finding_sentences = [s for name in DRAWN_FINDINGS if (s := _drawn_sentence(rng, name, facts)) is not None]
    micro += [finding_sentences[i] for i in rng.permutation(len(finding_sentences))]
    mentioned = {name: value for name, value in facts.report_only.items() if value is not None}
    stated_in_text = {} if checklist else mentioned
    invasion = ("lymphovascular invasion", "perineural invasion")
    if all(stated_in_text.get(name) is False for name in invasion) and rng.random() < 0.5:
        micro.append("No lymphovascular or perineural invasion is identified.")
        stated_in_text = {k: v for k, v in stated_in_text.items() if k not in invasion}
    for name, present in stated_in_text.items():
        if name != "lymph node metastasis":
            micro.append(_pick(rng, _REPORT_ONLY_SENTENCES[name][present]))
    lines.append("Microscopic description: " + " ".join(micro))

    diff = _DIFFERENTIATION[facts.grade] if subtype != "MESO" else ""
    diagnosis = [_DIAGNOSIS[subtype][int(rng.integers(len(_DIAGNOSIS[subtype])))](rng, site, diff)]
    if subtype == "MESO" and not checklist:
        diagnosis.append(_grade_line(subtype, facts.grade))
    if not checklist and "lymph node metastasis" in mentioned:
        diagnosis.append(_nodes_sentence(rng, subtype, mentioned["lymph node metastasis"], checklist=False)[0])
    lines.append("Final diagnosis: " + " ".join(diagnosis))

    if checklist:
        lines.extend(_checklist(rng, facts, mentioned))
    if rng.random() < 0.4:
        lines.append(f"Comment: {_IMMUNOPROFILE[subtype]} The immunoprofile supports the diagnosis.")
    return "\n".join(lines)


def _checklist(rng: np.random.Generator, facts: ReportFacts, mentioned: Mapping[str, bool]) -> list[str]:
    """The synoptic lines: grade, checklist findings, nodes and the pathologic stage."""
    lines = ["Synoptic summary", _grade_line(facts.subtype, facts.grade)]
    for name, (label, present, absent, hedged) in _SYNOPTIC_DRAWN.items():
        value = hedged if name in facts.uncertain else present if facts.findings[name] else absent
        lines.append(f"{label}: {value}.")
    for name, (label, present, absent) in _SYNOPTIC_REPORT_ONLY.items():
        if name in mentioned:
            lines.append(f"{label}: {present if mentioned[name] else absent}.")
    node_category = "X"
    if "lymph node metastasis" in mentioned:
        text, category = _nodes_sentence(rng, facts.subtype, mentioned["lymph node metastasis"], checklist=True)
        lines.append(text)
        node_category = str(category)
    lines.append(f"Pathologic stage: pT{int(rng.integers(1, 4))}{_pick(rng, ('a', 'b', ''))} pN{node_category}.")
    return lines


__all__ = [
    "HIGH_GRADE",
    "REPORT_ONLY_FINDINGS",
    "UNCERTAIN_RATE",
    "ReportFacts",
    "draw_facts",
    "make_report",
]
