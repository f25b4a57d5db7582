"""The loss configurations run on 2 gloo processes, shared by the worker and the test.

Inputs are the global batch (float64, so the comparisons can be tight); rank r holds
rows ``r * LOCAL_BATCH : (r + 1) * LOCAL_BATCH``. Each case returns the loss and the
gradients of every input on this rank.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from domainclip.losses import ClipLoss, FilipLoss, PrototypeLoss, SigLipLoss, SoftLabelClipLoss

WORLD_SIZE = 2
LOCAL_BATCH = 5
DIM = 6
IMAGE_TOKENS, TEXT_TOKENS = 4, 3
SOFT = {"temperature": 0.3, "soft_weight": 0.6}
CHUNK = 3  # does not divide the batch: exercises ragged tiles

MODES = {  # name: (local_loss, gather_with_grad)
    "default": (False, False),
    "gather-with-grad": (False, True),
    "local-with-grad": (True, True),
    "local": (True, False),
}

CASES = (
    [
        f"{family}/{mode}/{path}"
        for family in ("clip", "soft", "soft-text")
        for mode in MODES
        for path in ("dense", "tiled")
    ]
    + [f"filip/{mode}" for mode in MODES]
    + ["siglip/gather", "siglip/neighbour", "prototype"]
)
ORACLE_CASES = [f"open_clip/{mode}" for mode in MODES] + [
    "open_clip-siglip/gather",
    "open_clip-siglip/shift",
]


def make_inputs() -> dict[str, torch.Tensor]:
    """The global batch: features, findings (with unknown/uncertain/normal), groups, tokens."""
    generator = torch.Generator().manual_seed(0)
    total = WORLD_SIZE * LOCAL_BATCH
    image = F.normalize(torch.randn(total, DIM, generator=generator, dtype=torch.float64), dim=1)
    text = F.normalize(image + torch.randn(total, DIM, generator=generator, dtype=torch.float64), dim=1)
    findings = (torch.rand(total, 4, generator=generator) < 0.4).float()
    findings[1, 2] = 0.5
    findings[3, 0] = float("nan")
    findings[6] = 0.0  # normal studies on both ranks
    findings[0] = 0.0
    groups = torch.arange(total)
    groups[LOCAL_BATCH + 2] = 2  # rank 1's sample 2 shares a report with rank 0's sample 2
    findings[LOCAL_BATCH + 2] = findings[2]
    # what each text states when it is a few sentences of its report: the rest unknown
    stated = torch.rand(total, 4, generator=generator) < 0.5
    text_findings = torch.where(stated, findings, float("nan"))
    image_tokens = torch.randn(total, IMAGE_TOKENS, DIM, generator=generator, dtype=torch.float64)
    text_tokens = torch.randn(total, TEXT_TOKENS, DIM, generator=generator, dtype=torch.float64)
    image_mask = torch.rand(total, IMAGE_TOKENS, generator=generator) < 0.7
    image_mask[:, 0] = True
    text_mask = torch.arange(TEXT_TOKENS)[None] < torch.randint(1, TEXT_TOKENS + 1, (total, 1), generator=generator)
    return {
        "image": image,
        "text": text,
        "scale": torch.tensor(7.5, dtype=torch.float64),
        "findings": findings,
        "text_findings": text_findings,
        "groups": groups,
        "image_tokens": F.normalize(image_tokens, dim=-1),
        "text_tokens": F.normalize(text_tokens, dim=-1),
        "image_mask": image_mask,
        "text_mask": text_mask,
    }


def local_slice(inputs: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    rows = slice(rank * LOCAL_BATCH, (rank + 1) * LOCAL_BATCH)
    return {k: (v if v.ndim == 0 else v[rows]).clone() for k, v in inputs.items()}


def _grads(loss: torch.Tensor, named: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    loss.backward()
    return {
        "loss": loss.detach(),
        **{f"d_{name}": t.grad.detach().clone() for name, t in named.items()},
    }


def run_case(name: str, local: dict[str, torch.Tensor], rank: int, world_size: int, oracle=None):
    """Loss and gradients of case ``name`` on this rank (``rank``/``world_size`` of the group)."""
    family, _, variant = name.partition("/")
    mode = variant.split("/")[0]
    image, text = local["image"].clone().requires_grad_(), local["text"].clone().requires_grad_()
    scale = local["scale"].clone().requires_grad_()
    if family in ("clip", "soft", "soft-text"):
        local_loss, with_grad = MODES[mode]
        options = {
            "local_loss": local_loss,
            "gather_with_grad": with_grad,
            "memory_bounded": variant.endswith("tiled"),
            "chunk_size": CHUNK,
        }
        if family == "clip":  # explicit rank/world size, as open_clip takes them
            loss = ClipLoss(rank=rank, world_size=world_size, **options)(image, text, scale)
        else:  # rank/world size read from torch.distributed
            text_findings = local["text_findings"] if family == "soft-text" else None
            loss = SoftLabelClipLoss(**SOFT, **options)(
                image,
                text,
                scale,
                findings=local["findings"],
                groups=local["groups"],
                text_findings=text_findings,
            )
        return _grads(loss, {"image": image, "text": text, "scale": scale})
    if family == "open_clip":
        local_loss, with_grad = MODES[mode]
        loss = oracle.ClipLoss(local_loss=local_loss, gather_with_grad=with_grad, rank=rank, world_size=world_size)(
            image, text, scale
        )
        return _grads(loss, {"image": image, "text": text, "scale": scale})
    if family == "filip":
        local_loss, with_grad = MODES[mode]
        image = local["image_tokens"].clone().requires_grad_()
        text = local["text_tokens"].clone().requires_grad_()
        loss = FilipLoss(chunk_size=CHUNK, local_loss=local_loss, gather_with_grad=with_grad)(
            image, text, scale, local["image_mask"], local["text_mask"]
        )
        return _grads(loss, {"image": image, "text": text, "scale": scale})
    if family == "siglip":
        log_scale = torch.tensor(math.log(10.0), dtype=torch.float64, requires_grad=True)
        bias = torch.tensor(-10.0, dtype=torch.float64, requires_grad=True)
        loss = SigLipLoss(dist_impl=mode)(image, text, log_scale.exp(), bias)
        return _grads(loss, {"image": image, "text": text, "log_scale": log_scale, "bias": bias})
    if family == "open_clip-siglip":
        log_scale = torch.tensor(math.log(10.0), dtype=torch.float64, requires_grad=True)  # the same values
        bias = torch.tensor(-10.0, dtype=torch.float64, requires_grad=True)
        loss = oracle.SigLipLoss(rank=rank, world_size=world_size, dist_impl=mode)(image, text, log_scale.exp(), bias)
        return _grads(loss, {"image": image, "text": text, "log_scale": log_scale, "bias": bias})
    if family == "prototype":
        torch.manual_seed(0)
        module = PrototypeLoss(dim=DIM, num_prototypes=4).double()
        loss = module(image, text)
        return _grads(loss, {"image": image, "text": text, "prototypes": module.prototypes})
    raise KeyError(name)
