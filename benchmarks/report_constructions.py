"""Report structuring on sentences nobody in this project wrote: per construction and per finding, old vs new.

    python benchmarks/report_constructions.py [--csv benchmarks/data/report_constructions.csv]

The set (``benchmarks/data/report_constructions.csv``, see its README) holds hand-labelled radiology and
pathology sentences, each judged for one or more findings as present, absent, uncertain or not_a_finding (named
only in an indication / comparison / history section). Each sentence is read as a one-sentence report under its
section header ("INDICATION: ...") by the structurer with the bundled vocabularies: radiology with the CT-RATE
vocabulary and then the CT demo one (a finding is read from the first that has it), pathology with
``domainclip/reports/vocabularies/pathology.yaml``. Printed: accuracy per construction, per-finding precision /
recall / F1 of "present", and the share of judgements whose finding no vocabulary names.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from pathlib import Path

import pandas as pd

from domainclip.reports import ReportStructurer, Vocabulary

REPO = Path(__file__).resolve().parents[1]
VOCABULARIES = {
    "radiology": [
        REPO / "domainclip/domains/ct/ct_rate_vocabulary.yaml",
        REPO / "domainclip/domains/ct/vocabulary.yaml",
    ],
    "pathology": [REPO / "domainclip/reports/vocabularies/pathology.yaml"],
}
PREDICTED = {"present": "present", "uncertain": "uncertain", "negated": "absent", "unmentioned": "not_a_finding"}


def read_sentence(structurers: list[ReportStructurer], section: str, sentence: str) -> dict[str, str]:
    """Finding name (lower case) -> predicted status, from the first vocabulary that names the finding."""
    text = f"{section.upper()}: {sentence}"
    out: dict[str, str] = {}
    for structurer in structurers:
        for row in structurer.structure(text, "s").audit:
            out.setdefault(row.finding.lower(), PREDICTED[row.status])
    return out


def score(table: pd.DataFrame) -> tuple[pd.DataFrame, float]:
    structurers = {d: [ReportStructurer(Vocabulary.load(p)) for p in paths] for d, paths in VOCABULARIES.items()}
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--csv", type=Path, default=REPO / "benchmarks/data/report_constructions.csv")
    args = parser.parse_args()
    table = pd.read_csv(args.csv)
    scored, per_second = score(table)
    scored["correct"] = scored["predicted"] == scored["status"]
    covered = scored[scored["predicted"] != "no vocabulary entry"]
    print(
        f"{table['id'].nunique()} sentences, {len(table)} judgements; {len(scored) - len(covered)} judgements "
        f"name a finding no vocabulary has; {per_second:.0f} sentences/s\n"
    )
    print("| construction | judgements | accuracy (ours) |\n|---|---|---|")
    for construction, group in covered.groupby("construction"):
        print(f"| {construction} | {len(group)} | {group['correct'].mean():.3f} |")
    print(f"| **all** | {len(covered)} | **{covered['correct'].mean():.3f}** |\n")
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {"tp": 0, "fp": 0, "fn": 0})
    for row in covered.itertuples(index=False):
        gold, pred = row.status == "present", row.predicted == "present"
        counts[row.finding]["tp"] += gold and pred
        counts[row.finding]["fp"] += pred and not gold
        counts[row.finding]["fn"] += gold and not pred
    print("| finding | precision | recall | F1 (present) |\n|---|---|---|---|")
    f1s = []
    for finding, c in sorted(counts.items()):
        p = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else float("nan")
        r = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else float("nan")
        f1 = 2 * c["tp"] / (2 * c["tp"] + c["fp"] + c["fn"]) if c["tp"] + c["fp"] + c["fn"] else float("nan")
        f1s.append(f1)
        print(f"| {finding} | {p:.3f} | {r:.3f} | {f1:.3f} |")
    print(f"| **mean** | | | **{pd.Series(f1s).mean():.3f}** |")
    errors = covered[~covered["correct"]]
    print(f"\n{len(errors)} errors; first 25:")
    for row in errors.head(25).itertuples(index=False):
        print(f"- [{row.construction}] {row.finding}: {row.status} read as {row.predicted}: {row.sentence}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
