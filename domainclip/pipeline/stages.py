"""The two training stages, each a model + a loss function handed to the shared engine."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from domainclip.config.schema import Recipe
from domainclip.data.records import Record
from domainclip.engine.trainer import Trainer
from domainclip.errors import RecipeError

log = logging.getLogger(__name__)
MAX_SHIFT = 4  # voxels, for the alignment stage's random translation


def image_size(recipe: Recipe) -> tuple[int, ...]:
    if recipe.preprocess.size is None:
        raise RecipeError("preprocess.size: required to build the image encoder (e.g. [64, 64, 64])")
    return tuple(recipe.preprocess.size)


def build_image_encoder(recipe: Recipe, in_channels: int) -> nn.Module:
    from domainclip.models.builders import build_image_encoder as build

    return build(recipe.model.image, in_channels=in_channels, img_size=image_size(recipe))


def run_mae_stage(recipe: Recipe, dataset: torch.utils.data.Dataset, encoder: nn.Module, run_dir: Path,
                  resume: bool) -> nn.Module:
    """Stage 1: masked-autoencoder pretraining; returns the pretrained encoder."""
    from domainclip.models.builders import build_mae

    mae = build_mae(encoder, recipe.model.image, recipe.stages.mae)

    def loss_fn(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        loss, _, _ = model(batch["image"])
        return loss, {}

    trainer = Trainer(model=mae, loss_fn=loss_fn, dataset=dataset, stage=recipe.stages.mae, train=recipe.train,
                      run_dir=run_dir, name="mae", num_workers=recipe.data.num_workers)
    return trainer.fit(resume=resume).encoder


def group_ids(records: list[Record]) -> torch.Tensor:
    """Integer ids equal for records that share one report (several reconstructions of one scan)."""
    keys = [r.report_id or f"record:{r.id}" for r in records]
    lookup = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return torch.tensor([lookup[k] for k in keys], dtype=torch.long)


def split_sentences(report: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", report) if s.strip()]


class AlignCollate:
    """Adds tokenised reports, finding vectors and report groups to a batch of images.

    With ``sentence_dropout`` > 0, each report is (with that probability) replaced by one of its sentences or
    by a random non-empty subset of them. Why: zero-shot prompts are single sentences ("no pleural effusion."),
    and a text tower that only ever saw whole reports embeds them poorly. The soft-label targets still come from
    the whole report, which describes the image. With ``augment``, images are flipped left-right and shifted by
    a few voxels: with a few hundred studies, a ViT otherwise memorises them. Randomness comes from torch's RNG,
    which the engine seeds and checkpoints.
    """

    def __init__(self, records: list[Record], findings: np.ndarray, tokenize, sentence_dropout: float = 0.0,
                 augment: bool = False) -> None:
        self.reports = [r.report for r in records]
        self.sentences = [split_sentences(r.report) for r in records]
        self.findings = torch.from_numpy(np.asarray(findings, dtype=np.float32))
        self.groups = group_ids(records)
        self.tokenize = tokenize
        self.sentence_dropout = sentence_dropout
        self.augment = augment

    def _text(self, i: int) -> str:
        sentences = self.sentences[i]
        if self.sentence_dropout <= 0 or len(sentences) < 2 or torch.rand(()) >= self.sentence_dropout:
            return self.reports[i]
        one = int(torch.randint(len(sentences), ()))
        if torch.rand(()) < 0.5:
            return sentences[one]
        keep = torch.rand(len(sentences)) < 0.5
        keep[one] = True
        return " ".join(s for s, k in zip(sentences, keep.tolist()) if k)

    def _image(self, image: torch.Tensor) -> torch.Tensor:
        if not self.augment:
            return image
        if torch.rand(()) < 0.5:
            image = image.flip(1)  # first spatial axis: left-right in RAS
        shifts = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (image.ndim - 1,)).tolist()
        return image.roll(shifts, dims=tuple(range(1, image.ndim)))

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        index = torch.tensor([int(item["index"]) for item in items])
        tokens = self.tokenize([self._text(i) for i in index.tolist()])
        return {
            "image": torch.stack([self._image(item["image"]) for item in items]),
            "input_ids": tokens["input_ids"],
            "attention_mask": tokens["attention_mask"],
            "findings": self.findings[index],
            "groups": self.groups[index],
        }


def build_align_loss(recipe: Recipe, distributed: bool) -> nn.Module:
    from domainclip.losses import ClipLoss, SoftLabelClipLoss

    cfg = recipe.stages.align
    # local loss + gather with grad: exact on N processes and the only option that scales (open_clip).
    dist_kwargs = {"local_loss": distributed, "gather_with_grad": distributed, "memory_bounded": cfg.memory_bounded}
    if cfg.loss == "soft_label":
        return SoftLabelClipLoss(temperature=cfg.soft_label.temperature,
                                 soft_weight=cfg.soft_label.soft_weight, **dist_kwargs)
    return ClipLoss(**dist_kwargs)


def run_align_stage(recipe: Recipe, dataset: torch.utils.data.Dataset, model: nn.Module, records: list[Record],
                    findings: np.ndarray, run_dir: Path, resume: bool, distributed: bool) -> nn.Module:
    """Stage 2: soft-label image-report contrastive alignment; returns the trained DomainCLIP."""
    criterion = build_align_loss(recipe, distributed)
    soft = recipe.stages.align.loss == "soft_label"

    def loss_fn(wrapped: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        out = wrapped(batch["image"], batch["input_ids"], batch["attention_mask"])
        extra = {"findings": batch["findings"], "groups": batch["groups"]} if soft else {}
        loss = criterion(out["image_features"], out["text_features"], out["logit_scale"], **extra)
        return loss, {"logit_scale": float(out["logit_scale"].detach())}

    param_groups = None
    if recipe.stages.align.text_lr is not None:
        text_ids = {id(p) for p in model.text_tower.parameters()}
        param_groups = [
            {"params": [p for p in model.parameters() if id(p) not in text_ids]},
            {"params": list(model.text_tower.parameters()), "lr": recipe.stages.align.text_lr},
        ]
    trainer = Trainer(model=model, loss_fn=loss_fn, dataset=dataset, stage=recipe.stages.align, train=recipe.train,
                      run_dir=run_dir, name="align",
                      collate_fn=AlignCollate(records, findings, model.text_tower.tokenize,
                                             recipe.stages.align.sentence_dropout, recipe.stages.align.augment),
                      param_groups=param_groups, num_workers=recipe.data.num_workers)
    return trainer.fit(resume=resume)
