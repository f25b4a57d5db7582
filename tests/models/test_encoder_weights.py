import pytest
import torch
from model_factories import tiny_encoder_3d
from monai.networks.nets import MaskedAutoEncoderViT
from monai.networks.nets import ViT as MonaiViT

from domainclip.errors import CheckpointError
from domainclip.models.mae import MaskedAutoencoder
from domainclip.models.weights import (
    encoder_state_from_monai,
    load_encoder_weights,
    save_encoder_weights,
    write_safetensors,
)

GEOMETRY = {
    "in_channels": 1,
    "img_size": (16, 16, 16),
    "patch_size": (8, 8, 8),
    "hidden_size": 24,
    "num_heads": 2,
    "qkv_bias": True,
}


@pytest.fixture
def pretrained_mae() -> MaskedAutoencoder:
    """An MAE after one optimiser step, so its encoder differs from any fresh initialisation."""
    mae = MaskedAutoencoder(tiny_encoder_3d(seed=0), 16, 1, 2)
    loss, _, _ = mae(torch.randn(2, 1, 16, 16, 16))
    loss.backward()
    torch.optim.SGD(mae.parameters(), lr=0.5).step()
    return mae


def test_mae_encoder_transfers_exactly_through_a_file(pretrained_mae, tmp_path):
    path = save_encoder_weights(pretrained_mae.encoder, tmp_path / "encoder.safetensors")
    fresh = tiny_encoder_3d(seed=1)
    x = torch.randn(2, 1, 16, 16, 16)
    assert not torch.allclose(fresh.eval()(x), pretrained_mae.encoder.eval()(x))
    load_encoder_weights(fresh, path)
    for name, tensor in pretrained_mae.encoder.state_dict().items():
        assert torch.equal(fresh.state_dict()[name], tensor), name
    assert torch.equal(fresh(x), pretrained_mae.encoder(x))


def test_whole_mae_state_dict_with_prefix(pretrained_mae):
    fresh = tiny_encoder_3d(seed=1)
    load_encoder_weights(fresh, pretrained_mae.state_dict(), prefix="encoder.")
    assert torch.equal(fresh.cls_token, pretrained_mae.encoder.cls_token)
    with pytest.raises(CheckpointError, match="unexpected .*decoder"):
        load_encoder_weights(fresh, pretrained_mae.state_dict())  # without the prefix: decoder is unexpected
    with pytest.raises(CheckpointError, match="no tensors under the prefix 'image_encoder.'"):
        load_encoder_weights(fresh, pretrained_mae.state_dict(), prefix="image_encoder.")


def test_strict_load_lists_missing_unexpected_and_mismatched(tmp_path):
    state = tiny_encoder_3d().state_dict()
    del state["blocks.1.mlp.fc2.weight"]
    state["blocks.2.attn.qkv.weight"] = torch.zeros(72, 24)
    state["norm.weight"] = torch.ones(32)
    path = write_safetensors(state, tmp_path / "stage1.safetensors")
    with pytest.raises(CheckpointError) as info:
        load_encoder_weights(tiny_encoder_3d(), path)
    message = str(info.value)
    assert str(path) in message
    assert "missing 1: blocks.1.mlp.fc2.weight" in message
    assert "unexpected 1: blocks.2.attn.qkv.weight" in message
    assert "norm.weight (checkpoint (32,) vs model (24,))" in message


def test_unreadable_files_are_checkpoint_errors(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_encoder_weights(tiny_encoder_3d(), tmp_path / "absent.safetensors")
    broken = tmp_path / "broken.safetensors"
    broken.write_bytes(b"\x00\x01 this is not safetensors")
    with pytest.raises(CheckpointError, match="broken.safetensors: not a readable safetensors file"):
        load_encoder_weights(tiny_encoder_3d(), broken)


def test_monai_mae_checkpoint_maps_onto_the_encoder():
    torch.manual_seed(0)
    monai_mae = MaskedAutoEncoderViT(
        **GEOMETRY,
        mlp_dim=96,
        num_layers=2,
        decoder_hidden_size=24,
        decoder_num_heads=2,
        decoder_num_layers=1,
    )
    encoder = tiny_encoder_3d()
    load_encoder_weights(encoder, encoder_state_from_monai(monai_mae.state_dict()))  # strict by name and shape
    assert torch.equal(encoder.norm.weight, monai_mae.blocks[2].weight)
    assert torch.equal(encoder.blocks[1].mlp.fc2.weight, monai_mae.blocks[1].mlp.linear2.weight)
    assert torch.equal(encoder.blocks[0].attn.proj.bias, monai_mae.blocks[0].attn.out_proj.bias)


def test_monai_vit_weights_give_the_same_tokens():
    # MONAI's ViT shares the MAE encoder's names (with `norm` for the final LayerNorm): same weights, same tokens
    torch.manual_seed(0)
    monai_vit = MonaiViT(**GEOMETRY, mlp_dim=96, num_layers=2, pos_embed_type="sincos", classification=True).eval()
    captured = []
    monai_vit.norm.register_forward_hook(lambda module, args, out: captured.append(out))
    encoder = tiny_encoder_3d().eval()
    load_encoder_weights(encoder, encoder_state_from_monai(monai_vit.state_dict()))
    x = torch.randn(2, 1, 16, 16, 16)
    with torch.no_grad():
        monai_vit(x)
        torch.testing.assert_close(encoder.forward_tokens(x), captured[0], atol=1e-5, rtol=1e-5)
