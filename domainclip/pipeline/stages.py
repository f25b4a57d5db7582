"""The two training stages, each a model + a loss function handed to the shared engine."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

from domainclip.config.schema import Recipe
from domainclip.data.records import Record
from domainclip.engine.trainer import Trainer
from domainclip.errors import RecipeError

log = logging.getLogger(__name__)
MAX_SHIFT = 4  # voxels, for the alignment stage's random translation
T = TypeVar("T")


def image_size(recipe: Recipe) -> tuple[int, ...]:
    if recipe.preprocess.size is None:
        raise RecipeError("preprocess.size: required to build the image encoder (e.g. [64, 64, 64])")
    return tuple(recipe.preprocess.size)


def build_image_encoder(recipe: Recipe, in_channels: int) -> nn.Module:
    from domainclip.models.builders import build_image_encoder as build

    return build(recipe.model.image, in_channels=in_channels, img_size=image_size(recipe))


def run_mae_stage(
    recipe: Recipe, dataset: torch.utils.data.Dataset, encoder: nn.Module, run_dir: Path, resume: bool
) -> nn.Module:
    """Stage 1: masked-autoencoder pretraining; returns the pretrained encoder."""
    from domainclip.models.builders import build_mae

    mae = build_mae(encoder, recipe.model.image, recipe.stages.mae)

    def loss_fn(model: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        loss, _, _ = model(batch["image"])
        return loss, {}

    trainer = Trainer(
        model=mae,
        loss_fn=loss_fn,
        dataset=dataset,
        stage=recipe.stages.mae,
        train=recipe.train,
        run_dir=run_dir,
        name="mae",
        num_workers=recipe.data.num_workers,
    )
    return trainer.fit(resume=resume).encoder


def group_ids(records: list[Record]) -> torch.Tensor:
    """Integer ids equal for records that share one report (several reconstructions of one scan)."""
    keys = [r.report_id or f"record:{r.id}" for r in records]
    lookup = {k: i for i, k in enumerate(dict.fromkeys(keys))}
    return torch.tensor([lookup[k] for k in keys], dtype=torch.long)


def split_sentences(report: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", report) if s.strip()]


StatedText = tuple[str, np.ndarray]  # a short statement of findings and the (K,) values it states (NaN: unsaid)


def sentence_statements(recipe: Recipe, records: list[Record]) -> list[list[list[StatedText]]]:
    """Per record and sentence (as :func:`split_sentences` cuts it), the finding statements in it
    (:meth:`ReportStructurer.statements`), with values in the recipe's finding columns."""
    from domainclip.pipeline.data import recipe_vocabulary
    from domainclip.reports import ReportStructurer

    vocab, keep = recipe_vocabulary(recipe)
    structurer = ReportStructurer(vocab)
    column = {vocabulary_index: k for k, vocabulary_index in enumerate(keep)}

    def read(record: Record) -> list[list[StatedText]]:
        per_sentence = []
        for sentence in split_sentences(record.report):
            statements = []
            for statement in structurer.statements(sentence):
                values = np.full(len(keep), np.nan, dtype=np.float32)
                for index, value in statement.values.items():
                    if index in column:
                        values[column[index]] = value
                if not np.isnan(values).all():
                    statements.append((statement.text, values))
            per_sentence.append(statements)
        return per_sentence

    return _once_per_report(records, read)


def sentence_finding_values(statements: list[list[StatedText]], num_findings: int) -> np.ndarray:
    """(sentences, K) values each sentence states alone (NaN: unmentioned), from its statements: per finding
    the strongest (present 1 > uncertain > negated 0), as the report structurer decides a report's value."""
    values = np.full((len(statements), num_findings), np.nan, dtype=np.float32)
    for k, sentence in enumerate(statements):
        for _, stated in sentence:
            values[k] = np.fmax(values[k], stated)
    return values


def _once_per_report(records: list[Record], read: Callable[[Record], T]) -> list[T]:
    """``read(record)`` for every record, computed once per distinct report (reconstructions of one scan
    share their report)."""
    by_report: dict[str, T] = {}
    for record in records:
        if record.report not in by_report:
            by_report[record.report] = read(record)
    return [by_report[record.report] for record in records]


class AlignCollate:
    """Adds tokenised reports, finding vectors and report groups to a batch of images.

    With ``sentence_dropout`` > 0, each report is (with that probability) replaced by one of its sentences or
    by a random non-empty subset of them. Why: zero-shot prompts are single sentences ("no pleural effusion."),
    and a text tower that only ever saw whole reports embeds them poorly. Given ``sentence_findings`` (per
    report, the (sentences, K) values each sentence states alone, NaN where it says nothing), the sampled
    sentence (and the anchor of a subset) is one that states a finding: "The portal veins are patent." teaches
    the text tower nothing about findings. Images always carry their whole report's finding vector; with
    ``sentence_targets`` a text carries only what its kept sentences state (``text_findings``, the rest
    unknown): "No pleural effusion." is then a positive of every image without an effusion and of none with
    one, instead of standing for the whole report it was cut from. Given ``statements`` (per report and
    sentence, its short finding statements), a single sampled sentence is replaced by one of its statements
    with probability ``statement_rate`` ("Infrarenal abdominal aortic aneurysm measuring 5.6 cm" ->
    "Abdominal aortic aneurysm."): zero-shot prompts are bare statements, which whole sentences never are
    (see :meth:`~domainclip.reports.ReportStructurer.statements`). With ``augment``, images
    are flipped left-right and shifted by a few voxels: with a few hundred studies, a ViT otherwise memorises
    them. Randomness comes from torch's RNG, which the engine seeds and checkpoints.
    """

    def __init__(
        self,
        records: list[Record],
        findings: np.ndarray,
        tokenize,
        sentence_dropout: float = 0.0,
        augment: bool = False,
        sentence_findings: list[np.ndarray] | None = None,
        sentence_targets: bool = False,
        statements: list[list[list[StatedText]]] | None = None,
        statement_rate: float = 0.0,
    ) -> None:
        self.reports = [r.report for r in records]
        self.sentences = [split_sentences(r.report) for r in records]
        self.findings = torch.from_numpy(np.asarray(findings, dtype=np.float32))
        self.sentence_findings = sentence_findings
        self.sentence_targets = sentence_targets and sentence_findings is not None
        # per report, the sentences that state at least one finding: a sampled subset is anchored on one of them
        self.informative = [np.flatnonzero(~np.isnan(v).all(axis=1)) for v in sentence_findings or []]
        self.groups = group_ids(records)
        self.tokenize = tokenize
        self.sentence_dropout = sentence_dropout
        self.augment = augment
        self.statements = statements
        self.statement_rate = statement_rate if statements is not None else 0.0

    def _kept_sentences(self, i: int) -> list[int] | None:
        """Indices of the sentences that stand in for report ``i``, or None for the whole report."""
        n = len(self.sentences[i])
        if self.sentence_dropout <= 0 or n < 2 or torch.rand(()) >= self.sentence_dropout:
            return None
        informative = self.informative[i] if self.informative else ()
        if len(informative):
            one = int(informative[int(torch.randint(len(informative), ()))])
        else:
            one = int(torch.randint(n, ()))
        if torch.rand(()) < 0.5:
            return [one]
        keep = torch.rand(n) < 0.5
        keep[one] = True
        return [k for k in range(n) if keep[k]]

    def _text_and_findings(self, i: int) -> tuple[str, torch.Tensor]:
        """The text standing in for report ``i`` and the finding vector it states."""
        kept = self._kept_sentences(i)
        if kept is None:
            return self.reports[i], self.findings[i]
        choices = self.statements[i][kept[0]] if self.statement_rate > 0 and len(kept) == 1 else None
        if choices and torch.rand(()) < self.statement_rate:
            text, values = choices[int(torch.randint(len(choices), ()))]
            return text, torch.from_numpy(values) if self.sentence_targets else self.findings[i]
        text = " ".join(self.sentences[i][k] for k in kept)
        if not self.sentence_targets:
            return text, self.findings[i]
        stated = self.sentence_findings[i][kept]
        mentioned = ~np.isnan(stated).all(axis=0)
        values = np.full(stated.shape[1], np.nan, dtype=np.float32)
        values[mentioned] = np.nanmax(stated[:, mentioned], axis=0)  # strongest statement per finding
        return text, torch.from_numpy(values)

    def _image(self, image: torch.Tensor) -> torch.Tensor:
        if not self.augment:
            return image
        if torch.rand(()) < 0.5:
            image = image.flip(1)  # first spatial axis: left-right in RAS
        shifts = torch.randint(-MAX_SHIFT, MAX_SHIFT + 1, (image.ndim - 1,)).tolist()
        return image.roll(shifts, dims=tuple(range(1, image.ndim)))

    def __call__(self, items: list[dict[str, Any]]) -> dict[str, Any]:
        index = torch.tensor([int(item["index"]) for item in items])
        texts, text_findings = zip(*(self._text_and_findings(i) for i in index.tolist()))
        tokens = self.tokenize(list(texts))
        batch = {
            "image": torch.stack([self._image(item["image"]) for item in items]),
            "input_ids": tokens["input_ids"],
            "attention_mask": tokens["attention_mask"],
            "findings": self.findings[index],
            "groups": self.groups[index],
        }
        if self.sentence_targets:
            batch["text_findings"] = torch.stack(text_findings)
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


def run_align_stage(
    recipe: Recipe,
    dataset: torch.utils.data.Dataset,
    model: nn.Module,
    records: list[Record],
    findings: np.ndarray,
    run_dir: Path,
    resume: bool,
    distributed: bool,
) -> nn.Module:
    """Stage 2: soft-label image-report contrastive alignment; returns the trained DomainCLIP."""
    cfg = recipe.stages.align
    criterion = build_align_loss(recipe, distributed)
    soft = cfg.loss == "soft_label"
    sentence_findings = statements = None
    if cfg.sentence_dropout > 0:
        statements = sentence_statements(recipe, records)  # read once: the per-sentence values derive from them
        sentence_findings = [sentence_finding_values(per_sentence, findings.shape[1]) for per_sentence in statements]
        if cfg.finding_statements == 0:
            statements = None

    def loss_fn(wrapped: nn.Module, batch: dict[str, Any]) -> tuple[torch.Tensor, dict[str, float]]:
        out = wrapped(batch["image"], batch["input_ids"], batch["attention_mask"])
        extra = {}
        if soft:
            extra = {key: batch[key] for key in ("findings", "groups", "text_findings") if key in batch}
        loss = criterion(out["image_features"], out["text_features"], out["logit_scale"], **extra)
        return loss, {"logit_scale": float(out["logit_scale"].detach())}

    param_groups = None
    if recipe.stages.align.text_lr is not None:
        text_ids = {id(p) for p in model.text_tower.parameters()}
        param_groups = [
            {"params": [p for p in model.parameters() if id(p) not in text_ids]},
            {"params": list(model.text_tower.parameters()), "lr": recipe.stages.align.text_lr},
        ]
    trainer = Trainer(
        model=model,
        loss_fn=loss_fn,
        dataset=dataset,
        stage=recipe.stages.align,
        train=recipe.train,
        run_dir=run_dir,
        name="align",
        collate_fn=AlignCollate(
            records,
            findings,
            model.text_tower.tokenize,
            cfg.sentence_dropout,
            cfg.augment,
            sentence_findings,
            sentence_targets=soft and cfg.sentence_targets == "sentences",
            statements=statements,
            statement_rate=cfg.finding_statements,
        ),
        param_groups=param_groups,
        num_workers=recipe.data.num_workers,
    )
    return trainer.fit(resume=resume)
