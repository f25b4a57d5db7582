"""Numeric targets (region indicators, scores): an MLP head on frozen image embeddings, R², RMSE, MAE, MAPE.

The head z-scores each target with its training statistics and predicts in the original units, so every metric is
in the target's own units (MAPE a fraction; skipped, with ``mape_skipped`` saying why, when a true value is near 0:
:mod:`domainclip.heads.regression`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from domainclip.pipeline.tasks.intervals import resampled_interval
from domainclip.pipeline.tasks.plots import plot_scatter, slug
from domainclip.records import Record


def target_names(records: dict[str, list[Record]]) -> list[str]:
    return sorted({name for rs in records.values() for r in rs for name in r.targets})


def _known(records: list[Record], name: str) -> tuple[np.ndarray, np.ndarray]:
    rows = [i for i, r in enumerate(records) if name in r.targets]
    return np.array(rows, dtype=np.int64), np.array([records[i].targets[name] for i in rows], dtype=np.float64)


def regression_metrics_for(
    image_emb: dict[str, torch.Tensor], records: dict[str, list[Record]], eval_split: str, plots: Path, n_boot: int
) -> dict[str, Any]:
    """Per target: fit on the training split (early stopping on the validation split when it has the target),
    score on ``eval_split``: ``regression.<target>.r2|rmse|mae|mape`` (or ``.mape_skipped``) and the R² interval."""
    from sklearn.metrics import r2_score

    from domainclip.heads.regression import RegressionHead, regression_metrics

    out: dict[str, Any] = {}
    for name in target_names(records):
        train_rows, y_train = _known(records.get("train", []), name)
        test_rows, y_test = _known(records[eval_split], name)
        if len(train_rows) < 2 or len(test_rows) < 2:
            continue
        valid_rows, y_valid = _known(records.get("valid", []), name) if "valid" in image_emb else ([], [])
        validation = (image_emb["valid"].numpy()[valid_rows], y_valid) if len(valid_rows) >= 2 else (None, None)
        head = RegressionHead(seed=0).fit(image_emb["train"].numpy()[train_rows], y_train, *validation)
        predicted = np.asarray(head.predict(image_emb[eval_split].numpy()[test_rows]), dtype=np.float64).reshape(-1)
        scores = regression_metrics(y_test, predicted)
        out.update({f"regression.{name}.{key}": value for key, value in scores.items()})
        out.update(
            resampled_interval(
                f"regression.{name}.r2",
                lambda i, y=y_test, p=predicted: float(r2_score(y[i], p[i])),
                len(y_test),
                n_boot,
            )
        )
        plot_scatter(y_test, predicted, f"regression: {name}", plots / f"regression_{slug(name)}.png")
    return out
