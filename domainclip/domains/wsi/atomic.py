"""Write a file under a temporary name and rename it into place, so a killed write never leaves half a file.

Contour GeoJSON and h5 feature files are outputs other runs resume from: a file under its final name must be
whole. The temporary file sits in the same folder (a rename is atomic only within one file system) and is hidden
(a leading dot), so a folder listing of ``*.h5`` never sees it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on success fsync it and rename it onto ``path``.

    On any error the temporary file is removed and ``path`` is left as it was (absent, or the previous file).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():  # only our own temporary file, never the final one
            tmp.unlink()
