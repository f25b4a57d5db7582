"""Recipe sections -> models, with errors that name the recipe key at fault."""

from __future__ import annotations

from collections.abc import Sequence

from domainclip.config.schema import ImageEncoderConfig, MAEStageConfig, ModelConfig
from domainclip.errors import RecipeError
from domainclip.models.domain_clip import DomainCLIP
from domainclip.models.mae import MaskedAutoencoder
from domainclip.models.text import TextTower
from domainclip.models.vit import ViTEncoder


def build_image_encoder(cfg: ImageEncoderConfig, *, in_channels: int, img_size: Sequence[int]) -> ViTEncoder:
    """The ViT for images of ``(in_channels, *img_size)`` (the preprocessed size)."""
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
    return ViTEncoder(in_channels, img_size, patch, cfg.hidden_size, cfg.depth, cfg.heads, cfg.mlp_ratio)


def build_mae(encoder: ViTEncoder, cfg: ImageEncoderConfig, stage: MAEStageConfig) -> MaskedAutoencoder:
    if cfg.decoder_hidden_size % cfg.decoder_heads:
        raise RecipeError(
            f"model.image.decoder_hidden_size: {cfg.decoder_hidden_size} is not divisible by "
            f"model.image.decoder_heads {cfg.decoder_heads}"
        )
    return MaskedAutoencoder(
        encoder,
        cfg.decoder_hidden_size,
        cfg.decoder_depth,
        cfg.decoder_heads,
        mask_ratio=stage.mask_ratio,
        norm_pix_loss=stage.norm_pix_loss,
    )


def build_domain_clip(
    cfg: ModelConfig,
    *,
    in_channels: int,
    img_size: Sequence[int],
    training_texts: Sequence[str] | None = None,
    image_encoder: ViTEncoder | None = None,
) -> DomainCLIP:
    """The dual encoder; pass ``image_encoder`` to reuse one that already holds stage-1 weights."""
    encoder = image_encoder or build_image_encoder(cfg.image, in_channels=in_channels, img_size=img_size)
    return DomainCLIP(encoder, TextTower.from_config(cfg.text, training_texts), cfg.embed_dim)
