"""Fixtures for the loss tests."""

from __future__ import annotations

import pytest
import torch
from open_clip_oracle import open_clip_loss_module


@pytest.fixture(autouse=True)
def single_thread():
    """One intra-op thread: on a shared, oversubscribed CPU the OpenMP barriers of
    tiny ops otherwise dominate (50x slower tiled losses)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def open_clip_loss():
    """open_clip's loss module (ClipLoss, SigLipLoss), the reference implementation."""
    return open_clip_loss_module()
