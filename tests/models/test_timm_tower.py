"""A timm backbone as a tower: built by name with no download, weights from a local file, rebuilt from its config."""

from __future__ import annotations

from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import load_file, save_file

from domainclip import registry
from domainclip.config.schema import ImageEncoderConfig, MAEStageConfig
from domainclip.errors import CheckpointError, RecipeError
from domainclip.models.builders import build_image_encoder, build_mae

NAME = "vit_tiny_patch16_224"


def _checkpoint(tmp_path: Path) -> Path:
    """A local 'pretrained' backbone: the same architecture, its own random weights, as a model directory."""
    torch.manual_seed(1)
    source = timm.create_model(NAME, pretrained=False, num_classes=0, img_size=(32, 32))
    folder = tmp_path / "vit_tiny"
    folder.mkdir()
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, folder / "model.safetensors")
    return folder


def test_a_local_checkpoint_is_loaded_exactly_and_the_tower_rebuilds_from_its_config(tmp_path: Path) -> None:
    cfg = ImageEncoderConfig(type=f"timm:{NAME}", weights=str(_checkpoint(tmp_path)))
    tower = build_image_encoder(cfg, in_channels=3, img_size=(32, 32))
    assert tower.tower_type == f"timm:{NAME}" and tower.hidden_size == 192
    images = torch.randn(2, 3, 32, 32)
    rebuilt = registry.tower_class(tower.tower_type)(**tower.config())
    rebuilt.load_state_dict(tower.state_dict(), strict=True)
    with torch.no_grad():
        assert tower.eval()(images).shape == (2, 192)
        assert torch.allclose(rebuilt.eval()(images), tower(images))
    saved = load_file(tmp_path / "vit_tiny" / "model.safetensors")
    assert all(torch.equal(saved[k], v) for k, v in tower.backbone.state_dict().items()), "every tensor loaded"


def test_wrong_weights_and_unknown_models_are_clear_errors(tmp_path: Path) -> None:
    other = tmp_path / "other.safetensors"
    save_file({"nothing": torch.zeros(1)}, other)
    with pytest.raises(CheckpointError, match="weights do not match"):
        build_image_encoder(
            ImageEncoderConfig(type=f"timm:{NAME}", weights=str(other)), in_channels=3, img_size=(32, 32)
        )
    with pytest.raises(RecipeError, match="neither a safetensors file"):
        build_image_encoder(
            ImageEncoderConfig(type=f"timm:{NAME}", weights=str(tmp_path / "x")), in_channels=3, img_size=(32, 32)
        )
    with pytest.raises(RecipeError, match="no model 'not_a_model'"):
        build_image_encoder(ImageEncoderConfig(type="timm:not_a_model"), in_channels=3, img_size=(32, 32))


def test_a_timm_tower_cannot_be_mae_pretrained_and_says_so() -> None:
    tower = build_image_encoder(ImageEncoderConfig(type=f"timm:{NAME}"), in_channels=3, img_size=(32, 32))
    with pytest.raises(RecipeError, match="stages.mae.steps=0"):
        build_mae(tower, ImageEncoderConfig(type=f"timm:{NAME}"), MAEStageConfig())
