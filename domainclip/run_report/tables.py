"""The report's tables as rows of plain values: the headline figures (with 95 % CI, label source and chance level),
per-finding scores beside prevalence, and every metric. HTML is :mod:`~domainclip.run_report.html`'s job."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CLASS_LABELS = "truth (class labels)"
PAIRS = "report / caption pairs"


@dataclass(frozen=True)
class Headline:
    label: str
    key: str
    source: str | None = None  # metrics key holding the label source ("truth" / "silver" / "mixed") ...
    fixed_source: str | None = None  # ... or the source when it is fixed by the task
    chance: str | float | None = None  # metrics key of the chance level, or the level itself


HEADLINES = (
    Headline("zero-shot findings, mean AUC", "zeroshot.auc_mean", source="zeroshot.label_source", chance=0.5),
    Headline(
        "zero-shot findings, prompts alone", "zeroshot_prompts.auc_mean", source="zeroshot.label_source", chance=0.5
    ),
    Headline(
        "linear probe findings, mean AUC", "linear_probe.auc_mean", source="linear_probe.label_source", chance=0.5
    ),
    Headline("zero-shot classes, balanced accuracy", "zeroshot.balanced_accuracy", fixed_source=CLASS_LABELS),
    Headline("zero-shot classes, top-1", "zeroshot.top1", fixed_source=CLASS_LABELS),
    Headline("MI-Zero top-k classes, balanced accuracy", "zeroshot_topk.balanced_accuracy", fixed_source=CLASS_LABELS),
    Headline("linear probe classes, balanced accuracy", "linear_probe.balanced_accuracy", fixed_source=CLASS_LABELS),
    Headline(
        "text -> image R@1",
        "retrieval.text_to_image.R@1",
        fixed_source=PAIRS,
        chance="retrieval.chance.text_to_image.R@1",
    ),
    Headline(
        "text -> image R@5",
        "retrieval.text_to_image.R@5",
        fixed_source=PAIRS,
        chance="retrieval.chance.text_to_image.R@5",
    ),
    Headline(
        "image -> text R@5",
        "retrieval.image_to_text.R@5",
        fixed_source=PAIRS,
        chance="retrieval.chance.image_to_text.R@5",
    ),
    Headline(
        "retrieval mean recall", "retrieval.mean_recall", fixed_source=PAIRS, chance="retrieval.chance.mean_recall"
    ),
    Headline("survival C-index (image embedding)", "survival.c_index", fixed_source="truth (time, event)", chance=0.5),
    Headline(
        "survival C-index, same head on the true findings",
        "survival.ceiling_true_findings.c_index",
        fixed_source="truth (time, event)",
        chance=0.5,
    ),
    Headline(
        "survival C-index, same head on the silver findings",
        "survival.reference_silver_findings.c_index",
        fixed_source="truth (time, event)",
        chance=0.5,
    ),
    Headline(
        "survival log-rank p, high vs low predicted risk", "survival.logrank_p", fixed_source="truth (time, event)"
    ),
)


def _chance(headline: Headline, metrics: Mapping[str, Any]) -> float | None:
    if isinstance(headline.chance, str):
        return metrics.get(headline.chance)
    if headline.chance is None and headline.fixed_source == CLASS_LABELS and "balanced_accuracy" in headline.key:
        return 1.0 / metrics["classes.n"] if metrics.get("classes.n") else None
    return headline.chance


def headline_rows(metrics: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per headline figure the run has: label, value, CI bounds, label source, chance level, key. The
    regression targets' R² are added after the fixed list."""
    rows = []
    for h in HEADLINES:
        if not isinstance(metrics.get(h.key), (int, float)):
            continue
        rows.append(
            {
                "label": h.label,
                "value": metrics[h.key],
                "ci": (metrics.get(f"{h.key}_ci_low"), metrics.get(f"{h.key}_ci_high")),
                "source": metrics.get(h.source) if h.source else h.fixed_source,
                "chance": _chance(h, metrics),
                "key": h.key,
            }
        )
    for key in sorted(k for k in metrics if k.startswith("regression.") and k.endswith(".r2")):
        target = key.removeprefix("regression.").removesuffix(".r2")
        ci = (metrics.get(f"{key}_ci_low"), metrics.get(f"{key}_ci_high"))
        rows.append(
            {"label": f"regression {target}, R²", "value": metrics[key], "ci": ci, "source": "truth", "chance": 0.0}
            | {"key": key}
        )
    return rows


def finding_rows(metrics: Mapping[str, Any], info: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per finding: zero-shot and linear-probe AUC on the evaluated split, and its prevalence in the training
    reports and in the evaluated split's labels (``run_info.json``)."""
    data = info.get("data", {})
    prevalence = data.get("findings", {})
    eval_split = data.get("eval_split", metrics.get("evaluate.split", "test"))
    names = list(prevalence) or sorted(
        {k.split(".", 2)[2] for k in metrics if k.startswith(("zeroshot.auc.", "linear_probe.auc."))}
    )
    fallback = set(metrics.get("zeroshot.fallback_findings") or [])
    return [
        {
            "finding": name,
            "zeroshot": metrics.get(f"zeroshot.auc.{name}"),
            "prompts_alone": metrics.get(f"zeroshot_prompts.auc.{name}"),
            "probe": metrics.get(f"linear_probe.auc.{name}"),
            "train_reports": prevalence.get(name, {}).get("train_reports"),
            "evaluated": prevalence.get(name, {}).get(eval_split),
            "fallback": name in fallback,
        }
        for name in names
    ]


def scalar_metrics(metrics: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """Every metric as (key, value), lists joined, sorted by key: the full table at the end of the report."""
    out = []
    for key, value in sorted(metrics.items()):
        if isinstance(value, list):
            value = ", ".join(map(str, value)) or "-"
        out.append((key, value))
    return out
