"""Stage 1: masked-autoencoder pretraining of any :class:`~domainclip.protocols.MaskableEncoder` (He et al., 2021).

The encoder sees only the visible patches; a light decoder gets the encoded
visible tokens plus a shared mask token at every hidden position and predicts the
pixels of every patch. The loss is the MSE on hidden patches only, against
targets normalised per patch (``norm_pix_loss``), which the MAE paper found to
give better representations. Works for 2D and 3D, any channel count.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from domainclip.models.patches import patchify, random_masking
from domainclip.models.position import sincos_position_embedding
from domainclip.models.vit import build_blocks, init_transformer_weights, run_blocks
from domainclip.protocols import MaskableEncoder


class MAEDecoder(nn.Module):
    """Maps encoded visible tokens back to one pixel vector per patch."""

    def __init__(
        self,
        encoder: MaskableEncoder,
        hidden_size: int = 128,
        depth: int = 2,
        heads: int = 4,
        mlp_ratio: float = 4.0,
    ) -> None:
        super().__init__()
        if hidden_size % heads:
            raise ValueError(f"decoder hidden_size {hidden_size} is not divisible by decoder heads {heads}")
        self.embed = nn.Linear(encoder.hidden_size, hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.position_embeddings = sincos_position_embedding(encoder.grid, hidden_size)
        self.blocks = build_blocks(hidden_size, depth, heads, mlp_ratio, qkv_bias=True)
        self.norm = nn.LayerNorm(hidden_size)
        patch_dim = encoder.in_channels * math.prod(encoder.patch_size)
        self.predict = nn.Linear(hidden_size, patch_dim)
        self.grad_checkpointing = False
        self.apply(init_transformer_weights)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, encoded: torch.Tensor, visible_ids: torch.Tensor) -> torch.Tensor:
        """``encoded`` ``(B, 1 + n_visible, E)`` -> predictions ``(B, N, patch_dim)``."""
        x = self.embed(encoded)
        batch, num_patches = x.shape[0], self.position_embeddings.shape[1]
        full = self.mask_token.to(x.dtype).expand(batch, num_patches, -1)
        index = visible_ids.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        full = full.scatter(1, index, x[:, 1:])
        full = full + self.position_embeddings.to(x.dtype)
        x = run_blocks(self.blocks, torch.cat([x[:, :1], full], dim=1), self.grad_checkpointing)
        return self.predict(self.norm(x))[:, 1:]


class MaskedAutoencoder(nn.Module):
    """``forward(images) -> (loss, pred, mask)``; the encoder is ``self.encoder``.

    ``pred`` is ``(B, N, patch_dim)`` in :func:`~domainclip.models.patches.patchify`
    layout (normalised-pixel space when ``norm_pix_loss``); ``mask`` is ``(B, N)``,
    1.0 on hidden patches.
    """

    def __init__(
        self,
        encoder: MaskableEncoder,
        decoder_hidden_size: int = 128,
        decoder_depth: int = 2,
        decoder_heads: int = 4,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = True,
    ) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        self.encoder = encoder
        mlp_ratio = float(encoder.config().get("mlp_ratio", 4.0))  # the decoder follows the encoder
        self.decoder = MAEDecoder(encoder, decoder_hidden_size, decoder_depth, decoder_heads, mlp_ratio)
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.encoder.set_grad_checkpointing(enable)
        self.decoder.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        names = {f"encoder.{n}" for n in self.encoder.no_weight_decay()}
        return names | {"decoder.mask_token", "decoder.position_embeddings"}

    def targets(self, images: torch.Tensor) -> torch.Tensor:
        """Per-patch pixel targets, normalised to zero mean / unit variance per patch."""
        target = patchify(images.float(), self.encoder.patch_size)
        if self.norm_pix_loss:
            mean = target.mean(dim=-1, keepdim=True)
            var = target.var(dim=-1, keepdim=True)
            target = (target - mean) / (var + 1e-6).sqrt()
        return target

    def reconstruction_loss(self, pred: torch.Tensor, images: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error over hidden patches only (visible ones are free to copy)."""
        per_patch = (pred.float() - self.targets(images)).pow(2).mean(dim=-1)
        return (per_patch * mask).sum() / mask.sum()

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        visible_ids, mask = random_masking(
            images.shape[0],
            self.encoder.num_patches,
            self.mask_ratio,
            device=images.device,
            generator=generator,
        )
        encoded = self.encoder.forward_tokens(images, visible_ids=visible_ids)
        pred = self.decoder(encoded, visible_ids)
        return self.reconstruction_loss(pred, images, mask), pred, mask
