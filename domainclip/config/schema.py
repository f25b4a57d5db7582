"""Typed recipe schema.

A recipe is YAML validated by these pydantic models. Unknown keys are errors
(``extra="forbid"`` everywhere) so that a typo never silently falls back to a
default. The contract keys of ``shared/design.md`` are marked "contract".
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DemoConfig(Strict):
    """Synthetic data made by ``domainclip demo-data`` (layout ``demo``)."""

    n: int = Field(64, ge=4, description="number of studies to generate")
    seed: int = 0
    dir: Path | None = Field(
        None, description="where to write it; default: <cache>/demo/<domain>-v<generator version>-n<n>-s<seed>"
    )


class DataConfig(Strict):
    layout: str = Field("demo", description="contract: how samples are found: demo, manifest, ct-rate, ...")
    root: Path | None = Field(None, description="contract: dataset root for a layout")
    manifest: Path | None = Field(None, description="contract: CSV manifest for layout 'manifest'")
    demo: DemoConfig = DemoConfig()
    vocabulary: Path | None = Field(None, description="findings vocabulary YAML; default: the domain's own")
    findings: list[str] | None = Field(None, description="subset/order of vocabulary findings to use")
    cache_dir: Path | None = Field(None, description="preprocessed-volume cache; default ~/.cache/domainclip")
    skip_bad_rows: bool = Field(
        False, description="skip invalid rows (listed in the run folder) instead of refusing to start"
    )
    num_workers: int = Field(0, ge=0)


class PreprocessConfig(Strict):
    spacing: tuple[float, float, float] | None = Field(None, description="contract: CT target spacing (mm), RAS x,y,z")
    size: tuple[int, int, int] | None = Field(None, description="contract: CT crop/pad size (voxels) x,y,z")
    hu_window: tuple[float, float] = Field((-1000.0, 1000.0), description="HU clip range, then scaled to [0, 1]")
    normalize: tuple[float, float] | None = Field(
        (0.2, 0.25),
        description="(mean, std) subtracted from / divided into the windowed [0, 1] values last, so the encoder "
        "sees roughly zero-mean unit-variance input (null: keep [0, 1]); the default suits torso CT in the "
        "default window",
    )
    orientation: str = "RAS"


class ImageEncoderConfig(Strict):
    patch_size: tuple[int, ...] = (16, 16, 16)
    hidden_size: int = 192
    depth: int = 4
    heads: int = 3
    mlp_ratio: float = 4.0
    decoder_hidden_size: int = 128
    decoder_depth: int = 2
    decoder_heads: int = 4


class TextEncoderConfig(Strict):
    name: str = Field(
        "scratch-bert",
        description="'scratch-bert' (small BERT + WordPiece trained on the training reports), a local HF "
        "directory, or an installed package model",
    )
    hidden_size: int = 128
    depth: int = 2
    heads: int = 2
    vocab_size: int = 2000
    max_length: int = 128
    pooling: Literal["cls", "mean"] = "mean"


class ModelConfig(Strict):
    embed_dim: int = 128
    image: ImageEncoderConfig = ImageEncoderConfig()
    text: TextEncoderConfig = TextEncoderConfig()


class SoftLabelConfig(Strict):
    temperature: float = Field(0.1, gt=0)
    soft_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="weight of the finding-similarity targets; the rest is the identity (0 = plain CLIP)",
    )


class StageConfig(Strict):
    steps: int = Field(0, ge=0, description="contract: optimisation steps (0 skips the stage)")
    batch_size: int = Field(8, ge=1, description="contract: per-process batch size")
    lr: float = Field(1e-4, gt=0)
    weight_decay: float = Field(0.05, ge=0)
    warmup_steps: int = Field(0, ge=0)
    grad_accum: int = Field(1, ge=1)
    clip_grad_norm: float | None = Field(1.0, gt=0)
    checkpoint_every: int = Field(0, ge=0, description="0: only at the end of the stage")
    log_every: int = Field(10, ge=1)


class MAEStageConfig(StageConfig):
    mask_ratio: float = Field(0.75, gt=0, lt=1)
    norm_pix_loss: bool = True


class AlignStageConfig(StageConfig):
    loss: Literal["soft_label", "clip"] = Field(
        "soft_label", description="contract: alignment loss (soft_label: SoftLabelClipLoss; clip: hard-label ClipLoss)"
    )
    soft_label: SoftLabelConfig = SoftLabelConfig()
    text_lr: float | None = Field(None, description="learning rate of the text tower; default lr")
    memory_bounded: bool = Field(False, description="tile the contrastive loss so memory grows linearly in batch size")
    augment: bool = Field(False, description="random left-right flips and small shifts of the images")
    sentence_dropout: float = Field(
        0.5, ge=0, le=1, description="probability of training on a random subset of a report's sentences"
    )
    sentence_targets: Literal["report", "sentences"] = Field(
        "report",
        description="finding vector of a text cut from a report (sentences, statements): the whole "
        "report's, or only what the text states (others unknown); images always carry the "
        "whole report's",
    )
    finding_statements: float = Field(
        0.0,
        ge=0,
        le=1,
        description="probability that a single sampled report sentence is replaced by one of its "
        "short finding statements ('No abdominal aortic aneurysm.'), the form of zero-shot "
        "prompts (needs sentence_dropout > 0)",
    )


class StagesConfig(Strict):
    mae: MAEStageConfig = MAEStageConfig()
    align: AlignStageConfig = AlignStageConfig()


class TrainConfig(Strict):
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on CUDA, fp32 on CPU")
    strategy: Literal["ddp", "fsdp"] = "ddp"
    activation_checkpointing: bool = False
    threads: int | None = Field(None, ge=1, description="torch intra-op threads per process")


class EvaluateConfig(Strict):
    split: str = "test"
    zeroshot: bool = True
    linear_probe: bool = Field(
        True,
        description="logistic-regression probe per finding on frozen image embeddings (train split -> evaluation "
        "split): the image tower's share of zero-shot",
    )
    retrieval: bool = True
    survival: bool = True
    templates: list[tuple[str, str]] | None = Field(
        None,
        description="[positive, negative] zero-shot prompt template pairs ('{finding}' is replaced); default: "
        "the vocabulary's",
    )


class OutputConfig(Strict):
    dir: Path = Field(Path("runs/run"), description="contract: run folder")


class Recipe(Strict):
    domain: Literal["ct", "wsi", "satellite"] = Field(..., description="contract")
    description: str = ""
    data: DataConfig = DataConfig()
    preprocess: PreprocessConfig = PreprocessConfig()
    model: ModelConfig = ModelConfig()
    stages: StagesConfig = StagesConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    output: OutputConfig = OutputConfig()
