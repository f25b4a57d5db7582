"""open_clip's ``loss.py`` as a test oracle, loaded without importing the open_clip package.

``import open_clip`` pulls in torchvision and timm (~4 s); its loss module needs only
torch, so it is executed from its file path. Shared by the tests and benchmarks/losses.py.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

_MODULE: ModuleType | None = None


def open_clip_loss_module() -> ModuleType:
    """The ``open_clip.loss`` module (ClipLoss, SigLipLoss, ...), loaded once."""
    global _MODULE
    if _MODULE is None:
        spec = importlib.util.find_spec("open_clip")  # locates the package, runs nothing
        if spec is None or spec.origin is None:
            raise ImportError("open-clip-torch is not installed (pip install open-clip-torch)")
        path = Path(spec.origin).parent / "loss.py"
        loss_spec = importlib.util.spec_from_file_location("open_clip_loss", path)
        module = importlib.util.module_from_spec(loss_spec)
        loss_spec.loader.exec_module(module)
        _MODULE = module
    return _MODULE
