"""Disk cache of preprocessed images, so a warm epoch never decodes an image file again.

Layout: ``<root>/<sha256 of the canonical preprocessing config + cache version>[:16]/``
holds ``config.json`` (for humans) and one ``.npy`` per image. An entry's name carries a
digest of the record id, the source path, the source's size and mtime (for an image made of a
folder of files:
its files' total size and newest mtime) and any reader hints (``Record.image_meta``):
editing the image, the hints or the preprocessing config yields a different entry, never a
stale one. Entries are written to a temporary file and renamed into place, so parallel
DataLoader workers or ranks can share one cache; arrays are read with
``allow_pickle=False``. Obsolete entries are never read; delete the folder to reclaim space.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

CACHE_VERSION = 2  # bump when a reader or preprocessing change alters the tensors of an unchanged config


def default_cache_root(cache_dir: Path | None = None) -> Path:
    """``data.cache_dir`` when set, else ``~/.cache/domainclip``."""
    return Path(cache_dir) if cache_dir is not None else Path.home() / ".cache" / "domainclip"


def demo_folder(cache_dir: Path | None, domain: str, version: int, n: int, seed: int) -> Path:
    """Where a domain's demo data of generator ``version`` lives by default: never an older generator's."""
    return default_cache_root(cache_dir) / "demo" / f"{domain}-v{version}-n{n}-s{seed}"


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


class DiskCache:
    """Preprocessed arrays keyed by (record id, source file state, reader hints) under one config's folder."""

    def __init__(self, root: Path, config: Mapping[str, Any]) -> None:
        self.config = dict(config)
        digest = hashlib.sha256(canonical_json({"config": self.config, "version": CACHE_VERSION}).encode()).hexdigest()
        self.directory = Path(root) / digest[:16]
        self.directory.mkdir(parents=True, exist_ok=True)
        config_file = self.directory / "config.json"
        if not config_file.exists():
            _atomic_write_bytes(config_file, json.dumps(self.config, indent=2, sort_keys=True).encode())

    def entry_path(self, record_id: str, source: Path, image_meta: Mapping[str, Any] | None = None) -> Path | None:
        """Where the entry for this source state lives; None when ``source`` cannot be stat'ed."""
        state = _source_state(Path(source))
        if state is None:
            return None
        key = canonical_json(
            {"id": record_id, "source": str(Path(source).resolve()), "state": state, "meta": dict(image_meta or {})}
        )
        slug = re.sub(r"[^A-Za-z0-9._-]+", "_", record_id)[:80]
        return self.directory / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:20]}.npy"

    def has(self, record_id: str, source: Path, image_meta: Mapping[str, Any] | None = None) -> bool:
        """Whether an entry exists for this source state (without reading it)."""
        path = self.entry_path(record_id, source, image_meta)
        return path is not None and path.exists()

    def get(self, record_id: str, source: Path, image_meta: Mapping[str, Any] | None = None) -> np.ndarray | None:
        path = self.entry_path(record_id, source, image_meta)
        if path is None or not path.exists():
            return None
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError, EOFError) as exc:  # a damaged entry is a miss, rewritten by put()
            log.warning("ignoring unreadable cache entry %s (%s)", path, exc)
            return None

    def put(
        self, record_id: str, source: Path, array: np.ndarray, image_meta: Mapping[str, Any] | None = None
    ) -> Path | None:
        path = self.entry_path(record_id, source, image_meta)
        if path is None:
            return None
        descriptor, tmp_name = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".npy")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                np.save(handle, np.ascontiguousarray(array), allow_pickle=False)
            os.replace(tmp_name, path)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        return path


def _source_state(source: Path) -> list[int] | None:
    try:
        if source.is_dir():
            stats = [p.stat() for p in source.iterdir() if p.is_file()]
            return [sum(s.st_size for s in stats), max((s.st_mtime_ns for s in stats), default=0), len(stats)]
        stat = source.stat()
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    descriptor, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
    os.replace(tmp_name, path)
