"""Report structuring at CT-RATE scale: every record read one by one vs each distinct text once, on 1 and N
processes, cold and from the disk cache.

    python benchmarks/report_throughput.py --distinct 25700 --records 50188

Writes ``--distinct`` demo reports (``domainclip.domains.ct.demo_reports.make_report``, random findings, both
phrasing banks), repeats them to ``--records`` records the way reconstructions share a scan's report, and reads
them with the CT-RATE vocabulary. Prints wall seconds and reports per second of each way; the cold distinct pass
on all cores is what a first CT-RATE run pays, the warm one what every later run pays. The vectors of every way
are checked equal.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from domainclip.domains.ct.demo_reports import DEMO_FINDINGS, make_report
from domainclip.reports import ReportStructurer, Vocabulary
from domainclip.reports.batch import ReportVectorCache

VOCABULARY = Path(__file__).resolve().parents[1] / "domainclip" / "domains" / "ct" / "ct_rate_vocabulary.yaml"


def reports(distinct: int, records: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    texts = []
    for i in range(distinct):
        findings = {name: bool(rng.random() < 0.3) for name in DEMO_FINDINGS}
        texts.append(make_report(findings, rng, phrasing="heldout" if i % 2 else "standard"))
    return [texts[i % distinct] for i in range(records)]


def timed(label: str, run, n: int) -> np.ndarray:
    started = time.perf_counter()
    out = run()
    seconds = time.perf_counter() - started
    print(f"| {label} | {seconds:.1f} | {n / seconds:.0f} |")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--distinct", type=int, default=25700)
    parser.add_argument("--records", type=int, default=50188)
    args = parser.parse_args()
    vocab = Vocabulary.load(VOCABULARY)
    texts = reports(args.distinct, args.records)
    chars = np.mean([len(t) for t in texts[: args.distinct]])
    print(
        f"{args.records} records, {args.distinct} distinct reports of {chars:.0f} characters on average, "
        f"{os.cpu_count()} cores\n"
    )
    print("| way | wall s | reports/s |\n|---|---|---|")
    one_by_one = timed(
        "every record, one process (before)",
        lambda: ReportStructurer(vocab).structure_many((str(i), t) for i, t in enumerate(texts))[0],
        len(texts),
    )
    with tempfile.TemporaryDirectory() as root:
        single = timed(
            "distinct texts, 1 process, cold",
            lambda: ReportVectorCache(vocab, None, workers=1).vectors(texts),
            len(texts),
        )
        cold = timed(
            "distinct texts, all cores, cold (first run)",
            lambda: ReportVectorCache(vocab, Path(root)).vectors(texts),
            len(texts),
        )
        warm = timed(
            "from the disk cache (every later run)",
            lambda: ReportVectorCache(vocab, Path(root)).vectors(texts),
            len(texts),
        )
    for other in (single, cold, warm):
        np.testing.assert_array_equal(other, one_by_one)
    print("\nall four ways gave identical vectors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
