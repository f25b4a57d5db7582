"""Models: the 2D/3D ViT image encoder and its MAE, the text tower, DomainCLIP, the model directory.

Names are imported on first use so that ``import domainclip.models`` (or
``logit_scale`` alone) does not pull in MONAI, timm and transformers.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ViTEncoder": "vit",
    "MaskedAutoencoder": "mae",
    "TextTower": "text",
    "DomainCLIP": "domain_clip",
    "LogitScale": "logit_scale",
    "build_image_encoder": "builders",
    "build_mae": "builders",
    "build_domain_clip": "builders",
    "load_encoder_weights": "weights",
    "save_encoder_weights": "weights",
    "encoder_state_from_monai": "weights",
    "save_model_dir": "model_dir",
    "load_model": "model_dir",
    "LoadedModel": "model_dir",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
