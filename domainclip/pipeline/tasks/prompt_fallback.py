"""Zero-shot findings whose prompts point the wrong way: found on the validation split, scored from reports instead.

A prompt pair ("X." / "no X.") can rank the studies backwards: a text tower that reads "no X." closer to X's
images than "X.". The check scores the validation split against the silver labels of its own reports, so it needs
no ground truth and sees no test data. For a finding it flags, the fallback is the pair of *report prototypes*
(:func:`~domainclip.heads.zeroshot.report_prototypes`): the mean embedding of the training reports that state the
finding against those that do not. Those are texts the model was aligned on, so they sit where its images sit. It
is kept only where it scores the validation split better than the prompts did; the model directory stores it
(``zeroshot_fallback.safetensors``) so that ``domainclip zeroshot`` scores the finding the same way.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from domainclip.errors import CheckpointError
from domainclip.labels import Findings
from domainclip.records import Record


@dataclass(frozen=True)
class PromptFallback:
    """Per finding in ``names``: the positive / negative text embeddings (rows of ``positive`` / ``negative``)
    that replace its prompt ensembles."""

    names: list[str]
    positive: torch.Tensor
    negative: torch.Tensor

    def apply(self, names: Sequence[str], pos: torch.Tensor, neg: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``pos`` / ``neg`` (one row per finding of ``names``) with the rows of this fallback's findings replaced."""
        pos, neg = pos.clone(), neg.clone()
        rows = {name: k for k, name in enumerate(names)}
        for row, name in enumerate(self.names):
            if name in rows:
                pos[rows[name]], neg[rows[name]] = self.positive[row], self.negative[row]
        return pos, neg

    def save(self, path: Path) -> None:
        """Write ``path`` (safetensors); with no finding to replace, remove a stale file instead."""
        from safetensors.torch import save_file

        if not self.names:
            path.unlink(missing_ok=True)
            return
        tensors = {"positive": self.positive.contiguous(), "negative": self.negative.contiguous()}
        save_file(tensors, str(path), metadata={"findings": json.dumps(self.names)})

    @classmethod
    def load(cls, path: Path) -> PromptFallback | None:
        """The fallback saved at ``path``, or None when the model has none."""
        from safetensors import safe_open

        if not path.is_file():
            return None
        try:
            with safe_open(str(path), framework="pt") as fh:
                names = json.loads((fh.metadata() or {})["findings"])
                positive, negative = fh.get_tensor("positive"), fh.get_tensor("negative")
        except Exception as exc:  # noqa: BLE001 - safetensors' own errors, a missing key, bad JSON
            raise CheckpointError(f"{path}: not a zero-shot fallback file ({type(exc).__name__}: {exc})") from None
        if positive.shape != negative.shape or positive.shape[0] != len(names):
            raise CheckpointError(f"{path}: {len(names)} findings but tensors of shape {tuple(positive.shape)}")
        return cls(list(names), positive, negative)


def record_text_embeddings(loaded, records: Sequence[Record]) -> torch.Tensor:
    """(N, D) one embedding per record: the renormalised mean of its texts' embeddings."""
    from domainclip.pipeline.embedding import embed_texts
    from domainclip.pipeline.tasks.retrieval import texts_and_owners

    texts, owners = texts_and_owners(records)
    emb = embed_texts(loaded, texts)
    sums = torch.zeros(len(records), emb.shape[1]).index_add(0, owners, emb.float())
    return torch.nn.functional.normalize(sums, dim=-1)


def fit_prompt_fallback(
    loaded,
    inverted: dict[str, float],
    val_emb: torch.Tensor,
    val: Findings,
    train_records: Sequence[Record],
    train: Findings,
) -> tuple[PromptFallback, dict[str, Any]]:
    """The fallback for the findings in ``inverted`` (name -> the validation-silver AUC of its prompts, below 0.5)
    that the training reports' prototypes score better; with ``zeroshot.fallback_findings`` and, per replaced
    finding, ``zeroshot.val_silver_fallback.auc.<finding>``. No ``train_records`` (``evaluate.prompt_fallback:
    false``): no fallback."""
    from sklearn.metrics import roc_auc_score

    from domainclip.heads.zeroshot import binary_zeroshot_probs, report_prototypes

    kept: list[int] = []
    metrics: dict[str, Any] = {}
    positive = negative = torch.empty(0, 0)
    if inverted and train_records and all(r.texts for r in train_records):
        positive, negative = report_prototypes(record_text_embeddings(loaded, train_records), train.silver_labels())
        probs = np.asarray(binary_zeroshot_probs(val_emb, positive, negative, loaded.logit_scale), dtype=np.float64)
        silver = val.silver_labels()
        for name, prompt_auc in inverted.items():
            k = val.names.index(name)
            known = ~np.isnan(silver[:, k]) & ~np.isnan(probs[:, k])
            if len(np.unique(silver[known, k])) < 2:
                continue
            fallback_auc = float(roc_auc_score(silver[known, k], probs[known, k]))
            if fallback_auc > prompt_auc:
                kept.append(k)
                metrics[f"zeroshot.val_silver_fallback.auc.{name}"] = fallback_auc
    metrics["zeroshot.fallback_findings"] = [val.names[k] for k in kept]
    return PromptFallback([val.names[k] for k in kept], positive[kept], negative[kept]), metrics
