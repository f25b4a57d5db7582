import math

import pytest
import torch
import torch.nn.functional as F
from model_factories import REPORTS, tiny_encoder_3d

from domainclip.config.schema import ImageEncoderConfig, ModelConfig, TextEncoderConfig
from domainclip.models.builders import build_domain_clip
from domainclip.models.domain_clip import DomainCLIP


@pytest.fixture
def model(scratch_tower) -> DomainCLIP:
    torch.manual_seed(0)
    return DomainCLIP(tiny_encoder_3d(), scratch_tower, embed_dim=8).eval()


def test_encoders_give_unit_vectors_in_the_shared_space(model):
    images = model.encode_image(torch.randn(3, 1, 16, 16, 16))
    texts = model.encode_text(REPORTS[:5])
    assert images.shape == (3, 8) and texts.shape == (5, 8)
    torch.testing.assert_close(images.norm(dim=-1), torch.ones(3))
    torch.testing.assert_close(texts.norm(dim=-1), torch.ones(5))
    raw = model.encode_text(REPORTS[:5], normalize=False)
    assert not torch.allclose(raw.norm(dim=-1), torch.ones(5))
    torch.testing.assert_close(F.normalize(raw, dim=-1), texts)


def test_text_from_strings_equals_text_from_tokens(model):
    tokens = model.text_tower.tokenize(REPORTS[:3])
    assert torch.equal(model.encode_text(tokens), model.encode_text(REPORTS[:3]))


def test_forward_feeds_a_contrastive_loss_and_every_parameter_learns(model):
    model.train()
    images = torch.randn(4, 1, 16, 16, 16)
    out = model(images, **model.text_tower.tokenize(REPORTS[:4]))
    assert set(out) == {"image_features", "text_features", "logit_scale"}
    assert out["logit_scale"].item() == pytest.approx(1 / 0.07, rel=1e-5)
    logits = out["logit_scale"] * out["image_features"] @ out["text_features"].T
    target = torch.arange(4)
    ((F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target)) / 2).backward()
    unused = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert unused == []  # DDP requires every trainable parameter to receive a gradient
    assert model.no_weight_decay() <= {n for n, _ in model.named_parameters()}
    model.zero_grad()


def test_build_from_model_config():
    cfg = ModelConfig(
        embed_dim=12,
        image=ImageEncoderConfig(patch_size=(8, 8, 8), hidden_size=24, depth=1, heads=2),
        text=TextEncoderConfig(hidden_size=16, depth=1, heads=2, vocab_size=100, max_length=24),
    )
    model = build_domain_clip(cfg, in_channels=1, img_size=(16, 16, 8), training_texts=REPORTS).eval()
    assert model.encode_image(torch.rand(2, 1, 16, 16, 8)).shape == (2, 12)
    assert model.text_tower.hidden_size == 16 and math.isclose(model.logit_scale().item(), 1 / 0.07, rel_tol=1e-5)
    reused = tiny_encoder_3d()
    assert (
        build_domain_clip(
            cfg, in_channels=1, img_size=(16, 16, 16), training_texts=REPORTS, image_encoder=reused
        ).image_encoder
        is reused
    )
