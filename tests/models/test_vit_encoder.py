import pytest
import torch
from model_factories import tiny_encoder_2d, tiny_encoder_3d

import domainclip.models.vit as vit_module
from domainclip.models.patches import patchify
from domainclip.models.vit import ViTEncoder


@pytest.mark.parametrize("make, shape", [(tiny_encoder_3d, (2, 1, 16, 16, 16)), (tiny_encoder_2d, (3, 12, 16, 16))])
def test_forward_shapes(make, shape):
    encoder = make().eval()
    x = torch.randn(*shape)
    assert encoder(x).shape == (shape[0], encoder.hidden_size)
    assert encoder.forward_tokens(x).shape == (
        shape[0],
        1 + encoder.num_patches,
        encoder.hidden_size,
    )


def test_token_order_matches_patchify_order():
    # a signal in one patch only must reach exactly the token of that patch (before attention)
    encoder = tiny_encoder_3d(img_size=(16, 24, 8), patch_size=(8, 8, 4))
    x = torch.zeros(1, 1, 16, 24, 8)
    x[:, :, 8:16, 8:16, 4:8] = 1.0
    hot_patch = patchify(x, encoder.patch_size).abs().sum(-1)[0].nonzero().flatten().tolist()
    with torch.no_grad():
        tokens = encoder.embed_patches(x) - encoder.patch_embedding.position_embeddings
    hot_token = tokens.abs().sum(-1)[0].gt(1e-6).nonzero().flatten().tolist()
    assert hot_patch == hot_token == [1 * 6 + 1 * 2 + 1]


def test_visible_only_tokens_ignore_hidden_patches():
    encoder = tiny_encoder_3d().eval()
    x = torch.randn(1, 1, 16, 16, 16)
    visible = torch.tensor([[0, 3, 5]])
    before = encoder.forward_tokens(x, visible_ids=visible)
    x_changed = x.clone()
    x_changed[:, :, 8:, 8:, 8:] += 5.0  # patch 7, not visible
    assert before.shape == (1, 4, encoder.hidden_size)
    assert torch.equal(before, encoder.forward_tokens(x_changed, visible_ids=visible))
    assert not torch.allclose(encoder.forward_tokens(x), encoder.forward_tokens(x_changed))


def test_grad_checkpointing_recomputes_and_matches(monkeypatch):
    calls = []
    real = vit_module.checkpoint
    monkeypatch.setattr(vit_module, "checkpoint", lambda *a, **k: calls.append(1) or real(*a, **k))
    x = torch.randn(2, 1, 16, 16, 16)
    grads = []
    for enable in (False, True):
        encoder = tiny_encoder_3d(seed=1)
        encoder.set_grad_checkpointing(enable)
        encoder(x).square().sum().backward()
        grads.append(encoder.blocks[0].attn.qkv.weight.grad)
    assert len(calls) == 2  # one per block, only when enabled
    torch.testing.assert_close(grads[0], grads[1])


def test_mean_and_cls_pooling_differ_and_cls_is_first_token():
    x = torch.randn(2, 12, 16, 16)
    mean_encoder, cls_encoder = tiny_encoder_2d(seed=2), tiny_encoder_2d(seed=2, pooling="cls")
    tokens = cls_encoder.forward_tokens(x)
    assert torch.equal(cls_encoder(x), tokens[:, 0])
    torch.testing.assert_close(mean_encoder(x), tokens[:, 1:].mean(1))


def test_config_rebuilds_the_same_architecture():
    encoder = tiny_encoder_2d()
    rebuilt = ViTEncoder(**encoder.config())
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {
        k: v.shape for k, v in encoder.state_dict().items()
    }


def test_no_weight_decay_names_exist_and_position_embedding_is_fixed():
    encoder = tiny_encoder_3d(hidden_size=32, heads=4)  # 32 is not a multiple of 6: partial sin-cos
    names = dict(encoder.named_parameters())
    assert encoder.no_weight_decay() <= set(names)
    position = names["patch_embedding.position_embeddings"]
    assert not position.requires_grad
    assert position[..., :30].abs().sum() > 0 and position[..., 30:].abs().sum() == 0
    assert len({tuple(row.tolist()) for row in position[0]}) == encoder.num_patches  # every patch distinct


def test_wrong_input_shape_is_named():
    with pytest.raises(ValueError, match=r"expected images of shape \(B, 1, 16, 16, 16\)"):
        tiny_encoder_3d()(torch.zeros(1, 1, 16, 16, 8))


def test_invalid_geometry_rejected():
    with pytest.raises(ValueError, match="not divisible"):
        ViTEncoder(1, (16, 16, 16), (5, 5, 5), 24, 1, 2)
    with pytest.raises(ValueError, match="2 or 3"):
        ViTEncoder(1, (16,), (4,), 24, 1, 2)
