"""The scratch CNN tower: 2D and 3D by the input, rebuilt from its config, trained BatchNorm statistics kept."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from domainclip import registry
from domainclip.config.schema import ImageEncoderConfig, MAEStageConfig
from domainclip.errors import RecipeError
from domainclip.models.builders import build_mae
from domainclip.models.domain_clip import DomainCLIP
from domainclip.models.model_dir import load_model, save_model_dir
from domainclip.models.resnet3d import ResNet3D

CFG = ImageEncoderConfig(type="resnet3d", hidden_size=32, depth=1, stem_stride=2)


@pytest.mark.parametrize(("channels", "size"), [(1, (32, 32, 24)), (4, (48, 40))])
def test_features_per_image_in_2d_and_3d(channels: int, size: tuple[int, ...]) -> None:
    tower = registry.tower_class("resnet3d").from_recipe(CFG, channels, size).eval()
    assert tower.spatial_dims == len(size)
    images = torch.randn(3, channels, *size)
    with torch.no_grad():
        features = tower(images)
    assert features.shape == (3, 32) and torch.isfinite(features).all()
    assert not torch.allclose(features[0], features[1])
    with torch.no_grad():  # an image's features do not depend on the rest of the batch in eval mode
        torch.testing.assert_close(tower(images[:1]), features[:1])


def test_bad_settings_are_named() -> None:
    with pytest.raises(RecipeError, match="model.image.hidden_size: hidden_size 20 must be divisible by 8"):
        ResNet3D.from_recipe(CFG.model_copy(update={"hidden_size": 20}), 1, (16,) * 3)
    with pytest.raises(RecipeError, match="trained from scratch"):
        ResNet3D.from_recipe(CFG.model_copy(update={"weights": "astra"}), 1, (16,) * 3)
    with pytest.raises(RecipeError, match="no patch tokens to mask.*stages.mae.steps=0"):
        build_mae(ResNet3D(1, 3, 32), CFG, MAEStageConfig())


def test_model_directory_round_trip_keeps_batchnorm_statistics(scratch_tower, tmp_path: Path) -> None:
    torch.manual_seed(0)
    tower = ResNet3D(1, 3, hidden_size=32)
    model = DomainCLIP(tower, scratch_tower, embed_dim=8)
    model.train()
    with torch.no_grad():
        model.encode_image(torch.randn(4, 1, 24, 24, 16) * 3 + 1)  # moves the running statistics
    model.eval()
    saved = save_model_dir(
        model, tmp_path / "m", model_config={"embed_dim": 8}, preprocess={}, domain="ct", input_shape=(1, (24, 24, 16))
    )
    loaded = load_model(saved)
    assert type(loaded.model.image_encoder).__name__ == "ResNet3D"
    images = torch.randn(2, 1, 24, 24, 16)
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(images), model.encode_image(images))
