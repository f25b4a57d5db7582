"""A small residual CNN tower trained from scratch: MONAI's ResNet with basic blocks, 2D or 3D by the input.

Why a CNN beside the ViT: at the CPU recipes' 64^3-class inputs a ViT's patches are several centimetres of
anatomy each, so a finding smaller than a patch (a nodule, a calcified plaque, emphysema's texture) reaches the
encoder only as a shift in a patch's mean. A convolutional stem sees every voxel, so it can learn those from a few
hundred studies (measured against the ViT on the same data in docs/benchmarks.md). It has no patch tokens, so it is not
MAE-pretrained (``stages.mae.steps: 0``); it is aligned from scratch.

Recipe keys (``model.image``): ``hidden_size`` is the width of the last stage (the features it returns; the four
stages have hidden_size / 8, / 4, / 2 and hidden_size channels), ``depth`` the residual blocks per stage, and
``stem_stride`` the stride of the first convolution.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from monai.networks.nets import ResNet
from torch import nn

from domainclip.config.schema import ImageEncoderConfig
from domainclip.errors import RecipeError
from domainclip.models.resnet_trunk import resnet_feature_map

STAGES = 4


class ResNet3D(nn.Module):
    """``(B, C, *S)`` -> ``(B, hidden_size)``: the global average of the last stage; registered as ``resnet3d``."""

    tower_type = "resnet3d"

    def __init__(
        self, in_channels: int, spatial_dims: int = 3, hidden_size: int = 128, depth: int = 1, stem_stride: int = 2
    ) -> None:
        super().__init__()
        if hidden_size % 2 ** (STAGES - 1):
            raise ValueError(f"hidden_size {hidden_size} must be divisible by {2 ** (STAGES - 1)}")
        self.in_channels, self.spatial_dims = in_channels, spatial_dims
        self.hidden_size, self.depth, self.stem_stride = hidden_size, depth, stem_stride
        self.backbone = ResNet(
            "basic",
            [depth] * STAGES,
            [hidden_size // 2 ** (STAGES - 1 - k) for k in range(STAGES)],
            spatial_dims=spatial_dims,
            n_input_channels=in_channels,
            conv1_t_size=3,
            conv1_t_stride=stem_stride,
            bias_downsample=False,
            feed_forward=False,
        )
        self._grad_checkpointing = False

    @classmethod
    def from_recipe(
        cls,
        cfg: ImageEncoderConfig,
        in_channels: int,
        img_size: Sequence[int],
        channel_names: Sequence[str] | None = None,
    ) -> ResNet3D:
        if cfg.weights:
            raise RecipeError("model.image.weights: the resnet3d tower is trained from scratch; it loads no weights")
        try:
            return cls(in_channels, len(img_size), cfg.hidden_size, cfg.depth, cfg.stem_stride)
        except ValueError as exc:
            raise RecipeError(f"model.image.hidden_size: {exc}") from None

    def config(self) -> dict[str, Any]:
        return {
            "in_channels": self.in_channels,
            "spatial_dims": self.spatial_dims,
            "hidden_size": self.hidden_size,
            "depth": self.depth,
            "stem_stride": self.stem_stride,
        }

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self._grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        return set()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = resnet_feature_map(self.backbone, images, self._grad_checkpointing and self.training)
        return x.flatten(2).mean(dim=2)
