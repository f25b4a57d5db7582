"""The released model directory: everything needed to embed new data, nothing pickled.

::

    config.json              format, domain, image tower type + arguments, text settings, versions
    model.safetensors        every DomainCLIP tensor (image tower, text model, projections, scale)
    preprocess.json          the preprocessing config used in training, reused verbatim at inference
    text/                    tokenizer files + the text model's config.json (architecture only)
    vocabulary.yaml          the findings vocabulary (synonyms, prompt templates) the model was trained with
    zeroshot_fallback.safetensors  optional: findings whose prompts pointed the wrong way on the validation
                             split, with the report prototypes that score them instead (written by evaluation)
    tile_encoder.safetensors optional second encoder (WSI: the tile encoder whose features the slide tower
                             reads), its type, arguments and tiling config in config.json

Loading rebuilds the architecture from the JSON files, dispatching on the recorded tower type through
:mod:`domainclip.registry`, and then fills every tensor strictly from the safetensors files; no network,
no pickles, no remote code.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from domainclip import registry
from domainclip.data.nodata import stack_images
from domainclip.errors import CheckpointError, DataError, RecipeError
from domainclip.models.domain_clip import DomainCLIP
from domainclip.models.text import TextTower
from domainclip.models.weights import load_state_dict_strict, read_safetensors, write_safetensors
from domainclip.protocols import FeatureDomain, ImageTower

FORMAT = "domainclip-model"
FORMAT_VERSION = 2  # 2: the image tower's type is recorded ("image_tower"); 1 held a ViT under "image_encoder"
CONFIG_FILE, WEIGHTS_FILE, PREPROCESS_FILE, TEXT_DIR = "config.json", "model.safetensors", "preprocess.json", "text"
VOCABULARY_FILE = "vocabulary.yaml"
TILE_ENCODER_FILE = "tile_encoder.safetensors"
ZEROSHOT_FALLBACK_FILE = "zeroshot_fallback.safetensors"


def _as_json_dict(value: Any, argument: str) -> dict[str, Any]:
    """Accept a dict or a pydantic model; make sure it survives JSON."""
    if hasattr(value, "model_dump"):
        value = value.model_dump(mode="json")
    if not isinstance(value, dict):
        raise TypeError(f"{argument} must be a dict (or pydantic model), got {type(value).__name__}")
    try:
        return json.loads(json.dumps(value))
    except (TypeError, ValueError) as err:
        raise ValueError(f"{argument} is not JSON-serialisable: {err}") from err


def _versions() -> dict[str, str]:
    versions = {
        "python": platform.python_version(),
        "torch": torch.__version__,
    }  # with its CUDA tag
    for package in ("domainclip", "transformers", "monai", "timm", "tokenizers"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    return versions


def _tower_entry(tower: ImageTower) -> dict[str, Any]:
    return {"type": tower.tower_type, "config": tower.config()}


def save_model_dir(
    model: DomainCLIP,
    path: str | Path,
    *,
    model_config: dict[str, Any],
    preprocess: dict[str, Any],
    domain: str,
    input_shape: tuple[int, Sequence[int]] | None = None,
    tile_encoder: ImageTower | None = None,
    tiling: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    feature_source: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a model directory at ``path`` (created; existing files replaced).

    ``input_shape`` (channels, spatial size) is what ``encode_image`` checks preprocessed images against;
    ``tile_encoder`` and its ``tiling`` config are the second encoder of a two-level domain (WSI);
    ``feature_source`` says what feature files a two-level model without a tile encoder was trained on (another
    tool's), so inference reads such files and refuses raw images.
    """
    path = Path(path)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "domain": domain,
        "embed_dim": model.embed_dim,
        "input_shape": None if input_shape is None else [int(input_shape[0]), [int(s) for s in input_shape[1]]],
        "image_tower": _tower_entry(model.image_encoder),
        "text": {
            "pooling": model.text_tower.pooling,
            "max_length": model.text_tower.max_length,
            "source": model.text_tower.source,
            "dir": TEXT_DIR,
        },
        "model_config": _as_json_dict(model_config, "model_config"),
        "versions": _versions(),
        "extra": _as_json_dict(extra or {}, "extra"),
    }
    if tile_encoder is not None:
        config["tile_encoder"] = {
            **_tower_entry(tile_encoder),
            "weights": TILE_ENCODER_FILE,
            "tiling": _as_json_dict(tiling or {}, "tiling"),
        }
    if feature_source is not None:
        config["feature_source"] = _as_json_dict(feature_source, "feature_source")
    preprocess = _as_json_dict(preprocess, "preprocess")
    path.mkdir(parents=True, exist_ok=True)
    model.text_tower.save(path / TEXT_DIR)
    write_safetensors(model.state_dict(), path / WEIGHTS_FILE, {"domain": domain})
    if tile_encoder is not None:
        write_safetensors(tile_encoder.state_dict(), path / TILE_ENCODER_FILE, {"domain": domain})
    (path / PREPROCESS_FILE).write_text(json.dumps(preprocess, indent=2) + "\n")
    (path / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n")  # last: marks the directory complete
    return path


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{path}: unreadable JSON ({err})") from err
    if not isinstance(value, dict):
        raise CheckpointError(f"{path}: expected a JSON object, got {type(value).__name__}")
    return value


def _require(config: dict[str, Any], key: str, where: Path) -> Any:
    if key not in config:
        raise CheckpointError(f"{where}: missing key {key!r}")
    return config[key]


def _build_from_config(config: dict[str, Any], root: Path) -> DomainCLIP:
    where = root / CONFIG_FILE
    if config.get("format") != FORMAT:
        raise CheckpointError(f"{where}: 'format' is {config.get('format')!r}, expected {FORMAT!r}")
    if not isinstance(config.get("format_version"), int) or config["format_version"] > FORMAT_VERSION:
        raise CheckpointError(
            f"{where}: format_version {config.get('format_version')!r} is not one this domainclip reads"
            f" (up to {FORMAT_VERSION})"
        )
    text = _require(config, "text", where)
    encoder = build_tower(_image_tower_entry(config, where), where, "image_tower")
    try:
        tower = TextTower.from_architecture_dir(
            root / text.get("dir", TEXT_DIR),
            pooling=text.get("pooling", "mean"),
            max_length=int(text.get("max_length", 128)),
            source=text.get("source", ""),
        )
        return DomainCLIP(encoder, tower, int(_require(config, "embed_dim", where)))
    except (TypeError, ValueError, AttributeError, RecipeError) as err:
        raise CheckpointError(f"{where}: 'text' or 'embed_dim' is invalid ({err})") from err


def _image_tower_entry(config: dict[str, Any], where: Path) -> dict[str, Any]:
    if config["format_version"] == 1:  # before the tower registry: always a ViT
        return {"type": "vit", "config": _require(config, "image_encoder", where)}
    return _require(config, "image_tower", where)


def build_tower(entry: Any, where: Path, key: str) -> ImageTower:
    """The tower a config entry ``{"type": ..., "config": {...}}`` describes, with its weights still random."""
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("type"), str)
        or not isinstance(entry.get("config"), dict)
    ):
        raise CheckpointError(f"{where}: {key!r} must be an object with 'type' and 'config'")
    try:
        return registry.tower_class(entry["type"])(**entry["config"])
    except RecipeError as err:
        raise CheckpointError(f"{where}: {key}.type: {err}") from err
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: {key!r} does not describe a {entry['type']!r} tower ({err})") from err


def _load_tile_encoder(config: dict[str, Any], root: Path) -> tuple[ImageTower | None, dict[str, Any]]:
    entry = config.get("tile_encoder")
    if entry is None:
        return None, {}
    where = root / CONFIG_FILE
    tower = build_tower(entry, where, "tile_encoder")
    weights = root / str(entry.get("weights", TILE_ENCODER_FILE))
    if not weights.is_file():
        raise CheckpointError(f"{root}: config.json names a tile encoder but {weights.name} is missing")
    load_state_dict_strict(tower, read_safetensors(weights), str(weights))
    return tower.eval(), dict(entry.get("tiling") or {})


class LoadedModel:
    """A model directory ready to embed: images (tensors or files) and texts."""

    def __init__(
        self,
        model: DomainCLIP,
        *,
        domain: str,
        preprocess_config: dict[str, Any],
        config: dict[str, Any],
        path: Path,
        tile_encoder: ImageTower | None = None,
        tiling: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.domain = domain
        self.preprocess_config = preprocess_config
        self.config = config
        self.path = path
        self.tile_encoder = tile_encoder
        self.tiling = dict(tiling or {})
        self._preprocessor = None

    @property
    def input_shape(self) -> tuple[int, tuple[int, ...]] | None:
        """(channels, spatial size) of the preprocessed images the model takes, when fixed."""
        if self.config.get("format_version") == 1:
            return int(self.config["in_channels"]), tuple(self.config["image_size"])
        shape = self.config.get("input_shape")
        return None if shape is None else (int(shape[0]), tuple(int(s) for s in shape[1]))

    @property
    def saved_prompts(self) -> dict[str, Any]:
        """The zero-shot prompts the run evaluated with (``evaluate.templates`` / ``class_templates``, None when the
        recipe left them to the vocabulary); empty for a model directory written without them."""
        return dict((self.config.get("extra") or {}).get("prompts") or {})

    def finding_prompts(self) -> tuple[dict[str, list[str]], list[tuple[str, str]]]:
        """What zero-shot prompts a finding with: its terms (finding -> the saved vocabulary's zero-shot terms; a
        finding not in it is prompted by its name) and the [positive, negative] template pairs (the run's
        ``evaluate.templates``, else the vocabulary's, else ``("{finding}.", "no {finding}.")``)."""
        from domainclip.reports.vocabulary import Vocabulary

        vocab = Vocabulary.load(self.vocabulary_path) if self.vocabulary_path else None
        terms = {f.name: list(f.zeroshot_terms) for f in vocab.findings} if vocab else {}
        saved = self.saved_prompts.get("templates")
        templates = [tuple(t) for t in saved or (vocab.templates if vocab else [("{finding}.", "no {finding}.")])]
        return terms, templates

    @property
    def vocabulary_path(self) -> Path | None:
        """The findings vocabulary saved with the model, if any."""
        path = self.path / VOCABULARY_FILE
        return path if path.is_file() else None

    @property
    def device(self) -> torch.device:
        return self.model.device

    @property
    def logit_scale(self) -> float:
        """The learned similarity multiplier (``exp`` of the stored log)."""
        return float(self.model.logit_scale().item())

    def to(self, device: torch.device | str) -> LoadedModel:
        self.model.to(device)
        return self

    @property
    def preprocessor(self):
        """The domain's preprocessor rebuilt from ``preprocess.json`` (built on first use; see
        :meth:`preprocessor_for`)."""
        if self._preprocessor is None:
            self._preprocessor = self.preprocessor_for(None)
        return self._preprocessor

    def preprocessor_for(self, cache_dir: Path | None):
        """The preprocessor the model was trained with; with a tile encoder (a two-level domain), the one that
        extracts an image's features through it as the ``extract`` stage did, keeping them under ``cache_dir``
        (default ``~/.cache/domainclip``), where features of the same slides, tiling and encoder are reused."""
        domain = registry.get_domain(self.domain)
        source = self.config.get("feature_source")
        if source is not None and isinstance(domain, FeatureDomain):
            return domain.feature_file_reader(source)
        if self.tile_encoder is None:
            return domain.build_preprocessor(self.preprocess_config)
        if not isinstance(domain, FeatureDomain):
            raise CheckpointError(f"{self.path}: a tile encoder, but domain {self.domain!r} extracts no features")
        return domain.feature_preprocessor(self.preprocess_config, self.tile_encoder, cache_dir)

    def _load_image(self, path: Path) -> torch.Tensor:
        image = torch.as_tensor(self.preprocessor(Path(path))).float()
        shape = self.input_shape
        expected = None if shape is None else (shape[0], *shape[1])
        if expected is not None and tuple(image.shape) != expected:
            raise DataError(f"{path}: preprocessed to shape {tuple(image.shape)}, the model expects {expected}")
        return image

    @torch.no_grad()
    def encode_image(
        self,
        images: torch.Tensor | Sequence[str | Path],
        batch_size: int = 8,
        normalize: bool = True,
    ) -> torch.Tensor:
        """Embeddings ``(N, embed_dim)`` on CPU, float32.

        ``images`` is a ``(N, C, *S)`` tensor already preprocessed (a single
        ``(C, *S)`` image is accepted) or image paths, which go through the
        training preprocessing. NaN (no data) is treated as in training.
        """
        if isinstance(images, torch.Tensor):
            shape = self.input_shape
            if shape is not None and images.ndim == len(shape[1]) + 1:
                images = images.unsqueeze(0)
            chunks = images.split(batch_size)
        else:
            paths = list(images)
            chunks = (
                stack_images([self._load_image(p) for p in paths[i : i + batch_size]])
                for i in range(0, len(paths), batch_size)
            )
        out = [
            self.model.encode_image(chunk.to(self.device).float(), normalize=normalize).float().cpu()
            for chunk in chunks
        ]
        return torch.cat(out) if out else torch.empty(0, self.model.embed_dim)

    @torch.no_grad()
    def encode_text(self, texts: Sequence[str], batch_size: int = 64, normalize: bool = True) -> torch.Tensor:
        """Embeddings ``(N, embed_dim)`` on CPU, float32."""
        if isinstance(texts, str):
            raise TypeError("encode_text expects a list of strings, got a single string")
        texts = list(texts)
        out = [
            self.model.encode_text(texts[i : i + batch_size], normalize=normalize).float().cpu()
            for i in range(0, len(texts), batch_size)
        ]
        return torch.cat(out) if out else torch.empty(0, self.model.embed_dim)


def load_model(path: str | Path, device: torch.device | str = "cpu") -> LoadedModel:
    """Open a model directory written by :func:`save_model_dir` (eval mode, on ``device``)."""
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(f"{root}: model directory not found")
    missing = [name for name in (CONFIG_FILE, WEIGHTS_FILE, PREPROCESS_FILE, TEXT_DIR) if not (root / name).exists()]
    if missing:
        raise CheckpointError(f"{root}: not a complete model directory; missing {', '.join(missing)}")
    config = _read_json(root / CONFIG_FILE)
    preprocess = _read_json(root / PREPROCESS_FILE)
    model = _build_from_config(config, root)
    load_state_dict_strict(model, read_safetensors(root / WEIGHTS_FILE), str(root / WEIGHTS_FILE))
    domain = str(_require(config, "domain", root / CONFIG_FILE))
    tile_encoder, tiling = _load_tile_encoder(config, root)
    return LoadedModel(
        model.to(device),
        domain=domain,
        preprocess_config=preprocess,
        config=config,
        path=root,
        tile_encoder=None if tile_encoder is None else tile_encoder.to(device),
        tiling=tiling,
    )
