"""The training stages, each a small runner: a model and a loss function handed to the shared engine.

A domain declares its stage list (``Domain.stages``, e.g. ``("mae", "align")``); ``run`` calls the runners
in that order on one :class:`StageContext`, each stage training on the dataset the domain gives it
(``Domain.stage_dataset``). A two-level domain (:class:`~domainclip.protocols.FeatureDomain`, WSI) puts
``extract`` between them: stage 1 trains ``model.tile`` on crops, ``extract`` freezes it into the preprocessing
(images become bags of its features) and hands alignment a fresh ``model.image`` tower over those bags.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset, Subset

from domainclip.config.schema import ImageEncoderConfig, Recipe
from domainclip.data.nodata import split_nodata, stack_images
from domainclip.engine.trainer import Trainer
from domainclip.errors import RecipeError
from domainclip.labels import Findings
from domainclip.pipeline.prototypes import WithPrototypes
from domainclip.protocols import Augmentation, Domain, FeatureDomain, ImageTower, TextSampler
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
    tile_encoder: ImageTower | None = None  # a two-level domain's frozen stage-1 encoder, once ``extract`` ran
    # what the tower being trained takes: (channels, spatial size) of an image, or (feature width, ()) of a bag,
    # whose length varies (then the model directory records no fixed input shape)
    tower_input: tuple[int, tuple[int, ...]] | None = None
    # a two-level domain's records that are feature files already (``FeatureDomain.given_features``): what they
    # hold; then there is no tile encoder to pretrain or freeze
    given_features: dict[str, Any] | None = None

    def train_set(self, stage: str) -> Dataset:
        """The train split of the dataset stage ``stage`` trains on (the domain may expand each record into many
        items, e.g. a slide into its tiles; items keep their record's ``index``)."""
        train = [self.records[i] for i in self.train_indices]
        return self.domain.stage_dataset(stage, train, Subset(self.images, self.train_indices), self.recipe)

    @property
    def encoder_config(self) -> ImageEncoderConfig:
        """The recipe section of the tower being trained: ``model.tile`` before a two-level domain's extraction,
        ``model.image`` otherwise."""
        model = self.recipe.model
        return model.tile if model.tile is not None and self.tile_encoder is None else model.image


def build_image_encoder(
    recipe: Recipe,
    domain: Domain,
    cfg: ImageEncoderConfig | None = None,
    tower_input: tuple[int, tuple[int, ...]] | None = None,
) -> ImageTower:
    """The tower ``cfg`` (default: stage 1's, ``model.tile`` or ``model.image``) for ``tower_input`` (default: the
    domain's preprocessed image shape, with its channel names)."""
    from domainclip.models.builders import build_image_encoder as build

    model = recipe.model
    cfg = cfg or model.tile or model.image
    if tower_input is None:
        channels, spatial = domain.input_shape(recipe.preprocess)
        names = domain.channel_names(recipe.preprocess)
    else:
        (channels, spatial), names = tower_input, None
    return build(cfg, in_channels=channels, img_size=spatial, channel_names=names)


def run_mae_stage(ctx: StageContext) -> None:
    """Stage 1: masked-autoencoder pretraining of the image encoder."""
    from domainclip.models.builders import build_mae

    recipe = ctx.recipe
    if ctx.given_features is not None:
        if recipe.stages.mae.steps:
            log.info("stage mae skipped: the images are feature files, there is no tile encoder to pretrain")
        return
    if recipe.stages.mae.steps == 0:
        return
    mae = build_mae(ctx.encoder, ctx.encoder_config, recipe.stages.mae)

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
            "image": stack_images(images),  # NaN (no data) is filled, or masked, by DomainCLIP
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

    It starts from a fresh copy of the tower the previous stages left (its ``config()``), loaded strictly by
    parameter name: weights that do not match the architecture fail loudly instead of training from scratch.
    """
    from domainclip.models.domain_clip import DomainCLIP
    from domainclip.models.text import TextTower
    from domainclip.models.weights import load_encoder_weights

    recipe, cfg = ctx.recipe, ctx.recipe.stages.align
    aligned_encoder = type(ctx.encoder)(**ctx.encoder.config())  # the same architecture, freshly built
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
    prototypes = cfg.prototypes.count > 0
    trained: nn.Module = WithPrototypes(model, cfg.prototypes) if prototypes else model

    def loss_fn(wrapped: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        owner = {"text_owner": batch["text_owner"]} if prototypes and "text_owner" in batch else {}
        out = wrapped(batch["image"], batch["input_ids"], batch["attention_mask"], **owner)
        image_features = out["image_features"]
        if "text_owner" in batch:  # several texts per image: each text row meets its own image
            image_features = image_features[batch["text_owner"]]
        extra = {}
        if soft:
            extra = {key: batch[key] for key in ("findings", "groups", "text_findings") if key in batch}
        loss = criterion(image_features, out["text_features"], out["logit_scale"], **extra)
        logged = {"logit_scale": float(out["logit_scale"].detach())}
        if prototypes:
            logged["prototype_loss"] = float(out["prototype_loss"].detach())
            loss = loss + cfg.prototypes.weight * out["prototype_loss"]
        return loss, logged

    param_groups = None
    if cfg.text_lr is not None:
        text_ids = {id(p) for p in model.text_tower.parameters()}
        param_groups = [
            {"params": [p for p in trained.parameters() if id(p) not in text_ids]},
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
        model=trained,
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
    fitted = trainer.fit(resume=ctx.resume)
    ctx.model = fitted.clip if prototypes else fitted


def run_extract_stage(ctx: StageContext) -> None:
    """A two-level domain's stage between MAE and alignment: freeze the stage-1 encoder into the preprocessing, so
    every record's image becomes the bag of its crops' features (extracted here, image by image, into the domain's
    feature store, which keys them by the preprocessing and a digest of the encoder's weights: a slide whose file
    is complete is never extracted again), and give alignment a fresh ``model.image`` tower over the bags."""
    import torch.distributed as dist

    from domainclip.data.dataset import image_dataset
    from domainclip.progress import track

    if not isinstance(ctx.domain, FeatureDomain):
        raise RecipeError(f"domain {ctx.recipe.domain!r} declares stage 'extract' but extracts no features")
    if ctx.given_features is not None:  # another tool extracted them: read the files as they are
        ctx.images = image_dataset(ctx.records, ctx.domain.feature_file_reader(ctx.given_features), None)
        ctx.tower_input = (int(ctx.given_features["width"]), ())
        ctx.encoder = build_image_encoder(ctx.recipe, ctx.domain, ctx.recipe.model.image, ctx.tower_input)
        return
    ctx.tile_encoder = ctx.encoder.eval()
    for parameter in ctx.tile_encoder.parameters():
        parameter.requires_grad_(False)
    preprocessor = ctx.domain.feature_preprocessor(ctx.recipe.preprocess, ctx.tile_encoder, ctx.recipe.data.cache_dir)
    ctx.images = image_dataset(ctx.records, preprocessor, ctx.recipe.data.cache_dir)
    rank, world = (dist.get_rank(), dist.get_world_size()) if dist.is_initialized() else (0, 1)
    share = range(rank, len(ctx.records), world)  # each rank its share: rank r takes records r, r + world, ...
    started = time.monotonic()
    for index in track(share, "extracting features"):
        ctx.images.load(index)
    _write_extraction_log(ctx.run_dir / "logs" / f"extract.rank{rank}.json", ctx, share, world, started)
    if world > 1:
        dist.barrier()  # every feature file is complete before any rank reads another's
    ctx.tower_input = (ctx.tile_encoder.hidden_size, ())
    ctx.encoder = build_image_encoder(ctx.recipe, ctx.domain, ctx.recipe.model.image, ctx.tower_input)


def _write_extraction_log(path: Path, ctx: StageContext, share: range, world: int, started: float) -> None:
    """Which records this rank extracted (from their slides, or found complete in the store) and how long it took:
    the first file to read when one rank of a multi-GPU extraction is slow or stops."""
    summary = {
        "rank": share.start,
        "world_size": world,
        "records": [ctx.records[i].id for i in share],
        "seconds": round(time.monotonic() - started, 3),
    }
    path.write_text(json.dumps(summary, indent=1) + "\n")


RUNNERS: dict[str, Callable[[StageContext], None]] = {
    "mae": run_mae_stage,
    "extract": run_extract_stage,
    "align": run_align_stage,
}


def run_stages(ctx: StageContext) -> nn.Module:
    """Run the domain's stages in order; return the aligned model."""
    if ctx.recipe.model.tile is not None and "extract" not in ctx.domain.stages:
        raise RecipeError(
            f"model.tile: domain {ctx.recipe.domain!r} has no tile encoder (its stages: {list(ctx.domain.stages)})"
        )
    if isinstance(ctx.domain, FeatureDomain):
        ctx.given_features = ctx.domain.given_features(ctx.records)
    for name in ctx.domain.stages:
        if name not in RUNNERS:
            raise RecipeError(f"domain {ctx.recipe.domain!r} declares stage {name!r}; known stages: {sorted(RUNNERS)}")
        RUNNERS[name](ctx)
    if ctx.model is None:
        raise RecipeError(f"domain {ctx.recipe.domain!r}: its stages {list(ctx.domain.stages)} never align a model")
    return ctx.model
