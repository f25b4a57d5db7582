"""What a domain plug-in and an image tower promise the domain-agnostic core.

Bottom floor: protocols and the data types they speak in, nothing else. Every floor above (data, models,
pipeline, the CLI) depends on these and never on a concrete domain; a domain is resolved by name through
:mod:`domainclip.registry`. ``docs/architecture.md`` walks through implementing one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import torch
from pydantic import BaseModel

from domainclip.labels import Findings
from domainclip.records import Record

if TYPE_CHECKING:
    from torch.utils.data import Dataset

# A layout finds a dataset's records: (records, problem lines naming the file/row and what is wrong).
# Problems are reported with every other bad row and skipped under ``data.skip_bad_rows``.
Layout = Callable[[Any], tuple[list[Record], list[str]]]
Augmentation = Callable[[torch.Tensor], torch.Tensor]


class Preprocessor(Protocol):
    """Turns one image file (or folder) into the tensor the encoder sees.

    Its ``config`` is JSON-serialisable and saved in the model directory; the same config rebuilds the same
    preprocessor at inference ("what trains is served"). A pixel without data (a raster's nodata) is NaN in
    every channel: the core fills it before an encoder sees it and keeps it out of the MAE loss
    (:mod:`domainclip.data.nodata`).

    Optional attribute ``caches_itself`` (default False): the preprocessor keeps its own store on disk (WSI's feature
    files, keyed like the core's cache) and the core adds no second copy of its output.
    """

    config: dict[str, Any]

    def __call__(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor: ...

    def checked(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> torch.Tensor:
        """``__call__`` that first rejects (``DomainClipError``) what ``Domain.check_image`` would, decoding the
        file once for both; ``run`` checks and fills the cache in one pass with it."""
        ...


class TextSampler(Protocol):
    """Chooses the text that stands in for a record at one alignment step.

    Returns the text and, when it states less than the record's whole label vector (a sentence cut from a
    report), the (K,) vector it states with NaN for what it leaves unsaid; None means "the record's vector".
    Randomness must come from torch's global RNG, which the engine seeds and checkpoints. ``carries_findings``
    says whether the sampled texts carry their own vectors (then the soft-label loss gets ``text_findings``).
    """

    carries_findings: bool

    def __call__(self, index: int) -> tuple[str, torch.Tensor | None]: ...


@runtime_checkable
class ImageTower(Protocol):
    """Stage 2's image encoder: ``(B, C, *S)`` -> ``(B, hidden_size)``; a bag of N tile features is ``(B, D, N)``.

    ``tower_type`` is its name in :mod:`domainclip.registry`; ``type(tower)(**tower.config())`` rebuilds it
    (the model directory stores both). Optional class attribute ``takes_missing`` (default False): the tower
    reads NaN (no data) itself, e.g. an attention-MIL tower masks the NaN columns that pad a shorter bag; every
    other tower gets NaN filled with 0 before it (:class:`~domainclip.models.domain_clip.DomainCLIP`).
    """

    tower_type: str
    hidden_size: int

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...

    def config(self) -> dict[str, Any]: ...

    def set_grad_checkpointing(self, enable: bool = True) -> None: ...

    def no_weight_decay(self) -> set[str]: ...


@runtime_checkable
class MaskableEncoder(ImageTower, Protocol):
    """An image tower an MAE can pretrain: patch tokens it can run on a visible subset of."""

    in_channels: int
    patch_size: tuple[int, ...]
    grid: tuple[int, ...]

    @property
    def num_patches(self) -> int:
        """Tokens the MAE can hide: ``len(token_groups)`` runs of ``prod(grid)`` patches, group-major."""
        ...

    @property
    def token_groups(self) -> tuple[tuple[int, ...], ...]:
        """The channels each run of tokens embeds (one run over every channel unless channels are grouped)."""
        ...

    def forward_tokens(self, images: torch.Tensor, visible_ids: torch.Tensor | None = None) -> torch.Tensor: ...


class Domain(Protocol):
    """Everything that differs between CT, slides and satellites; the core never asks for a domain's name.

    ``stages`` is the domain's stage list (names of :mod:`domainclip.pipeline.stages` runners, in order).
    ``check_fills_cache``: whether the data check of ``run`` preprocesses each image into the cache in the
    same decode (cheap where decoding is the check, as for CT volumes) or only opens it (a slide).
    """

    name: str
    stages: tuple[str, ...]
    check_fills_cache: bool

    def input_shape(self, preprocess: BaseModel) -> tuple[int, tuple[int, ...]]:
        """(channels, spatial size) of a preprocessed image under ``preprocess``."""
        ...

    def channel_names(self, preprocess: BaseModel) -> list[str] | None:
        """Names of the preprocessed channels (a satellite's bands), which ``model.image.channel_groups`` uses;
        None when channels have no names (CT's one HU channel)."""
        ...

    def fit_preprocess(self, preprocess: BaseModel, records: Sequence[Record]) -> BaseModel:
        """``preprocess`` with what is fitted on the training ``records`` filled in (per-band normalisation
        statistics), before any image is preprocessed; what needs no fitting comes back unchanged."""
        ...

    def build_preprocessor(self, config: BaseModel | Mapping[str, Any]) -> Preprocessor: ...

    def layouts(self) -> dict[str, Layout]: ...

    def write_demo(self, out: Path, n: int, seed: int) -> Path:
        """Write demo data under ``out``; return the manifest path."""
        ...

    def default_vocabulary(self) -> Path: ...

    def discover_images(self, folder: Path) -> list[Path]:
        """Images (files or series folders) under ``folder``, for inference on a plain folder."""
        ...

    def check_image(
        self, path: Path, image_meta: Mapping[str, Any] | None = None, preprocess: Any = None
    ) -> str | None:
        """Why ``path`` is unusable, or None. Used by ``validate-data`` and ``run``; ``preprocess`` (the recipe's
        section, or a model's saved config) says what the image must hold, e.g. the bands a model reads."""
        ...

    def findings(self, recipe: Any, records: Sequence[Record]) -> Findings:
        """Label vectors for soft targets and evaluation: silver from the texts, ground truth from the data."""
        ...

    def text_sampler(self, recipe: Any, records: Sequence[Record], findings: Findings) -> TextSampler: ...

    def augmentation(self, recipe: Any) -> Augmentation | None: ...

    def stage_dataset(self, stage: str, records: Sequence[Record], images: Dataset, recipe: Any) -> Dataset:
        """The dataset stage ``stage`` trains on, given the records and the cached dataset of their preprocessed
        images (in the same order; items carry each record's ``index``) and the recipe."""
        ...


@runtime_checkable
class FeatureDomain(Protocol):
    """An optional hook beside :class:`Domain`: a two-level domain (WSI) whose stage-2 input is a bag of features that
    the stage-1 encoder extracts from many crops (tiles) of one image. Its stage list holds ``extract``.

    Stage 1 trains ``model.tile`` on the crops (``Domain.stage_dataset("mae", ...)``); the ``extract`` stage then
    freezes it inside :meth:`feature_preprocessor`, whose output for one image is its ``(D, N)`` bag (NaN columns
    where a bag is padded), and ``model.image`` (the slide tower) is what alignment trains. The model directory keeps
    the frozen encoder (``tile_encoder``) so inference on raw images extracts exactly as training did.
    """

    def feature_preprocessor(
        self, config: BaseModel | Mapping[str, Any], encoder: ImageTower, cache_dir: Path | None = None
    ) -> Preprocessor:
        """Image file -> ``(D, N)`` features of its crops under ``config`` (the domain's preprocessing section or a
        model's saved one) through the frozen ``encoder``, stored under ``cache_dir`` (``data.cache_dir``); its
        ``config`` includes a digest of the encoder's weights, so a retrained encoder never meets old features.
        The preprocessor also takes a feature file itself (one of :meth:`feature_files`) and reads its bag, after
        checking that the file's features are those of ``encoder``."""
        ...

    def feature_files(self, folder: Path) -> list[Path]:
        """The feature files (one per image, named by the image) in ``folder``: what ``--features`` reads, e.g. the
        output of another feature-extraction tool."""
        ...

    def given_features(self, records: Sequence[Record]) -> dict[str, Any] | None:
        """When every record's image is a feature file already (extracted by another tool), what they hold
        (``{"width": D, ...}``, JSON-able): then there is no tile encoder to train or freeze, and alignment trains
        the slide tower on those files. None when the images are images; a mix of both is an error."""
        ...

    def feature_file_reader(self, source: Mapping[str, Any]) -> Preprocessor:
        """Feature file -> ``(D, N)`` bag, for a model trained on files of ``source`` (:meth:`given_features`)."""
        ...


@runtime_checkable
class ExplainingDomain(Protocol):
    """An optional hook beside :class:`Domain`: a domain that can picture what a trained model looked at in an image
    (WSI: attention and tile-score heatmaps over a slide). ``run`` calls it for a few evaluation images."""

    def explain(
        self, loaded: Any, records: Sequence[Record], out: Path, cache_dir: Path | None, findings: Sequence[str]
    ) -> list[Path]:
        """Write one picture per record into folder ``out`` (``findings``: names whose scores to show, where the
        domain can score parts of an image); return the paths."""
        ...


@runtime_checkable
class PreviewingDomain(Protocol):
    """An optional hook beside :class:`Domain`: a small RGB picture of a record's image for the run report's
    retrieval examples (CT: mid-slices in the recipe's window; satellite: an RGB composite; WSI: the thumbnail).
    A domain without it gets examples listed by id, without pictures."""

    def preview(self, record: Record, recipe: Any) -> np.ndarray | None:
        """``(H, W, 3)`` uint8, its longest side about :data:`~domainclip.data.preview.PREVIEW_SIDE` px; None where
        the record has no picture (a WSI record that is a feature file)."""
        ...


@dataclass(frozen=True)
class Georeference:
    """Where an image lies on the Earth: its CRS (WKT), the six GDAL affine coefficients ``a, b, c, d, e, f`` that
    map a pixel corner ``(col, row)`` to ``(a*col + b*row + c, d*col + e*row + f)`` in that CRS, and its size in
    pixels. Enough for the core to draw the image's footprint without reading pixels again."""

    crs: str
    transform: tuple[float, float, float, float, float, float]
    width: int
    height: int


@runtime_checkable
class GeoreferencedDomain(Protocol):
    """An optional hook beside :class:`Domain`: a domain whose images can sit on a map (satellite rasters).

    Separate from ``Domain`` so that a domain without geography (CT, a toy domain) implements nothing; the core
    asks ``isinstance(domain, GeoreferencedDomain)`` and treats every other domain's images as not georeferenced.
    """

    def image_georeference(self, path: Path, image_meta: Mapping[str, Any] | None = None) -> Georeference | None:
        """The image's georeference, or None when it has none (a plain JPEG / PNG picture)."""
        ...
