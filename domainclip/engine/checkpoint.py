"""Atomic, resumable checkpoints of one training stage.

Layout under ``<run>/checkpoints/<stage>/``::

    step-00000100/model.safetensors   weights (safetensors)
    step-00000100/state.pt            optimizer, scheduler, step, sampler position, RNG
    latest.json                       pointer to the newest complete checkpoint

Every file is written to a temporary name, fsynced and renamed over the final
name, so a process killed at any instant leaves either the old or the new file,
never half of one. ``state.pt`` is written after the weights and the pointer
after both, so the pointer only ever names complete checkpoints. ``state.pt``
holds only tensors, numbers, strings, lists and dicts, so it is read with
``torch.load(weights_only=True)``. The newest ``keep`` checkpoints are kept.

Nothing here deletes a file when something goes wrong: errors are raised as
:class:`~domainclip.errors.CheckpointError` naming the file and what to do.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from domainclip.errors import CheckpointError

FORMAT_VERSION = 1
POINTER_NAME = "latest.json"
WEIGHTS_NAME = "model.safetensors"
STATE_NAME = "state.pt"
_STEP_DIR = re.compile(r"^step-(\d{8})$")


@dataclass(frozen=True)
class CheckpointRef:
    """A complete checkpoint on disk."""

    directory: Path
    step: int
    finished: bool

    @property
    def weights_path(self) -> Path:
        return self.directory / WEIGHTS_NAME

    @property
    def state_path(self) -> Path:
        return self.directory / STATE_NAME


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` then fsync and rename ``tmp`` onto ``path`` (same folder)."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        write(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():  # only our own half-written temporary file
            tmp.unlink()
    _fsync_dir(path.parent)


def _unshared(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Contiguous CPU tensors, with tied weights copied (safetensors refuses shared storage)."""
    seen: set[int] = set()
    result = {}
    for name, tensor in weights.items():
        tensor = tensor.detach().to("cpu").contiguous()
        storage = tensor.untyped_storage()
        owns_storage = storage.nbytes() == tensor.numel() * tensor.element_size()
        if storage.data_ptr() in seen or not owns_storage:
            tensor = tensor.clone()
        seen.add(tensor.untyped_storage().data_ptr())
        result[name] = tensor
    return result


class CheckpointStore:
    """The checkpoints of one stage: save, find the latest, load."""

    def __init__(self, directory: Path, keep: int = 2) -> None:
        if keep < 1:
            raise ValueError(f"keep must be >= 1, got {keep}")
        self.directory = Path(directory)
        self.keep = keep

    @property
    def pointer_path(self) -> Path:
        return self.directory / POINTER_NAME

    # ---------------------------------------------------------------- saving
    def save(
        self, step: int, weights: dict[str, torch.Tensor], state: dict[str, Any], *, finished: bool
    ) -> CheckpointRef:
        """Write one checkpoint, point ``latest.json`` at it, prune old ones."""
        ref = CheckpointRef(self.directory / f"step-{step:08d}", step, finished)
        ref.directory.mkdir(parents=True, exist_ok=True)
        tensors = _unshared(weights)
        atomic_write(ref.weights_path, lambda tmp: save_file(tensors, str(tmp), metadata={"format": "pt"}))
        full_state = {**state, "format_version": FORMAT_VERSION, "step": step, "finished": finished}
        atomic_write(ref.state_path, lambda tmp: torch.save(full_state, tmp))
        _fsync_dir(self.directory)
        pointer = {"format_version": FORMAT_VERSION, "step": step, "path": ref.directory.name, "finished": finished}
        atomic_write(self.pointer_path, lambda tmp: tmp.write_text(json.dumps(pointer, indent=1)))
        self._prune(step)
        return ref

    def _prune(self, latest_step: int) -> None:
        """Remove complete checkpoints older than the newest ``keep`` (never newer ones)."""
        steps = sorted(s for s in self._step_dirs() if s <= latest_step)
        for step in steps[: -self.keep]:
            shutil.rmtree(self.directory / f"step-{step:08d}")

    def _step_dirs(self) -> list[int]:
        if not self.directory.is_dir():
            return []
        return [int(m.group(1)) for p in self.directory.iterdir() if p.is_dir() and (m := _STEP_DIR.match(p.name))]

    # ---------------------------------------------------------------- finding
    def latest(self) -> CheckpointRef | None:
        """The checkpoint ``latest.json`` names; None when this stage has none.

        If the named folder was removed (e.g. after a corrupt file, as our error
        message suggests), the newest older folder with a complete ``state.pt`` is used.
        """
        if not self.pointer_path.exists():
            return None
        try:
            pointer = json.loads(self.pointer_path.read_text())
            step, name, finished = int(pointer["step"]), str(pointer["path"]), bool(pointer["finished"])
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise CheckpointError(
                f"checkpoint pointer {self.pointer_path} is unreadable ({error}). "
                f"Delete it to resume from the newest folder left in {self.directory}, "
                "or start the run again without --resume in a new output dir."
            ) from None
        ref = CheckpointRef(self.directory / name, step, finished)
        if ref.directory.is_dir():
            return ref
        older = sorted(
            (s for s in self._step_dirs() if s < step and (self.directory / f"step-{s:08d}" / STATE_NAME).exists()),
            reverse=True,
        )
        if not older:
            raise CheckpointError(
                f"{self.pointer_path} names {ref.directory}, which does not exist, and no older "
                f"checkpoint is left in {self.directory}; start the run again without --resume."
            )
        fallback = self.directory / f"step-{older[0]:08d}"
        return CheckpointRef(fallback, older[0], False)

    # ---------------------------------------------------------------- loading
    def _advice(self, ref: CheckpointRef) -> str:
        older = sorted(s for s in self._step_dirs() if s < ref.step)
        if older:
            return (
                f"To resume from the previous checkpoint (step {older[-1]}) instead, delete the "
                f"folder {ref.directory}; or start again without --resume in a new output dir."
            )
        return "No older checkpoint exists: start the run again without --resume in a new output dir."

    def load_weights(self, ref: CheckpointRef) -> dict[str, torch.Tensor]:
        """The saved weights (CPU tensors)."""
        try:
            return load_file(str(ref.weights_path))
        except Exception as error:  # noqa: BLE001 - SafetensorError, OSError, ... all mean unreadable
            raise CheckpointError(
                f"checkpoint weights {ref.weights_path} are missing or corrupt ({error}). " + self._advice(ref)
            ) from None

    def load_state(self, ref: CheckpointRef) -> dict[str, Any]:
        """The saved training state, read with ``weights_only=True``."""
        try:
            state = torch.load(ref.state_path, map_location="cpu", weights_only=True)
        except Exception as error:  # noqa: BLE001 - EOFError, RuntimeError, UnpicklingError, OSError ...
            raise CheckpointError(
                f"checkpoint state {ref.state_path} is missing or corrupt ({error}). " + self._advice(ref)
            ) from None
        if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
            raise CheckpointError(
                f"checkpoint state {ref.state_path} is not a domainclip checkpoint of format "
                f"{FORMAT_VERSION}. " + self._advice(ref)
            )
        return state
