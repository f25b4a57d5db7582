"""The report's pictures: training curves drawn from the log, and images embedded as data URIs, downsampled so a
report stays small enough to mail (a few MB)."""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

CURVES = (("loss", "loss"), ("lr", "learning rate"), ("logit_scale", "logit scale"), ("grad_norm", "grad norm"))
"""What a stage's curves show, where its log rows have the key: (key, axis label)."""

MAX_WIDTH = 1100
"""Widest embedded image (px): the report's column; larger PNGs (heatmap strips) are downsampled to it."""


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def png_bytes(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return buffer.getvalue()


def training_curves(rows: Sequence[dict[str, Any]]) -> dict[str, bytes]:
    """Per stage (in log order), one PNG with a panel per curve its rows have, against the step. A resumed run
    logs some steps twice; the later row of a step wins (what the resumed run went on from)."""
    plt = _pyplot()
    stages: dict[str, dict[int, dict[str, Any]]] = {}
    for row in rows:
        if "stage" in row and "step" in row:
            stages.setdefault(str(row["stage"]), {})[int(row["step"])] = row
    figures = {}
    for stage, by_step in stages.items():
        steps = sorted(by_step)
        panels = [(key, label) for key, label in CURVES if any(key in by_step[s] for s in steps)]
        if not panels:
            continue
        fig, axes = plt.subplots(1, len(panels), figsize=(2.7 * len(panels), 2.4), squeeze=False)
        for ax, (key, label) in zip(axes[0], panels, strict=True):
            xs = [s for s in steps if key in by_step[s]]
            ax.plot(
                xs, [by_step[s][key] for s in xs], linewidth=1.2, marker="o" if len(xs) < 20 else None, markersize=3
            )
            ax.set(xlabel="step", title=label)
            if key in ("loss", "grad_norm") and min(by_step[s][key] for s in xs) > 0:
                ax.set_yscale("log")
            ax.grid(alpha=0.3)
        fig.suptitle(f"stage {stage}", fontsize=10)
        fig.tight_layout()
        figures[stage] = png_bytes(fig)
        plt.close(fig)
    return figures


def data_uri(image: Path | bytes | np.ndarray, max_width: int = MAX_WIDTH) -> str:
    """A ``data:image/png;base64`` URI of a PNG file, PNG bytes or an RGB array, downsampled to ``max_width``."""
    from PIL import Image

    if isinstance(image, np.ndarray):
        picture = Image.fromarray(image)
    else:
        picture = Image.open(io.BytesIO(image) if isinstance(image, bytes) else image)
        picture.load()
    if picture.width > max_width:
        height = round(picture.height * max_width / picture.width)
        picture = picture.convert("RGB").resize((max_width, height), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
