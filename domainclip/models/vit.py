"""The image encoder: a plain ViT over 2D or 3D patches, any number of channels.

Patch embedding is MONAI's ``PatchEmbeddingBlock`` (an N-d strided conv; timm's
patch embedding is 2D only). Transformer blocks are timm's ``Block``: fused
scaled-dot-product attention, stochastic depth, and no parameters that forward
never uses (MONAI's ``TransformerBlock`` always builds an unused cross-attention
LayerNorm, which breaks DDP without ``find_unused_parameters``). Parameter names
(``patch_embedding``, ``blocks``, ``norm``, ``cls_token``) follow MONAI's ViT;
:mod:`domainclip.models.encoder_weights` maps MONAI ViT / MAE checkpoints onto it.

Position embeddings are fixed sin-cos (as in MAE), so the same encoder serves the
MAE (visible tokens only) and alignment (all tokens).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Literal

import torch
from monai.networks.blocks.patchembedding import PatchEmbeddingBlock
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils.checkpoint import checkpoint

from domainclip.config.schema import ImageEncoderConfig
from domainclip.errors import RecipeError
from domainclip.models.patches import grid_shape
from domainclip.models.position import sincos_position_embedding

Pooling = Literal["mean", "cls"]


def build_blocks(
    width: int,
    depth: int,
    heads: int,
    mlp_ratio: float,
    *,
    qkv_bias: bool,
    drop_path_rate: float = 0.0,
) -> nn.ModuleList:
    """Pre-norm transformer blocks (shared by the encoder and the MAE decoder)."""
    rates = torch.linspace(0.0, drop_path_rate, depth).tolist() if depth else []
    return nn.ModuleList(
        Block(width, heads, mlp_ratio, qkv_bias=qkv_bias, drop_path=rate, norm_layer=nn.LayerNorm) for rate in rates
    )


def init_transformer_weights(module: nn.Module) -> None:
    """MAE initialisation: xavier-uniform linears, unit LayerNorms."""
    if isinstance(module, nn.Linear):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.LayerNorm):
        nn.init.ones_(module.weight)
        nn.init.zeros_(module.bias)


def patch_embedding_block(
    in_channels: int, img_size: Sequence[int], patch_size: Sequence[int], hidden_size: int
) -> PatchEmbeddingBlock:
    """MONAI's N-d strided-convolution patch embedding, without its own position embedding (ours is sin-cos)."""
    return PatchEmbeddingBlock(
        in_channels=in_channels,
        img_size=img_size,
        patch_size=patch_size,
        hidden_size=hidden_size,
        num_heads=1,  # only checked for divisibility by MONAI; the block has no attention
        proj_type="conv",
        pos_embed_type="none",
        spatial_dims=len(img_size),
    )


def run_blocks(blocks: nn.ModuleList, x: torch.Tensor, checkpointed: bool) -> torch.Tensor:
    """Run ``blocks`` in order, recomputing activations in backward when ``checkpointed``."""
    for block in blocks:
        if checkpointed and torch.is_grad_enabled():
            x = checkpoint(block, x, use_reentrant=False)
        else:
            x = block(x)
    return x


class ViTEncoder(nn.Module):
    """ViT for ``(B, in_channels, *img_size)`` images with 2 or 3 spatial dims.

    ``forward`` gives one pooled vector per image (mean of patch tokens by default:
    MAE's CLS token gets no direct training signal); ``forward_tokens`` gives all
    tokens, or only ``visible_ids`` patches for the MAE.
    """

    tower_type = "vit"

    def __init__(
        self,
        in_channels: int,
        img_size: Sequence[int],
        patch_size: Sequence[int],
        hidden_size: int = 192,
        depth: int = 4,
        heads: int = 3,
        mlp_ratio: float = 4.0,
        *,
        qkv_bias: bool = True,
        pooling: Pooling = "mean",
        drop_path_rate: float = 0.0,
    ) -> None:
        super().__init__()
        img_size, patch_size = tuple(int(s) for s in img_size), tuple(int(p) for p in patch_size)
        if len(img_size) not in (2, 3):
            raise ValueError(f"img_size must have 2 or 3 spatial dims, got {img_size}")
        if hidden_size % heads:
            raise ValueError(f"hidden_size {hidden_size} is not divisible by heads {heads}")
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        self.in_channels = in_channels
        self.img_size = img_size
        self.patch_size = patch_size
        self.grid = grid_shape(img_size, patch_size)
        self.hidden_size = hidden_size
        self.pooling = pooling
        self._config: dict[str, Any] = {
            "in_channels": in_channels,
            "img_size": list(img_size),
            "patch_size": list(patch_size),
            "hidden_size": hidden_size,
            "depth": depth,
            "heads": heads,
            "mlp_ratio": mlp_ratio,
            "qkv_bias": qkv_bias,
            "pooling": pooling,
            "drop_path_rate": drop_path_rate,
        }

        self._build_patch_embedding()
        self.cls_token = nn.Parameter(torch.zeros(1, 1, hidden_size))
        self.blocks = build_blocks(
            hidden_size, depth, heads, mlp_ratio, qkv_bias=qkv_bias, drop_path_rate=drop_path_rate
        )
        self.norm = nn.LayerNorm(hidden_size)
        self.grad_checkpointing = False
        self._init_weights()

    def _build_patch_embedding(self) -> None:
        """One strided convolution over every channel, with fixed sin-cos positions on the patch grid."""
        self.patch_embedding = patch_embedding_block(self.in_channels, self.img_size, self.patch_size, self.hidden_size)
        self.patch_embedding.position_embeddings = sincos_position_embedding(self.grid, self.hidden_size)

    def _patch_convolutions(self) -> list[nn.Module]:
        return [self.patch_embedding.patch_embeddings]

    def _init_weights(self) -> None:
        self.apply(init_transformer_weights)
        for conv in self._patch_convolutions():
            nn.init.xavier_uniform_(conv.weight.view(conv.weight.shape[0], -1))  # like a linear layer, as in MAE
            nn.init.zeros_(conv.bias)
        nn.init.normal_(self.cls_token, std=0.02)

    @classmethod
    def from_recipe(
        cls,
        cfg: ImageEncoderConfig,
        in_channels: int,
        img_size: Sequence[int],
        channel_names: Sequence[str] | None = None,
    ) -> ViTEncoder:
        """The ViT of a recipe's ``model.image`` for ``(in_channels, *img_size)`` images, with errors naming the key."""
        if cfg.channel_groups is not None:
            raise RecipeError(
                "model.image.channel_groups: the 'vit' tower embeds every channel in one patch embedding; "
                "use model.image.type 'vit-groups' for one embedding per channel group"
            )
        return cls(in_channels, tuple(img_size), *cls._checked_recipe_shape(cfg, img_size))

    @staticmethod
    def _checked_recipe_shape(cfg: ImageEncoderConfig, img_size: Sequence[int]) -> tuple:
        """``(patch_size, hidden_size, depth, heads, mlp_ratio)`` of ``cfg``, checked against the image size."""
        img_size, patch = tuple(img_size), tuple(cfg.patch_size)
        if len(patch) != len(img_size):
            raise RecipeError(
                f"model.image.patch_size: {list(patch)} has {len(patch)} dims but images have "
                f"{len(img_size)} spatial dims {list(img_size)}"
            )
        if any(p <= 0 or s % p for s, p in zip(img_size, patch)):
            raise RecipeError(f"model.image.patch_size: {list(patch)} does not divide the image size {list(img_size)}")
        if cfg.hidden_size % cfg.heads:
            raise RecipeError(
                f"model.image.hidden_size: {cfg.hidden_size} is not divisible by model.image.heads {cfg.heads}"
            )
        return patch, cfg.hidden_size, cfg.depth, cfg.heads, cfg.mlp_ratio

    @property
    def num_patches(self) -> int:
        """Tokens an MAE can hide: one per patch of the grid."""
        return math.prod(self.grid)

    @property
    def token_groups(self) -> tuple[tuple[int, ...], ...]:
        """The channels each run of ``grid`` tokens embeds, in token order: here one run over every channel."""
        return (tuple(range(self.in_channels)),)

    @property
    def spatial_dims(self) -> int:
        return len(self.img_size)

    def config(self) -> dict[str, Any]:
        """Constructor arguments (JSON-serialisable): ``ViTEncoder(**config())`` rebuilds it."""
        return dict(self._config)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    def no_weight_decay(self) -> set[str]:
        return {"cls_token", "patch_embedding.position_embeddings"}

    def embed_patches(self, images: torch.Tensor) -> torch.Tensor:
        """``(B, C, *S)`` -> patch tokens with position embedding, ``(B, N, hidden)``."""
        self._check_shape(images)
        return self.patch_embedding(images)

    def _check_shape(self, images: torch.Tensor) -> None:
        expected = (self.in_channels, *self.img_size)
        if images.ndim != len(expected) + 1 or tuple(images.shape[1:]) != expected:
            raise ValueError(
                f"expected images of shape (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}"
            )

    def forward_tokens(self, images: torch.Tensor, visible_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Normalised tokens ``(B, 1 + n, hidden)``: CLS first, then the patches.

        With ``visible_ids`` ``(B, n)`` only those patches enter the transformer
        (the MAE encoder never sees hidden patches).
        """
        tokens = self.embed_patches(images)
        if visible_ids is not None:
            index = visible_ids.unsqueeze(-1).expand(-1, -1, tokens.shape[-1])
            tokens = tokens.gather(1, index)
        cls = self.cls_token.expand(tokens.shape[0], -1, -1)
        x = run_blocks(self.blocks, torch.cat([cls, tokens], dim=1), self.grad_checkpointing)
        return self.norm(x)

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        return tokens[:, 0] if self.pooling == "cls" else tokens[:, 1:].mean(dim=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One ``(B, hidden)`` vector per image."""
        return self.pool(self.forward_tokens(images))
