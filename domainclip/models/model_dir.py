"""The released model directory: everything needed to embed new data, nothing pickled.

::

    config.json         format, domain, image encoder arguments, text settings, versions
    model.safetensors   every DomainCLIP tensor (image encoder, text model, projections, scale)
    preprocess.json     the preprocessing config used in training, reused verbatim at inference
    text/               tokenizer files + the text model's config.json (architecture only)

Loading rebuilds the architecture from the JSON files and then fills every tensor
strictly from ``model.safetensors``; no network, no pickles, no remote code.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

from domainclip.errors import CheckpointError, DataError, RecipeError
from domainclip.models.domain_clip import DomainCLIP
from domainclip.models.text import TextTower
from domainclip.models.vit import ViTEncoder
from domainclip.models.weights import load_state_dict_strict, read_safetensors, write_safetensors

FORMAT = "domainclip-model"
FORMAT_VERSION = 1
CONFIG_FILE, WEIGHTS_FILE, PREPROCESS_FILE, TEXT_DIR = (
    "config.json",
    "model.safetensors",
    "preprocess.json",
    "text",
)


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


def save_model_dir(
    model: DomainCLIP,
    path: str | Path,
    *,
    model_config: dict[str, Any],
    preprocess: dict[str, Any],
    domain: str,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write ``model`` as a model directory at ``path`` (created; existing files replaced)."""
    path = Path(path)
    encoder = model.image_encoder
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "domain": domain,
        "embed_dim": model.embed_dim,
        "image_size": list(encoder.img_size),
        "in_channels": encoder.in_channels,
        "image_encoder": encoder.config(),
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
    preprocess = _as_json_dict(preprocess, "preprocess")
    path.mkdir(parents=True, exist_ok=True)
    model.text_tower.save(path / TEXT_DIR)
    write_safetensors(model.state_dict(), path / WEIGHTS_FILE, {"domain": domain})
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
    try:
        encoder = ViTEncoder(**_require(config, "image_encoder", where))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where}: 'image_encoder' does not describe a ViTEncoder ({err})") from err
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
    ) -> None:
        self.model = model.eval()
        self.domain = domain
        self.preprocess_config = preprocess_config
        self.config = config
        self.path = path
        self._preprocessor = None

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
        """The domain's preprocessor rebuilt from ``preprocess.json`` (built on first use)."""
        if self._preprocessor is None:
            from domainclip.domains import get_domain

            self._preprocessor = get_domain(self.domain).build_preprocessor(self.preprocess_config)
        return self._preprocessor

    def _load_image(self, path: Path) -> torch.Tensor:
        image = torch.as_tensor(self.preprocessor(Path(path))).float()
        expected = (self.model.image_encoder.in_channels, *self.model.image_encoder.img_size)
        if tuple(image.shape) != expected:
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
        training preprocessing.
        """
        if isinstance(images, torch.Tensor):
            if images.ndim == self.model.image_encoder.spatial_dims + 1:
                images = images.unsqueeze(0)
            chunks = images.split(batch_size)
        else:
            paths = list(images)
            chunks = (
                torch.stack([self._load_image(p) for p in paths[i : i + batch_size]])
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
    return LoadedModel(model.to(device), domain=domain, preprocess_config=preprocess, config=config, path=root)
