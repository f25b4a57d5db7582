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
    chunks = [loaded.encode_image(batch["image"]) for batch in track(loader, f"{description}, batches of {batch_size}")]
    return torch.cat(chunks) if chunks else torch.empty(0)


@torch.no_grad()
def embed_texts(loaded, texts: list[str], batch_size: int = 64) -> torch.Tensor:
    chunks = [loaded.encode_text(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
    return torch.cat(chunks) if chunks else torch.empty(0)


@torch.no_grad()
def embed_images_and_tiles(
    loaded, dataset, batch_size: int = 8, description: str = "embedding images and tiles"
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """One pass over a bag tower's images: the slide embeddings (as :func:`embed_images`) and each image's
    ``(n_tiles, embed_dim)`` unit-length tile embeddings, padding dropped
    (:meth:`~domainclip.models.domain_clip.DomainClip.encode_tiles`). One pass, because reading a split's
    bags is what costs on whole-slide features, not the two small heads on top."""
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, collate_fn=collate_images)
    slides: list[torch.Tensor] = []
    tiles: list[torch.Tensor] = []
    for batch in track(loader, f"{description}, batches of {batch_size}"):
        slides.append(loaded.encode_image(batch["image"]))
        embedded = loaded.model.encode_tiles(batch["image"].to(loaded.device)).float().cpu()
        tiles.extend(t[~torch.isnan(t).any(dim=-1)] for t in embedded)
    return (torch.cat(slides) if slides else torch.empty(0)), tiles
