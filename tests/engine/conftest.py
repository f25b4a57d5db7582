"""Engine tests run torch single-threaded: tiny tensors gain nothing from threads, and on a
shared two-core machine OpenMP threads spinning against other processes cost ~100x."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def single_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
