"""Report structuring on sentences nobody in this project wrote: per construction and per finding, old vs new.

    python benchmarks/report_constructions.py [--csv benchmarks/data/report_constructions.csv]

The set (``benchmarks/data/report_constructions.csv``, see its README) holds hand-labelled radiology and
pathology sentences, each judged for one or more findings as present, absent, uncertain or not_a_finding (named
only in an indication / comparison / history section). Each sentence is read as a one-sentence report under its
section header ("INDICATION: ...") by the structurer with the bundled vocabularies: radiology with the CT-RATE
vocabulary and then the CT demo one (a finding is read from the first that has it), pathology with
``domainclip/reports/vocabularies/pathology.yaml``. Printed: accuracy per construction, per-finding precision /
recall / F1 of "present", and the share of judgements whose finding no vocabulary names. When negspaCy is installed
(``pip install negspacy==1.1.0``), the same table for the negspaCy engine (``benchmarks/negspacy_engine.py``) is
printed beside ours: accuracy per construction side by side, and sentences/s of each on the same sentences.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd
from negspacy_engine import NegspacyStructurer, negspacy_available

from domainclip.reports import ReportStructurer, Vocabulary

REPO = Path(__file__).resolve().parents[1]
VOCABULARIES = {
    "radiology": [
        REPO / "domainclip/domains/ct/ct_rate_vocabulary.yaml",
        REPO / "domainclip/domains/ct/vocabulary.yaml",
    ],
    "pathology": [REPO / "domainclip/reports/vocabularies/pathology.yaml"],
}
# A historical mention ("history of ...") is valued like an unmentioned one: it states nothing of this study.
PREDICTED = {
    "present": "present",
    "uncertain": "uncertain",
    "negated": "absent",
    "historical": "not_a_finding",
    "unmentioned": "not_a_finding",
}


def read_sentence(structurers: list[ReportStructurer], section: str, sentence: str) -> dict[str, str]:
    """Finding name (lower case) -> predicted status, from the first vocabulary that names the finding."""
    text = f"{section.upper()}: {sentence}"
    out: dict[str, str] = {}
    for structurer in structurers:
        for row in structurer.structure(text, "s").audit:
            out.setdefault(row.finding.lower(), PREDICTED[row.status])
    return out


def score(table: pd.DataFrame, engine: type[ReportStructurer] = ReportStructurer) -> tuple[pd.DataFrame, float]:
    structurers = {d: [engine(Vocabulary.load(p)) for p in paths] for d, paths in VOCABULARIES.items()}
    predictions = []
    started = time.perf_counter()
    sentences = table.drop_duplicates("id")
    read = {
        r.id: read_sentence(structurers[r.domain], r.section, r.sentence) for r in sentences.itertuples(index=False)
    }
    per_second = len(sentences) / (time.perf_counter() - started)
    for row in table.itertuples(index=False):
        predictions.append(read[row.id].get(row.finding.lower(), "no vocabulary entry"))
    return table.assign(predicted=predictions), per_second


def f1_table(scored: pd.DataFrame, correct: str) -> dict[str, dict[str, float]]:
    """Per finding: precision, recall and F1 of "present" (``correct`` names the prediction column)."""
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    for gold_status, predicted, finding in zip(scored["status"], scored[correct], scored["finding"]):
        gold, pred = gold_status == "present", predicted == "present"
        counts[finding]["tp"] += gold and pred
        counts[finding]["fp"] += pred and not gold
        counts[finding]["fn"] += gold and not pred
    nan = float("nan")
    return {
        finding: {
            "precision": c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else nan,
            "recall": c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else nan,
            "f1": 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]) if c["tp"] + c["fp"] + c["fn"] else nan,
        }
        for finding, c in sorted(counts.items())
    }


def summary(covered: pd.DataFrame, correct: str, predicted: str) -> dict:
    """Accuracy per construction and per-finding F1 of one engine, as ``--save`` writes and ``--baseline`` reads."""
    accuracy = {c: float(g[correct].mean()) for c, g in covered.groupby("construction")}
    return {"accuracy": {**accuracy, "all": float(covered[correct].mean())}, "findings": f1_table(covered, predicted)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=REPO / "benchmarks/data/report_constructions.csv")
    parser.add_argument("--baseline", type=Path, help="a --save file of an earlier commit: printed as 'before'")
    parser.add_argument("--save", type=Path, help="write our figures as JSON (to be a later run's --baseline)")
    parser.add_argument("--ours-only", action="store_true", help="skip negspaCy even when it is installed")
    parser.add_argument("--errors", action="store_true", help="list the wrong judgements (reading them is tuning)")
    args = parser.parse_args()
    table = pd.read_csv(args.csv)
    scored, per_second = score(table)
    scored["correct"] = scored["predicted"] == scored["status"]
    covered = scored[scored["predicted"] != "no vocabulary entry"]
    ours = summary(covered, "correct", "predicted")
    if args.save:
        args.save.write_text(json.dumps(ours, indent=1) + "\n", encoding="utf-8")
    columns = {"ours": ours}
    if args.baseline:
        columns = {"before": json.loads(args.baseline.read_text(encoding="utf-8")), **columns}
    speed = f"ours {per_second:.0f} sentences/s"
    if negspacy_available() and not args.ours_only:
        other, other_per_second = score(table, NegspacyStructurer)
        other = other.loc[covered.index].assign(correct=lambda t: t["predicted"] == t["status"])
        columns["negspaCy + our cues"] = summary(other, "correct", "predicted")
        speed += f", negspaCy {other_per_second:.0f} sentences/s"
    print(
        f"{table['id'].nunique()} sentences, {len(table)} judgements; {len(scored) - len(covered)} judgements "
        f"name a finding no vocabulary has; {speed}\n"
    )
    names = list(columns)
    print("| construction | judgements | " + " | ".join(names) + " |\n|---|---|" + "---|" * len(names))
    for construction, group in [*covered.groupby("construction"), ("all", covered)]:
        cells = " | ".join(f"{columns[n]['accuracy'].get(construction, float('nan')):.3f}" for n in names)
        print(f"| {construction} | {len(group)} | {cells} |")
    print("\nF1 of 'present' per finding (precision / recall for ours)\n")
    print("| finding | precision | recall | " + " | ".join(f"F1 {n}" for n in names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for finding, figures in ours["findings"].items():
        cells = " | ".join(f"{columns[n]['findings'].get(finding, {}).get('f1', float('nan')):.3f}" for n in names)
        print(f"| {finding} | {figures['precision']:.3f} | {figures['recall']:.3f} | {cells} |")
    means = " | ".join(f"**{pd.Series([f['f1'] for f in columns[n]['findings'].values()]).mean():.3f}**" for n in names)
    print(f"| **mean** | | | {means} |")
    errors = covered[~covered["correct"]]
    print(f"\n{len(errors)} wrong judgements (ours)" + (":" if args.errors else "; --errors lists them"))
    for row in errors.itertuples(index=False) if args.errors else ():
        print(f"- [{row.construction}] {row.finding}: {row.status} read as {row.predicted}: {row.sentence}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
