"""A torch Dataset of preprocessed images over records, backed by the disk cache.

It yields ``{"image": Tensor, "index": int}``; the pipeline joins text and findings by
``index``. A cache hit skips decoding entirely. Everything it holds (records, the
preprocessor, the cache's paths) pickles, so DataLoader workers and spawned processes can
use it. A file that fails mid-epoch raises :class:`DataError` naming the record's row and
file instead of a bare decoder traceback.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import Dataset

from domainclip.data.cache import DiskCache, default_cache_root
from domainclip.errors import DataError, DomainClipError
from domainclip.protocols import Preprocessor
from domainclip.records import Record


class CachedDataset(Dataset):
    def __init__(self, records: Sequence[Record], preprocessor: Preprocessor, cache: DiskCache | None = None) -> None:
        self.records = list(records)
        self.preprocessor = preprocessor
        self.cache = cache

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"image": self.load(index), "index": index}

    def load(self, index: int) -> torch.Tensor:
        """The preprocessed image of record ``index``, from the cache when possible."""
        record = self.records[index]
        meta = record.image_meta or None
        if self.cache is not None:
            cached = self.cache.get(record.id, record.image, meta)
            if cached is not None:
                return torch.from_numpy(cached)
        image = self._preprocess(record, meta)
        if self.cache is not None:
            self.cache.put(record.id, record.image, image.numpy(), meta)
        return image

    def check(self, index: int) -> str | None:
        """Why record ``index``'s image is unusable, or None; a usable one is preprocessed into the cache.

        One decode serves both the check and the first epoch (``Preprocessor.checked``); an image already
        in the cache (same file size and mtime, same reader hints) was checked when it was cached and is not
        decoded again, so a warm run does not decode at all.
        """
        record = self.records[index]
        meta = record.image_meta or None
        if self.cache is not None and self.cache.has(record.id, record.image, meta):
            return None
        try:
            image = self.preprocessor.checked(record.image, meta)
        except DomainClipError as exc:
            return str(exc)
        except Exception as exc:  # noqa: BLE001 - any failure to decode a user file is a reason, not a crash
            return f"{record.image}: unreadable image ({type(exc).__name__}: {exc})"
        if self.cache is not None:
            self.cache.put(record.id, record.image, image.detach().to(torch.float32).numpy(), meta)
        return None

    def _preprocess(self, record: Record, meta: dict[str, Any] | None) -> torch.Tensor:
        where = f"{record.source or 'record'} (id={record.id})"
        try:
            image = self.preprocessor(record.image, meta)
        except DomainClipError as exc:
            raise DataError(f"{where}: {exc}") from exc
        except Exception as exc:  # a decoder/transform failure on user data; keep the cause chained
            raise DataError(f"{where}: cannot preprocess {record.image} ({type(exc).__name__}: {exc})") from exc
        return image.detach().to(torch.float32).contiguous()


def image_dataset(records: Sequence[Record], preprocessor: Preprocessor, cache_dir: Path | None) -> CachedDataset:
    """The records' preprocessed images, cached under ``cache_dir`` (default ``~/.cache/domainclip``) in a folder
    named by the preprocessing config (not for a preprocessor that ``caches_itself``)."""
    if getattr(preprocessor, "caches_itself", False):
        return CachedDataset(records, preprocessor, None)
    cache = DiskCache(default_cache_root(cache_dir) / "preprocessed", preprocessor.config)
    return CachedDataset(records, preprocessor, cache)
