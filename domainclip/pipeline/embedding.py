"""Batched embedding of records with a loaded model (the same preprocessing as training, via the cache)."""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader

from domainclip.data.nodata import stack_images
from domainclip.progress import track


def collate_images(items: list[dict]) -> dict[str, torch.Tensor]:
    """``{"image", "index"}`` items -> a batch; bags of different lengths are padded (:func:`stack_images`)."""
    return {
        "image": stack_images([item["image"] for item in items]),
        "index": torch.tensor([i["index"] for i in items]),
    }


@torch.no_grad()
def embed_images(loaded, dataset, batch_size: int = 8, description: str = "embedding images") -> torch.Tensor:
    """L2-normalised image embeddings in dataset order."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_images)
    chunks = [loaded.encode_image(batch["image"]) for batch in track(loader, description)]
    return torch.cat(chunks) if chunks else torch.empty(0)


@torch.no_grad()
def embed_texts(loaded, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    chunks = [loaded.encode_text(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
    return torch.cat(chunks) if chunks else torch.empty(0)


@torch.no_grad()
def embed_tiles(loaded, dataset, batch_size: int = 8, description: str = "embedding tiles") -> list[torch.Tensor]:
    """Each image's ``(n_tiles, embed_dim)`` unit-length tile embeddings in dataset order, padding dropped (a bag
    tower's images only: :meth:`~domainclip.models.domain_clip.DomainClip.encode_tiles`)."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_images)
    out: list[torch.Tensor] = []
    for batch in track(loader, description):
        tiles = loaded.model.encode_tiles(batch["image"].to(loaded.device)).float().cpu()
        out.extend(t[~torch.isnan(t).any(dim=-1)] for t in tiles)
    return out
