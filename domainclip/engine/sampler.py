"""A ``DistributedSampler`` that can start in the middle of an epoch.

Resuming at the exact batch must not read and discard the batches already
consumed (for CT volumes that is minutes of I/O), so the sampler skips their
indices instead. The permutation is the parent's (seed + epoch), so the order is
identical to the uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterator

from torch.utils.data import DistributedSampler


class ResumableDistributedSampler(DistributedSampler):
    """``DistributedSampler`` plus :meth:`set_start_index` (per-rank sample offset)."""

    start_index: int = 0

    def set_start_index(self, start_index: int) -> None:
        """Skip the first ``start_index`` samples of this rank's share of the current epoch."""
        if not 0 <= start_index <= self.num_samples:
            raise ValueError(f"start_index {start_index} outside [0, {self.num_samples}]")
        self.start_index = start_index

    def __iter__(self) -> Iterator[int]:
        indices = list(super().__iter__())
        return iter(indices[self.start_index :])

    def __len__(self) -> int:
        return self.num_samples - self.start_index
