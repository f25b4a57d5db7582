"""Domain-agnostic downstream heads and their metrics (work on any embeddings or covariate tables).

Names are resolved lazily so that ``import domainclip.heads`` does not import
scikit-survival, lifelines or faiss until a head that needs them is used.

=====================  ==================================================
classification         :class:`LinearProbe`, :class:`MLPHead`
classification_metrics :func:`classification_metrics` (bootstrap 95% CIs)
survival               :class:`CoxHead`, :func:`fit_evaluate_survival`,
                       :func:`survival_metrics`, :func:`harrell_c`
retrieval              :func:`retrieval_metrics`, :func:`topk_search`
regression             :class:`RegressionHead`, :func:`regression_metrics`
zeroshot               :func:`class_text_embeddings`, :func:`binary_zeroshot_probs`, :func:`mi_zero_topk`,
                       :func:`report_prototypes`, :func:`other_class_negatives`
=====================  ==================================================
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "LinearProbe": "classification",
    "MLPHead": "classification",
    "classification_metrics": "classification_metrics",
    "CoxHead": "cox",
    "efron_neg_log_likelihood": "cox_loss",
    "harrell_c": "concordance",
    "survival_metrics": "survival_metrics",
    "fit_evaluate_survival": "survival",
    "retrieval_metrics": "retrieval",
    "topk_search": "retrieval",
    "RegressionHead": "regression",
    "regression_metrics": "regression",
    "class_text_embeddings": "zeroshot",
    "binary_zeroshot_probs": "zeroshot",
    "mi_zero_topk": "zeroshot",
    "report_prototypes": "zeroshot",
    "other_class_negatives": "zeroshot",
}


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'domainclip.heads' has no attribute {name!r}")
    return getattr(importlib.import_module(f"domainclip.heads.{_EXPORTS[name]}"), name)


def __dir__() -> list[str]:
    return sorted(_EXPORTS)


__all__ = [
    "CoxHead",
    "LinearProbe",
    "MLPHead",
    "RegressionHead",
    "binary_zeroshot_probs",
    "class_text_embeddings",
    "classification_metrics",
    "efron_neg_log_likelihood",
    "fit_evaluate_survival",
    "harrell_c",
    "mi_zero_topk",
    "other_class_negatives",
    "regression_metrics",
    "report_prototypes",
    "retrieval_metrics",
    "survival_metrics",
    "topk_search",
]
