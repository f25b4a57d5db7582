"""Contrastive losses shared by every domain (CT, pathology, satellite).

All losses take already-normalised features and, where they have one, ``logit_scale``
as a multiplier (open_clip's convention), run in float32 with autocast off, accept
``rank``/``world_size`` (``None``: read from torch.distributed at call time) and state
their multi-process gradient semantics in their module docstrings.

* :class:`ClipLoss` - symmetric InfoNCE, open_clip-compatible, optional memory-bounded mode.
* :class:`SoftLabelClipLoss` - InfoNCE towards finding-similarity soft labels.
* :class:`SigLipLoss` - sigmoid loss with learnable scale and bias.
* :class:`FilipLoss` - token-wise late interaction with padding masks, chunked.
* :class:`PrototypeLoss` - cross-modal swapped Sinkhorn prototype assignments.
"""

from .clip import ClipLoss
from .filip import FilipLoss, token_similarities
from .finding_similarity import FindingSimilarity
from .prototype import PrototypeLoss, sinkhorn_knopp
from .siglip import SigLipLoss
from .soft_label import SoftLabelClipLoss
from .soft_targets import SoftTargets, soft_targets
from .tiled import contrastive_logsumexp

__all__ = [
    "ClipLoss",
    "FilipLoss",
    "FindingSimilarity",
    "PrototypeLoss",
    "SigLipLoss",
    "SoftLabelClipLoss",
    "SoftTargets",
    "contrastive_logsumexp",
    "sinkhorn_knopp",
    "soft_targets",
    "token_similarities",
]
