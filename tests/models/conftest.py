"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
import torch
from model_factories import REPORTS

from domainclip.models.text import TextTower


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run fastest single-threaded, and the test machine is shared."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def scratch_tower() -> TextTower:
    torch.manual_seed(0)
    return TextTower.from_scratch(REPORTS, vocab_size=150, hidden_size=32, depth=1, heads=2, max_length=32).eval()
