"""What report.html costs a run: the previews (inside ``wall_seconds``) and the page (after it), against the run's
wall time, from each run folder's metrics.json; then the page redrawn here (``domainclip report``), timed again,
with its size.

    python benchmarks/report_cost.py RUN_DIR [RUN_DIR ...]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from domainclip.run_report.report import write_html_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    print("| run | wall s | previews s | page s (in the run) | report share of the run | page s (redrawn) | size MB |")
    print("|---|---|---|---|---|---|---|")
    for run in args.runs:
        metrics = json.loads((run / "metrics.json").read_text())
        wall, previews, page = metrics["wall_seconds"], metrics["report.previews_seconds"], metrics["report.seconds"]
        started = time.perf_counter()
        path = write_html_report(run)
        redrawn = time.perf_counter() - started
        share = (previews + page) / (wall + page)  # the page is drawn after wall_seconds was taken
        size = path.stat().st_size / 1e6
        print(
            f"| {run} | {wall:.0f} | {previews:.1f} | {page:.1f} | {100 * share:.1f} % | {redrawn:.1f} | {size:.1f} |"
        )


if __name__ == "__main__":
    main()
