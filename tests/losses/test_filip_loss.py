"""FilipLoss: chunked token-wise late interaction equals the dense definition, masks respected."""

from __future__ import annotations

import pytest
import torch
from loss_helpers import LargestAllocation, loss_and_grads
from loss_references import filip_loss, filip_scores

from domainclip.losses import FilipLoss


def _tokens(batch: int, image_len: int, text_len: int, dim: int, seed: int):
    generator = torch.Generator().manual_seed(seed)
    image = torch.nn.functional.normalize(torch.randn(batch, image_len, dim, generator=generator), dim=-1)
    text = torch.nn.functional.normalize(torch.randn(batch, text_len, dim, generator=generator), dim=-1)
    image_mask = torch.rand(batch, image_len, generator=generator) < 0.7
    text_mask = torch.arange(text_len)[None, :] < torch.randint(1, text_len + 1, (batch, 1), generator=generator)
    image_mask[:, 0] = True
    return image.double().requires_grad_(), text.double().requires_grad_(), image_mask, text_mask


@pytest.mark.parametrize("chunk_size", [1, 3, 64])
def test_chunked_loss_equals_dense_definition(chunk_size):
    image, text, image_mask, text_mask = _tokens(7, 5, 6, 8, seed=0)
    scale = torch.tensor(12.0, dtype=torch.float64, requires_grad=True)

    def dense(x, y, s):
        image_to_text, text_to_image = filip_scores(x, image_mask, y, text_mask)
        return filip_loss(image_to_text, text_to_image.T, s)

    want = loss_and_grads(dense, image, text, scale)
    loss = FilipLoss(chunk_size=chunk_size)
    got = loss_and_grads(lambda x, y, s: loss(x, y, s, image_mask, text_mask), image, text, scale)
    for w, g in zip(want, got):
        torch.testing.assert_close(g, w, atol=1e-10, rtol=1e-10)


def test_padding_tokens_do_not_change_the_loss():
    image, text, image_mask, text_mask = _tokens(6, 5, 6, 8, seed=1)
    loss = FilipLoss(chunk_size=4)
    before = loss(image, text, 10.0, image_mask, text_mask)
    garbage = torch.randn_like(image) * 50
    after = loss(
        torch.where(image_mask[..., None], image, garbage),
        torch.where(text_mask[..., None], text, -text),
        10.0,
        image_mask,
        text_mask,
    )
    torch.testing.assert_close(after, before)
    assert not torch.allclose(loss(image, text, 10.0), before)  # the masks do matter here


def test_never_holds_all_token_similarities_at_once():
    batch, image_len, text_len, chunk = 24, 9, 7, 4
    image, text, image_mask, text_mask = _tokens(batch, image_len, text_len, 4, seed=2)
    tracker = LargestAllocation()
    with tracker:
        FilipLoss(chunk_size=chunk)(image, text, 10.0, image_mask, text_mask).backward()
    assert tracker.largest <= chunk * chunk * image_len * text_len
    assert tracker.largest < batch * batch * image_len * text_len / 16
