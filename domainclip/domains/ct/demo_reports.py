"""Free-text CT reports for the demo data, written from known ground truth.

The demo generator draws findings per study and calls :func:`make_report` to get the
report a radiologist might have dictated. Phrasing varies on purpose (synonyms,
paraphrases, lists, pre- and post-negation, organ-level "normal" statements, an
indication line that names findings the study may not have), so that the report
structurer is measured against something harder than its own vocabulary.

Ground-truth policy (documented in docs/report_structuring.md):

* A present finding is stated plainly, except that with probability ``hedge_rate``
  (default 0.1) it is *hedged* ("possible ...", "... cannot be excluded"). Hedges are
  used only for findings that are truly present: a hedged finding is real but the
  reader was unsure. The structurer should return its ``uncertain_value`` for it.
* An absent finding is either negated explicitly ("No pleural effusion."), covered by
  an organ-level normal statement that does not name it ("Heart size is normal."), or
  omitted. It is never hedged.
* The CLINICAL INFORMATION line may name any finding ("evaluate for ascites")
  independent of the ground truth, as real indications do.

The output is a deterministic function of ``findings`` and the state of ``rng``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

DEMO_FINDINGS: tuple[str, ...] = (
    "renal mass",
    "liver lesion",
    "pleural effusion",
    "cardiomegaly",
    "splenomegaly",
    "aortic aneurysm",
    "ascites",
)

_Phrase = Callable[[np.random.Generator], str]


def _pick(rng: np.random.Generator, options: Sequence[str]) -> str:
    return options[int(rng.integers(len(options)))]


def _side(rng: np.random.Generator) -> str:
    return _pick(rng, ("right", "left"))


def _size_cm(rng: np.random.Generator, low: float = 0.4, high: float = 4.5) -> str:
    return f"{rng.uniform(low, high):.1f} cm"


def _size_mm(rng: np.random.Generator, low: int = 2, high: int = 9) -> str:
    return f"{int(rng.integers(low, high + 1))} mm"


def _segment(rng: np.random.Generator) -> str:
    return _pick(rng, ("II", "III", "IVa", "IVb", "V", "VI", "VII", "VIII"))


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# Each finding: plain positive sentences, hedged positive sentences, explicit negations,
# a short impression line (plain, hedged). Callables so that sizes and sides vary.
_PRESENT: dict[str, list[_Phrase]] = {
    "renal mass": [
        lambda r: f"There is a {_size_cm(r, 6.0, 9.0)} heterogeneously enhancing {_side(r)} renal mass.",
        lambda r: (
            f"A {_size_cm(r, 6.0, 9.0)} enhancing solid mass arises from the {_pick(r, ('upper', 'lower'))} pole "
            f"of the {_side(r)} kidney."
        ),
        lambda r: (
            f"Exophytic solid lesion of the {_side(r)} kidney measuring {_size_cm(r, 6.0, 9.0)}, "
            "concerning for renal cell carcinoma."
        ),
        lambda r: f"{_cap(_side(r))} renal neoplasm measuring {_size_cm(r, 6.0, 9.0)} with central necrosis.",
        lambda r: f"The {_side(r)} kidney contains a {_size_cm(r, 6.0, 9.0)} solid enhancing mass.",
    ],
    "liver lesion": [
        lambda r: f"{_size_cm(r, 4.0, 6.5)} hypodense lesion in hepatic segment {_segment(r)}.",
        lambda r: f"Hypodense hepatic lesion measuring {_size_cm(r, 4.0, 6.5)} in segment {_segment(r)}.",
        lambda r: f"There is a {_size_cm(r, 4.0, 6.5)} hypoenhancing hepatic mass in segment {_segment(r)}.",
        lambda r: "Multiple hepatic metastases, the largest in the right lobe.",
        lambda r: f"Focal liver lesion in segment {_segment(r)} measuring {_size_cm(r, 4.0, 6.5)}.",
        lambda r: f"A {_size_cm(r, 4.0, 6.5)} hypoattenuating lesion is seen in the right hepatic lobe.",
    ],
    "pleural effusion": [
        lambda r: f"{_pick(r, ('Small', 'Moderate', 'Large', 'Trace'))} {_side(r)} pleural effusion.",
        lambda r: "Moderate bilateral pleural effusions with adjacent compressive atelectasis.",
        lambda r: f"Layering fluid in the {_side(r)} pleural space.",
        lambda r: f"There is a small {_side(r)}-sided pleural effusion.",
        lambda r: f"{_cap(_side(r))} hydrothorax of moderate volume.",
    ],
    "cardiomegaly": [
        lambda r: f"{_pick(r, ('Mild', 'Moderate', 'Marked'))} cardiomegaly.",
        lambda r: "The heart is enlarged.",
        lambda r: "Enlarged cardiac silhouette.",
        lambda r: f"The heart is {_pick(r, ('mildly', 'moderately', 'markedly'))} enlarged.",
        lambda r: "Moderate cardiac enlargement without pericardial effusion.",
    ],
    "splenomegaly": [
        lambda r: f"Splenomegaly, the spleen measuring {_size_cm(r, 15.0, 19.0)} craniocaudally.",
        lambda r: "The spleen is enlarged.",
        lambda r: f"{_pick(r, ('Mild', 'Moderate', 'Marked'))} splenomegaly.",
        lambda r: "Enlarged spleen without a focal lesion.",
        lambda r: f"The spleen is {_pick(r, ('mildly', 'moderately', 'markedly'))} enlarged.",
    ],
    "aortic aneurysm": [
        lambda r: f"Infrarenal abdominal aortic aneurysm measuring {_size_cm(r, 5.0, 7.0)} in maximal diameter.",
        lambda r: f"There is a {_size_cm(r, 5.0, 7.0)} fusiform aneurysm of the infrarenal aorta.",
        lambda r: f"The abdominal aorta is aneurysmal, measuring {_size_cm(r, 5.0, 7.0)}.",
        lambda r: "Abdominal aortic aneurysm with mural thrombus.",
        lambda r: f"AAA measuring {_size_cm(r, 5.0, 7.0)}.",
    ],
    "ascites": [
        lambda r: f"{_pick(r, ('Small', 'Moderate', 'Large'))} volume ascites.",
        lambda r: "Moderate ascites throughout the abdomen.",
        lambda r: "Free fluid in the paracolic gutters and pelvis.",
        lambda r: "There is ascites in the perihepatic space.",
        lambda r: "Large amount of free intraperitoneal fluid.",
    ],
}

_HEDGED: dict[str, list[_Phrase]] = {
    "renal mass": [
        lambda r: f"Possible small solid mass in the {_side(r)} kidney; MRI is recommended.",
        lambda r: f"Indeterminate {_size_cm(r)} {_side(r)} renal lesion, suspicious for a small renal mass.",
        lambda r: f"A small {_side(r)} renal mass cannot be excluded.",
    ],
    "liver lesion": [
        lambda r: "Ill-defined hypodensity in the right lobe, possibly a small hepatic lesion.",
        lambda r: f"Questionable hypodense liver lesion in segment {_segment(r)}.",
        lambda r: f"A small hepatic lesion in segment {_segment(r)} cannot be excluded.",
    ],
    "pleural effusion": [
        lambda r: f"Possible trace {_side(r)} pleural effusion.",
        lambda r: f"Questionable small {_side(r)} pleural effusion.",
        lambda r: "A small pleural effusion cannot be excluded.",
    ],
    "cardiomegaly": [
        lambda r: "Possible mild cardiomegaly.",
        lambda r: "Questionable cardiac enlargement.",
        lambda r: "Cardiomegaly cannot be excluded.",
    ],
    "splenomegaly": [
        lambda r: "Possible mild splenomegaly.",
        lambda r: "Questionable splenic enlargement.",
        lambda r: "Splenomegaly cannot be excluded.",
    ],
    "aortic aneurysm": [
        lambda r: "Possible abdominal aortic aneurysm; ultrasound is recommended.",
        lambda r: "Questionable aneurysmal dilatation of the aorta.",
        lambda r: "An abdominal aortic aneurysm cannot be excluded.",
    ],
    "ascites": [
        lambda r: "Possible trace ascites.",
        lambda r: "Questionable small amount of free fluid.",
        lambda r: "Ascites cannot be excluded.",
    ],
}

_NEGATED: dict[str, list[_Phrase]] = {
    "renal mass": [
        lambda r: "No renal mass.",
        lambda r: "No solid renal mass is identified.",
        lambda r: "The kidneys enhance symmetrically without evidence of a solid renal mass.",
        lambda r: "Negative for renal neoplasm.",
    ],
    "liver lesion": [
        lambda r: "No focal liver lesion.",
        lambda r: "The liver is normal in size without focal hepatic lesions.",
        lambda r: "No suspicious hepatic mass.",
        lambda r: "A focal hepatic lesion is not identified.",
    ],
    "pleural effusion": [
        lambda r: "No pleural effusion.",
        lambda r: "No pleural effusion or pneumothorax.",
        lambda r: "No pleural or pericardial effusion.",
        lambda r: "Negative for pleural effusion.",
        lambda r: "The previously seen pleural effusion has resolved.",
    ],
    "cardiomegaly": [
        lambda r: "No cardiomegaly.",
        lambda r: "The heart is not enlarged.",
        lambda r: "No cardiomegaly or pericardial effusion.",
        lambda r: "Cardiomegaly is ruled out.",
    ],
    "splenomegaly": [
        lambda r: "No splenomegaly.",
        lambda r: "The spleen is not enlarged.",
        lambda r: "No splenomegaly or focal splenic lesion.",
        lambda r: "Negative for splenomegaly.",
    ],
    "aortic aneurysm": [
        lambda r: "No abdominal aortic aneurysm.",
        lambda r: "No aortic aneurysm.",
        lambda r: "The abdominal aorta is not aneurysmal.",
        lambda r: "Negative for AAA.",
    ],
    "ascites": [
        lambda r: "No ascites.",
        lambda r: "No free fluid.",
        lambda r: "No ascites or free air.",
        lambda r: "There is no ascites.",
    ],
}

# Held-out phrasing: a second bank written after the bundled vocabulary was frozen and
# never used to tune it, so agreement on it estimates how the structurer copes with
# wording its vocabulary did not anticipate (see docs/report_structuring.md).
_HELDOUT_PRESENT: dict[str, list[_Phrase]] = {
    "renal mass": [
        lambda r: f"A {_size_cm(r, 6.0, 9.0)} solid lesion with avid enhancement is seen in the {_side(r)} kidney.",
        lambda r: f"{_cap(_side(r))} renal tumor measuring {_size_cm(r, 6.0, 9.0)}.",
        lambda r: (
            f"Heterogeneous enhancing mass in the {_side(r)} kidney interpolar region, "
            f"measuring {_size_cm(r, 6.0, 9.0)}."
        ),
        lambda r: f"There is an exophytic {_size_cm(r, 6.0, 9.0)} mass off the {_side(r)} kidney lower pole.",
        lambda r: f"Large {_side(r)} kidney mass with perinephric stranding.",
    ],
    "liver lesion": [
        lambda r: f"Hypoenhancing {_size_cm(r, 4.0, 6.5)} mass in the right lobe of the liver.",
        lambda r: f"Segment {_segment(r)} hepatic metastasis measuring {_size_cm(r, 4.0, 6.5)}.",
        lambda r: "Several hypodense liver lesions compatible with metastases.",
        lambda r: f"{_size_cm(r, 4.0, 6.5)} necrotic mass in the liver dome.",
        lambda r: "The liver contains multiple hypoattenuating lesions.",
    ],
    "pleural effusion": [
        lambda r: f"{_cap(_side(r))} effusion with adjacent atelectasis.",
        lambda r: f"Small amount of {_side(r)} pleural fluid.",
        lambda r: "Bilateral pleural effusions, right greater than left.",
        lambda r: f"Loculated {_side(r)} pleural collection.",
    ],
    "cardiomegaly": [
        lambda r: "The heart size is increased.",
        lambda r: "Cardiomegaly with biventricular enlargement.",
        lambda r: "The heart is mildly enlarged with no pericardial effusion.",
        lambda r: "Enlarged heart size.",
    ],
    "splenomegaly": [
        lambda r: f"Spleen: enlarged, measuring {_size_cm(r, 15.0, 19.0)}.",
        lambda r: "Massive splenomegaly.",
        lambda r: "Spleen size is increased.",
        lambda r: "Enlargement of the spleen is noted.",
    ],
    "aortic aneurysm": [
        lambda r: f"Aneurysmal infrarenal aorta, {_size_cm(r, 5.0, 7.0)}.",
        lambda r: f"Fusiform dilatation of the abdominal aorta to {_size_cm(r, 5.0, 7.0)}.",
        lambda r: f"{_size_cm(r, 5.0, 7.0)} AAA with eccentric thrombus.",
        lambda r: "Infrarenal aortic aneurysm is present.",
    ],
    "ascites": [
        lambda r: "Large-volume ascites.",
        lambda r: "Abdominal fluid collecting in the pelvis and flanks.",
        lambda r: "Intraperitoneal free fluid, moderate.",
        lambda r: "Ascitic fluid surrounds the liver.",
    ],
}

_HELDOUT_HEDGED: dict[str, list[_Phrase]] = {
    "renal mass": [
        lambda r: f"Ill-defined area in the {_side(r)} kidney, suspicious for renal neoplasm.",
        lambda r: "Focal renal enhancement that may represent a small tumor.",
    ],
    "liver lesion": [lambda r: f"Vague hypodensity in segment {_segment(r)}, possibly a liver lesion."],
    "pleural effusion": [lambda r: f"Trace pleural fluid versus pleural thickening on the {_side(r)}."],
    "cardiomegaly": [lambda r: "Borderline cardiomegaly."],
    "splenomegaly": [lambda r: "Spleen at the upper limit of normal size, possibly enlarged."],
    "aortic aneurysm": [lambda r: "Borderline ectasia of the abdominal aorta, possibly an early aneurysm."],
    "ascites": [lambda r: "Trace pelvic fluid, possibly ascites."],
}

_HELDOUT_NEGATED: dict[str, list[_Phrase]] = {
    "renal mass": [
        lambda r: "There is no renal mass identified.",
        lambda r: "Kidneys: no solid mass.",
        lambda r: "No suspicious renal neoplasm.",
    ],
    "liver lesion": [
        lambda r: "Liver: no focal lesions.",
        lambda r: "No hepatic lesions are identified.",
    ],
    "pleural effusion": [
        lambda r: "Pleural spaces: no effusion.",
        lambda r: "There is no pleural effusion.",
    ],
    "cardiomegaly": [lambda r: "Normal heart size.", lambda r: "Heart not enlarged."],
    "splenomegaly": [lambda r: "Spleen: not enlarged.", lambda r: "There is no splenomegaly."],
    "aortic aneurysm": [lambda r: "There is no aneurysm of the aorta.", lambda r: "Aorta: no aneurysm."],
    "ascites": [lambda r: "There is no ascites.", lambda r: "Peritoneum: no free fluid."],
}

_HELDOUT_IMPRESSION_PLAIN: dict[str, Sequence[str]] = {
    "renal mass": (
        "Renal tumor; recommend urology referral.",
        "Findings as described in the kidney; MRI advised.",
    ),
    "liver lesion": (
        "Hepatic lesions, likely metastatic.",
        "Indeterminate liver findings; MRI suggested.",
    ),
    "pleural effusion": ("Pleural effusions.", "Small effusion."),
    "cardiomegaly": ("Cardiomegaly.", "Enlarged heart."),
    "splenomegaly": ("Splenomegaly.", "Enlarged spleen."),
    "aortic aneurysm": ("Aortic aneurysm.", "AAA; surgical consultation advised."),
    "ascites": ("Ascites.", "Large ascites."),
}

_HELDOUT_IMPRESSION_HEDGED: dict[str, Sequence[str]] = {
    "renal mass": ("Possible renal tumor.",),
    "liver lesion": ("Possible hepatic lesion.",),
    "pleural effusion": ("Possible trace effusion.",),
    "cardiomegaly": ("Borderline heart size.",),
    "splenomegaly": ("Possible splenomegaly.",),
    "aortic aneurysm": ("Possible aortic aneurysm.",),
    "ascites": ("Possible ascites.",),
}

# Organ-level "normal" statements that do not name the finding they rule out.
_NORMAL_WITHOUT_NAMING: dict[str, list[str]] = {
    "renal mass": ["The kidneys enhance symmetrically."],
    "liver lesion": [
        "The liver is of normal size and attenuation.",
        "The liver parenchyma is homogeneous.",
    ],
    "pleural effusion": ["The pleural spaces are clear."],
    "cardiomegaly": ["Heart size is normal.", "The heart is normal in size."],
    "splenomegaly": ["The spleen is normal in size."],
    "aortic aneurysm": ["The abdominal aorta is normal in caliber."],
    "ascites": ["The peritoneal cavity is clear."],
}

_IMPRESSION_PLAIN: dict[str, Sequence[str]] = {
    "renal mass": (
        "Solid renal mass, suspicious for renal cell carcinoma; urology referral recommended.",
        "Enhancing renal mass.",
    ),
    "liver lesion": (
        "Hepatic lesion; further characterisation with MRI is recommended.",
        "Focal liver lesion as described.",
    ),
    "pleural effusion": ("Pleural effusion.", "Pleural effusion with adjacent atelectasis."),
    "cardiomegaly": ("Cardiomegaly.", "Enlarged heart."),
    "splenomegaly": ("Splenomegaly.", "Enlarged spleen."),
    "aortic aneurysm": (
        "Abdominal aortic aneurysm; vascular surgery referral recommended.",
        "Infrarenal AAA.",
    ),
    "ascites": ("Ascites.", "Moderate ascites; consider diagnostic paracentesis."),
}

_IMPRESSION_HEDGED: dict[str, Sequence[str]] = {
    "renal mass": ("Possible small renal mass; MRI recommended.",),
    "liver lesion": ("Questionable small liver lesion; follow-up suggested.",),
    "pleural effusion": ("Possible small pleural effusion.",),
    "cardiomegaly": ("Possible mild cardiomegaly.",),
    "splenomegaly": ("Possible mild splenomegaly.",),
    "aortic aneurysm": ("Possible abdominal aortic aneurysm; ultrasound recommended.",),
    "ascites": ("Possible trace ascites.",),
}

_INDICATIONS = (
    "Abdominal distension, evaluate for ascites.",
    "Pulsatile abdominal mass; assess for aortic aneurysm.",
    "Shortness of breath; rule out pleural effusion.",
    "Staging of known colorectal malignancy.",
    "Follow-up of a liver lesion seen on ultrasound.",
    "Hematuria. Assess for renal mass.",
    "Chest pain.",
    "Weight loss and abdominal pain.",
    "Cough and fever.",
)

_TECHNIQUES = (
    "Contrast-enhanced CT of the chest, abdomen and pelvis in the portal venous phase.",
    "Non-contrast CT of the chest and abdomen, 1.5 mm axial reconstructions.",
    "CT chest, abdomen and pelvis with intravenous contrast; coronal and sagittal reformats.",
)

# Organ sections in reading order: header and the findings reported there.
_SECTIONS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Heart and mediastinum", ("cardiomegaly",)),
    ("Lungs and pleura", ("pleural effusion",)),
    ("Liver", ("liver lesion",)),
    ("Spleen", ("splenomegaly",)),
    ("Kidneys", ("renal mass",)),
    ("Vessels", ("aortic aneurysm",)),
    ("Peritoneum", ("ascites",)),
)

_FILLER: dict[str, Sequence[str]] = {
    "Heart and mediastinum": (
        "No mediastinal lymphadenopathy.",
        "The thoracic aorta is normal in caliber.",
        "The great vessels are patent.",
    ),
    "Lungs and pleura": (
        "The central airways are patent.",
        "No focal consolidation.",
        "Mild dependent atelectasis.",
        "No pneumothorax.",
    ),
    "Liver": (
        "The portal veins are patent.",
        "The gallbladder is unremarkable.",
        "No biliary dilatation.",
    ),
    "Spleen": ("No focal splenic lesion.", "The splenic vein is patent."),
    "Kidneys": (
        "No hydronephrosis.",
        "The adrenal glands are normal.",
        "The ureters are not dilated.",
    ),
    "Vessels": ("The inferior vena cava is unremarkable.", "The mesenteric vessels are patent."),
    "Peritoneum": ("No free air.", "The bowel is unremarkable."),
}

_CLOSING = (
    "The pancreas and adrenal glands are unremarkable.",
    "No abdominal or pelvic lymphadenopathy.",
    "Degenerative changes of the thoracolumbar spine. No aggressive osseous lesion.",
)


@dataclass(frozen=True)
class _Banks:
    present: dict[str, list[_Phrase]]
    hedged: dict[str, list[_Phrase]]
    negated: dict[str, list[_Phrase]]
    impression_plain: dict[str, Sequence[str]]
    impression_hedged: dict[str, Sequence[str]]


_PHRASINGS: dict[str, _Banks] = {
    "standard": _Banks(_PRESENT, _HEDGED, _NEGATED, _IMPRESSION_PLAIN, _IMPRESSION_HEDGED),
    "heldout": _Banks(
        _HELDOUT_PRESENT,
        _HELDOUT_HEDGED,
        _HELDOUT_NEGATED,
        _HELDOUT_IMPRESSION_PLAIN,
        _HELDOUT_IMPRESSION_HEDGED,
    ),
}
PHRASINGS: tuple[str, ...] = tuple(_PHRASINGS)


def _finding_sentence(name: str, present: bool, hedged: bool, banks: _Banks, rng: np.random.Generator) -> str | None:
    """One sentence about ``name`` in its organ section, or None when the reader omits it."""
    if present:
        bank = banks.hedged[name] if hedged else banks.present[name]
        return _pick_phrase(bank, rng)
    style = rng.random()
    if style < 0.5:
        return _pick_phrase(banks.negated[name], rng)
    if style < 0.75:
        return _pick(rng, _NORMAL_WITHOUT_NAMING[name])
    return None


def _pick_phrase(bank: Sequence[_Phrase], rng: np.random.Generator) -> str:
    return bank[int(rng.integers(len(bank)))](rng)


def _check_findings(findings: Mapping[str, bool]) -> dict[str, bool]:
    unknown = sorted(set(findings) - set(DEMO_FINDINGS))
    if unknown:
        raise ValueError(f"make_report: unknown demo findings {unknown}; expected a subset of {list(DEMO_FINDINGS)}")
    return {name: bool(findings.get(name, False)) for name in DEMO_FINDINGS}


def make_report(
    findings: Mapping[str, bool],
    rng: np.random.Generator,
    *,
    hedge_rate: float = 0.1,
    phrasing: str = "standard",
) -> str:
    """Write a Findings + Impression CT report for the given ground truth.

    ``findings`` maps demo finding names (see :data:`DEMO_FINDINGS`) to presence;
    missing names count as absent, unknown names raise ``ValueError``. Each present
    finding is hedged with probability ``hedge_rate`` (see the module docstring).
    ``phrasing="heldout"`` draws finding sentences from a second bank of wordings
    that the bundled vocabulary was not tuned on (a held-out test of the structurer).
    """
    if phrasing not in _PHRASINGS:
        raise ValueError(f"make_report: phrasing must be one of {sorted(_PHRASINGS)}, got {phrasing!r}")
    banks = _PHRASINGS[phrasing]
    truth = _check_findings(findings)
    hedged = {name: truth[name] and bool(rng.random() < hedge_rate) for name in DEMO_FINDINGS}

    lines = [
        f"CLINICAL INFORMATION: {_pick(rng, _INDICATIONS)}",
        f"TECHNIQUE: {_pick(rng, _TECHNIQUES)}",
        "FINDINGS:",
    ]
    for header, names in _SECTIONS:
        sentences = [s for n in names if (s := _finding_sentence(n, truth[n], hedged[n], banks, rng)) is not None]
        fillers = list(_FILLER[header])
        n_filler = int(rng.integers(0, 3))
        for i in rng.permutation(len(fillers))[:n_filler]:
            sentences.insert(int(rng.integers(len(sentences) + 1)), fillers[int(i)])
        if not sentences:
            sentences = ["Unremarkable."]
        lines.append(f"{header}: " + " ".join(sentences))
    lines.append(_pick(rng, _CLOSING))

    lines.append("IMPRESSION:")
    impression: list[str] = []
    for name in DEMO_FINDINGS:
        if truth[name]:
            bank = banks.impression_hedged[name] if hedged[name] else banks.impression_plain[name]
            impression.append(_pick(rng, bank))
    if not impression:
        impression.append(_pick(rng, ("No acute abnormality.", "Unremarkable CT of the chest, abdomen and pelvis.")))
    absent = [name for name in DEMO_FINDINGS if not truth[name]]
    if absent and rng.random() < 0.3:
        impression.append(f"No {_pick(rng, absent)}.")
    lines.extend(f"{i}. {text}" for i, text in enumerate(impression, start=1))
    return "\n".join(lines)


__all__ = ["DEMO_FINDINGS", "PHRASINGS", "make_report"]
