"""Zero-shot classification with prompt ensembles, binary (finding / no finding) probabilities, MI-Zero pooling.

* Prompt ensembles (CONCH): every synonym of a class fills every template; the
  L2-normalised text embeddings are averaged and the mean is renormalised.
* Binary zero-shot (CT-CLIP): per finding, a softmax over the image's scaled cosine
  similarity to the positive and to the negative ensemble, i.e.
  ``sigmoid(scale * (cos_pos - cos_neg))``.
* Rest-of-vocabulary negatives: a finding's negative is the mean of every other finding's
  positive ensemble, for text towers trained on texts that rarely negate (captions), where
  "without X." reads as X.
* Report prototypes: per finding, the mean embedding of the training reports that state
  it against the mean of those that do not. The texts the model was aligned on sit where
  its images sit, so a finding whose short prompts point the wrong way (a text tower that
  reads "no X." nearer X's images than "X.") can still be scored from text alone.
* Bags of instances (slides made of patches, MI-Zero): a class's bag logit is the
  mean of its top-k instance logits.
"""

from __future__ import annotations

import string
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F


def fill_template(template: str, term: str) -> str:
    """``template`` with its single ``{...}`` field (``{}`` or ``{finding}``...) replaced by ``term``."""
    fields = [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]
    if len(fields) != 1:
        raise ValueError(f"template {template!r} must contain exactly one {{...}} field, found {len(fields)}")
    return template.format(term) if fields[0] == "" else template.format(**{fields[0]: term})


def class_text_embeddings(
    encode_text: Callable[[list[str]], torch.Tensor],
    classes: Mapping[str, Sequence[str]],
    templates: Sequence[str],
) -> torch.Tensor:
    """(C, D) unit-norm class embeddings, one row per class in ``classes`` order.

    ``classes`` maps a class name to its synonyms (use ``[name]`` for none); every
    synonym x template prompt is encoded once in a single ``encode_text`` call.
    """
    if not classes:
        raise ValueError("classes is empty")
    if not templates:
        raise ValueError("templates is empty")
    prompts: list[str] = []
    owner: list[int] = []
    for c, (name, synonyms) in enumerate(classes.items()):
        if isinstance(synonyms, str) or not synonyms:
            raise ValueError(f"class {name!r}: synonyms must be a non-empty list of strings")
        for term in synonyms:
            for template in templates:
                prompts.append(fill_template(template, term))
                owner.append(c)
    embeddings = F.normalize(torch.as_tensor(encode_text(prompts)).float(), dim=-1)
    if embeddings.shape[0] != len(prompts):
        raise ValueError(f"encode_text returned {embeddings.shape[0]} embeddings for {len(prompts)} prompts")
    index = torch.tensor(owner, device=embeddings.device)
    sums = torch.zeros(len(classes), embeddings.shape[1], device=embeddings.device).index_add(0, index, embeddings)
    return F.normalize(sums, dim=-1)  # the mean's direction: renormalising makes dividing by the count unnecessary


def other_class_negatives(class_emb: torch.Tensor, names: Sequence[str], rows: Sequence[str]) -> torch.Tensor:
    """(len(rows), D) unit-norm negatives: per name in ``rows``, the mean direction of every *other* class of
    ``class_emb`` (one row per class of ``names``, e.g. from :func:`class_text_embeddings`).

    Why: the binary score then asks "X rather than something else the vocabulary names", which needs no negated
    prompt; the mean of unit vectors is renormalised, as for an ensemble.
    """
    emb = F.normalize(torch.as_tensor(class_emb).float(), dim=-1)
    if emb.shape[0] != len(names) or len(names) < 2:
        raise ValueError(f"{emb.shape[0]} class embeddings for {len(names)} names (need one each, at least two)")
    position = {name: k for k, name in enumerate(names)}
    missing = [name for name in rows if name not in position]
    if missing:
        raise ValueError(f"{missing} not among the classes {list(names)}")
    total = emb.sum(0)
    return F.normalize(torch.stack([total - emb[position[name]] for name in rows]), dim=-1)


def _scale(logit_scale: float | torch.Tensor | Callable[[], torch.Tensor]) -> torch.Tensor:
    """The multiplier (already exponentiated, like :class:`~domainclip.models.logit_scale.LogitScale` returns)."""
    if callable(logit_scale):
        logit_scale = logit_scale()
    return torch.as_tensor(logit_scale, dtype=torch.float32).detach().cpu()


def binary_zeroshot_probs(
    image_emb: torch.Tensor,
    pos_emb: torch.Tensor,
    neg_emb: torch.Tensor,
    logit_scale: float | torch.Tensor | Callable[[], torch.Tensor],
) -> torch.Tensor:
    """(N, C) probability of each of C findings: softmax over (positive, negative) prompt similarity.

    ``logit_scale`` is the multiplier (``exp`` of the learned log-scale), a number,
    a 0-dim tensor, or a module such as ``LogitScale`` whose call returns it.
    """
    image = F.normalize(torch.as_tensor(image_emb).float().cpu(), dim=-1)
    pos = F.normalize(torch.as_tensor(pos_emb).float().cpu(), dim=-1)
    neg = F.normalize(torch.as_tensor(neg_emb).float().cpu(), dim=-1)
    if pos.shape != neg.shape or image.shape[-1] != pos.shape[-1]:
        raise ValueError(
            f"shapes do not fit: image {tuple(image.shape)}, positive {tuple(pos.shape)}, negative {tuple(neg.shape)}"
        )
    return torch.sigmoid(_scale(logit_scale) * (image @ pos.T - image @ neg.T))


def report_prototypes(text_emb: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(K, D) unit-norm mean embedding of the reports stating each finding, and of the reports that do not.

    ``text_emb``: (N, D) one embedding per report; ``labels``: (N, K) 1 / 0 per report and finding, NaN where the
    report's label is unknown (left out). A finding without a report on one side gets a row of NaN.
    """
    emb = F.normalize(torch.as_tensor(text_emb).float(), dim=-1)
    labels = torch.as_tensor(labels, dtype=torch.float32)
    if labels.shape[0] != emb.shape[0]:
        raise ValueError(f"{emb.shape[0]} report embeddings but {labels.shape[0]} label rows")

    def side(mask: torch.Tensor) -> torch.Tensor:
        sums = mask.float().T @ emb
        return torch.where(mask.any(0)[:, None], F.normalize(sums, dim=-1), torch.nan)

    return side(labels == 1), side(labels == 0)


def mi_zero_topk(patch_logits: torch.Tensor, k: int) -> torch.Tensor:
    """Bag logits (..., C) from instance logits (..., n_instances, C): mean of each class's top-k.

    ``k`` larger than the bag uses the whole bag (mean pooling).
    """
    logits = torch.as_tensor(patch_logits)
    if logits.ndim < 2 or logits.shape[-2] == 0:
        raise ValueError(f"patch_logits must be (..., n_instances >= 1, n_classes), got {tuple(logits.shape)}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    top = torch.topk(logits, min(k, logits.shape[-2]), dim=-2).values
    return top.mean(dim=-2)


__all__ = ["binary_zeroshot_probs", "class_text_embeddings", "fill_template", "mi_zero_topk"]
