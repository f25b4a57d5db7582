"""Previews of the images a run report shows: those the retrieval examples found, one small PNG per record."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from domainclip.protocols import PreviewingDomain
from domainclip.records import Record
from domainclip.run_report.files import preview_name

log = logging.getLogger(__name__)


def write_previews(domain, recipe, records: list[Record], examples_file: Path, out: Path) -> list[Path]:
    """One PNG in ``out`` per record the retrieval examples in ``examples_file`` list (queries and what they
    found), where the domain draws previews (:class:`~domainclip.protocols.PreviewingDomain`); else nothing."""
    if not isinstance(domain, PreviewingDomain) or not examples_file.is_file():
        return []
    from PIL import Image

    examples = json.loads(examples_file.read_text(encoding="utf-8"))
    wanted = dict.fromkeys(rid for example in examples for rid in [example["record"], *example["found"]])
    by_id = {r.id: r for r in records}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for record_id in wanted:
        picture = domain.preview(by_id[record_id], recipe)
        if picture is None:  # nothing to draw (a feature file): the report lists the id alone
            continue
        path = out / preview_name(record_id)
        Image.fromarray(picture).save(path, optimize=True)
        written.append(path)
    log.info("wrote %d preview(s) to %s", len(written), out)
    return written
