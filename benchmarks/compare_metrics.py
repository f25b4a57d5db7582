"""Compare two run folders' metrics.json key by key: what moved, what is new, what is gone.

    python benchmarks/compare_metrics.py RUN_BEFORE RUN_AFTER [--ignore wall_seconds ...]

Used to check that a change to shared code leaves the CT quickstart where it was: every key of the earlier run
must have the same value in the later one (wall time, memory and the report's timings differ between any two runs
and are ignored).
Exit 1 when a shared key moved or disappeared.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

VOLATILE = ("wall_seconds", "memory.peak_rss_mb_through_training", "report.previews_seconds", "report.seconds")


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", type=Path)
    parser.add_argument("after", type=Path)
    parser.add_argument("--ignore", nargs="*", default=list(VOLATILE))
    args = parser.parse_args()
    before = json.loads((args.before / "metrics.json").read_text())
    after = json.loads((args.after / "metrics.json").read_text())
    shared = [k for k in before if k not in args.ignore]
    moved = [k for k in shared if k in after and not _same(before[k], after[k])]
    gone = [k for k in shared if k not in after]
    print(f"| | {args.before} | {args.after} |\n|---|---|---|")
    for key in args.ignore:
        print(f"| {key} (ignored) | {before.get(key)} | {after.get(key)} |")
    for key in moved:
        print(f"| MOVED {key} | {before[key]} | {after[key]} |")
    for key in gone:
        print(f"| GONE {key} | {before[key]} | |")
    new = sorted(set(after) - set(before))
    print(
        f"\n{len(shared)} compared keys: {len(shared) - len(moved) - len(gone)} identical, {len(moved)} moved, "
        f"{len(gone)} gone; {len(new)} new: {', '.join(new)}"
    )
    return 1 if moved or gone else 0


if __name__ == "__main__":
    sys.exit(main())
