"""Stage 1: masked-autoencoder pretraining of any :class:`~domainclip.protocols.MaskableEncoder` (He et al., 2021).

The encoder sees only the visible patches; a light decoder gets the encoded
visible tokens plus a shared mask token at every hidden position and predicts the
pixels of every patch. The loss is the MSE on hidden patches only, against
targets normalised per patch (``norm_pix_loss``), which the MAE paper found to
give better representations. Works for 2D and 3D, any channel count, and for
encoders with channel groups (one run of tokens per group, SatMAE): each group
gets its own prediction head and targets, and its patches can be hidden
independently or consistently across groups. Pixels marked invalid (nodata)
enter neither the per-patch normalisation nor the loss.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from domainclip.models.patches import consistent_masking, group_patchify, random_masking
from domainclip.models.position import sincos_position_embedding
from domainclip.models.vit import build_blocks, init_transformer_weights, run_blocks
from domainclip.protocols import MaskableEncoder


class MAEDecoder(nn.Module):
    """Maps encoded visible tokens back to one pixel vector per token (per patch and channel group)."""

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
        groups = encoder.token_groups
        self.embed = nn.Linear(encoder.hidden_size, hidden_size)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.position_embeddings = sincos_position_embedding(encoder.grid, hidden_size)
        self.blocks = build_blocks(hidden_size, depth, heads, mlp_ratio, qkv_bias=True)
        self.norm = nn.LayerNorm(hidden_size)
        patch_pixels = math.prod(encoder.patch_size)
        self.predict = nn.ModuleList(nn.Linear(hidden_size, patch_pixels * len(group)) for group in groups)
        self.group_embeddings = nn.Parameter(torch.zeros(len(groups), hidden_size)) if len(groups) > 1 else None
        self.grad_checkpointing = False
        self.apply(init_transformer_weights)
        nn.init.normal_(self.mask_token, std=0.02)
        if self.group_embeddings is not None:
            nn.init.normal_(self.group_embeddings, std=0.02)

    def positions(self) -> torch.Tensor:
        """``(1, T, hidden)``: each group's run of tokens gets the grid positions (plus its group embedding)."""
        groups = len(self.predict)
        table = self.position_embeddings.repeat(1, groups, 1)
        if self.group_embeddings is not None:
            table = table + self.group_embeddings.repeat_interleave(self.position_embeddings.shape[1], dim=0)[None]
        return table

    def forward(self, encoded: torch.Tensor, visible_ids: torch.Tensor) -> torch.Tensor:
        """``encoded`` ``(B, 1 + n_visible, E)`` -> predictions ``(B, T, max patch_dim)``, zero-padded per group."""
        x = self.embed(encoded)
        positions = self.positions().to(x.dtype)
        batch, num_tokens = x.shape[0], positions.shape[1]
        full = self.mask_token.to(x.dtype).expand(batch, num_tokens, -1)
        index = visible_ids.unsqueeze(-1).expand(-1, -1, x.shape[-1])
        full = full.scatter(1, index, x[:, 1:])
        full = full + positions
        x = self.norm(run_blocks(self.blocks, torch.cat([x[:, :1], full], dim=1), self.grad_checkpointing))
        if len(self.predict) == 1:  # one group: the plain MAE head over the sequence, as single-group runs trained
            return self.predict[0](x)[:, 1:]
        per_group = self.position_embeddings.shape[1]
        width = max(head.out_features for head in self.predict)
        runs = []
        for g, head in enumerate(self.predict):
            run = head(x[:, 1 + g * per_group : 1 + (g + 1) * per_group])  # a group's head sees its tokens only
            runs.append(nn.functional.pad(run, (0, width - run.shape[-1])))
        return torch.cat(runs, dim=1)


class MaskedAutoencoder(nn.Module):
    """``forward(images, valid=None) -> (loss, pred, mask)``; the encoder is ``self.encoder``.

    ``pred`` is ``(B, T, patch_dim)``: per token (group-major, each group's patches in
    :func:`~domainclip.models.patches.patchify` layout), zero-padded to the widest group; in
    normalised-pixel space when ``norm_pix_loss``. ``mask`` is ``(B, T)``, 1.0 on hidden tokens.
    ``valid`` ``(B, 1, *S)``: 1.0 where a pixel holds data (None: everywhere).
    """

    def __init__(
        self,
        encoder: MaskableEncoder,
        decoder_hidden_size: int = 128,
        decoder_depth: int = 2,
        decoder_heads: int = 4,
        mask_ratio: float = 0.75,
        norm_pix_loss: bool = True,
        group_masking: str = "independent",
    ) -> None:
        super().__init__()
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        if group_masking not in ("independent", "consistent"):
            raise ValueError(f"group_masking must be 'independent' or 'consistent', got {group_masking!r}")
        self.encoder = encoder
        mlp_ratio = float(encoder.config().get("mlp_ratio", 4.0))  # the decoder follows the encoder
        self.decoder = MAEDecoder(encoder, decoder_hidden_size, decoder_depth, decoder_heads, mlp_ratio)
        self.mask_ratio = mask_ratio
        self.norm_pix_loss = norm_pix_loss
        self.group_masking = group_masking

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.encoder.set_grad_checkpointing(enable)
        self.decoder.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        names = {f"encoder.{n}" for n in self.encoder.no_weight_decay()}
        return names | {"decoder.mask_token", "decoder.position_embeddings", "decoder.group_embeddings"}

    def _group_targets(
        self, images: torch.Tensor, valid: torch.Tensor | None
    ) -> list[tuple[torch.Tensor, torch.Tensor | None]]:
        """Per channel group: targets ``(B, N, D_g)`` and the weights of their entries (None: all count)."""
        groups, patch = self.encoder.token_groups, self.encoder.patch_size
        targets = group_patchify(images.float(), patch, groups)
        if valid is None:
            weights: list[torch.Tensor | None] = [None] * len(groups)
        else:
            channels = valid.float().expand(-1, images.shape[1], *valid.shape[2:])
            weights = list(group_patchify(channels, patch, groups))
        if self.norm_pix_loss:
            targets = [_normalise_per_patch(t, w) for t, w in zip(targets, weights)]
        return list(zip(targets, weights))

    def targets(self, images: torch.Tensor, valid: torch.Tensor | None = None) -> torch.Tensor:
        """Per-token pixel targets in ``pred``'s layout, normalised per patch when ``norm_pix_loss``."""
        runs = [t for t, _ in self._group_targets(images, valid)]
        width = max(t.shape[-1] for t in runs)
        return torch.cat([nn.functional.pad(t, (0, width - t.shape[-1])) for t in runs], dim=1)

    def reconstruction_loss(
        self, pred: torch.Tensor, images: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Mean squared error over hidden tokens only (visible ones are free to copy) and valid pixels only."""
        per_token, counted = [], []
        start = 0
        for target, weight in self._group_targets(images, valid):
            n, width = target.shape[1], target.shape[-1]
            error = (pred[:, start : start + n, :width].float() - target).pow(2)
            if weight is None:
                per_token.append(error.mean(dim=-1))
                counted.append(torch.ones_like(error[..., 0]))
            else:
                per_token.append((error * weight).sum(dim=-1) / weight.sum(dim=-1).clamp_min(1.0))
                counted.append((weight.sum(dim=-1) > 0).to(error.dtype))
            start += n
        weights = mask * torch.cat(counted, dim=1)
        return (torch.cat(per_token, dim=1) * weights).sum() / weights.sum().clamp_min(1.0)

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        groups = len(self.encoder.token_groups)
        if self.group_masking == "consistent" and groups > 1:
            per_group = self.encoder.num_patches // groups
            visible_ids, mask = consistent_masking(
                images.shape[0], per_group, groups, self.mask_ratio, device=images.device, generator=generator
            )
        else:
            visible_ids, mask = random_masking(
                images.shape[0], self.encoder.num_patches, self.mask_ratio, device=images.device, generator=generator
            )
        encoded = self.encoder.forward_tokens(images, visible_ids=visible_ids)
        pred = self.decoder(encoded, visible_ids)
        return self.reconstruction_loss(pred, images, mask, valid), pred, mask


def _normalise_per_patch(target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Zero mean, unit variance per patch; with ``weight``, over its valid entries only."""
    if weight is None:
        mean = target.mean(dim=-1, keepdim=True)
        var = target.var(dim=-1, keepdim=True)
        return (target - mean) / (var + 1e-6).sqrt()
    count = weight.sum(dim=-1, keepdim=True)
    mean = (target * weight).sum(dim=-1, keepdim=True) / count.clamp_min(1.0)
    var = ((target - mean).pow(2) * weight).sum(dim=-1, keepdim=True) / (count - 1).clamp_min(1.0)
    return (target - mean) / (var + 1e-6).sqrt() * weight
