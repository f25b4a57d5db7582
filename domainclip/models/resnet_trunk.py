"""The forward pass of a MONAI :class:`~monai.networks.nets.ResNet` up to its last feature map, shared by the towers
built on it (``resnet3d``, ``i3d-resnet152``), with optional activation checkpointing per stage."""

from __future__ import annotations

import torch
from monai.networks.nets import ResNet


def resnet_feature_map(net: ResNet, x: torch.Tensor, checkpointing: bool = False) -> torch.Tensor:
    """Stem, max-pool and the four residual stages of ``net`` (no pooling, no classifier); each stage is
    recomputed in the backward pass instead of stored when ``checkpointing``."""
    x = net.maxpool(net.act(net.bn1(net.conv1(x))))
    for layer in (net.layer1, net.layer2, net.layer3, net.layer4):
        x = torch.utils.checkpoint.checkpoint(layer, x, use_reentrant=False) if checkpointing else layer(x)
    return x
