"""Tiny seeded models and report texts shared by the model tests (imported by name: no package)."""

from __future__ import annotations

import torch

from domainclip.models.vit import ViTEncoder

REPORTS = [
    "Small right pleural effusion. No pneumothorax.",
    "Cardiomegaly with a small pericardial effusion.",
    "No focal consolidation. Lungs are clear.",
    "A 6 mm nodule in the right upper lobe.",
    "Emphysema in both upper lobes; bronchiectasis in the lower lobes.",
    "Coronary artery wall calcification. Hiatal hernia.",
    "Lymphadenopathy in the mediastinum; no pleural effusion.",
    "Atelectasis of the left lower lobe with mild opacity.",
]


def tiny_encoder_3d(seed: int = 0, **kwargs) -> ViTEncoder:
    """1-channel 16^3 volumes, 8^3 patches: 8 tokens."""
    torch.manual_seed(seed)
    args = {
        "in_channels": 1,
        "img_size": (16, 16, 16),
        "patch_size": (8, 8, 8),
        "hidden_size": 24,
        "depth": 2,
        "heads": 2,
    }
    args.update(kwargs)
    return ViTEncoder(**args)


def tiny_encoder_2d(seed: int = 0, **kwargs) -> ViTEncoder:
    """12-band 16x16 tiles (satellite-like), 4x4 patches: 16 tokens."""
    torch.manual_seed(seed)
    args = {
        "in_channels": 12,
        "img_size": (16, 16),
        "patch_size": (4, 4),
        "hidden_size": 16,
        "depth": 1,
        "heads": 2,
    }
    args.update(kwargs)
    return ViTEncoder(**args)
