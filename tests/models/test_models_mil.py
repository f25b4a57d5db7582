"""The attention-MIL slide towers: NaN padding is masked, tiles are unordered, weights are a distribution, and the
slide embedding is the attention-weighted sum of the tile embeddings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from domainclip import registry
from domainclip.config.schema import ImageEncoderConfig
from domainclip.errors import RecipeError
from domainclip.models.domain_clip import DomainCLIP
from domainclip.models.mil import BagTower, GatedAttentionMIL, MeanPoolMIL
from domainclip.models.model_dir import load_model, save_model_dir

FEATURES, HIDDEN = 12, 16


def towers(dropout: float = 0.0) -> list[BagTower]:
    torch.manual_seed(0)
    return [
        GatedAttentionMIL(FEATURES, HIDDEN, heads=1, dropout=dropout),
        GatedAttentionMIL(FEATURES, HIDDEN, attention_size=6, heads=3, dropout=dropout),
        MeanPoolMIL(FEATURES, HIDDEN, dropout=dropout),
    ]


def padded(bag: torch.Tensor, pad: int) -> torch.Tensor:
    """``bag`` ``(D, N)`` with ``pad`` NaN columns after it, as a batch of one."""
    return torch.cat([bag, torch.full((bag.shape[0], pad), float("nan"))], dim=1).unsqueeze(0)


@pytest.mark.parametrize("train", [False, True])
@pytest.mark.parametrize("tower", towers(), ids=lambda t: f"{t.tower_type}-{t.heads}")
def test_padding_does_not_change_a_bag_s_embedding(tower: BagTower, train: bool) -> None:
    tower.train(train)
    short, long = torch.randn(FEATURES, 5), torch.randn(FEATURES, 9)
    batch = torch.stack([padded(short, 4)[0], long])  # one batch: the short bag padded to the long one
    with torch.no_grad():
        alone = tower(short.unsqueeze(0))
        together = tower(batch)
        assert torch.isfinite(together).all()
        torch.testing.assert_close(together[0], alone[0])
        torch.testing.assert_close(together[1], tower(long.unsqueeze(0))[0])
        torch.testing.assert_close(tower(padded(short, 7)), alone)  # a longer padding changes nothing either


@pytest.mark.parametrize("tower", towers(), ids=lambda t: f"{t.tower_type}-{t.heads}")
def test_tile_order_does_not_matter(tower: BagTower) -> None:
    tower.eval()
    bags = torch.randn(2, FEATURES, 8)
    order = torch.randperm(8)
    with torch.no_grad():
        torch.testing.assert_close(tower(bags[:, :, order]), tower(bags))
        torch.testing.assert_close(tower.attention(bags[:, :, order]), tower.attention(bags)[:, :, order])


def test_padding_columns_can_sit_anywhere() -> None:
    tower = towers()[0].eval()
    bag = torch.randn(1, FEATURES, 6)
    holes = torch.cat([bag[:, :, :2], torch.full((1, FEATURES, 3), float("nan")), bag[:, :, 2:]], dim=2)
    holes[0, 0, 7] = float("nan")  # one NaN feature makes the whole tile padding
    with torch.no_grad():
        torch.testing.assert_close(tower(holes), tower(bag[:, :, [0, 1, 2, 3, 5]]))


@pytest.mark.parametrize("tower", towers(), ids=lambda t: f"{t.tower_type}-{t.heads}")
def test_attention_is_a_distribution_over_valid_tiles(tower: BagTower) -> None:
    tower.eval()
    bags = torch.stack([padded(torch.randn(FEATURES, 3), 4)[0], torch.randn(FEATURES, 7)])
    with torch.no_grad():
        weights = tower.attention(bags)
    assert weights.shape == (2, tower.heads, 7)
    assert torch.equal(weights[0, :, 3:], torch.zeros(tower.heads, 4))
    assert (weights[:, :, :3] > 0).all()
    torch.testing.assert_close(weights.sum(dim=-1), torch.ones(2, tower.heads))
    if isinstance(tower, MeanPoolMIL):
        torch.testing.assert_close(weights[0, 0, :3], torch.full((3,), 1 / 3))
    else:  # learnt attention is not uniform
        assert not torch.allclose(weights[1], torch.full_like(weights[1], 1 / 7))


@pytest.mark.parametrize("tower", [towers()[0], towers()[2]], ids=lambda t: t.tower_type)
def test_one_head_embedding_is_the_attention_weighted_sum_of_tile_embeddings(tower: BagTower) -> None:
    tower.eval()
    bags = torch.stack([padded(torch.randn(FEATURES, 4), 2)[0], torch.randn(FEATURES, 6)])
    with torch.no_grad():
        tiles = tower.tile_embeddings(bags)
        weights = tower.attention(bags)
        slide = tower(bags)
    assert tiles.shape == (2, 6, HIDDEN)
    assert torch.isnan(tiles[0, 4:]).all() and torch.isfinite(tiles[0, :4]).all() and torch.isfinite(tiles[1]).all()
    torch.testing.assert_close(slide, (weights.transpose(1, 2) * tiles).nansum(dim=1))


@pytest.mark.parametrize("index", [0, 1, 2], ids=lambda i: towers()[i].tower_type + f"-{towers()[i].heads}h")
def test_a_tile_embedding_is_the_slide_embedding_of_a_bag_of_that_tile_alone(index: int) -> None:
    tower = towers()[index].eval()
    bag = torch.randn(FEATURES, 5)
    with torch.no_grad():
        tiles = tower.tile_embeddings(bag[None])[0]
        alone = torch.cat([tower(bag[None, :, [k]]) for k in range(5)])
    torch.testing.assert_close(tiles, alone)


def test_several_heads_give_hidden_size_and_rebuild_from_config() -> None:
    tower = towers()[1].eval()
    bags = torch.randn(3, FEATURES, 5)
    with torch.no_grad():
        assert tower(bags).shape == (3, HIDDEN)
        assert tower.attention(bags).shape == (3, 3, 5)
        assert not torch.allclose(tower.attention(bags)[:, 0], tower.attention(bags)[:, 1])
    for original in towers():
        rebuilt = type(original)(**original.config())
        rebuilt.load_state_dict(original.state_dict(), strict=True)
        rebuilt.eval(), original.eval()
        with torch.no_grad():
            assert torch.equal(rebuilt(bags), original(bags))
    assert towers()[0].config()["attention_size"] == HIDDEN // 2


@pytest.mark.parametrize("tower", towers(), ids=lambda t: f"{t.tower_type}-{t.heads}")
def test_bags_without_a_valid_tile_or_of_the_wrong_width_are_refused(tower: BagTower) -> None:
    empty = torch.full((FEATURES, 4), float("nan"))
    batch = torch.stack([torch.randn(FEATURES, 4), empty])
    with pytest.raises(ValueError, match=r"bag\(s\) \[1\] of the batch have no valid tile"):
        tower(batch)
    with pytest.raises(ValueError, match=r"expected bags of shape \(B, 12, N\).*got \(2, 5, 4\)"):
        tower(torch.randn(2, 5, 4))


@pytest.mark.parametrize("tower", towers(dropout=0.25), ids=lambda t: f"{t.tower_type}-{t.heads}")
def test_gradients_reach_every_parameter(tower: BagTower) -> None:
    tower.train()
    bags = torch.stack([padded(torch.randn(FEATURES, 3), 3)[0], torch.randn(FEATURES, 6)])
    bags.requires_grad_(True)
    tower(bags).pow(2).sum().backward()
    for name, parameter in tower.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    assert torch.isfinite(bags.grad[0, :, :3]).all() and bags.grad[0, :, :3].abs().sum() > 0


def test_registry_and_recipe() -> None:
    assert registry.tower_class("abmil") is GatedAttentionMIL
    assert registry.tower_class("mean-mil") is MeanPoolMIL
    cfg = ImageEncoderConfig(type="abmil", hidden_size=32, heads=2, depth=99, patch_size=(1,))
    tower = GatedAttentionMIL.from_recipe(cfg, 24, (100,))
    assert tower.config() == {"in_features": 24, "hidden_size": 32, "attention_size": 16, "heads": 2, "dropout": 0.25}
    assert MeanPoolMIL.from_recipe(cfg, 24, (100,)).config()["hidden_size"] == 32
    assert GatedAttentionMIL.takes_missing and MeanPoolMIL.takes_missing


def test_recipe_errors_name_the_key() -> None:
    cfg = ImageEncoderConfig(type="abmil", hidden_size=32, heads=1)
    with pytest.raises(RecipeError, match="model.image.channel_groups: the 'abmil' tower"):
        GatedAttentionMIL.from_recipe(cfg.model_copy(update={"channel_groups": "auto"}), 24, (10,))
    with pytest.raises(RecipeError, match="model.image.weights: the 'mean-mil' tower is trained from scratch"):
        MeanPoolMIL.from_recipe(cfg.model_copy(update={"weights": "x.pt"}), 24, (10,))
    with pytest.raises(RecipeError, match="model.image.heads: must be at least 1"):
        GatedAttentionMIL.from_recipe(cfg.model_copy(update={"heads": 0}), 24, (10,))


def test_a_ten_thousand_tile_bag_trains() -> None:
    torch.manual_seed(0)
    tower = GatedAttentionMIL(768, 256, heads=2)
    tower.train()
    bag = torch.randn(1, 768, 10_000)
    slide = tower(bag)
    slide.sum().backward()
    assert slide.shape == (1, 256) and torch.isfinite(slide).all()
    assert torch.isfinite(tower.tile_projection[0].weight.grad).all()


def test_the_dual_encoder_hands_the_tower_its_padding_and_the_model_directory_rebuilds_it(
    scratch_tower, tmp_path: Path
) -> None:
    torch.manual_seed(0)
    model = DomainCLIP(GatedAttentionMIL(FEATURES, HIDDEN, heads=2), scratch_tower, embed_dim=8)
    model.train()
    with torch.no_grad():
        model.encode_image(torch.randn(4, FEATURES, 6))  # moves the projection's running statistics
    model.eval()
    short = torch.randn(FEATURES, 3)
    batch = torch.stack([padded(short, 3)[0], torch.randn(FEATURES, 6)])
    with torch.no_grad():  # were NaN filled with 0, the padding would be three real tiles of zeros
        torch.testing.assert_close(model.encode_image(batch)[:1], model.encode_image(short.unsqueeze(0)))
    saved = save_model_dir(
        model, tmp_path / "m", model_config={"embed_dim": 8}, preprocess={}, domain="ct", input_shape=(FEATURES, (6,))
    )
    loaded = load_model(saved)
    assert isinstance(loaded.model.image_encoder, GatedAttentionMIL)
    with torch.no_grad():
        assert torch.equal(loaded.encode_image(batch), model.encode_image(batch))


def test_one_pass_gives_the_slide_embeddings_and_each_slide_s_unpadded_tiles(scratch_tower, tmp_path: Path) -> None:
    from domainclip.pipeline.embedding import embed_images, embed_images_and_tiles

    torch.manual_seed(0)
    model = DomainCLIP(GatedAttentionMIL(FEATURES, HIDDEN, heads=2), scratch_tower, embed_dim=8).eval()
    saved = save_model_dir(
        model, tmp_path / "m", model_config={"embed_dim": 8}, preprocess={}, domain="ct", input_shape=(FEATURES, (6,))
    )
    loaded = load_model(saved)
    bags = [torch.randn(FEATURES, n) for n in (3, 6, 2, 5, 4)]
    dataset = [{"image": bag, "index": i} for i, bag in enumerate(bags)]  # batches of 2 pad the shorter bag
    slides, tiles = embed_images_and_tiles(loaded, dataset, batch_size=2)
    torch.testing.assert_close(slides, embed_images(loaded, dataset, batch_size=2))
    assert [t.shape for t in tiles] == [(n, 8) for n in (3, 6, 2, 5, 4)]
    with torch.no_grad():
        for bag, embedded in zip(bags, tiles, strict=True):
            torch.testing.assert_close(embedded, loaded.model.encode_tiles(bag.unsqueeze(0))[0])
