"""The training stages, each a small runner: a model and a loss function handed to the shared engine.

A domain declares its stage list (``Domain.stages``, e.g. ``("mae", "align")``); ``run`` calls the runners
in that order on one :class:`StageContext`, each stage training on the dataset the domain gives it
(``Domain.stage_dataset``). A new stage (WSI's ``extract``) is one more runner in :data:`RUNNERS`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from domainclip.config.schema import Recipe
from domainclip.data.nodata import fill_nodata, split_nodata
from domainclip.engine.trainer import Trainer
from domainclip.errors import RecipeError
from domainclip.labels import Findings
from domainclip.protocols import Augmentation, Domain, ImageTower, TextSampler
from domainclip.records import Record, group_ids

log = logging.getLogger(__name__)


@dataclass
class StageContext:
    """What the stages of one run share; each runner reads it and leaves its result in it."""

    recipe: Recipe
    domain: Domain
    records: list[Record]
    findings: Findings
    images: Dataset  # the cached preprocessed images of every record, in record order
    train_indices: list[int]
    run_dir: Path
    resume: bool
    distributed: bool
    encoder: ImageTower | None = None  # the image tower as the stages so far left it
    model: nn.Module | None = None  # the aligned DomainCLIP, once the align stage ran

    def train_set(self, stage: str) -> Dataset:
        return Subset(self.domain.stage_dataset(stage, self.records, self.images), self.train_indices)


def build_image_encoder(recipe: Recipe, domain: Domain) -> ImageTower:
    from domainclip.models.builders import build_image_encoder as build

    channels, spatial = domain.input_shape(recipe.preprocess)
    names = domain.channel_names(recipe.preprocess)
    return build(recipe.model.image, in_channels=channels, img_size=spatial, channel_names=names)


def run_mae_stage(ctx: StageContext) -> None:
    """Stage 1: masked-autoencoder pretraining of the image encoder."""
    from domainclip.models.builders import build_mae

    recipe = ctx.recipe
    if recipe.stages.mae.steps == 0:
        return
    mae = build_mae(ctx.encoder, recipe.model.image, recipe.stages.mae)

    def loss_fn(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        images, valid = split_nodata(batch["image"])
        loss, _, _ = model(images, valid=valid)
        return loss, {}

    trainer = Trainer(
        model=mae,
        loss_fn=loss_fn,
        dataset=ctx.train_set("mae"),
        stage=recipe.stages.mae,
        train=recipe.train,
        run_dir=ctx.run_dir,
        name="mae",
        num_workers=recipe.data.num_workers,
    )
    ctx.encoder = trainer.fit(resume=ctx.resume).encoder


class AlignCollate:
    """Adds the sampled texts (tokenised), finding vectors and report groups to a batch of images.

    Which text stands in for a record is the domain's :class:`~domainclip.protocols.TextSampler`; images
    always carry their record's whole finding vector, and with ``text_findings`` a text carries what the
    sampler says it states. ``augment`` is the domain's image augmentation (None: none).

    With ``texts_per_image`` k > 1 the sampler draws k texts per image (repeats allowed: a repeated caption is
    the same positive twice) and the batch says which image each text belongs to (``text_owner``): the loss
    meets each image once per text, with findings and groups given per text. That is the many-to-many loss: an
    image's k texts are all its positives, and none is a negative of it (the copies of one image are one
    group; for hard labels, identical copies make ClipLoss on the rows the same loss). Every image keeps k
    texts, so every rank of a distributed step holds the same number of rows.
    """

    def __init__(
        self,
        records: Sequence[Record],
        findings: np.ndarray,
        tokenize: Callable[[list[str]], dict[str, torch.Tensor]],
        sampler: TextSampler,
        text_findings: bool = False,
        augment: Augmentation | None = None,
        texts_per_image: int = 1,
    ) -> None:
        self.findings = torch.from_numpy(np.asarray(findings, dtype=np.float32))
        self.groups = group_ids(records)
        self.tokenize = tokenize
        self.sampler = sampler
        self.text_findings = text_findings
        self.augment = augment
        self.texts_per_image = texts_per_image

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        index = torch.tensor([int(item["index"]) for item in items])
        per_text = index.repeat_interleave(self.texts_per_image)  # the record of each text row
        texts, stated = zip(*(self.sampler(i) for i in per_text.tolist()))
        tokens = self.tokenize(list(texts))
        images = [item["image"] if self.augment is None else self.augment(item["image"]) for item in items]
        batch = {
            "image": fill_nodata(torch.stack(images)),
            "input_ids": tokens["input_ids"],
            "attention_mask": tokens["attention_mask"],
            "findings": self.findings[per_text],
            "groups": self.groups[per_text],
        }
        if self.texts_per_image > 1:
            batch["text_owner"] = torch.arange(len(items)).repeat_interleave(self.texts_per_image)
        if self.text_findings:
            batch["text_findings"] = torch.stack(
                [self.findings[i] if values is None else values for i, values in zip(per_text.tolist(), stated)]
            )
        return batch


def build_align_loss(recipe: Recipe, distributed: bool) -> nn.Module:
    from domainclip.losses import ClipLoss, SoftLabelClipLoss

    cfg = recipe.stages.align
    # local loss + gather with grad: exact on N processes and the only option that scales (open_clip).
    dist_kwargs = {"local_loss": distributed, "gather_with_grad": distributed, "memory_bounded": cfg.memory_bounded}
    if cfg.loss == "soft_label":
        return SoftLabelClipLoss(
            temperature=cfg.soft_label.temperature, soft_weight=cfg.soft_label.soft_weight, **dist_kwargs
        )
    return ClipLoss(**dist_kwargs)


def run_align_stage(ctx: StageContext) -> None:
    """Stage 2: soft-label image-text contrastive alignment into a DomainCLIP (``ctx.model``).

    It starts from a fresh encoder loaded strictly by parameter name from the previous stages' one: a stage-1
    encoder that does not match the stage-2 architecture fails loudly instead of silently training from scratch.
    """
    from domainclip.models.domain_clip import DomainCLIP
    from domainclip.models.text import TextTower
    from domainclip.models.weights import load_encoder_weights

    recipe, cfg = ctx.recipe, ctx.recipe.stages.align
    aligned_encoder = build_image_encoder(recipe, ctx.domain)
    load_encoder_weights(aligned_encoder, ctx.encoder.state_dict())
    training_texts = [text for i in ctx.train_indices for text in ctx.records[i].texts]
    text_tower = TextTower.from_config(recipe.model.text, training_texts=training_texts)
    model = DomainCLIP(aligned_encoder, text_tower, recipe.model.embed_dim)
    ctx.encoder, ctx.model = aligned_encoder, model
    if cfg.steps == 0:
        return
    criterion = build_align_loss(recipe, ctx.distributed)
    soft = cfg.loss == "soft_label"
    sampler = ctx.domain.text_sampler(recipe, ctx.records, ctx.findings)

    def loss_fn(wrapped: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        out = wrapped(batch["image"], batch["input_ids"], batch["attention_mask"])
        image_features = out["image_features"]
        if "text_owner" in batch:  # several texts per image: each text row meets its own image
            image_features = image_features[batch["text_owner"]]
        extra = {}
        if soft:
            extra = {key: batch[key] for key in ("findings", "groups", "text_findings") if key in batch}
        loss = criterion(image_features, out["text_features"], out["logit_scale"], **extra)
        return loss, {"logit_scale": float(out["logit_scale"].detach())}

    param_groups = None
    if cfg.text_lr is not None:
        text_ids = {id(p) for p in model.text_tower.parameters()}
        param_groups = [
            {"params": [p for p in model.parameters() if id(p) not in text_ids]},
            {"params": list(model.text_tower.parameters()), "lr": cfg.text_lr},
        ]
    collate = AlignCollate(
        ctx.records,
        ctx.findings.silver,
        model.text_tower.tokenize,
        sampler,
        text_findings=soft and sampler.carries_findings,
        augment=ctx.domain.augmentation(recipe),
        texts_per_image=cfg.texts_per_image,
    )
    trainer = Trainer(
        model=model,
        loss_fn=loss_fn,
        dataset=ctx.train_set("align"),
        stage=cfg,
        train=recipe.train,
        run_dir=ctx.run_dir,
        name="align",
        collate_fn=collate,
        param_groups=param_groups,
        num_workers=recipe.data.num_workers,
    )
    ctx.model = trainer.fit(resume=ctx.resume)


RUNNERS: dict[str, Callable[[StageContext], None]] = {"mae": run_mae_stage, "align": run_align_stage}


def run_stages(ctx: StageContext) -> nn.Module:
    """Run the domain's stages in order; return the aligned model."""
    for name in ctx.domain.stages:
        if name not in RUNNERS:
            raise RecipeError(f"domain {ctx.recipe.domain!r} declares stage {name!r}; known stages: {sorted(RUNNERS)}")
        RUNNERS[name](ctx)
    if ctx.model is None:
        raise RecipeError(f"domain {ctx.recipe.domain!r}: its stages {list(ctx.domain.stages)} never align a model")
    return ctx.model
