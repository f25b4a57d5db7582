"""Strict, pickle-free weight transfer.

Stage 2 starts from the stage-1 encoder; a silently skipped tensor would train a
half-random model, so every load here is strict by name and shape and reports
everything that does not match in one :class:`~domainclip.errors.CheckpointError`.
Files are safetensors only.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from domainclip.errors import CheckpointError

_LISTED = 12  # names shown per category before "... and N more"


def _listing(names: list[str]) -> str:
    shown = ", ".join(names[:_LISTED])
    return shown + (f" ... and {len(names) - _LISTED} more" if len(names) > _LISTED else "")


def read_safetensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a safetensors file, on CPU."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: weights file not found")
    try:
        return load_file(path, device="cpu")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"{path}: not a readable safetensors file ({err})") from err


def write_safetensors(
    state: Mapping[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """Write tensors (detached, contiguous, CPU) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state.items()}
    save_file(tensors, path, metadata={"format": "pt", **(metadata or {})})
    return path


def load_state_dict_strict(module: nn.Module, state: Mapping[str, torch.Tensor], source: str) -> None:
    """Copy ``state`` into ``module``; any missing, unexpected or mis-shaped tensor is an error.

    ``source`` names where the tensors came from (a file) for the message.
    """
    expected = module.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{name} (checkpoint {tuple(state[name].shape)} vs model {tuple(expected[name].shape)})"
        for name in set(expected) & set(state)
        if tuple(state[name].shape) != tuple(expected[name].shape)
    )
    if missing or unexpected or mismatched:
        parts = [f"{source}: weights do not match the {type(module).__name__}"]
        if missing:
            parts.append(f"missing {len(missing)}: {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)}: {_listing(unexpected)}")
        if mismatched:
            parts.append(f"shape mismatch {len(mismatched)}: {_listing(mismatched)}")
        raise CheckpointError("\n  ".join(parts))
    module.load_state_dict(dict(state), strict=True)


def save_encoder_weights(encoder: nn.Module, path: str | Path) -> Path:
    """Write the encoder's own tensors (names without prefix) as safetensors."""
    return write_safetensors(encoder.state_dict(), path, {"content": f"{type(encoder).__name__} weights"})


def load_encoder_weights(
    encoder: nn.Module, source: Mapping[str, torch.Tensor] | str | Path, *, prefix: str = ""
) -> None:
    """Load stage-1 weights into ``encoder``, strictly by parameter name.

    ``source`` is a state dict or a safetensors file. With ``prefix`` (e.g.
    ``"encoder."`` for a whole :class:`MaskedAutoencoder` state dict) only names
    under the prefix are used, with the prefix removed; the decoder is ignored.
    """
    where = str(source) if isinstance(source, (str, Path)) else "state dict"
    state = read_safetensors(source) if isinstance(source, (str, Path)) else dict(source)
    if prefix:
        state = {name[len(prefix) :]: t for name, t in state.items() if name.startswith(prefix)}
        if not state:
            raise CheckpointError(f"{where}: no tensors under the prefix {prefix!r}")
    load_state_dict_strict(encoder, state, where)


# MONAI ViT / MaskedAutoEncoderViT name -> ViTEncoder name. Both use the same
# qkv layout (3, heads, head_dim) and pre-norm blocks, so tensors copy unchanged.
_MONAI_BLOCK_RENAMES = {
    "attn.out_proj.": "attn.proj.",
    "mlp.linear1.": "mlp.fc1.",
    "mlp.linear2.": "mlp.fc2.",
}
# Parts of MONAI checkpoints that are not the encoder (MAE decoder, ViT head) or
# that forward never uses (the cross-attention norm built even without cross-attention).
_MONAI_NOT_ENCODER = re.compile(
    r"^(decoder_|mask_tokens|classification_head\.)|^blocks\.\d+\.(norm_cross_attn|cross_attn)\."
)
_MONAI_FINAL_NORM = re.compile(r"^blocks\.(\d+)\.(weight|bias)$")  # the LayerNorm closing MAE's nn.Sequential


def encoder_state_from_monai(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a MONAI ``ViT`` or ``MaskedAutoEncoderViT`` state dict for :class:`ViTEncoder`.

    Names not recognised are passed through unchanged, so that a strict load still
    reports them. Pair with :func:`load_encoder_weights` (a ``ViTEncoder`` built
    with the same sizes and ``qkv_bias`` as the MONAI model).
    """
    renamed: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        if _MONAI_NOT_ENCODER.search(name):
            continue
        final_norm = _MONAI_FINAL_NORM.match(name)
        if final_norm:
            renamed[f"norm.{final_norm.group(2)}"] = tensor
            continue
        new = name
        if name.startswith("blocks."):
            for old_part, new_part in _MONAI_BLOCK_RENAMES.items():
                new = new.replace(old_part, new_part)
        renamed[new] = tensor
    return renamed


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of a module's tensors (names, dtypes, shapes and bytes, in name order): what keys features extracted
    with it, so retrained weights never meet features of the old ones."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        value = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{value.dtype}:{tuple(value.shape)};".encode())
        digest.update(value.reshape(-1).view(torch.uint8).numpy().tobytes() if value.numel() else b"")
    return digest.hexdigest()
