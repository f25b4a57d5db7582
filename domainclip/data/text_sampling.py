"""The default text sampler: one of a record's texts, uniformly (several captions per image)."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from domainclip.records import Record


class RandomTextSampler:
    """A :class:`~domainclip.protocols.TextSampler` drawing one of each record's texts per step.

    Why one per step and not all: every caption of an image is a positive of it, and the contrastive batch
    should hold one text per image so that a batch of B images is a B x B problem; over the epochs every
    caption is seen. A record with one text never draws from the RNG.
    """

    carries_findings = False

    def __init__(self, records: Sequence[Record]) -> None:
        self.texts = [r.texts for r in records]

    def __call__(self, index: int) -> tuple[str, torch.Tensor | None]:
        texts = self.texts[index]
        if len(texts) == 1:
            return texts[0], None
        return texts[int(torch.randint(len(texts), ()))], None
