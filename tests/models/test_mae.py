import pytest
import torch
from model_factories import tiny_encoder_2d, tiny_encoder_3d

from domainclip.config.schema import ImageEncoderConfig, MAEStageConfig
from domainclip.errors import RecipeError
from domainclip.models.builders import build_image_encoder, build_mae
from domainclip.models.mae import MaskedAutoencoder
from domainclip.models.patches import unpatchify


@pytest.mark.parametrize("make, shape", [(tiny_encoder_3d, (2, 1, 16, 16, 16)), (tiny_encoder_2d, (2, 12, 16, 16))])
def test_forward_backward_and_encoder_sees_only_visible_tokens(make, shape):
    encoder = make()
    mae = MaskedAutoencoder(encoder, decoder_hidden_size=16, decoder_depth=1, decoder_heads=2, mask_ratio=0.75)
    seen = []
    encoder.blocks[0].register_forward_pre_hook(lambda module, args: seen.append(args[0].shape))
    loss, pred, mask = mae(torch.randn(*shape))
    n, visible = encoder.num_patches, int(encoder.num_patches * 0.25)
    assert pred.shape == (shape[0], n, shape[1] * torch.tensor(encoder.patch_size).prod().item())
    assert mask.shape == (shape[0], n) and mask.sum(1).tolist() == [float(n - visible)] * shape[0]
    assert seen == [torch.Size([shape[0], 1 + visible, encoder.hidden_size])]
    loss.backward()
    assert torch.isfinite(loss)
    no_grad = [name for name, p in mae.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_loss_counts_only_masked_patches(norm_pix_loss):
    mae = MaskedAutoencoder(tiny_encoder_3d(), 16, 1, 2, norm_pix_loss=norm_pix_loss)
    x = torch.randn(2, 1, 16, 16, 16)
    _, _, mask = mae(x)
    perfect = mae.targets(x)  # a prediction that is exact everywhere
    assert mae.reconstruction_loss(perfect, x, mask) == 0
    grid, patch = mae.encoder.grid, mae.encoder.patch_size
    visible_noise = unpatchify(torch.randn_like(perfect) * (1 - mask).unsqueeze(-1), patch, grid, 1)
    assert mae.reconstruction_loss(perfect, x + visible_noise, mask) == 0
    hidden_noise = unpatchify(torch.randn_like(perfect) * mask.unsqueeze(-1), patch, grid, 1)
    assert mae.reconstruction_loss(perfect, x + hidden_noise, mask) > 0.1


@pytest.mark.parametrize("norm_pix_loss", [True, False])
def test_per_patch_normalised_targets_ignore_patch_brightness_and_contrast(norm_pix_loss):
    mae = MaskedAutoencoder(tiny_encoder_3d(), 16, 1, 2, norm_pix_loss=norm_pix_loss)
    x = torch.randn(1, 1, 16, 16, 16)
    pred, mask = torch.randn(1, 8, 512), torch.ones(1, 8)
    rescaled = x.clone()
    rescaled[:, :, :8, :8, :8] = rescaled[:, :, :8, :8, :8] * 4.0 + 100.0  # one patch: new window/level
    changed = not torch.allclose(mae.reconstruction_loss(pred, rescaled, mask), mae.reconstruction_loss(pred, x, mask))
    assert changed != norm_pix_loss


def test_a_few_steps_reduce_the_loss():
    torch.manual_seed(0)
    mae = MaskedAutoencoder(tiny_encoder_2d(in_channels=1), 16, 1, 2, mask_ratio=0.5)
    ramp = torch.linspace(0, 1, 16)
    x = (ramp[:, None] * ramp[None, :]).expand(4, 1, 16, 16) + 0.05 * torch.randn(4, 1, 16, 16)
    optimizer = torch.optim.AdamW(mae.parameters(), lr=3e-3)
    losses = []
    for step in range(25):
        loss, _, _ = mae(x, generator=torch.Generator().manual_seed(step))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.6 * sum(losses[:5]) / 5


def test_build_from_default_recipe_config_on_a_3d_volume():
    cfg = ImageEncoderConfig(patch_size=(8, 8, 8), hidden_size=24, depth=1, heads=2)  # decoder 128 wide: not /6
    encoder = build_image_encoder(cfg, in_channels=1, img_size=(16, 16, 8))
    mae = build_mae(encoder, cfg, MAEStageConfig(mask_ratio=0.5, norm_pix_loss=False))
    assert mae.mask_ratio == 0.5 and not mae.norm_pix_loss
    loss, _, mask = mae(torch.rand(1, 1, 16, 16, 8))
    assert torch.isfinite(loss) and mask.sum() == 2


def test_builder_names_the_recipe_key():
    with pytest.raises(RecipeError, match=r"model\.image\.patch_size.*3 dims.*2 spatial dims"):
        build_image_encoder(ImageEncoderConfig(), in_channels=3, img_size=(64, 64))
    with pytest.raises(RecipeError, match=r"model\.image\.patch_size.*does not divide"):
        build_image_encoder(ImageEncoderConfig(patch_size=(16, 16)), in_channels=3, img_size=(64, 40))
    with pytest.raises(RecipeError, match=r"model\.image\.decoder_hidden_size"):
        cfg = ImageEncoderConfig(patch_size=(8, 8), hidden_size=16, depth=1, heads=2, decoder_heads=3)
        build_mae(build_image_encoder(cfg, in_channels=1, img_size=(16, 16)), cfg, MAEStageConfig())


def test_nodata_pixels_enter_neither_the_normalisation_nor_the_loss():
    from domainclip.data.nodata import split_nodata

    mae = MaskedAutoencoder(tiny_encoder_2d(in_channels=2), 16, 1, 2)
    x = torch.randn(1, 2, 16, 16)
    with_border = x.clone()
    with_border[:, :, :, :2] = float("nan")  # a nodata border, two pixels wide, in every band
    images, valid = split_nodata(with_border)
    assert valid is not None and valid[0, 0, :, :2].sum() == 0 and not torch.isnan(images).any()
    mask = torch.ones(1, mae.encoder.num_patches)
    perfect = mae.targets(x)
    assert mae.reconstruction_loss(perfect, x, mask) == 0
    # whatever the border holds, a prediction right on the valid pixels costs nothing
    targets = mae.targets(images, valid)
    for fill in (0.0, 1e4):
        filled = images.clone()
        filled[:, :, :, :2] = fill
        assert mae.reconstruction_loss(targets, filled, mask, valid) == 0
    assert mae.reconstruction_loss(targets, images, mask) > 0  # counting the border would cost


def test_an_image_without_nodata_passes_untouched():
    from domainclip.data.nodata import split_nodata

    x = torch.randn(2, 3, 8, 8)
    images, valid = split_nodata(x)
    assert images is x and valid is None
