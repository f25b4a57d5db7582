"""Any timm backbone as an image tower (``model.tile.type: timm:<name>``), with weights from a local file.

Why: pathology groups start from a backbone they already trust (an ImageNet ViT, or a histology encoder exported
to safetensors) instead of an MAE from scratch. Nothing is downloaded: the architecture comes from timm's code and
the tensors from ``weights`` (a safetensors file, or a directory holding ``model.safetensors``, as timm and the
Hugging Face hub lay a model out), loaded strictly. Such a tower has no patch tokens the core's MAE can mask, so a
recipe using one sets ``stages.mae.steps: 0`` (the core says so if not).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from domainclip.config.schema import ImageEncoderConfig
from domainclip.errors import RecipeError

PREFIX = "timm:"
WEIGHTS_FILE = "model.safetensors"


def weights_path(source: str) -> Path:
    """``source`` itself (a file) or ``source/model.safetensors`` (a model directory)."""
    path = Path(source).expanduser()
    if path.is_dir():
        path = path / WEIGHTS_FILE
    if not path.is_file():
        raise RecipeError(f"weights: {source} is neither a safetensors file nor a folder holding {WEIGHTS_FILE}")
    return path


class TimmTower(nn.Module):
    """``timm.create_model(name, num_classes=0)``: the backbone's pooled features, ``(B, C, H, W) -> (B, D)``."""

    def __init__(self, model_name: str, in_channels: int = 3, img_size: Sequence[int] | None = None) -> None:
        super().__init__()
        import timm

        if not timm.is_model(model_name):
            raise RecipeError(f"type: timm has no model {model_name!r} (timm.list_models() lists them)")
        self.model_name = model_name
        self.in_channels = in_channels
        self.img_size = None if img_size is None else [int(s) for s in img_size]
        kwargs: dict[str, Any] = {"pretrained": False, "num_classes": 0, "in_chans": in_channels}
        try:  # transformers are built for the tile size; CNNs take any size and no such argument
            self.backbone = timm.create_model(model_name, **kwargs, img_size=tuple(self.img_size or ()) or None)
        except TypeError:
            self.backbone = timm.create_model(model_name, **kwargs)
        self.hidden_size = int(self.backbone.num_features)

    @property
    def tower_type(self) -> str:
        return PREFIX + self.model_name

    @classmethod
    def from_recipe(
        cls,
        cfg: ImageEncoderConfig,
        in_channels: int,
        img_size: Sequence[int],
        channel_names: Sequence[str] | None = None,
    ) -> TimmTower:
        """The backbone named after ``timm:`` in ``cfg.type`` with ``cfg.weights`` loaded (strictly) if given."""
        from domainclip.models.weights import load_state_dict_strict, read_safetensors

        tower = cls(cfg.type.removeprefix(PREFIX), in_channels, img_size)
        if cfg.weights:
            path = weights_path(cfg.weights)
            load_state_dict_strict(tower.backbone, read_safetensors(path), str(path))
        return tower

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.backbone(images)

    def config(self) -> dict[str, Any]:
        return {"model_name": self.model_name, "in_channels": self.in_channels, "img_size": self.img_size}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        if hasattr(self.backbone, "set_grad_checkpointing"):
            self.backbone.set_grad_checkpointing(enable)

    def no_weight_decay(self) -> set[str]:
        names = self.backbone.no_weight_decay() if hasattr(self.backbone, "no_weight_decay") else set()
        return {f"backbone.{name}" for name in names}
