"""Recipe sections -> models, with errors that name the recipe key at fault.

Image towers are created by name (``model.image.type``) through :mod:`domainclip.registry`: a tower class
provides ``from_recipe(cfg, in_channels, spatial_size, channel_names)`` for training and ``__init__(**config())``
for loading.
"""

from __future__ import annotations

from collections.abc import Sequence

from domainclip import registry
from domainclip.config.schema import ImageEncoderConfig, MAEStageConfig, ModelConfig
from domainclip.errors import RecipeError
from domainclip.models.domain_clip import DomainCLIP
from domainclip.models.mae import MaskedAutoencoder
from domainclip.models.text import TextTower
from domainclip.protocols import ImageTower, MaskableEncoder


def build_image_encoder(
    cfg: ImageEncoderConfig,
    *,
    in_channels: int,
    img_size: Sequence[int],
    channel_names: Sequence[str] | None = None,
) -> ImageTower:
    """The image tower ``cfg.type`` for images of ``(in_channels, *img_size)`` (the preprocessed shape);
    ``channel_names`` (the domain's band names, when it has them) let a recipe group channels by name."""
    tower = registry.tower_class(cfg.type)
    if cfg.channel_groups is not None and not hasattr(tower, "token_groups"):
        raise RecipeError(f"model.image.channel_groups: the {cfg.type!r} tower has no channel groups; use 'vit-groups'")
    return tower.from_recipe(cfg, in_channels, tuple(img_size), channel_names)


def build_mae(encoder: ImageTower, cfg: ImageEncoderConfig, stage: MAEStageConfig) -> MaskedAutoencoder:
    if not isinstance(encoder, MaskableEncoder):
        raise RecipeError(
            f"model.image.type: the {cfg.type!r} tower has no patch tokens to mask, so it cannot be MAE-pretrained; "
            "set stages.mae.steps=0"
        )
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
        group_masking=stage.group_masking,
    )


def build_domain_clip(
    cfg: ModelConfig,
    *,
    in_channels: int,
    img_size: Sequence[int],
    training_texts: Sequence[str] | None = None,
    image_encoder: ImageTower | None = None,
) -> DomainCLIP:
    """The dual encoder; pass ``image_encoder`` to reuse one that already holds stage-1 weights."""
    encoder = image_encoder or build_image_encoder(cfg.image, in_channels=in_channels, img_size=img_size)
    return DomainCLIP(encoder, TextTower.from_config(cfg.text, training_texts), cfg.embed_dim)
