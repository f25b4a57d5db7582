"""What a domain plug-in supplies to the domain-agnostic core.

Domains are looked up by name through :func:`domainclip.domains.get_domain`, which
imports the module on demand: no domain exists "only after some module was
imported".
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch

from domainclip.config.schema import DataConfig, PreprocessConfig
from domainclip.data.records import Record


class Preprocessor(Protocol):
    """Turns one image file (or folder) into the tensor the encoder sees.

    Its ``config`` is JSON-serialisable and saved in the model directory; the same
    config rebuilds the same preprocessor at inference ("what trains is served").
    """

    config: dict[str, Any]

    def __call__(self, path: Path) -> torch.Tensor: ...

    def checked(self, path: Path, image_meta: dict[str, Any] | None = None) -> torch.Tensor:
        """``__call__`` that first rejects (``DomainClipError``) what ``Domain.check_image`` would,
        decoding the file once for both; ``run`` checks and fills the cache in one pass with it."""
        ...


class Domain(Protocol):
    name: str
    spatial_dims: int  # 3 for CT, 2 for tiles
    in_channels: int

    def build_preprocessor(self, cfg: PreprocessConfig | dict[str, Any]) -> Preprocessor: ...

    def layouts(self) -> dict[str, Callable[[DataConfig], list[Record]]]: ...

    def write_demo(self, out: Path, n: int, seed: int) -> Path:
        """Write demo data under ``out``; return the manifest path."""
        ...

    def default_vocabulary(self) -> Path: ...

    def discover_images(self, folder: Path) -> list[Path]:
        """Images (files or series folders) under ``folder``, for inference on a plain folder."""
        ...

    def check_image(self, path: Path) -> str | None:
        """Return why ``path`` is unusable, or None. Used by ``validate-data``."""
        ...
