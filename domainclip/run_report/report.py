"""Write ``report.html`` into a run folder (the end of ``domainclip run``, and ``domainclip report RUN_DIR``)."""

from __future__ import annotations

import os
from pathlib import Path

from domainclip.run_report.contents import read_run
from domainclip.run_report.files import REPORT_FILE
from domainclip.run_report.html import render


def write_html_report(run_dir: Path) -> Path:
    """Render the run folder's report to ``run_dir/report.html`` (through a temporary file renamed into place, so
    a report being written never replaces a good one with half a page); return its path."""
    run = read_run(Path(run_dir))
    page = render(run)
    target = run.root / REPORT_FILE
    temporary = target.with_name(f".{REPORT_FILE}.{os.getpid()}.tmp")  # the default file mode, unlike mkstemp's
    try:
        temporary.write_text(page, encoding="utf-8")
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target
