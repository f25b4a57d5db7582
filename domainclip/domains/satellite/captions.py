"""Which caption of an image an alignment step trains on: one of its captions, drawn uniformly.

RSICD-style datasets give each image about five captions written by different people; they are all positives of
the image, and of each other. Drawing one per step (rather than joining them) trains the text tower on the
single-sentence form that queries and zero-shot prompts have. With ``caption_targets: caption`` a caption carries
only the attributes it states (the rest unknown, so "a river runs through the forest" is not taken to say there
are no buildings); with ``image`` it stands for every attribute of its image.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from pydantic import Field

from domainclip.config.schema import Strict
from domainclip.records import Record


class CaptionSamplingConfig(Strict):
    caption_targets: Literal["image", "caption"] = Field(
        "caption",
        description="attribute vector of a sampled caption: what the caption states (others unknown), or its "
        "image's whole vector; images always carry the whole vector",
    )


class CaptionSampler:
    """The :class:`~domainclip.protocols.TextSampler` of caption domains (see the module docstring).

    ``caption_values[i]`` is the ``(captions, K)`` array of what each caption of record ``i`` states (NaN:
    unsaid), from the report structurer.
    """

    def __init__(
        self, records: Sequence[Record], config: CaptionSamplingConfig, caption_values: Sequence[np.ndarray]
    ) -> None:
        self.captions = [r.texts for r in records]
        self.values = [torch.from_numpy(np.asarray(v, dtype=np.float32)) for v in caption_values]
        self.carries_findings = config.caption_targets == "caption"

    def __call__(self, i: int) -> tuple[str, torch.Tensor | None]:
        k = int(torch.randint(len(self.captions[i]), ()))
        return self.captions[i][k], self.values[i][k] if self.carries_findings else None
