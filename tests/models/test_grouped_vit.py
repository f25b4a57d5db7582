"""The channel-group ViT (SatMAE): one patch embedding and one run of tokens per group of bands."""

from pathlib import Path

import pytest
import torch

from domainclip.config.schema import ImageEncoderConfig, MAEStageConfig
from domainclip.errors import RecipeError
from domainclip.models.builders import build_image_encoder, build_mae
from domainclip.models.grouped_vit import GroupedViTEncoder, resolve_channel_groups
from domainclip.models.model_dir import _tower_entry, build_tower

BANDS = ["B02", "B03", "B04", "B05", "B06", "B11"]
GROUPS = [["B02", "B03", "B04"], ["B05", "B06"], ["B11"]]


def _grouped(**kwargs) -> GroupedViTEncoder:
    torch.manual_seed(0)
    cfg = ImageEncoderConfig(type="vit-groups", patch_size=(4, 4), hidden_size=16, depth=1, heads=2, **kwargs)
    return build_image_encoder(cfg, in_channels=6, img_size=(8, 8), channel_names=BANDS)


def test_each_group_has_its_own_tokens_and_sees_only_its_bands():
    encoder = _grouped(channel_groups=GROUPS)
    assert encoder.token_groups == ((0, 1, 2), (3, 4), (5,)) and encoder.num_patches == 3 * 4
    x = torch.randn(2, 6, 8, 8)
    tokens = encoder.embed_patches(x)
    assert tokens.shape == (2, 12, 16)
    changed = x.clone()
    changed[:, 5] += 3.0  # only B11, the third group
    moved = (encoder.embed_patches(changed) - tokens).abs().amax(dim=(0, 2))
    assert (moved[:8] == 0).all() and (moved[8:] > 0).all()
    assert encoder(x).shape == (2, 16)


def test_the_saved_entry_rebuilds_the_same_tower():
    encoder = _grouped(channel_groups=GROUPS)
    rebuilt = build_tower(_tower_entry(encoder), Path("config.json"), "image_tower")
    rebuilt.load_state_dict(encoder.state_dict())
    x = torch.randn(1, 6, 8, 8)
    assert isinstance(rebuilt, GroupedViTEncoder) and torch.equal(rebuilt(x), encoder(x))


def test_group_names_are_checked_against_the_bands():
    with pytest.raises(RecipeError, match=r"channel_groups: B08 not among"):
        resolve_channel_groups([["B02", "B08"]], BANDS)
    with pytest.raises(RecipeError, match=r"channel_groups: B02 in more than one group"):
        resolve_channel_groups([["B02"], ["B02", "B03"]], BANDS)
    with pytest.raises(RecipeError, match=r"no channel names"):
        resolve_channel_groups([["B02"]], None)
    with pytest.raises(RecipeError, match=r"required by the 'vit-groups' tower"):
        _grouped()
    with pytest.raises(RecipeError, match=r"use model.image.type 'vit-groups'"):
        cfg = ImageEncoderConfig(patch_size=(4, 4), hidden_size=16, depth=1, heads=2, channel_groups=GROUPS)
        build_image_encoder(cfg, in_channels=6, img_size=(8, 8), channel_names=BANDS)


@pytest.mark.parametrize("masking", ["independent", "consistent"])
def test_mae_over_groups_trains_every_head_and_hides_as_asked(masking):
    encoder = _grouped(channel_groups=GROUPS)
    cfg = ImageEncoderConfig(decoder_hidden_size=16, decoder_depth=1, decoder_heads=2)
    mae = build_mae(encoder, cfg, MAEStageConfig(mask_ratio=0.5, group_masking=masking))
    loss, pred, mask = mae(torch.randn(3, 6, 8, 8))
    assert pred.shape == (3, 12, 16 * 3) and mask.shape == (3, 12)  # widest group: 3 bands of a 4x4 patch
    per_group = mask.view(3, 3, 4)
    same_everywhere = bool((per_group == per_group[:, :1]).all())
    assert same_everywhere if masking == "consistent" else mask.sum(1).tolist() == [6.0] * 3
    loss.backward()
    assert [n for n, p in mae.named_parameters() if p.requires_grad and p.grad is None] == []


def test_a_perfect_prediction_of_every_group_costs_nothing():
    mae = build_mae(_grouped(channel_groups=GROUPS), ImageEncoderConfig(decoder_hidden_size=16), MAEStageConfig())
    x = torch.randn(2, 6, 8, 8)
    _, _, mask = mae(x)
    assert mae.reconstruction_loss(mae.targets(x), x, mask) == 0
    wrong = mae.targets(x)
    wrong[:, 8:] += 1.0  # the B11 group's tokens only
    expected = mask[:, 8:].sum() / mask.sum()  # error 1 on its hidden tokens, 0 elsewhere
    torch.testing.assert_close(mae.reconstruction_loss(wrong, x, mask), expected)
