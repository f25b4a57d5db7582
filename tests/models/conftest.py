"""Fixtures for the model tests."""

from __future__ import annotations

import pytest
import torch
from fixtures import one_thread  # noqa: F401 - autouse: one torch thread per test
from model_factories import REPORTS

from domainclip.models.text import TextTower


@pytest.fixture(scope="session")
def scratch_tower() -> TextTower:
    torch.manual_seed(0)
    return TextTower.from_scratch(REPORTS, vocab_size=150, hidden_size=32, depth=1, heads=2, max_length=32).eval()
