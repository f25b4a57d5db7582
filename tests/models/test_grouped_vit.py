"""The channel-group ViT (SatMAE): one patch embedding and one run of tokens per group of bands."""

from pathlib import Path

import pytest
import torch

from domainclip.config.schema import ImageEncoderConfig, MAEStageConfig
from domainclip.errors import RecipeError
from domainclip.models.builders import build_image_encoder, build_mae
from domainclip.models.grouped_vit import GroupedViTEncoder, auto_channel_groups, resolve_channel_groups
from domainclip.models.model_dir import _tower_entry, build_tower

BANDS = ["B02", "B03", "B04", "B05", "B06", "B11"]
GROUPS = [["B02", "B03", "B04"], ["B05", "B06"], ["B11"]]
GROUP_10M = ["B02", "B03", "B04", "B08"]
GROUP_20M = ["B05", "B06", "B07", "B8A"]


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
    with pytest.raises(RecipeError, match=r"use model.image.type 'vit-groups'"):
        cfg = ImageEncoderConfig(patch_size=(4, 4), hidden_size=16, depth=1, heads=2, channel_groups=GROUPS)
        build_image_encoder(cfg, in_channels=6, img_size=(8, 8), channel_names=BANDS)


L2A = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]
L1C = [*L2A[:10], "B10", *L2A[10:]]


def test_auto_puts_sentinel2_bands_in_satmae_groups_with_b10_where_present():
    assert auto_channel_groups(L2A) == [GROUP_10M, GROUP_20M, ["B01", "B09", "B11", "B12"]]
    assert auto_channel_groups(L1C) == [GROUP_10M, GROUP_20M, ["B01", "B09", "B10", "B11", "B12"]]
    shuffled = list(reversed(L1C))  # the file's order does not change the groups, only their indices
    assert auto_channel_groups(shuffled) == auto_channel_groups(L1C)
    assert resolve_channel_groups(auto_channel_groups(shuffled), shuffled)[0] == [11, 10, 9, 5]


def test_auto_keeps_other_bands_apart_and_only_the_bands_present():
    assert auto_channel_groups(["B04", "B03", "B02", "NDVI", "VV"]) == [["B02", "B03", "B04"], ["NDVI", "VV"]]
    assert auto_channel_groups(["b02", "b8a", "b11"]) == [["b02"], ["b8a"], ["b11"]]  # descriptions in lower case


@pytest.mark.parametrize(
    "names",
    [["red", "green", "blue"], ["B1", "B2", "B3", "B4", "B5", "B6"], ["nir", "swir1", "swir2"]],
    ids=["rgb", "generic-fallback-names", "unknown"],
)
def test_auto_makes_one_group_of_names_without_a_sentinel2_id(names):
    assert auto_channel_groups(names) == [names]


@pytest.mark.parametrize("spec", ["auto", None])
def test_auto_and_null_build_the_groups_from_the_channel_names(spec):
    cfg = ImageEncoderConfig(
        type="vit-groups", patch_size=(4, 4), hidden_size=16, depth=1, heads=2, channel_groups=spec
    )
    encoder = build_image_encoder(cfg, in_channels=12, img_size=(8, 8), channel_names=L2A)
    assert encoder.token_groups == ((1, 2, 3, 7), (4, 5, 6, 8), (0, 9, 10, 11))
    assert encoder(torch.randn(1, 12, 8, 8)).shape == (1, 16)
    rgb = build_image_encoder(cfg, in_channels=3, img_size=(8, 8), channel_names=["red", "green", "blue"])
    assert rgb.token_groups == ((0, 1, 2),) and rgb.num_patches == 4
    unnamed = build_image_encoder(cfg, in_channels=2, img_size=(8, 8), channel_names=None)
    assert unnamed.token_groups == ((0, 1),)


def test_auto_is_checked_against_the_channel_count_and_the_tower():
    cfg = ImageEncoderConfig(
        type="vit-groups", patch_size=(4, 4), hidden_size=16, depth=1, heads=2, channel_groups="auto"
    )
    with pytest.raises(RecipeError, match=r"channel_groups: 12 channel names .* for 13 channels"):
        build_image_encoder(cfg, in_channels=13, img_size=(8, 8), channel_names=L2A)
    with pytest.raises(RecipeError, match=r"use model.image.type 'vit-groups'"):
        plain = ImageEncoderConfig(patch_size=(4, 4), hidden_size=16, depth=1, heads=2, channel_groups="auto")
        build_image_encoder(plain, in_channels=12, img_size=(8, 8), channel_names=L2A)
    with pytest.raises(ValueError, match="channel_groups"):
        ImageEncoderConfig(type="vit-groups", channel_groups="satmae")


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
