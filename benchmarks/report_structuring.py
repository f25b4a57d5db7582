"""Agreement of the report structurer with the demo generator's ground truth.

Draws random findings (each present with probability --prevalence, seeded), writes a
report for each with ``domainclip.domains.ct.demo_reports.make_report``, structures
the reports with the bundled demo vocabulary, and prints per-finding accuracy and
precision/recall of "present" (a hedged mention, value 0.5, counts as present).

One table per phrasing bank: "standard" (the wording the vocabulary was written
against) and "heldout" (wording written after the vocabulary was frozen). With negspaCy
installed (``pip install negspacy==1.1.0``) the same reports are also structured by the
negspaCy engine (``benchmarks/negspacy_engine.py``): reports/s of both, one process, same texts.

    python benchmarks/report_structuring.py --n 2000 --seed 0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from negspacy_engine import NegspacyStructurer, negspacy_available

from domainclip.domains.ct.demo_reports import DEMO_FINDINGS, PHRASINGS, make_report
from domainclip.reports import ReportStructurer, Vocabulary, finding_agreement

VOCABULARY = Path(__file__).resolve().parents[1] / "domainclip" / "domains" / "ct" / "vocabulary.yaml"


def timed_agreement(structurer: ReportStructurer, reports: list[tuple[str, str]], truth: np.ndarray):
    """Seconds to structure ``reports`` in one process, and the per-finding agreement table with ``truth``."""
    start = time.perf_counter()
    vectors, _ = structurer.structure_many(reports)
    seconds = time.perf_counter() - start
    return seconds, finding_agreement(truth, vectors, structurer.names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prevalence", type=float, default=0.3)
    args = parser.parse_args()

    structurer = ReportStructurer(Vocabulary.load(VOCABULARY))
    assert structurer.names == list(DEMO_FINDINGS)
    for phrasing in PHRASINGS:
        rng = np.random.default_rng(args.seed)
        truth = rng.random((args.n, len(DEMO_FINDINGS))) < args.prevalence
        reports = [
            (f"r{i}", make_report(dict(zip(DEMO_FINDINGS, map(bool, row))), rng, phrasing=phrasing))
            for i, row in enumerate(truth)
        ]
        seconds, table = timed_agreement(structurer, reports, truth)
        print(
            f"\nphrasing={phrasing}: N={args.n} reports, seed={args.seed}, prevalence={args.prevalence}, "
            f"structured in {seconds:.2f} s ({args.n / seconds:.0f} reports/s)"
        )
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print(f"mean accuracy {table['accuracy'].mean():.3f}, min accuracy {table['accuracy'].min():.3f}")
        if negspacy_available():
            other_seconds, other_table = timed_agreement(NegspacyStructurer(structurer.vocabulary), reports, truth)
            print(
                f"same reports, negspaCy engine: {other_seconds:.2f} s ({args.n / other_seconds:.0f} reports/s; "
                f"ours {args.n / seconds:.0f}), mean accuracy {other_table['accuracy'].mean():.3f}, "
                f"min accuracy {other_table['accuracy'].min():.3f}"
            )


if __name__ == "__main__":
    main()
