"""Input checks and the compute precision shared by all losses.

Bad inputs raise ``ValueError`` naming the argument and the offending shape or value:
a wrong shape here is a bug in the calling pipeline, and a NaN feature is better
caught at the loss than discovered as a NaN weight many steps later.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


def compute_dtype(*tensors: torch.Tensor) -> torch.dtype:
    """float32, or float64 if any input is float64.

    Half-precision logits lose the ranking information a softmax over hundreds of
    candidates needs (bf16 keeps ~3 significant digits of a logit near 100), so the
    O(B * D) cast up is always worth it.
    """
    dtype = torch.float32
    for tensor in tensors:
        dtype = torch.promote_types(dtype, tensor.dtype)
    return dtype


@contextlib.contextmanager
def full_precision(device: torch.device) -> Iterator[None]:
    """Disable autocast, which would otherwise run the logit matmuls in half precision."""
    with torch.autocast(device_type=device.type, enabled=False):
        yield


def _shape(tensor: torch.Tensor) -> tuple[int, ...]:
    return tuple(tensor.shape)


def check_features(image_features: torch.Tensor, text_features: torch.Tensor) -> None:
    """Both (B, D) floating tensors of equal shape."""
    for name, tensor in (("image_features", image_features), ("text_features", text_features)):
        if tensor.ndim != 2:
            raise ValueError(f"{name} must be 2-D (batch, dim), got shape {_shape(tensor)}")
        if not tensor.is_floating_point():
            raise ValueError(f"{name} must be a floating tensor, got dtype {tensor.dtype}")
    if image_features.shape[0] != text_features.shape[0]:
        raise ValueError(
            f"image_features and text_features must have the same batch size, got "
            f"image_features {_shape(image_features)} and text_features {_shape(text_features)}"
        )
    if image_features.shape[1] != text_features.shape[1]:
        raise ValueError(
            f"image_features and text_features must have the same width, got "
            f"image_features {_shape(image_features)} and text_features {_shape(text_features)}"
        )
    if image_features.shape[0] == 0:
        raise ValueError("image_features and text_features are empty (batch size 0)")


def check_finite(**tensors: torch.Tensor | float) -> None:
    """Raise naming the first non-finite argument; one device sync for all of them."""
    as_tensors = {name: torch.as_tensor(value) for name, value in tensors.items()}
    device = next(iter(as_tensors.values())).device
    # A sum is finite iff every entry is (barring overflow, which the exact check below
    # clears): one cheap reduction per tensor instead of an elementwise mask.
    sums = torch.stack([t.detach().sum(dtype=torch.float64).to(device) for t in as_tensors.values()])
    if bool(torch.isfinite(sums).all()):
        return
    for name, tensor in as_tensors.items():
        bad = ~torch.isfinite(tensor.detach())
        if bad.any():
            first = tuple(int(i) for i in bad.nonzero()[0]) if tensor.ndim else ()
            raise ValueError(
                f"{name} contains non-finite values: {int(bad.sum())} of {tensor.numel()} entries, "
                f"first at index {first} = {tensor.detach()[first].item()}"
            )
    # only an overflowing sum of finite values gets here: nothing to report


def check_scale(name: str, value: torch.Tensor | float) -> None:
    """A logit scale/bias is a scalar (open_clip passes a 0-dim tensor)."""
    if isinstance(value, torch.Tensor) and value.numel() != 1:
        raise ValueError(f"{name} must be a scalar, got shape {_shape(value)}")


def as_scalar(value: torch.Tensor | float, like: torch.Tensor) -> torch.Tensor:
    """A 0-dim tensor on ``like``'s device and dtype, keeping autograd history."""
    if isinstance(value, torch.Tensor):
        return value.reshape(()).to(device=like.device, dtype=like.dtype)
    return torch.tensor(float(value), device=like.device, dtype=like.dtype)


def check_findings(findings: torch.Tensor, batch_size: int, num_findings: int | None) -> None:
    """(B, K) floats in [0, 1] or NaN (unknown)."""
    expected = f"({batch_size}, {num_findings if num_findings is not None else 'K'})"
    if findings.ndim != 2 or findings.shape[0] != batch_size:
        raise ValueError(f"findings must have shape {expected} (one finding vector per sample), got {_shape(findings)}")
    if num_findings is not None and findings.shape[1] != num_findings:
        raise ValueError(f"findings must have shape {expected} ({num_findings} findings), got {_shape(findings)}")
    if not findings.is_floating_point():
        raise ValueError(f"findings must be a floating tensor (NaN marks unknown), got dtype {findings.dtype}")
    bad = (findings < 0) | (findings > 1)  # False for NaN (unknown)
    if bad.any():
        row, col = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            "findings must be in [0, 1] (absent 0, present 1, uncertain in between) "
            "or NaN (unknown); "
            f"findings[{row}, {col}] = {findings[row, col].item()}"
        )


def check_groups(groups: torch.Tensor, batch_size: int) -> None:
    """(B,) integer ids; equal ids mark samples that share a report."""
    if groups.ndim != 1 or groups.shape[0] != batch_size:
        raise ValueError(f"groups must have shape ({batch_size},) (one id per sample), got {_shape(groups)}")
    if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
        raise ValueError(f"groups must be an integer tensor, got dtype {groups.dtype}")
